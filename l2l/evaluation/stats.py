"""Summaries with uncertainty: a mean over test runs with its 95% interval, and paired comparisons.

Every optimizer in a comparison runs on the same test functions (the same θ_0, data and minibatch
sequence per run), so "A beats B" is a question about the per-run differences A − B: their mean
with a paired-t 95% interval (`paired`). A `Curve` keeps each run's loss at a few `recorded_steps`
and its mean loss over the run so far, so comparisons can be made after the fact, from results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import stats

from l2l.errors import UserError

LEVEL = 0.95  # every interval in the book


def t_quantile(df: int, p: float = 0.5 + LEVEL / 2) -> float:
    """Student's t quantile (scipy)."""
    return float(stats.t.ppf(p, df))


def mean_ci(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over runs (dim 0) and the half-width of its 95% confidence interval (Student t)."""
    n = x.shape[0]
    mean = x.mean(0)
    if n < 2:
        return mean, torch.full_like(mean, math.nan)
    return mean, t_quantile(n - 1) * x.std(0) / math.sqrt(n)


def recorded_steps(steps: int) -> list[int]:
    """The steps at which a curve keeps every run's numbers: 0, 1, 2, 5, 10, 20, 50, 100, ... (the
    1-2-5 series), the powers of two, and the last step."""
    series = {m * 10**k for k in range(7) for m in (1, 2, 5)} | {2**k for k in range(21)} | {0, steps}
    return sorted(s for s in series if s <= steps)


# ---------------------------------------------------------------------------------------------
# Paired comparisons


VERDICTS = ("holds", "tie", "fails")


@dataclass(frozen=True)
class Paired:
    """A − B over the same runs: the mean difference, its 95% interval and the verdict on "A is
    lower than B" (holds: the interval lies below 0; fails: above 0; tie: it contains 0).

    Runs where an optimizer diverged (a non-finite loss) have no finite difference; then the
    verdict comes from a sign test over the runs (`method` says so) and the interval is NaN.
    """

    diff: float
    low: float
    high: float
    runs: int
    verdict: str
    method: str = "paired t"


def paired(a, b, level: float = LEVEL) -> Paired:
    """Compare per-run numbers of two optimizers on the same runs (lower is better)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise UserError(f"paired comparison needs the same runs for both: shapes {a.shape} and {b.shape}")
    n = len(a)
    # a diverged run (inf or nan) is worse than any finite one; two diverged runs are a tie
    a, b = np.where(np.isnan(a), np.inf, a), np.where(np.isnan(b), np.inf, b)
    both = np.isinf(a) & np.isinf(b)
    with np.errstate(invalid="ignore"):
        d = np.where(both, 0.0, a - b)
    if not np.isfinite(d).all():
        lower, higher = int((d < 0).sum()), int((d > 0).sum())
        p = stats.binomtest(lower, lower + higher, 0.5).pvalue if lower + higher else 1.0
        verdict = "tie" if p >= 1 - level else "holds" if lower > higher else "fails"
        diverged = int((~np.isfinite(d)).sum())
        return Paired(float(np.mean(d)), math.nan, math.nan, n, verdict,
                      f"sign test ({diverged} of {n} runs diverged for one optimizer only)")
    diff = float(d.mean())
    if n < 2:
        return Paired(diff, math.nan, math.nan, n, "tie")
    if np.all(d == d[0]):  # no spread at all: the difference is exact
        low = high = diff
    else:
        half = t_quantile(n - 1, 0.5 + level / 2) * d.std(ddof=1) / math.sqrt(n)
        low, high = diff - half, diff + half
    verdict = "holds" if high < 0 else "fails" if low > 0 else "tie"
    return Paired(diff, low, high, n, verdict)


# ---------------------------------------------------------------------------------------------
# Curves


