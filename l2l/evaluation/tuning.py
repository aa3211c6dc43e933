"""Tuning the hand-designed baselines' learning rates on validation functions (never the test ones),
and the `probe` that tells whether a cached result still matches what the code computes."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import torch

from l2l.loop import optimize, run
from l2l.optimizers import make_baseline
from l2l.problems import derive_seed
from l2l.runtime import atomic_write, locked, one_thread, progress as progress_bar

# Learning rates tried for every baseline: powers of two from 2^-14 ≈ 6e-5 to 2^3 = 8 [open].
LR_GRID = tuple(2.0**k for k in range(-14, 4))


PROBE_RUNS, PROBE_STEPS = 2, 5


@torch.no_grad()
def probe(problem, opt) -> list[float]:
    """What the code computes for `opt` on `problem`, in a few numbers: the losses and update sizes
    ‖g_t‖ of its first steps on two fixed functions, on the CPU, on one thread and without
    torch.compile, so the same code gives the same probe on every machine up to float rounding,
    and the same bits on one CPU whatever its thread count (on two threads, a trained optimizer's
    CIFAR probe moved by up to 7e-4, relative, after five steps: past `same_probe`'s tolerance)."""
    if isinstance(opt, torch.nn.Module):
        opt = copy.deepcopy(opt).cpu()
        for module in opt.modules():
            if getattr(module, "compile", False):
                module.compile = False
    with one_thread():
        task = problem.sample(PROBE_RUNS, derive_seed(0, "probe"), "cpu")
        points = list(optimize(task, opt, PROBE_STEPS))
    losses = torch.stack([p.loss for p in points], 1)
    sizes = torch.stack([p.update.flatten(1).norm(dim=1) for p in points[:-1]], 1)
    return [float(f"{v:.7g}") for v in torch.cat([losses, sizes], 1).flatten().tolist()]


def rate_is_current(problem, name: str, entry) -> bool:
    """Whether a cached tuned rate ({"lr", "probe"}) still matches what the baseline computes."""
    return isinstance(entry, dict) and same_probe(entry["probe"], probe(problem, make_baseline(name, entry["lr"])))


def same_probe(stored, current, rtol: float = 1e-4) -> bool:
    """Whether a stored probe matches the current one (float rounding aside); none stored: no."""
    return (stored is not None and len(stored) == len(current)
            and bool(np.allclose(stored, current, rtol=rtol, atol=1e-12, equal_nan=True)))


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
                cache: str | Path | None = None, progress: bool = True, refresh: bool = False) -> dict[str, float]:
    """Tuned learning rates of several baselines, reused from a JSON cache when its key matches and
    the baseline's `probe` at that rate is what the current code computes (`refresh`: tune again)."""
    key = f"{problem.spec}|steps={steps}|runs={runs}|seed={seed}|grid={','.join(f'{g:g}' for g in grid)}"
    stored = {} if refresh else _read(cache).get(key, {})
    found = {}
    for name in progress_bar(names, progress, desc=f"tuning on {problem.spec}"):
        entry = stored.get(name)
        if rate_is_current(problem, name, entry):
            found[name] = entry
        else:
            lr, _ = tune(problem, name, steps, runs, seed, device, grid)
            found[name] = {"lr": lr, "probe": probe(problem, make_baseline(name, lr))}
    if cache:
        # chapters run in parallel share the cache: read it again under the lock, merge, write
        with locked(cache):
            store = _read(cache)
            atomic_write(cache, json.dumps({**store, key: {**store.get(key, {}), **found}}, indent=1))
    return {name: entry["lr"] for name, entry in found.items()}


def _read(cache: str | Path | None) -> dict:
    return json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
