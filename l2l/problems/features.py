"""The frozen feature network of the neural-art family: ImageNet MobileNetV2's convolutional
blocks (the paper used VGG-19, which cannot be had offline here; see `l2l.problems.neural_art`),
and the Gram matrices of its features that define a style (Gatys et al. 2015).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from l2l.data import mobilenet_v2_state

# Blocks of `mobilenet_v2().features` whose outputs are used. At a 64×64 input, block 0 (the first
# 3×3 convolution, ReLU6) gives 32 channels at 32×32, block 2 24 at 16×16, block 4 32 at 8×8,
# block 7 64 at 4×4: the first layer of each resolution, as Gatys et al. took conv1_1 … conv5_1.
STYLE_LAYERS = (0, 2, 4, 7)
CONTENT_LAYER = 4  # 8×8 at 64×64: coarse enough to leave room for style, fine enough to keep the object


@lru_cache(maxsize=None)
def feature_network(device: str = "cpu") -> torch.nn.Module:
    """MobileNetV2's convolutional blocks up to the deepest one used, ImageNet weights from the
    mirror (strict load), eval mode (its batch norms hold no statistics), frozen."""
    import torchvision  # imported here: it takes a second, and only neural art needs it

    net = torchvision.models.mobilenet_v2()
    net.load_state_dict(mobilenet_v2_state(), strict=True)
    deepest = max(*STYLE_LAYERS, CONTENT_LAYER)
    return net.features[: deepest + 1].eval().requires_grad_(False).to(device)


def features(x: Tensor, layers=None) -> dict[int, Tensor]:
    """Outputs of the chosen blocks for images x [B, 3, H, W] (network units): {block: [B, C, h, w]}.
    Eval-mode batch norm is a fixed affine map, so each image's features depend on it alone."""
    layers = set(layers if layers is not None else (*STYLE_LAYERS, CONTENT_LAYER))
    net = feature_network(str(x.device))
    out = {}
    for k, block in enumerate(net):
        x = block(x)
        if k in layers:
            out[k] = x
        if len(out) == len(layers):
            break
    return out


def gram(f: Tensor) -> Tensor:
    """Gram matrices of features f [B, C, h, w]: G = F Fᵀ / (h w), [B, C, C] (channel correlations
    averaged over positions, so a style image of any size gives comparable targets)."""
    flat = f.flatten(2)  # [B, C, h·w]
    return flat @ flat.transpose(1, 2) / flat.shape[-1]