@dataclass
class Curve:
    """One optimizer's mean loss per step over the test runs, with its 95% interval.

    Attributes:
        mean, ci95: per step 0..T.
        lr: the tuned learning rate, for baselines.
        per_run: each run's numbers at `recorded_steps(T)`: {"steps": [s...], "loss": [[run...]
            per step], "mean_to": [[run...] per step]}, where mean_to is the run's mean loss over
            steps 1..s (what meta-training minimizes, for s = T). None for curves computed before
            per-run numbers were kept.
        cost: how producing the curve cost: {"seconds", "hardware"} (not part of equality).
    """

    label: str
    mean: list[float]
    ci95: list[float]
    lr: float | None = None
    per_run: dict | None = None
    cost: dict | None = field(default=None, compare=False)

    @property
    def final(self) -> float:
        return self.mean[-1]

    @property
    def final_ci95(self) -> float:
        return self.ci95[-1]

    @property
    def steps(self) -> int:
        return len(self.mean) - 1

    @property
    def runs(self) -> int | None:
        return len(self.per_run["loss"][0]) if self.per_run else None

    @classmethod
    def of(cls, label: str, losses: torch.Tensor, lr: float | None = None, cost: dict | None = None) -> "Curve":
        """From the losses [runs, T + 1] of every run."""
        losses = losses.double()
        mean, half = mean_ci(losses)
        steps = recorded_steps(losses.shape[1] - 1)
        running = losses[:, 1:].cumsum(1) / torch.arange(1, losses.shape[1], dtype=losses.dtype, device=losses.device)
        mean_to = torch.cat([losses[:, :1], running], 1)  # mean_to at step 0 is f(θ_0)
        per_run = {"steps": steps, "loss": [_short(losses[:, s]) for s in steps],
                   "mean_to": [_short(mean_to[:, s]) for s in steps]}
        return cls(label, mean.tolist(), half.tolist(), lr, per_run, cost)

    def _recorded(self, kind: str, step: int) -> np.ndarray:
        step = self.steps if step == -1 else step
        if self.per_run is None:
            raise UserError(f"{self.label}: this curve keeps no per-run numbers (computed before they "
                            "were recorded); recompute it for paired comparisons")
        if step not in self.per_run["steps"]:
            raise UserError(f"{self.label}: per-run numbers are kept at steps {self.per_run['steps']}, not {step}")
        return np.asarray(self.per_run[kind][self.per_run["steps"].index(step)])

    def at(self, step: int) -> np.ndarray:
        """Each run's loss at `step` (-1: the last)."""
        return self._recorded("loss", step)

    def mean_to(self, step: int = -1) -> np.ndarray:
        """Each run's mean loss over steps 1..`step` (-1: the whole run)."""
        return self._recorded("mean_to", step)

    def upto(self, step: int) -> "Curve":
        """The same runs cut at `step` (e.g. the first 100 steps of a 200-step curve)."""
        per_run = None
        if self.per_run:
            keep = [i for i, s in enumerate(self.per_run["steps"]) if s <= step]
            per_run = {k: [v[i] for i in keep] for k, v in self.per_run.items()}
        return replace(self, mean=self.mean[: step + 1], ci95=self.ci95[: step + 1], per_run=per_run)


def start_of(curve: Curve) -> Curve:
    """`curve` held at its step 0, run by run: each run's own starting loss at every step, so that
    comparing with it asks whether an optimizer made progress from where each run began."""
    per_run = None
    if curve.per_run:
        first = {k: v[curve.per_run["steps"].index(0)] for k, v in curve.per_run.items() if k != "steps"}
        per_run = {"steps": curve.per_run["steps"], **{k: [v] * len(curve.per_run["steps"]) for k, v in first.items()}}
    n = curve.steps + 1
    return replace(curve, label=f"{curve.label} at step 0", mean=[curve.mean[0]] * n, ci95=[curve.ci95[0]] * n,
                   lr=None, per_run=per_run, cost=None)


def _short(x: torch.Tensor) -> list[float]:
    """Per-run numbers for a JSON file: 6 significant digits (far below the runs' spread)."""
    return [float(f"{v:.6g}") for v in x.tolist()]


def versus(curves: dict[str, Curve], label: str, step: int = -1, over: bool = False) -> dict[str, Paired]:
    """`label` against every other curve at `step` (over=True: the mean loss over steps 1..step)."""
    mine = curves[label]
    pick = (lambda c: c.mean_to(step)) if over else (lambda c: c.at(step))
    return {k: paired(pick(mine), pick(c)) for k, c in curves.items() if k != label}


def unpaired(a: Curve, b: Curve, step: int) -> str:
    """The verdict on "a is lower than b at `step`" from the two 95% intervals alone (for curves
    without per-run numbers): holds or fails when the intervals do not overlap, else tie."""
    gap = a.mean[step] - b.mean[step]
    return "tie" if abs(gap) <= a.ci95[step] + b.ci95[step] else "holds" if gap < 0 else "fails"


def beats_all(verdicts) -> str:
    """"A beats all of them", from the verdicts of its comparisons: holds when every one holds,
    fails when any fails, else tie."""
    verdicts = list(verdicts)
    return "fails" if "fails" in verdicts else "holds" if verdicts and set(verdicts) == {"holds"} else "tie"
