"""Summaries with uncertainty: a mean over test runs and its 95% confidence interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def t_quantile(df: int, p: float = 0.975) -> float:
    """Student's t quantile by the Cornish–Fisher expansion (abs. error < 0.005 at df = 3, < 0.001 from df = 5)."""
    z = {0.975: 1.959963985, 0.995: 2.575829304}[p]
    v = float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))


def mean_ci(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over runs (dim 0) and the half-width of its 95% confidence interval (Student t)."""
    n = x.shape[0]
    mean = x.mean(0)
    if n < 2:
        return mean, torch.full_like(mean, math.nan)
    return mean, t_quantile(n - 1) * x.std(0) / math.sqrt(n)


@dataclass
class Curve:
    """One optimizer's mean loss per step over the test runs, with its 95% interval."""

    label: str
    mean: list[float]
    ci95: list[float]
    lr: float | None = None  # the tuned learning rate, for baselines

    @property
    def final(self) -> float:
        return self.mean[-1]

    @property
    def final_ci95(self) -> float:
        return self.ci95[-1]

    @classmethod
    def of(cls, label: str, losses: torch.Tensor, lr: float | None = None) -> "Curve":
        mean, half = mean_ci(losses.double())
        return cls(label, mean.tolist(), half.tolist(), lr)
