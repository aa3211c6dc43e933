"""Hand-designed baselines: SGD, RMSprop, ADAM and NAG, as pure functions of the gradient.

Each follows `torch.optim`'s update equations line for line (the tests check the trajectories
against `torch.optim` itself), with the Torch7 defaults the paper used: RMSprop α = 0.99,
ε = 1e-8; ADAM β = (0.9, 0.999), ε = 1e-8; NAG is SGD with Nesterov momentum 0.9.

They share the learned optimizer's interface, `init(theta, groups=None) -> state`,
`step(grad, state) -> (update, state)` and `bind() -> step` (`l2l.optimizers.base`), so one loop
(`l2l.loop.optimize`) drives them all, with many runs batched along θ's first dimension: every rule
here is elementwise, so runs never interact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from l2l.errors import UserError
from l2l.optimizers.base import Rule


@dataclass(frozen=True)
class SGD(Rule):
    lr: float

    def init(self, theta: Tensor, groups=None) -> tuple:
        return ()

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        return -self.lr * grad, state  # θ ← θ − α∇


@dataclass(frozen=True)
class NAG(Rule):
    lr: float
    momentum: float = 0.9

    def init(self, theta: Tensor, groups=None) -> tuple:
        return (torch.zeros_like(theta),)

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        (buf,) = state
        buf = self.momentum * buf + grad  # b ← μb + ∇  (torch.optim.SGD, dampening 0)
        return -self.lr * (grad + self.momentum * buf), (buf,)  # Nesterov: θ ← θ − α(∇ + μb)


@dataclass(frozen=True)
class RMSprop(Rule):
    lr: float
    alpha: float = 0.99
    eps: float = 1e-8

    def init(self, theta: Tensor, groups=None) -> tuple:
        return (torch.zeros_like(theta),)

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        (v,) = state
        v = self.alpha * v + (1 - self.alpha) * grad * grad  # v ← αv + (1−α)∇²
        return -self.lr * grad / (v.sqrt() + self.eps), (v,)


@dataclass(frozen=True)
class Adam(Rule):
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, theta: Tensor, groups=None) -> tuple:
        return (torch.zeros_like(theta), torch.zeros_like(theta), 0)

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        m, v, t = state
        t += 1
        m = self.beta1 * m + (1 - self.beta1) * grad
        v = self.beta2 * v + (1 - self.beta2) * grad * grad
        # bias corrections in torch.optim.Adam's arrangement, so the floats match
        denom = v.sqrt() / (1 - self.beta2**t) ** 0.5 + self.eps
        return -(self.lr / (1 - self.beta1**t)) * m / denom, (m, v, t)


BASELINES = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "nag": NAG}
LABELS = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "ADAM", "nag": "NAG"}


def make_baseline(name: str, lr: float):
    """A baseline by its short name (sgd, rmsprop, adam, nag) with learning rate lr."""
    if name not in BASELINES:
        raise UserError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return BASELINES[name](lr)
