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
from l2l.problems import derive_seed, generator
from l2l.runtime import atomic_write, cpu_model, locked, one_thread, progress as progress_bar

# Learning rates tried for every baseline: powers of two from 2^-14 ≈ 6e-5 to 2^3 = 8 [open].
LR_GRID = tuple(2.0**k for k in range(-14, 4))


PROBE_RUNS, PROBE_STEPS = 2, 5
# On another CPU model, how far rounding can have moved a probe's numbers by step t is measured by
# nudging θ_0 by PROBE_NUDGE (relative): PROBE_SLACK times the nudge's move is allowed (`matches`).
PROBE_NUDGE, PROBE_SLACK = 1e-5, 10.0


@torch.no_grad()
def probe(problem, opt, nudge: float = 0.0) -> list[float]:
    """What the code computes for `opt` on `problem`, in a few numbers: the losses and update sizes
    ‖g_t‖ of its first steps on two fixed functions, on the CPU, on one thread and without
    torch.compile, so the same code gives the same probe on every machine up to float rounding,
    and the same bits on one CPU whatever its thread count (on two threads, a trained optimizer's
    CIFAR probe moved by up to 7e-4, relative, after five steps: past `same_probe`'s tolerance).
    `nudge`: each coordinate of θ_0 first multiplied by 1 ± nudge (fixed signs; see `matches`)."""
    if isinstance(opt, torch.nn.Module):
        opt = copy.deepcopy(opt).cpu()
        for module in opt.modules():  # `compiled`: the LSTM's (and a population's) switch to torch.compile
            if getattr(module, "compiled", False):
                module.compiled = False
    with one_thread():
        task = problem.sample(PROBE_RUNS, derive_seed(0, "probe"), "cpu")
        if nudge:
            signs = torch.randn(task.theta.shape, generator=generator(0), device=task.theta.device).sign()
            task.theta = task.theta * (1 + nudge * signs)
        points = list(optimize(task, opt, PROBE_STEPS))
    losses = torch.stack([p.loss for p in points], 1)
    sizes = torch.stack([p.update.flatten(1).norm(dim=1) for p in points[:-1]], 1)
    return [float(f"{v:.7g}") for v in torch.cat([losses, sizes], 1).flatten().tolist()]


def matches(stored, problem, opt, current: list[float] | None = None, made_on: str | None = None) -> bool:
    """Whether a stored probe is what the code computes for `opt` on `problem` (`current`: its
    probe, when the caller has it; `made_on`: the CPU model that computed the stored one, where
    recorded).

    On the CPU model that made it, the numbers agree to float rounding (`same_probe`). On another
    (or where it is not recorded) they can differ by far more, since rounding differences grow along the steps where the
    dynamics are chaotic: after five steps of SGD at 0.0625 on CIFAR-10's two classes, one moved by
    9% between an AMD EPYC and an Intel Xeon (the first step's numbers by at most 6e-6). So a probe
    that differs is measured again from θ_0 nudged by PROBE_NUDGE, and by each step it may differ
    by PROBE_SLACK times the nudge's largest relative move so far. Measured on the 20 of the book's
    CIFAR and neural-art probes (tuned baselines, cached curves) that an EPYC made and a Xeon
    computes otherwise: at most 1.5 times the nudge's move. What a nudge's move hides goes unseen
    on another CPU model: of the book's 32 such baselines with one hyperparameter changed, a rate 1%
    off was still caught in 28 of 32, RMSprop's α at 0.9 and ε at 1e-6 in all, NAG's momentum at
    0.91 in 6 of 8, Adam's β1 at 0.91 in 1 of 8 and β2 at 0.99 in none (each is in the cache's key
    anyway; on the CPU model that made a probe, every one of these is caught)."""
    current = probe(problem, opt) if current is None else current
    if same_probe(stored, current):
        return True
    if made_on == cpu_model() or stored is None or len(stored) != len(current):
        return False
    return same_probe(stored, current, probe(problem, opt, PROBE_NUDGE))


def rate_is_current(problem, name: str, entry) -> bool:
    """Whether a cached tuned rate ({"lr", "probe"}, and "cpu" since that was recorded) still matches
    what the baseline computes."""
    return isinstance(entry, dict) and matches(entry["probe"], problem, make_baseline(name, entry["lr"]),
                                               made_on=entry.get("cpu"))


