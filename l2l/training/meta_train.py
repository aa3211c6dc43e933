"""Meta-training: fit the learned optimizer's weights φ by truncated backpropagation through time.

Each run of T steps is an epoch (its unrolls and meta-updates: `l2l.training.unroll`); `runs`
functions are batched per epoch and their meta-gradients averaged. Every `eval_every` epochs the
frozen φ runs on a fixed set of validation functions (never the test functions), and the φ with
the lowest mean final loss is kept (early stopping). The checkpoint written then holds everything
needed to resume.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from l2l.loop import run
from l2l.optimizers import LSTMOptimizer, make_optimizer
from l2l.problems import derive_seed, make_problem
from l2l.runtime import hardware, progress as progress_bar
from l2l.training.checkpoint import load_checkpoint, optimizer_from, save_checkpoint
from l2l.training.config import TrainConfig
from l2l.training.unroll import GraphedUnroll, train_epoch


@torch.no_grad()
def validate(opt, config: TrainConfig, device) -> float:
    """Mean final loss of the frozen optimizer on the fixed validation functions."""
    problem = make_problem(config.problem)
    task = problem.sample(config.eval_runs, derive_seed(config.seed, "valid"), device)
    final = run(task, opt, config.steps)[:, -1].mean().item()
    return final if math.isfinite(final) else math.inf


def meta_train(
    config: TrainConfig,
    path: str | Path | None = None,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    max_minutes: float | None = None,
    compile: bool = False,
    cuda_graphs: bool | None = None,
) -> dict:
    """Meta-train an LSTM optimizer, checkpointing to `path` at every validation.

    Args:
        config: the recipe.
        path: checkpoint file; with `resume`, a checkpoint there of the same config is continued.
        stop_after: stop (checkpointed) once this many epochs are done, e.g. to split a long run.
        max_minutes: stop (checkpointed) after this much wall time in this call.
        compile: run the optimizer's steps through torch.compile (faster on large problems).
        cuda_graphs: replay each unroll as one captured CUDA graph (`GraphedUnroll`); None: on a
            GPU for the plain coordinatewise LSTM, the case tested against eager training.
    Returns:
        The checkpoint: config, epoch, last and best weights, meta-optimizer state, history.
    """
    path = Path(path) if path else None
    problem = make_problem(config.problem)
    opt = make_optimizer(config.optimizer, seed=config.seed, compile=compile).to(device)
    meta_opt = torch.optim.Adam(opt.parameters(), lr=config.meta_lr)
    ck = {
        "config": config.to_dict(),
        "epoch": 0,
        "weights": opt.state_dict(),
        "best": {"epoch": 0, "val": math.inf, "weights": opt.state_dict()},
        "history": [],
        "skipped": 0,
        "wall_time": 0.0,
    }
    if resume and path and path.exists():
        saved = load_checkpoint(path, device)
        if config.same_recipe(saved["config"]):
            ck = {**saved, "config": config.to_dict()}
            opt.load_state_dict(ck["weights"])
            meta_opt.load_state_dict(ck["meta_opt"])
        else:
            print(f"{path}: saved config differs from the requested one; training afresh")

    def checkpoint():
        ck.update(weights=opt.state_dict(), meta_opt=meta_opt.state_dict(), torch=torch.__version__)
        ck["hardware"] = hardware(device)  # where the latest epochs ran
        if path:
            save_checkpoint(ck, path)

    if ck["epoch"] >= config.epochs:  # finished already: nothing to train, nothing to rewrite
        return ck

    on_gpu = torch.device(device).type == "cuda"
    if cuda_graphs is None:
        cuda_graphs = on_gpu and type(opt) is LSTMOptimizer
    if cuda_graphs and not on_gpu:
        raise ValueError(f"CUDA graphs need a CUDA device, not {device!r}")
    graphed = None  # captured once, on a task of its own stream, and replayed for every epoch
    if cuda_graphs:
        capture = problem.sample(config.runs, derive_seed(config.seed, "capture"), device)
        graphed = GraphedUnroll(opt, capture, config)
    start, last = time.perf_counter(), ck["wall_time"]
    window = []  # training meta-losses since the last validation
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
                                  "weights": {k: v.clone() for k, v in opt.state_dict().items()}}
                checkpoint()
                bar.set_postfix(meta_loss=f"{train_loss:.4g}", val=f"{val:.4g}",
                                best=f"{ck['best']['val']:.4g}", skipped=ck["skipped"])
            if (stop_after and ck["epoch"] >= stop_after) or (
                max_minutes and time.perf_counter() - start > 60 * max_minutes
            ):
                break
    except KeyboardInterrupt:
        print(f"interrupted at epoch {ck['epoch']}; checkpoint saved, rerun with resume to continue")
        checkpoint()
        raise
    bar.close()
    checkpoint()
    return ck


def load_or_train(config: TrainConfig, path: str | Path, device: str = "cpu", retrain: bool = False,
                  progress: bool = True, compile: bool = False) -> tuple[torch.nn.Module, dict]:
    """The optimizer for `config`: loaded from `path` when a finished checkpoint of the same
    config is there, resumed when an unfinished one is, trained afresh otherwise or on `retrain`."""
    ck = meta_train(config, path, device=device, resume=not retrain, progress=progress, compile=compile)
    return optimizer_from(ck, device, compile=compile), ck
