"""Neural art (paper section 3.4): optimize an image θ to mix the content of one picture with the
style of a painting (Gatys et al. 2015),

    f(θ) = s · (α L_content(θ) + β L_style(θ) + γ L_tv(θ)),        s = H·W / 64²,

where the features come from a frozen ImageNet network and

    L_content = ‖F_c(θ) − F_c(content)‖² / ‖F_c(content)‖²                (one layer c)
    L_style   = (1/|S|) Σ_{l∈S} ‖G_l(θ) − G_l(style)‖² / ‖G_l(style)‖²,      G_l = F_l F_lᵀ / (H_l W_l)
    L_tv      = mean over neighbouring pixels of (θ_{i,j+1} − θ_{i,j})² and (θ_{i+1,j} − θ_{i,j})²

(‖·‖² a mean of squares). Departures from the paper, which used VGG-19 features and ImageNet
photos, neither of which can be had offline here:

* Features: the ImageNet MobileNetV2 of the data mirror (`torchvision.models.mobilenet_v2`, TF
  weights dequantized), always in eval mode, frozen; input (pixel − 128) / 128. θ lives in those
  input units, so pixel = 128 θ + 128; nothing clamps θ inside f (a clamp would zero the gradient
  of every saturated pixel); images are clamped to [0, 255] only for display.
* Content pools: CIFAR-10 training images, upsampled, for training; for testing, crops of the
  mirror's five photos and the first CIFAR-10 test images (`content_pool`). Disjoint by construction.
* The scale s makes f a sum over 64×64 tiles: the gradient at a pixel, and the curvature, have the
  same size at 64×64 and at 128×128, so a coordinatewise optimizer meets the same scales at both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from l2l.problems import Problem, Task, _check_choice, generator, register

# Blocks of `mobilenet_v2().features` whose outputs are used. At a 64×64 input, block 0 (the first
# 3×3 convolution, ReLU6) gives 32 channels at 32×32, block 2 24 at 16×16, block 4 32 at 8×8,
# block 7 64 at 4×4: the first layer of each resolution, as Gatys et al. took conv1_1 … conv5_1.
STYLE_LAYERS = (0, 2, 4, 7)
CONTENT_LAYER = 4  # 8×8 at 64×64: coarse enough to leave room for style, fine enough to keep the object
# α, β, γ. Each term is a relative error (or, for γ, a mean squared pixel difference) of order 0.1-1
# at θ_0, so the weights read directly as priorities. Chosen once, by looking at 128 ADAM steps on
# the five photos: β = 1 left the style faint, β = 4 erased the rocket; β = 2 gives a clearly
# painted image whose object stays recognizable. γ = 1 smooths away the initial noise (TV 0.15 ->
# 0.04) without blurring strokes. With these, f(θ_0) ≈ 1-2 and pixel gradients ≈ 1e-4-1e-2,
# inside the range the log preprocessing (p = 10) resolves (|∇| ≥ e^-10 ≈ 5e-5).
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 2.0, 1.0
TEST_PHOTO_CROPS = 5  # crops per mirror photo in the test pool
TEST_CIFAR = 75  # CIFAR-10 test images in the test pool (the first ones: exact, never JPEG-coded)


# ---------------------------------------------------------------------------------------------
# Pixels <-> network input


def to_input(pixels: Tensor) -> Tensor:
    """uint8-range pixels [..., 3, H, W] -> the network's input units, (pixel − 128) / 128."""
    return (pixels.float() - 128.0) / 128.0


def to_pixels(x: Tensor) -> np.ndarray:
    """Network units [3, H, W] (or a row of θ with its size) -> uint8 [H, W, 3] for display,
    clamped to the displayable range."""
    return (128.0 * x.detach().float().cpu() + 128.0).clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def resize(images: Tensor, size: int) -> Tensor:
    """[B, 3, h, w] float images -> [B, 3, size, size] (bilinear, antialiased when shrinking)."""
    shrink = min(images.shape[-2:]) > size
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def square_crops(image: np.ndarray, count: int) -> list[np.ndarray]:
    """Deterministic square crops of an [H, W, 3] image: the largest centred square, then squares of
    70% of the short side at the four corners (count ≤ 5)."""
    h, w = image.shape[:2]
    s = min(h, w)
    crops = [image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]]
    c = int(0.7 * s)
    for top, left in ((0, 0), (0, w - c), (h - c, 0), (h - c, w - c)):
        crops.append(image[top:top + c, left:left + c])
    return crops[:count]


# ---------------------------------------------------------------------------------------------
# Content pools


@lru_cache(maxsize=None)
def _photo_crops(size: int) -> Tensor:
    """[5·TEST_PHOTO_CROPS, 3, size, size] crops of the mirror's photos in pixel units (0..255),
    photo by photo, the full centred square first."""
    from l2l.data import ART_CONTENT, art_image

    crops = [torch.from_numpy(c).permute(2, 0, 1)[None].float()
             for name in ART_CONTENT for c in square_crops(art_image("content", name), TEST_PHOTO_CROPS)]
    return torch.cat([resize(c, size) for c in crops]).round().clamp(0, 255)