def same_probe(stored, current, nudged=None, rtol: float = 1e-4, slack: float = PROBE_SLACK) -> bool:
    """Whether a stored probe matches the current one, number by number, to `rtol` (float rounding
    on one CPU model); with `nudged` (the probe from a nudged θ_0), to `rtol` plus `slack` times
    the largest relative move of the nudged probe's numbers up to that step (rounding on another:
    `matches`). None stored: no."""
    if stored is None or len(stored) != len(current):
        return False
    s, c = np.asarray(stored, dtype=float), np.asarray(current, dtype=float)
    allowed = np.full_like(c, rtol)
    if nudged is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = np.abs(np.asarray(nudged, dtype=float) - c) / np.abs(c)
        # a probe is PROBE_RUNS rows of (f_0..f_T, ‖g_0‖..‖g_T-1‖): each number's step, and the
        # largest move (nan: a run diverged) of any number up to that step
        step = np.tile(np.r_[np.arange(PROBE_STEPS + 1), np.arange(PROBE_STEPS)], PROBE_RUNS)
        if len(c) != len(step):
            raise ValueError(f"a probe has {len(step)} numbers, not {len(c)}")
        moved = np.nan_to_num(moved, nan=np.inf)
        so_far = np.maximum.accumulate([moved[step == t].max() for t in range(PROBE_STEPS + 1)])
        allowed = allowed + slack * so_far[step]
    with np.errstate(invalid="ignore"):  # inf - inf
        return bool(np.all((s == c) | (np.isnan(s) & np.isnan(c)) | (np.abs(s - c) <= allowed * np.abs(c) + 1e-12)))


def tune(problem, name, steps: int, runs: int, seed: int, device="cpu",
         grid=LR_GRID, refine: int = 0) -> tuple[float, dict[float, float]]:
    """Pick a learning rate by mean final loss on the validation functions.

    Args:
        name: a baseline's short name (`l2l.optimizers.BASELINES`), or any function lr -> optimizer
            (a `QuasiNewton`, say).
        grid: the rates tried, in increasing order.
        refine: after the grid, `refine` more rates between its best and each of that rate's
            neighbours, evenly spaced in log; the lowest of all wins (3 splits a grid's factor-4 step
            into four: rates a factor √2 apart around the best).
    Returns:
        (best learning rate, {learning rate: mean final loss}); diverged runs count as inf.
    """
    make = (lambda lr: make_baseline(name, lr)) if isinstance(name, str) else name

    def score(lr):
        task = problem.sample(runs, derive_seed(seed, "valid"), device)  # the same functions for each lr
        final = run(task, make(lr), steps)[:, -1].mean().item()
        return final if math.isfinite(final) else math.inf

    scores = {lr: score(lr) for lr in grid}
    best = min(scores, key=scores.get)
    if best in (grid[0], grid[-1]):
        who = f"{name}'s" if isinstance(name, str) else "the"
        print(f"warning: {who} best learning rate {best:g} is at the edge of the grid")
    i = list(grid).index(best)
    neighbours = [*grid[max(i - 1, 0):i], *grid[i + 1:i + 2]] if refine else []
    for near in neighbours:
        scores |= {lr: score(lr) for lr in (best * (near / best) ** (k / (refine + 1)) for k in range(1, refine + 1))}
    return min(scores, key=scores.get), scores


def tuned_rates(problem, names, steps: int, runs: int, seed: int, device="cpu", grid=LR_GRID,
                cache: str | Path | None = None, progress: bool = True, refresh: bool = False,
                refine: int = 0) -> dict[str, float]:
    """Tuned learning rates of several baselines (`tune`), reused from a JSON cache when its key matches and
    the baseline's `probe` at that rate is what the current code computes (`refresh`: tune again)."""
    key = (f"{problem.spec}|steps={steps}|runs={runs}|seed={seed}|grid={','.join(f'{g:g}' for g in grid)}"
           + (f"|refine={refine}" if refine else ""))
    stored = {} if refresh else _read(cache).get(key, {})
    found = {}
    for name in progress_bar(names, progress, desc=f"tuning on {problem.spec}"):
        entry = stored.get(name)
        if rate_is_current(problem, name, entry):
            found[name] = entry
        else:
            lr, _ = tune(problem, name, steps, runs, seed, device, grid, refine)
            found[name] = {"lr": lr, "probe": probe(problem, make_baseline(name, lr)), "cpu": cpu_model()}
    if cache:
        # chapters run in parallel share the cache: read it again under the lock, merge, write
        with locked(cache):
            store = _read(cache)
            atomic_write(cache, json.dumps({**store, key: {**store.get(key, {}), **found}}, indent=1))
    return {name: entry["lr"] for name, entry in found.items()}


def _read(cache: str | Path | None) -> dict:
    return json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
