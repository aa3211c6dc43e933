"""Evaluation: run any optimizer on fresh seeded functions, tune baselines, summarize with intervals.

Seeds are split by use (`derive_seed`): baselines' learning rates and the learned optimizer's early
stopping are chosen on the 'valid' functions, and every reported curve comes from the 'test'
functions, which neither ever saw.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import torch

from l2l.baselines import BASELINES, LABELS, make_baseline
from l2l.problems import Task, derive_seed
from l2l.report import progress as progress_bar

# Learning rates tried for every baseline: powers of two from 2^-14 ≈ 6e-5 to 2^3 = 8 [open].
LR_GRID = tuple(2.0**k for k in range(-14, 4))


class Step(NamedTuple):
    """One point of an optimizer's trajectory: θ_t, f(θ_t), ∇_t, the update g_t taken from θ_t
    (None at the last point) and the optimizer's state after it."""

    theta: torch.Tensor
    loss: torch.Tensor
    grad: torch.Tensor
    update: torch.Tensor | None
    state: Any


def optimize(task: Task, opt, steps: int) -> Iterator[Step]:
    """Run `opt` on every function of `task` (θ_{t+1} = θ_t + g_t), yielding each of the
    steps + 1 points; the one loop behind `run` and the chapters' closer looks at a trajectory."""
    theta = task.theta
    state = opt.init(theta, task.groups)
    f, grad = task.loss_and_grad(theta)
    step = opt.bind()
    for _ in range(steps):
        update, state = step(grad, state)
        yield Step(theta, f, grad, update, state)
        theta = theta + update
        f, grad = task.loss_and_grad(theta)
    yield Step(theta, f, grad, None, state)


@torch.no_grad()
def run(task: Task, opt, steps: int) -> torch.Tensor:
    """Optimize every function of `task` for `steps` steps with `opt`.

    Returns:
        [R, steps + 1] losses f(θ_0), …, f(θ_steps) of each run.
    """
    return torch.stack([point.loss for point in optimize(task, opt, steps)], dim=1)


@torch.no_grad()
def group_trace(task: Task, opt, steps: int) -> dict[int, dict[str, list[float]]]:
    """How each parameter group moves under `opt`: per step t = 0..steps, the mean |θ| and the
    median |∇| of the group's coordinates over all runs. {group: {"theta": [...], "grad": [...]}}."""
    groups = task.groups if task.groups is not None else torch.zeros(task.theta.shape[1], dtype=torch.long)
    trace = {int(k): {"theta": [], "grad": []} for k in groups.unique()}
    for point in optimize(task, opt, steps):
        for k, rec in trace.items():
            cols = groups == k
            rec["theta"].append(point.theta[:, cols].abs().mean().item())
            rec["grad"].append(point.grad[:, cols].abs().median().item())
    return trace


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


def tune(problem, name, steps: int, runs: int, seed: int, device="cpu",
         grid=LR_GRID) -> tuple[float, dict[float, float]]:
    """Pick a learning rate by mean final loss on the validation functions.

    Args:
        name: a baseline's short name (`l2l.baselines.BASELINES`), or any function lr -> optimizer.
    Returns:
        (best learning rate, {learning rate: mean final loss}); diverged runs count as inf.
    """
    make = (lambda lr: make_baseline(name, lr)) if isinstance(name, str) else name
    scores = {}
    for lr in grid:
        task = problem.sample(runs, derive_seed(seed, "valid"), device)  # the same functions for each lr
        final = run(task, make(lr), steps)[:, -1].mean().item()
        scores[lr] = final if math.isfinite(final) else math.inf
    best = min(scores, key=scores.get)
    if best in (grid[0], grid[-1]):
        who = f"{name}'s" if isinstance(name, str) else "the"
        print(f"warning: {who} best learning rate {best:g} is at the edge of the grid")
    return best, scores


