"""CIFAR-10 convolutional networks (paper section 3.3)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from l2l.data import cifar10
from l2l.errors import UserError
from l2l.problems.base import Problem, Task, check_choice, generator, register


def batch_norm(x: Tensor, offset: Tensor, eps: float = 1e-5) -> Tensor:
    """Batch normalization with the batch's statistics and a learned offset only (no scale)
    [paper]: each channel of x [B, C, ...] standardized over the batch (and space), plus offset [C]."""
    return F.batch_norm(x, None, None, weight=None, bias=offset, training=True, eps=eps)


@register
@dataclass(frozen=True)
class CIFAR(Problem):
    """Cross-entropy of a small convolutional network on a fresh random minibatch every step [paper].

    Three blocks of (5×5 convolution with 16 channels, batch norm, ReLU, 2×2 max-pool), then 32 fully
    connected units with batch norm and ReLU, then one logit per class. Batch norm learns only an
    offset and always uses the minibatch's statistics, so convolutions and the hidden layer need no
    bias. θ holds every parameter flattened into one row per run, θ_0 ~ N(0, init_std²).

    `classes` of the ten labels are used: `labels=first` takes labels 0..k-1 (CIFAR-5: airplane,
    automobile, bird, cat, deer; CIFAR-2: airplane, automobile), `labels=last` takes labels 10-k..9
    (CIFAR-5 last: dog, frog, horse, ship, truck, disjoint from both: LSTM-sub trains there).

    Parameter groups (`Task.groups`), one LSTM each: with `assign=layers` (the book's reading of the
    paper) 0 for the convolutional blocks (kernels and their batch-norm offsets), 1 for the fully
    connected layers (weights, batch-norm offset, logit biases); with `assign=kernels` (the official
    code's `cifar-multi`) 0 for the three convolution kernels only, 1 for everything else.
    """

    family = "cifar"
    optimizer_defaults = {"preprocess": 10.0, "output_scale": 0.1, "groups": 2}  # [paper]

    classes: int = 10
    labels: str = "first"
    batch: int = 128
    split: str = "train"
    init_std: float = 0.01
    assign: str = "layers"

    CHANNELS = 16  # per convolution [paper]
    KERNEL = 5
    HIDDEN = 32  # fully connected units [paper]

    def __post_init__(self):
        check_choice("classes", self.classes, (2, 5, 10))
        check_choice("labels", self.labels, ("first", "last"))
        check_choice("split", self.split, ("train", "test"))
        check_choice("assign", self.assign, ("layers", "kernels"))
        if self.batch < 2:
            raise UserError("batch must be at least 2 (batch norm uses the batch's statistics)")

    @property
    def label_set(self) -> tuple[int, ...]:
        first = 0 if self.labels == "first" else 10 - self.classes
        return tuple(range(first, first + self.classes))

    @property
    def shapes(self) -> list[tuple[str, tuple[int, ...], int]]:
        """(name, shape, group) of every parameter tensor, in θ's order."""
        C, K, H = self.CHANNELS, self.KERNEL, self.HIDDEN
        out = []
        offsets = 0 if self.assign == "layers" else 1  # the conv blocks' batch-norm offsets
        for k, cin in enumerate((3, C, C)):
            out += [(f"conv{k + 1}", (C, cin, K, K), 0), (f"bn{k + 1}", (C,), offsets)]
        flat = C * 4 * 4  # 32 → 16 → 8 → 4 after three pools
        out += [("fc", (flat, H), 1), ("bn_fc", (H,), 1), ("logits", (H, self.classes), 1),
                ("bias", (self.classes,), 1)]
        return out

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape, _ in self.shapes)

    def groups(self, device="cpu") -> Tensor:
        """[n] parameter group of each coordinate of θ (0 convolutional, 1 fully connected)."""
        return torch.cat([torch.full((math.prod(s),), g, device=device) for _, s, g in self.shapes])

    def held_out(self):
        return dataclasses.replace(self, split="test")

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """θ [R, n] as named parameter tensors [R, *shape] (views, no copies)."""
        params, offset = {}, 0
        for name, shape, _ in self.shapes:
            size = math.prod(shape)
            params[name] = theta[:, offset : offset + size].view(-1, *shape)
            offset += size
        return params

    def network(self, p: dict[str, Tensor], x: Tensor) -> Tensor:
        """One network's forward pass: parameters p (one run's, from `unflatten`), images
        x [B, 3, 32, 32] -> logits [B, classes]."""
        h = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU
        for k in (1, 2, 3):
            h = F.conv2d(h, p[f"conv{k}"], padding=self.KERNEL // 2)
            h = batch_norm(h, p[f"bn{k}"])
            h = F.max_pool2d(torch.relu(h), 2)
        h = torch.relu(batch_norm(h.flatten(1) @ p["fc"], p["bn_fc"]))
        return h @ p["logits"] + p["bias"]

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        """Forward pass for R runs: θ [R, n], images x [R, B, 3, 32, 32] -> [R, B, classes].

        Runs go one after another: on a CPU that beats one grouped convolution over all runs.
        """
        params = self.unflatten(theta)
        return torch.stack([self.network({k: v[r] for k, v in params.items()}, x[r])
                            for r in range(len(x))])

    def sample(self, runs, seed, device="cpu"):
        images, labels = cifar10(self.split, device)
        keep = torch.isin(labels, torch.tensor(self.label_set, device=device)).nonzero().squeeze(1)
        g = generator(seed)
        theta = (self.init_std * torch.randn(runs, self.size, generator=g)).to(device)

        def batch():
            idx = keep[torch.randint(len(keep), (runs, self.batch), generator=g).to(device)]
            return images[idx], labels[idx] - self.label_set[0]  # [R, B, 3, 32, 32], [R, B]

        def loss(theta, batch):
            x, y = batch
            return F.cross_entropy(self.logits(theta, x).transpose(1, 2), y, reduction="none").mean(-1)

        return Task(theta, loss, batch, groups=self.groups(device))
