"""Random search over the meta-learning rate, the paper's protocol ("learning rate found by random
search"): trials of one recipe that differ in `meta_lr` (drawn log-uniformly), each an ordinary
resumable checkpoint, the winner picked by validation loss, never by test.

All trials validate on the same functions (the recipe's seed names them), so their validation
losses are comparable; rerunning a sweep continues its unfinished trials and reuses finished ones.
With `population` > 1, that many trials train at once in one process (`l2l.training.population`),
with the numbers each gets alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from l2l.errors import UserError
from l2l.problems import derive_seed
from l2l.problems.base import check_choice, generator
from l2l.runtime import Busy, atomic_write, in_use, locked, progress as progress_bar
from l2l.training.checkpoint import load_checkpoint
from l2l.training.config import TrainConfig
from l2l.training.meta_train import check_recipe, finished
from l2l.training.population import train_group


def draw_trials(config: TrainConfig, trials: int, low: float = 1e-4, high: float = 1e-2,
                seed: int = 0) -> list[TrainConfig]:
    """`trials` copies of the recipe with meta-learning rates drawn log-uniformly from [low, high],
    the same ones for the same `seed` on every machine."""
    if trials < 1:
        raise UserError(f"a sweep needs at least one trial, got {trials}")
    if not 0 < low <= high:
        raise UserError(f"meta-learning-rate range must satisfy 0 < low <= high, got {low}, {high}")
    u = torch.rand(trials, generator=generator(derive_seed(seed, "sweep")), dtype=torch.float64,
                   device="cpu").tolist()  # seeded on the CPU: the same draws on every machine
    return [dataclasses.replace(config, meta_lr=float(f"{math.exp(math.log(low) + x * math.log(high / low)):.3g}"))
            for x in u]


def trial_path(folder: str | Path, table: str | Path, k: int) -> Path:
    """Where a sweep keeps trial `k`'s checkpoint: `<folder>/<table's name>-trial<k>.pt`."""
    return Path(folder) / f"{Path(table).stem}-trial{k}.pt"


def sweep(config: TrainConfig, trials: int, folder: str | Path, table: str | Path, low: float = 1e-4,
          high: float = 1e-2, seed: int = 0, device: str = "cpu", compile: bool = False,
          progress: bool = True, max_minutes: float | None = None, population: int = 1,
          backend: str = "local", train: bool = True, cuda_graphs: bool | None = None,
          only: list[int] | None = None) -> dict:
    """Meta-train every trial (resuming unfinished ones; with `only`, the trials it names) into
    `folder`, `population` at a time, then write the sweep's table to `table` (JSON): each trial's
    recipe, checkpoint, validation curve, best validation loss and wall time, and the winner
    (lowest best validation loss). With `max_minutes`, stops once that much time has passed (each
    trial checkpointed): the same call continues. `only` lets two processes or machines share a
    sweep; a trial another process is training is left alone (its checkpoint's lock, `training`),
    and the table still reads every trial's checkpoint. `backend="ray"` hands each population to
    Ray Tune (`l2l.training.ray_sweep`), which runs as many at once as its cluster has room for;
    the trials, files and table are the same (`max_minutes` then limits each population).
    `cuda_graphs`: as for `meta_train` (default: on a GPU). The table is read from the trials'
    checkpoints, and written even when training is interrupted; `train=False` only writes it.
    Returns the table."""
    if population < 1:
        raise UserError(f"population must be positive, got {population}")
    if config.curriculum:  # its trials would end at different horizons: their validations would not compare
        raise UserError("a sweep compares trials at one horizon: leave the curriculum out of its recipe")
    check_choice("backend", backend, ("local", "ray"))
    chosen = list(range(trials)) if only is None else sorted(set(only))
    if not chosen or not all(0 <= k < trials for k in chosen):
        raise UserError(f"--only: trial numbers from 0 to {trials - 1}, got {only}")
    configs = draw_trials(config, trials, low, high, seed)
    paths = [trial_path(folder, table, k) for k in range(trials)]
    for k, path in enumerate(paths):  # before anything is trained or the table rewritten
        if path.exists():
            check_recipe(path, load_checkpoint(path), configs[k], "a sweep of another recipe or rate range "
                         "needs a table of its own (another --sweep-seed, or L2L_DATA)")
    name = Path(table).stem
    if train and backend == "ray":  # Ray's workers take the locks in their own processes: leave out what is taken now
        busy = [k for k in chosen if in_use(paths[k])]
        for k in busy:
            _leave_alone(k, paths[k])
        chosen = [k for k in chosen if k not in busy]
    groups = [chosen[i:i + population] for i in range(0, len(chosen), population)]
    try:
        if train and backend == "ray":
            from l2l.training.ray_sweep import run_groups
            run_groups([[configs[k] for k in g] for g in groups], [[paths[k] for k in g] for g in groups],
                       device=device, compile=compile, max_minutes=max_minutes, cuda_graphs=cuda_graphs)
        elif train:
            started = time.perf_counter()
            for group in progress_bar(groups, progress and len(groups) > 1, desc=f"sweep of {name}", position=0):
                left = None if max_minutes is None else max_minutes - (time.perf_counter() - started) / 60
                if left is not None and left <= 0:
                    break
                with claimed(group, paths) as free:
                    if free:
                        train_group([configs[k] for k in free], [paths[k] for k in free], device=device,
                                    compile=compile, max_minutes=left, progress=progress, cuda_graphs=cuda_graphs)
    finally:  # what the trials' checkpoints hold, however training ended
        rows = [trial_row(k, configs[k], paths[k], load_checkpoint(paths[k])) for k in range(trials) if paths[k].exists()]
        finished = [r for r in rows if r["finished"] and math.isfinite(r["best_val"])]
        result = {"recipe": config.to_dict(), "trials": trials, "range": [low, high], "seed": seed,
                  "complete": len(finished) == trials,
                  "winner": min(finished, key=lambda r: r["best_val"])["trial"] if finished else None,
                  "rows": rows}
        atomic_write(table, json.dumps(result, indent=1))
    return result


@contextlib.contextmanager
def claimed(trials: list[int], paths: list[Path]) -> Iterator[list[int]]:
    """Hold the checkpoint locks of those `trials` no other process holds, for the `with` block;
    yields them. Taken at the moment a trial would start, not when the sweep starts: two sweeps of
    one table started together each go on past the trials the other has taken since."""
    with contextlib.ExitStack() as stack:
        free = []
        for k in trials:
            try:
                stack.enter_context(locked(paths[k], wait=False))
                free.append(k)
            except Busy:
                _leave_alone(k, paths[k])
        yield free


def _leave_alone(k: int, path: Path):
    print(f"trial {k}: another process is training it ({path.name}); this sweep leaves it alone")


def trial_row(k: int, config: TrainConfig, path: Path, ck: dict) -> dict:
    """One trial's line of the sweep's table, from its checkpoint."""
    return {"trial": k, "meta_lr": config.meta_lr, "checkpoint": path.name,
            "epochs": ck["epoch"], "finished": finished(ck, config),
            "best_val": ck["best"]["val"], "best_epoch": ck["best"]["epoch"],
            "validation": [[h["epoch"], h["val"]] for h in ck["history"]],
            "minutes": ck["wall_time"] / 60, "hardware": ck.get("hardware", ""),
            "population": max((h.get("population", 1) for h in ck["history"]), default=1)}
