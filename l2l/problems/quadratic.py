"""Quadratics (paper section 3.1): f(θ) = ‖Wθ − y‖² with random W and y."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from l2l.errors import UserError
from l2l.problems.base import Problem, Task, generator, register


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
            raise UserError(f"dim must be positive, got {self.dim}")

    def sample(self, runs, seed, device="cpu"):
        g = generator(seed)
        W = torch.randn(runs, self.dim, self.dim, generator=g).to(device)
        y = torch.randn(runs, self.dim, generator=g).to(device)
        theta = (self.init_std * torch.randn(runs, self.dim, generator=g)).to(device)

        # the function's data come through `batch` (the same W and y at every step), so that
        # `loss` is one pure function for the whole family
        return Task(theta, lambda theta, batch: quadratic_loss(theta, *batch), lambda: (W, y))
