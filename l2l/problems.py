"""Optimizees: families of random functions f(θ), named by a SPEC such as `quadratic:dim=10`.

A problem family samples a `Task`: R functions at once, with their initial parameters θ_0 as one
[R, n] tensor (row r belongs to run r) and a pure loss f(θ, batch) -> [R]. Batching runs this way
lets every optimizer advance many independent runs in the same tensor operations. All randomness
comes from a `torch.Generator` on the CPU, seeded through `derive_seed`, so a seed names the same
functions on every device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def derive_seed(seed: int, stream: str, index: int = 0) -> int:
    """An independent seed for one use ('train' epoch k, 'valid', 'test', ...) of a master seed."""
    digest = hashlib.sha256(f"{seed}/{stream}/{index}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass
class Task:
    """R optimizee functions drawn from one family, with their starting point.

    Attributes:
        theta: [R, n] initial parameters θ_0, one row per run.
        loss: pure function (θ [R, n], batch) -> f [R]; run r's loss depends on row r alone. It is
            the same function for every task of a family: all that differs between tasks (a
            quadratic's W and y, a minibatch) comes through `batch`, so one captured CUDA graph
            serves every task (`l2l.train.GraphedUnroll`).
        batch: draws the data of one optimizee step (a fresh minibatch; a quadratic's W and y).
        groups: [n] parameter group of each coordinate (CIFAR: 0 convolutional, 1 fully
            connected), for optimizers with one LSTM per group; None when there is one group.
    """

    theta: Tensor
    loss: Callable[[Tensor, Any], Tensor]
    batch: Callable[[], Any] = field(default=lambda: None)
    groups: Tensor | None = None

    @property
    def runs(self) -> int:
        return self.theta.shape[0]

    def loss_and_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """f(θ_t) and ∇_t on a fresh batch, both detached from any graph θ belongs to.

        Detaching here is the paper's dropped second derivatives: ∇_t enters the optimizer as a
        constant input, and the optimizee's own graph is freed at once.
        """
        theta = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.loss(theta, self.batch())
            (grad,) = torch.autograd.grad(f.sum(), theta)  # rows are independent: ∇ of each run
        return f.detach(), grad


# ---------------------------------------------------------------------------------------------
# The registry and SPEC strings


PROBLEMS: dict[str, type] = {}


def register(cls):
    PROBLEMS[cls.family] = cls
    return cls


def _options(cls) -> str:
    return ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))


def _parse_value(text: str, default: Any, key: str):
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() not in ("0", "1", "true", "false"):
                raise ValueError
            return text.lower() in ("1", "true")
        return kind(text)
    except ValueError:
        raise ValueError(f"option {key}={text!r}: expected a {kind.__name__}") from None


def make_problem(spec: str):
    """Parse a SPEC `family[:key=value,...]` into a problem; unknown names fail with the choices."""
    family, _, options = spec.strip().partition(":")
    if family not in PROBLEMS:
        known = "; ".join(f"{name} ({_options(c)})" for name, c in PROBLEMS.items())
        raise ValueError(f"unknown problem {family!r}. Known problems and their options: {known}")
    cls = PROBLEMS[family]
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    kwargs = {}
    for item in filter(None, (s.strip() for s in options.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            raise ValueError(f"{family}: bad option {item!r}. Options (with defaults): {_options(cls)}")
        kwargs[key] = _parse_value(value, defaults[key], key)
    return cls(**kwargs)


class Problem:
    """Base of the problem families: a SPEC round trip and a file-name-safe slug."""

    family = ""
    # The learned optimizer's input and output treatment for this family (`LSTMConfig` fields)
    optimizer_defaults: dict = {}

    @property
    def spec(self) -> str:
        """The canonical SPEC: the family plus the options that differ from their defaults."""
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return self.family + (":" + ",".join(changed) if changed else "")

    @property
    def slug(self) -> str:
        return self.spec.replace(":", "-").replace(",", "-").replace("=", "")

    def sample(self, runs: int, seed: int, device: str | torch.device = "cpu") -> Task:
        raise NotImplementedError

    def held_out(self):
        """The family that test curves are drawn from: the same functions on data that training
        never used (for datasets, the test split); the family itself when there is no data."""
        return self


def _check_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r}: choose from {', '.join(map(str, choices))}")


# ---------------------------------------------------------------------------------------------
# Quadratics (paper section 3.1)


def quadratic_loss(theta: Tensor, W: Tensor, y: Tensor) -> Tensor:
    """‖Wθ − y‖² for R functions: θ [R, d], W [R, d, d], y [R, d] -> [R]."""
    residual = torch.einsum("rij,rj->ri", W, theta) - y  # Wθ − y
    return residual.pow(2).sum(-1)


@register
@dataclass(frozen=True)
class Quadratic(Problem):
    """f(θ) = ‖Wθ − y‖², W [dim, dim] and y [dim] i.i.d. N(0, 1) per function [paper].

    `init_std` is the spread of θ_0 ~ N(0, init_std²) (0.01 in the official code).
    """

    family = "quadratic"
    optimizer_defaults = {"preprocess": None, "output_scale": 1.0}  # [paper]: neither on quadratics

    dim: int = 10
    init_std: float = 0.01

    def __post_init__(self):
        if self.dim < 1:
            raise ValueError(f"dim must be positive, got {self.dim}")

    def sample(self, runs, seed, device="cpu"):
        g = generator(seed)
        W = torch.randn(runs, self.dim, self.dim, generator=g).to(device)
        y = torch.randn(runs, self.dim, generator=g).to(device)
        theta = (self.init_std * torch.randn(runs, self.dim, generator=g)).to(device)

        # the function's data come through `batch` (the same W and y at every step), so that
        # `loss` is one pure function for the whole family
        return Task(theta, lambda theta, batch: quadratic_loss(theta, *batch), lambda: (W, y))


# ---------------------------------------------------------------------------------------------
# MNIST multi-layer perceptrons (paper section 3.2)


@register
@dataclass(frozen=True)
class MNIST(Problem):
    """Cross-entropy of an MLP 784-hidden-…-10 on a fresh random minibatch every step [paper].

    θ holds every weight and bias of the network flattened into one row per run; `layers` hidden
    layers of `hidden` units each use `activation`. θ_0 ~ N(0, init_std²) i.i.d. [paper; std from code].
    `activation=mix` draws sigmoid or ReLU for each run (a remedy for the ReLU failure).
    """

    family = "mnist"
    optimizer_defaults = {"preprocess": 10.0, "output_scale": 0.1}  # [paper]

    hidden: int = 20
    layers: int = 1
    activation: str = "sigmoid"
    batch: int = 128
    split: str = "train"
    init_std: float = 0.01

    def __post_init__(self):
        _check_choice("activation", self.activation, ("sigmoid", "relu", "tanh", "mix"))
        _check_choice("split", self.split, ("train", "test"))
        if self.hidden < 1 or self.layers < 0 or self.batch < 1:
            raise ValueError("hidden and batch must be positive, layers non-negative")

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer, input to logits."""
        sizes = [784] + [self.hidden] * self.layers + [10]
        return list(zip(sizes[:-1], sizes[1:]))

    @property
    def size(self) -> int:
        return sum(i * o + o for i, o in self.shapes)

    def held_out(self):
        return dataclasses.replace(self, split="test")

    def logits(self, theta: Tensor, x: Tensor, relu_runs: Tensor | None = None) -> Tensor:
        """MLP forward pass for R runs at once: θ [R, n], x [R, B, 784] -> [R, B, 10].

        With `activation=mix`, `relu_runs` [R] (bool) says which runs use ReLU, the rest sigmoid.
        """
        if self.activation == "mix":
            mask = relu_runs[:, None, None]
            act = lambda z: torch.where(mask, torch.relu(z), torch.sigmoid(z))
        else:
            act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[self.activation]
        offset = 0
        for k, (i, o) in enumerate(self.shapes):
            W = theta[:, offset : offset + i * o].view(-1, i, o)  # [R, in, out]
            b = theta[:, offset + i * o : offset + i * o + o]  # [R, out]
            offset += i * o + o
            x = torch.baddbmm(b[:, None, :], x, W)  # [R, B, out]
            if k < len(self.shapes) - 1:
                x = act(x)
        return x

    def sample(self, runs, seed, device="cpu"):
        from l2l.data import mnist

        images, labels = mnist(self.split, device)  # [N, 784] floats in [0, 1], [N]
        g = generator(seed)
        theta = (self.init_std * torch.randn(runs, self.size, generator=g)).to(device)
        relu_runs = (torch.rand(runs, generator=g) < 0.5).to(device) if self.activation == "mix" else None

        def batch():
            idx = torch.randint(len(labels), (runs, self.batch), generator=g).to(device)
            return images[idx], labels[idx], relu_runs  # [R, B, 784], [R, B], [R] or None

        def loss(theta, batch):
            x, y, relu = batch
            logits = self.logits(theta, x, relu)
            return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(-1)  # [R]

        return Task(theta, loss, batch)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 convolutional networks (paper section 3.3)


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

    Parameter groups (`Task.groups`): 0 for the convolutional blocks (kernels and their batch-norm
    offsets), 1 for the fully connected layers (weights, batch-norm offset, logit biases).
    """

    family = "cifar"
    optimizer_defaults = {"preprocess": 10.0, "output_scale": 0.1, "groups": 2}  # [paper]

    classes: int = 10
    labels: str = "first"
    batch: int = 128
    split: str = "train"
    init_std: float = 0.01

    CHANNELS = 16  # per convolution [paper]
    KERNEL = 5
    HIDDEN = 32  # fully connected units [paper]

    def __post_init__(self):
        _check_choice("classes", self.classes, (2, 5, 10))
        _check_choice("labels", self.labels, ("first", "last"))
        _check_choice("split", self.split, ("train", "test"))
        if self.batch < 2:
            raise ValueError("batch must be at least 2 (batch norm uses the batch's statistics)")

    @property
    def label_set(self) -> tuple[int, ...]:
        first = 0 if self.labels == "first" else 10 - self.classes
        return tuple(range(first, first + self.classes))

    @property
    def shapes(self) -> list[tuple[str, tuple[int, ...], int]]:
        """(name, shape, group) of every parameter tensor, in θ's order."""
        C, K, H = self.CHANNELS, self.KERNEL, self.HIDDEN
        out = []
        for k, cin in enumerate((3, C, C)):
            out += [(f"conv{k + 1}", (C, cin, K, K), 0), (f"bn{k + 1}", (C,), 0)]
        flat = C * 4 * 4  # 32 → 16 → 8 → 4 after three pools
        out += [("fc", (flat, H), 1), ("bn_fc", (H,), 1), ("logits", (H, self.classes), 1),
                ("bias", (self.classes,), 1)]
        return out

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape, _ in self.shapes)

    def groups(self) -> Tensor:
        """[n] parameter group of each coordinate of θ (0 convolutional, 1 fully connected)."""
        return torch.cat([torch.full((math.prod(s),), g) for _, s, g in self.shapes])

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
        from l2l.data import cifar10

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

        return Task(theta, loss, batch, groups=self.groups().to(device))


from l2l import art  # noqa: E402,F401  (registers neural_art)