def photo(name: str, size: int) -> Tensor:
    """One mirror photo's centred square, [3, size, size] in network units (never in training)."""
    from l2l.data import ART_CONTENT

    if name not in ART_CONTENT:
        raise ValueError(f"unknown photo {name!r}; choose from {', '.join(ART_CONTENT)}")
    return to_input(_photo_crops(size)[list(ART_CONTENT).index(name) * TEST_PHOTO_CROPS])


def pool_size(split: str) -> int:
    return 50_000 if split == "train" else len(_photo_crops(16)) + TEST_CIFAR


def content_pool(split: str, size: int, index: Tensor) -> Tensor:
    """Content images number `index` [R] of a pool, [R, 3, size, size] in network units.

    train: the 50,000 CIFAR-10 training images, upsampled from 32×32 (bilinear).
    test: the mirror's photos (5 crops each: 25 images), then the first 75 CIFAR-10 test images,
    upsampled: 100 test contents, as the paper tested on 100 images.
    """
    from l2l.data import _cifar_numpy

    _check_choice("split", split, ("train", "test"))
    index = index.cpu()
    if split == "train":
        cifar = torch.from_numpy(_cifar_numpy("train")[0][index.numpy()]).float()
        return to_input(resize(cifar, size))
    photos = _photo_crops(size)
    out = torch.empty(len(index), 3, size, size)
    is_photo = index < len(photos)
    out[is_photo] = photos[index[is_photo]]
    rest = index[~is_photo] - len(photos)
    if len(rest):
        cifar = torch.from_numpy(_cifar_numpy("test")[0][rest.numpy()]).float()
        out[~is_photo] = resize(cifar, size)
    return to_input(out)


def style_image(name: str, size: int) -> Tensor:
    """The painting `name`, whole, its short side resized to `size`: [3, h, w] in network units."""
    from l2l.data import art_image

    image = torch.from_numpy(art_image("style", name)).permute(2, 0, 1)[None].float()
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    shape = (round(h * scale), round(w * scale))
    image = F.interpolate(image, size=shape, mode="bilinear", align_corners=False, antialias=scale < 1)
    return to_input(image.round().clamp(0, 255))[0]


# ---------------------------------------------------------------------------------------------
# The frozen feature network and the loss terms


@lru_cache(maxsize=None)
def feature_network(device: str = "cpu") -> torch.nn.Module:
    """MobileNetV2's convolutional blocks up to the deepest one used, ImageNet weights from the
    mirror (strict load), eval mode (its batch norms hold no statistics), frozen."""
    import torchvision

    from l2l.data import mobilenet_v2_state

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


def total_variation(x: Tensor) -> Tensor:
    """Smoothness penalty of images x [B, 3, H, W]: the mean squared difference of horizontal
    neighbours plus that of vertical neighbours, [B]."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).mean(1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).mean(1)
    return dx + dy


@lru_cache(maxsize=None)
def style_targets(style: str, size: int, device: str = "cpu") -> dict[int, Tensor]:
    """Gram matrices of the painting's features at every style layer, {block: [C, C]} (cached)."""
    with torch.no_grad():
        feats = features(style_image(style, size)[None].to(device), STYLE_LAYERS)
    return {k: gram(f)[0] for k, f in feats.items()}


def art_terms(x: Tensor, content_feat: Tensor, grams: dict[int, Tensor]) -> dict[str, Tensor]:
    """The three loss terms for images x [R, 3, H, W] (network units), each [R].

    content_feat: [R, C, h, w] the content images' features at CONTENT_LAYER; grams: the style's
    Gram targets. Squared errors are relative to the target's mean square, so the content of any
    image and every style layer count alike whatever their magnitude.
    """
    feats = features(x)
    content = (feats[CONTENT_LAYER] - content_feat).pow(2).flatten(1).mean(1)
    content = content / content_feat.pow(2).flatten(1).mean(1)
    style = sum((gram(feats[k]) - A).pow(2).flatten(1).mean(1) / A.pow(2).mean() for k, A in grams.items())
    return {"content": content, "style": style / len(grams), "tv": total_variation(x)}


# ---------------------------------------------------------------------------------------------
# The problem family


STYLES = ("starry_night", "great_wave", "shipwreck_of_the_minotaur", "the_scream")