def tuned_rates(problem, names, steps: int, runs: int, seed: int, device="cpu", grid=LR_GRID,
                cache: str | Path | None = None, progress: bool = True) -> dict[str, float]:
    """Tuned learning rates of several baselines, reused from a JSON cache when its key matches."""
    key = f"{problem.spec}|steps={steps}|runs={runs}|seed={seed}|grid={','.join(f'{g:g}' for g in grid)}"
    store = json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
    rates = store.get(key, {})
    for name in progress_bar(names, progress, desc=f"tuning on {problem.spec}"):
        if name not in rates:
            rates[name], _ = tune(problem, name, steps, runs, seed, device, grid)
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        Path(cache).write_text(json.dumps({**store, key: rates}, indent=1))
    return rates


def fingerprint(opt) -> str:
    """A short hash naming an optimizer by what it computes: a baseline's rule and learning rate,
    a learned optimizer's architecture and weights."""
    if isinstance(opt, torch.nn.Module):
        digest = hashlib.sha256(repr(getattr(opt, "config", type(opt))).encode())
        for name, tensor in sorted(opt.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
        return "learned-" + digest.hexdigest()[:16]
    return repr(opt)  # a frozen dataclass, e.g. Adam(lr=0.03125, beta1=0.9, ...)


def test_curve(test, opt, label: str, steps: int, runs: int, seed: int, device="cpu",
               lr: float | None = None, cache: str | Path | None = None) -> Curve:
    """One optimizer's curve on `runs` test functions; with `cache` (a folder), a curve computed
    before for the same functions, optimizer (`fingerprint`), steps and seed is read back instead.
    Long evaluations (CIFAR: 1,000 steps) so survive interruptions curve by curve."""
    key = f"{test.spec}|{fingerprint(opt)}|steps={steps}|runs={runs}|seed={seed}"
    file = Path(cache) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json" if cache else None
    if file and file.exists():
        saved = json.loads(file.read_text())
        return Curve(label, saved["mean"], saved["ci95"], lr)
    task = test.sample(runs, derive_seed(seed, "test"), device)
    curve = Curve.of(label, run(task, opt, steps).cpu(), lr)
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "mean": curve.mean, "ci95": curve.ci95}))
        os.replace(tmp, file)
    return curve


def compare(problem, optimizers: dict, baselines=tuple(BASELINES), steps: int = 100,
            runs: int = 100, seed: int = 0, tune_runs: int = 32, device="cpu", grid=LR_GRID,
            tune_steps: int | None = None, cache: str | Path | None = None,
            progress: bool = True, curve_cache: str | Path | None = None) -> dict[str, Curve]:
    """Test curves of learned optimizers and tuned baselines on the same fresh functions.

    Baselines are tuned on `problem` itself (for MNIST: training images) and every optimizer is
    tested on `problem.held_out()` (for MNIST: the test images).

    Args:
        problem: a problem family (`l2l.problems.make_problem`).
        optimizers: {label: optimizer} for learned (or any fixed) optimizers.
        baselines: short names from `l2l.baselines.BASELINES`, each tuned on validation functions.
        steps, runs, seed: the test: `runs` functions from the seed's 'test' stream.
        tune_runs, grid: validation functions per learning rate, and the rates tried.
        tune_steps: the horizon whose final loss picks the rate (default `steps`).
        cache: JSON file for the tuned rates.
        curve_cache: folder of finished test curves (`test_curve`), for long evaluations.
    Returns:
        {label: Curve}, learned optimizers first.
    """
    rates = tuned_rates(problem, baselines, tune_steps or steps, tune_runs, seed, device, grid, cache,
                        progress)
    test = problem.held_out()
    candidates = {label: (opt, None) for label, opt in optimizers.items()}
    candidates |= {LABELS[n]: (make_baseline(n, rates[n]), rates[n]) for n in baselines}
    curves = {}
    for label, (opt, lr) in progress_bar(candidates.items(), progress, desc="testing"):
        curves[label] = test_curve(test, opt, label, steps, runs, seed, device, lr, curve_cache)
    return curves


def save(curves: dict[str, Curve], path: str | Path, **meta) -> dict:
    """Write the curves (and any metadata, e.g. problem, steps, runs, seed) as JSON; returns it."""
    result = {**meta, "optimizers": {k: {**asdict(c), "final": c.final, "final_ci95": c.final_ci95}
                                     for k, c in curves.items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1))
    return result
