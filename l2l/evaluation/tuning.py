"""Tuning the hand-designed baselines' learning rates on validation functions (never the test ones)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from l2l.loop import run
from l2l.optimizers import make_baseline
from l2l.problems import derive_seed
from l2l.runtime import atomic_write, locked, progress as progress_bar

# Learning rates tried for every baseline: powers of two from 2^-14 ≈ 6e-5 to 2^3 = 8 [open].
LR_GRID = tuple(2.0**k for k in range(-14, 4))


def tune(problem, name, steps: int, runs: int, seed: int, device="cpu",
         grid=LR_GRID) -> tuple[float, dict[float, float]]:
    """Pick a learning rate by mean final loss on the validation functions.

    Args:
        name: a baseline's short name (`l2l.optimizers.BASELINES`), or any function lr -> optimizer
            (a `QuasiNewton`, say).
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
    rates = dict(_read(cache).get(key, {}))
    for name in progress_bar(names, progress, desc=f"tuning on {problem.spec}"):
        if name not in rates:
            rates[name], _ = tune(problem, name, steps, runs, seed, device, grid)
    if cache:
        # chapters run in parallel share the cache: read it again under the lock, merge, write
        with locked(cache):
            store = _read(cache)
            atomic_write(cache, json.dumps({**store, key: {**store.get(key, {}), **rates}}, indent=1))
    return rates


def _read(cache: str | Path | None) -> dict:
    return json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
