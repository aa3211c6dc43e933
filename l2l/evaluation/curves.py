"""Test curves: learned optimizers and tuned baselines on the same fresh test functions.

Seeds are split by use (`derive_seed`): baselines' learning rates and the learned optimizer's early
stopping are chosen on the 'valid' functions, and every reported curve comes from the 'test'
functions, which neither ever saw. A finished curve can be cached on disk, keyed by what computed it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from l2l.evaluation.stats import Curve
from l2l.evaluation.tuning import LR_GRID, tuned_rates
from l2l.loop import run
from l2l.optimizers import BASELINES, LABELS, describe, make_baseline
from l2l.problems import derive_seed
from l2l.runtime import atomic_write, progress as progress_bar


def fingerprint(opt) -> str:
    """A short hash naming an optimizer by what it computes: a baseline's rule and learning rate,
    a learned optimizer's architecture and weights."""
    if isinstance(opt, torch.nn.Module):
        config = getattr(opt, "config", None)
        digest = hashlib.sha256((describe(config) if config is not None else repr(type(opt))).encode())
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
        atomic_write(file, json.dumps({"key": key, "mean": curve.mean, "ci95": curve.ci95}))
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
        baselines: short names from `l2l.optimizers.BASELINES`, each tuned on validation functions.
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
    atomic_write(path, json.dumps(result, indent=1))
    return result