@register
@dataclass(frozen=True)
class NeuralArt(Problem):
    """f(θ) = s (α L_content + β L_style + γ L_tv) of an image θ (module docstring), one (content,
    style) pair per run: θ [R, 3·size·size] holds one image per row, channel-major, in the network's
    input units (pixel − 128) / 128.

    Each function draws a content image from the split's pool (`content_pool`; without repetition
    while the pool lasts) and uses the painting `style`. θ_0 = content + N(0, noise²) per pixel:
    optimization starts from the photo, as the paper's figures keep the content recognizable, and
    the noise makes every run's start its own.
    """

    family = "neural_art"
    optimizer_defaults = {"preprocess": 10.0, "output_scale": 1.0}  # [paper]: no output scaling

    size: int = 64
    style: str = "starry_night"
    split: str = "train"
    noise: float = 0.1

    def __post_init__(self):
        _check_choice("size", self.size, (64, 128))
        _check_choice("style", self.style, STYLES)
        _check_choice("split", self.split, ("train", "test"))
        if self.noise < 0:
            raise ValueError(f"noise must be non-negative, got {self.noise}")

    @property
    def n(self) -> int:
        return 3 * self.size * self.size

    @property
    def scale(self) -> float:
        """s = H·W / 64²: f sums over 64×64 tiles, so per-pixel gradients do not depend on size."""
        return self.size * self.size / 64**2

    def held_out(self):
        return dataclasses.replace(self, split="test")

    def images(self, theta: Tensor) -> Tensor:
        """θ [R, n] as images [R, 3, size, size] (a view)."""
        return theta.view(-1, 3, self.size, self.size)

    def terms(self, theta: Tensor, content: Tensor) -> dict[str, Tensor]:
        """The unweighted loss terms of θ [R, n] against contents [R, 3, size, size], each [R]."""
        device = str(theta.device)
        with torch.no_grad():
            content_feat = features(content.to(theta.device), (CONTENT_LAYER,))[CONTENT_LAYER]
        return art_terms(self.images(theta), content_feat, style_targets(self.style, self.size, device))

    def task(self, content: Tensor, seed: int, device="cpu") -> Task:
        """R functions for the given content images [R, 3, size, size] (network units)."""
        g = generator(seed)
        theta = content.reshape(len(content), -1) + self.noise * torch.randn(len(content), self.n, generator=g)
        content = content.to(device)
        grams = style_targets(self.style, self.size, str(device))
        with torch.no_grad():
            content_feat = features(content, (CONTENT_LAYER,))[CONTENT_LAYER]
        weights = {"content": CONTENT_WEIGHT, "style": STYLE_WEIGHT, "tv": TV_WEIGHT}

        def loss(theta, batch):
            terms = art_terms(self.images(theta), batch, grams)  # batch: the content features
            return self.scale * sum(weights[k] * v for k, v in terms.items())  # [R]

        task = Task(theta.to(device), loss, lambda: content_feat)
        task.content = content  # for figures: the content image of each run
        return task

    def sample(self, runs, seed, device="cpu"):
        g = generator(seed)
        pool = pool_size(self.split)
        # distinct contents while the pool lasts (the test pool has 100), then repeats
        index = torch.cat([torch.randperm(pool, generator=g) for _ in range(-(-runs // pool))])[:runs]
        return self.task(content_pool(self.split, self.size, index), seed + 1, device)


# ---------------------------------------------------------------------------------------------
# Following one optimizer's trajectory (Fig. 9 and the paper's Appendix B)


@torch.no_grad()
def trajectory(task: Task, opt, steps: int, coords: Tensor | None = None) -> dict:
    """Run `opt` on `task` for `steps` steps (like `l2l.evaluate.run`) and keep what the figures need.

    Args:
        coords: [k] pairs (run, coordinate) as a [k, 2] tensor whose gradients and updates are
            recorded at every step, or None.
    Returns:
        {"theta": final θ [R, n], "losses": [R, steps + 1], and with coords "grads" and
        "updates", each [steps, k]: ∇_t and the update g_t at those coordinates}.
    """
    from l2l.evaluate import optimize

    losses, grads, updates = [], [], []
    for point in optimize(task, opt, steps):  # streamed: states are large, keep only what is asked
        losses.append(point.loss)
        if coords is not None and point.update is not None:
            grads.append(point.grad[coords[:, 0], coords[:, 1]])
            updates.append(point.update[coords[:, 0], coords[:, 1]])
    out = {"theta": point.theta, "losses": torch.stack(losses, dim=1)}
    if coords is not None:
        out |= {"grads": torch.stack(grads), "updates": torch.stack(updates)}
    return out


@torch.no_grad()
def replay(opt, grads: Tensor) -> Tensor:
    """The updates an elementwise optimizer (a baseline) would propose, step by step, if it saw the
    gradient history grads [T, k] of k coordinates: [T, k]. The history is another optimizer's, so
    this answers "what would SGD or ADAM do here" without changing the trajectory."""
    state = opt.init(grads[:1])
    out = []
    for g in grads:
        update, state = opt.step(g[None], state)
        out.append(update[0])
    return torch.stack(out)
