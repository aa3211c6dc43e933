"""Meta-training: fit the learned optimizer's weights φ by truncated backpropagation through time.

Each run of T steps is an epoch (its unrolls and meta-updates: `l2l.training.unroll`); `runs`
functions are batched per epoch and their meta-gradients averaged. Every `eval_every` epochs the
frozen φ runs on a fixed set of validation functions (never the test functions), and the φ with
the lowest mean final loss is kept (early stopping). The checkpoint written then holds everything
needed to resume.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from pathlib import Path

import torch

from l2l.errors import UserError
from l2l.loop import run
from l2l.optimizers import LSTMOptimizer, make_optimizer
from l2l.problems import derive_seed, make_problem
from l2l.runtime import hardware, locked, progress as progress_bar
from l2l.training.checkpoint import load_checkpoint, optimizer_from, save_checkpoint
from l2l.training.config import TrainConfig, flat_recipe
from l2l.training.unroll import GraphedUnroll, train_epoch


@torch.no_grad()
def validate(opt, config: TrainConfig, device) -> float:
    """Mean final loss of the frozen optimizer on the fixed validation functions."""
    problem = make_problem(config.problem)
    task = problem.sample(config.eval_runs, derive_seed(config.seed, "valid"), device)
    final = run(task, opt, config.steps)[:, -1].mean().item()
    return final if math.isfinite(final) else math.inf


def _conflict(saved: dict, config: TrainConfig) -> dict:
    """The recipe fields in which a checkpoint's stored recipe differs from `config`,
    {field: (stored, requested)} (the optimizer's fields prefixed `optimizer.`)."""
    have, want = flat_recipe(saved), flat_recipe(config.to_dict())
    return {k: (have.get(k), v) for k, v in want.items() if have.get(k, v) != v}


def _extends(saved: dict, config: TrainConfig) -> bool:
    """Whether `config` is the stored recipe run for more epochs, which a constant meta-learning
    rate allows (a cosine schedule depends on the total, so its runs cannot be extended)."""
    try:
        stored = TrainConfig.from_dict(saved)
    except (TypeError, ValueError):
        return False
    longer = dataclasses.replace(stored, epochs=config.epochs)
    return longer == config and config.epochs > stored.epochs and config.schedule == "constant"


def _snapshot(ck: dict, opt, meta_opt, window: list) -> dict:
    """A copy of the checkpoint as of now (between epochs), independent of the live tensors."""
    return {**ck, "history": list(ck["history"]), "window": list(window),
            "weights": {k: v.detach().clone() for k, v in opt.state_dict().items()},
            "meta_opt": copy.deepcopy(meta_opt.state_dict())}


def meta_train(
    config: TrainConfig,
    path: str | Path | None = None,
    device: str = "cpu",
    fresh: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    max_minutes: float | None = None,
    compile: bool = False,
    cuda_graphs: bool | None = None,
) -> dict:
    """Meta-train a learned optimizer, checkpointing to `path` at every validation.

    What is at `path` is never lost by accident: a checkpoint of the same recipe is resumed (or,
    finished, returned as it is); one whose recipe differs only by more epochs at a constant
    meta-learning rate is extended; any other is an error unless `fresh`. Resuming is exact: the
    run continues as if it had never stopped (weights, meta-optimizer state, history and the
    window of training losses since the last validation). An interruption (Ctrl-C) writes the
    checkpoint as of the last finished epoch, never one with half an epoch's meta-updates.

    Args:
        config: the recipe.
        path: checkpoint file (None: keep nothing on disk).
        fresh: train from scratch and overwrite whatever is at `path`.
        stop_after: stop (checkpointed) once this many epochs are done, e.g. to split a long run.
        max_minutes: stop (checkpointed) after this much wall time in this call.
        compile: run the optimizer's steps through torch.compile (faster on large problems).
        cuda_graphs: replay each unroll as one captured CUDA graph (`GraphedUnroll`); None: on a
            GPU for the plain coordinatewise LSTM, the case tested against eager training.
    Returns:
        The checkpoint: config, epoch, last and best weights, meta-optimizer state, history.
    """
    if max_minutes is not None and not max_minutes > 0:
        raise UserError(f"max_minutes must be positive (or None for no limit), got {max_minutes}")
    path = Path(path) if path else None
    problem = make_problem(config.problem)
    opt = make_optimizer(config.optimizer, seed=config.seed, compile=compile).to(device)
    meta_opt = torch.optim.Adam(opt.parameters(), lr=config.meta_lr)
    initial = {k: v.detach().clone() for k, v in opt.state_dict().items()}
    ck = {
        "config": config.to_dict(),
        "epoch": 0,
        "weights": initial,
        "best": {"epoch": 0, "val": math.inf, "weights": initial},  # a copy, never the live φ
        "history": [],
        "window": [],
        "skipped": 0,
        "wall_time": 0.0,
    }
    if path and path.exists() and not fresh:
        saved = load_checkpoint(path, device)
        if not (config.same_recipe(saved["config"]) or _extends(saved["config"], config)):
            changes = "; ".join(f"{k}: {a!r} there, {b!r} asked"
                                for k, (a, b) in _conflict(saved["config"], config).items())
            raise UserError(f"{path} holds another recipe ({changes}); choose another output file, "
                            "or force training afresh over it")
        ck = {**saved, "config": config.to_dict()}
        opt.load_state_dict(ck["weights"])
        meta_opt.load_state_dict(ck["meta_opt"])

    def checkpoint(state: dict):
        state.update(torch=str(torch.__version__), hardware=hardware(device))  # where the latest epochs ran
        if path:
            save_checkpoint(state, path)

    if ck["epoch"] >= config.epochs:  # finished already: nothing to train, nothing to rewrite
        return ck

    on_gpu = torch.device(device).type == "cuda"
    if cuda_graphs is None:
        cuda_graphs = on_gpu and type(opt) is LSTMOptimizer
    if cuda_graphs and not on_gpu:
        raise UserError(f"CUDA graphs need a CUDA device, not {device!r}")
    graphed = None  # captured once, on a task of its own stream, and replayed for every epoch
    if cuda_graphs:
        capture = problem.sample(config.runs, derive_seed(config.seed, "capture"), device)
        graphed = GraphedUnroll(opt, capture, config)
    start, last = time.perf_counter(), ck["wall_time"]
    window = list(ck.get("window", []))  # training meta-losses since the last validation
    safe = _snapshot(ck, opt, meta_opt, window)  # what an interruption writes: the last whole epoch
    bar = progress_bar(range(ck["epoch"], config.epochs), progress, initial=ck["epoch"],
                       total=config.epochs, desc=f"meta-train {problem.spec}")
    try:
        for epoch in bar:
            task = problem.sample(config.runs, derive_seed(config.seed, "train", epoch), device)
            for group in meta_opt.param_groups:
                group["lr"] = config.lr_at(epoch)
            loss = train_epoch(opt, meta_opt, task, config, graphed)
            if math.isfinite(loss):
                window.append(loss)
            else:
                ck["skipped"] += 1
            ck["epoch"] = epoch + 1
            ck["wall_time"] = last + time.perf_counter() - start
            done = ck["epoch"] == config.epochs
            if ck["epoch"] % config.eval_every == 0 or done:
                val = validate(opt, config, device)
                train_loss = sum(window) / len(window) if window else math.nan
                ck["history"].append({"epoch": ck["epoch"], "train": train_loss, "val": val,
                                      "time": ck["wall_time"]})
                window = []
                if val < ck["best"]["val"]:  # never keeps a non-finite optimizer: val is inf then
                    ck["best"] = {"epoch": ck["epoch"], "val": val,
                                  "weights": {k: v.detach().clone() for k, v in opt.state_dict().items()}}
            safe = _snapshot(ck, opt, meta_opt, window)
            if ck["epoch"] % config.eval_every == 0 or done:
                checkpoint(safe)
                bar.set_postfix(meta_loss=f"{train_loss:.4g}", val=f"{val:.4g}",
                                best=f"{ck['best']['val']:.4g}", skipped=ck["skipped"])
            if (stop_after and ck["epoch"] >= stop_after) or (
                max_minutes and time.perf_counter() - start > 60 * max_minutes
            ):
                break
    except KeyboardInterrupt:
        print(f"interrupted during epoch {safe['epoch'] + 1}; checkpoint saved as of epoch {safe['epoch']}, "
              "rerun to continue")
        checkpoint(safe)
        raise
    bar.close()
    checkpoint(safe)
    return safe


# Set by the book runner when it retrains: a checkpoint written after this time (seconds since
# the epoch) was retrained by this very run, so another chapter that loads it does not train again.
RETRAINED_SINCE = "L2L_RETRAINED_SINCE"


def _retrained_already(path: Path) -> bool:
    since = os.environ.get(RETRAINED_SINCE)
    return bool(since) and path.exists() and path.stat().st_mtime >= float(since)


def load_or_train(config: TrainConfig, path: str | Path, device: str = "cpu", retrain: bool = False,
                  progress: bool = True, compile: bool = False) -> tuple[torch.nn.Module, dict]:
    """The optimizer for `config`: loaded from `path` when a finished checkpoint of the same
    config is there, resumed when an unfinished one is, trained afresh when there is none or on
    `retrain` (another recipe at `path` is an error: `meta_train`)."""
    with locked(path):  # chapters run in parallel share checkpoints: one trains, the other then loads
        fresh = retrain and not _retrained_already(Path(path))
        ck = meta_train(config, path, device=device, fresh=fresh, progress=progress, compile=compile)
    return optimizer_from(ck, device, compile=compile), ck
