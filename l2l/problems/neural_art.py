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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from l2l.data import ART_CONTENT, ART_STYLE, art_image, cifar10_uint8
from l2l.errors import UserError
from l2l.problems.base import Problem, Task, check_choice, generator, register
from l2l.problems.features import CONTENT_LAYER, STYLE_LAYERS, features, gram

# α, β, γ. Each term is a relative error (or, for γ, a mean squared pixel difference) of order 0.1-1
# at θ_0, so the weights read directly as priorities. Chosen once, by looking at 128 ADAM steps on
# the five photos: β = 1 left the style faint, β = 4 erased the rocket; β = 2 gives a clearly
# painted image whose object stays recognizable. γ = 1 smooths away the initial noise (TV 0.15 ->
# 0.04) without blurring strokes. With these, f(θ_0) ≈ 1-2 and pixel gradients ≈ 1e-4-1e-2,
# inside the range the log preprocessing (p = 10) resolves (|∇| ≥ e^-10 ≈ 5e-5).
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 2.0, 1.0
WEIGHTS = {"content": CONTENT_WEIGHT, "style": STYLE_WEIGHT, "tv": TV_WEIGHT}  # each of `terms`' weight in f
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
    crops = [torch.from_numpy(c).permute(2, 0, 1)[None].float()
             for name in ART_CONTENT for c in square_crops(art_image("content", name), TEST_PHOTO_CROPS)]
    return torch.cat([resize(c, size) for c in crops]).round().clamp(0, 255)


def photo(name: str, size: int) -> Tensor:
    """One mirror photo's centred square, [3, size, size] in network units (never in training)."""
    if name not in ART_CONTENT:
        raise UserError(f"unknown photo {name!r}; choose from {', '.join(ART_CONTENT)}")
    return to_input(_photo_crops(size)[list(ART_CONTENT).index(name) * TEST_PHOTO_CROPS])


def pool_size(split: str) -> int:
    return 50_000 if split == "train" else len(_photo_crops(16)) + TEST_CIFAR


def content_pool(split: str, size: int, index: Tensor) -> Tensor:
    """Content images number `index` [R] of a pool, [R, 3, size, size] in network units.

    train: the 50,000 CIFAR-10 training images, upsampled from 32×32 (bilinear).
    test: the mirror's photos (5 crops each: 25 images), then the first 75 CIFAR-10 test images,
    upsampled: 100 test contents, as the paper tested on 100 images.
    """
    check_choice("split", split, ("train", "test"))
    index = index.cpu()
    if split == "train":
        cifar = torch.from_numpy(cifar10_uint8("train")[0][index.numpy()]).float()
        return to_input(resize(cifar, size))
    photos = _photo_crops(size)
    out = torch.empty(len(index), 3, size, size)
    is_photo = index < len(photos)
    out[is_photo] = photos[index[is_photo]]
    rest = index[~is_photo] - len(photos)
    if len(rest):
        cifar = torch.from_numpy(cifar10_uint8("test")[0][rest.numpy()]).float()
        out[~is_photo] = resize(cifar, size)
    return to_input(out)


def style_image(name: str, size: int) -> Tensor:
    """The painting `name`, whole, its short side resized to `size`: [3, h, w] in network units."""
    image = torch.from_numpy(art_image("style", name)).permute(2, 0, 1)[None].float()
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    shape = (round(h * scale), round(w * scale))
    image = F.interpolate(image, size=shape, mode="bilinear", align_corners=False, antialias=scale < 1)
    return to_input(image.round().clamp(0, 255))[0]


# ---------------------------------------------------------------------------------------------
# The loss terms


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


STYLES = tuple(ART_STYLE)  # the mirror's paintings: starry_night, great_wave, shipwreck_of_the_minotaur, the_scream


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
        check_choice("size", self.size, (64, 128))
        check_choice("style", self.style, STYLES)
        check_choice("split", self.split, ("train", "test"))
        if self.noise < 0:
            raise UserError(f"noise must be non-negative, got {self.noise}")

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
        noise = (self.noise * torch.randn(len(content), self.n, generator=g)).to(content.device)
        theta = content.reshape(len(content), -1) + noise
        content = content.to(device)
        grams = style_targets(self.style, self.size, str(device))
        with torch.no_grad():
            content_feat = features(content, (CONTENT_LAYER,))[CONTENT_LAYER]

        def loss(theta, batch):
            terms = art_terms(self.images(theta), batch, grams)  # batch: the content features
            return self.scale * sum(WEIGHTS[k] * v for k, v in terms.items())  # [R]

        return Task(theta.to(device), loss, lambda: content_feat)

    def contents(self, runs: int, seed: int) -> Tensor:
        """The content image of each of `runs` runs that `sample(runs, seed)` draws [R, 3, size, size]:
        distinct while the split's pool lasts (the test pool has 100), then repeated."""
        g = generator(seed)
        pool = pool_size(self.split)
        index = torch.cat([torch.randperm(pool, generator=g) for _ in range(-(-runs // pool))])[:runs]
        return content_pool(self.split, self.size, index)

    def sample(self, runs, seed, device="cpu"):
        return self.task(self.contents(runs, seed), seed + 1, device)
