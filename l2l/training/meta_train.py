"""Meta-training: fit the learned optimizer's weights φ by truncated backpropagation through time.

Each run of T steps is an epoch (its unrolls and meta-updates: `l2l.training.unroll`); `runs`
functions are batched per epoch and their meta-gradients averaged. Every `eval_every` epochs the
frozen φ runs on a fixed set of validation functions (never the test functions), and the φ with
the lowest mean final loss is kept (early stopping). The checkpoint written then holds everything
needed to resume.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Iterator

import torch

from l2l.errors import UserError
from l2l.loop import run
from l2l.optimizers import Adam, LSTMOptimizer, make_optimizer
from l2l.problems import derive_seed, make_problem
from l2l.runtime import Busy, checkpoints_dir, hardware, locked, progress as progress_bar
from l2l.training.checkpoint import load_checkpoint, optimizer_from, save_checkpoint, validated
from l2l.training.config import PLATEAU_HALVINGS, TrainConfig, flat_recipe
from l2l.training.unroll import GraphedUnroll, train_epoch

log = logging.getLogger(__name__)  # a line per validation, for logs: `python -m l2l train --no-progress` shows it


@torch.no_grad()
def validate(opt, config: TrainConfig, device, steps: int | None = None) -> float:
    """Mean final loss of the frozen optimizer on the fixed validation functions, after `steps`
    (default the recipe's horizon)."""
    problem = make_problem(config.problem)
    task = problem.sample(config.eval_runs, derive_seed(config.seed, "valid"), device)
    final = run(task, opt, steps or config.steps)[:, -1].mean().item()
    return final if math.isfinite(final) else math.inf


def _conflict(saved: dict, config: TrainConfig) -> dict:
    """The recipe fields in which a checkpoint's stored recipe differs from `config`,
    {field: (stored, requested)} (the optimizer's fields prefixed `optimizer.`)."""
    have, want = flat_recipe(saved), flat_recipe(config.to_dict())
    unknown = {k: (v, "unknown to this version") for k, v in have.items() if k not in want}
    return {**{k: (have.get(k), v) for k, v in want.items() if have.get(k, v) != v}, **unknown}


def check_recipe(path: str | Path, saved: dict, config: TrainConfig, remedy: str):
    """A clear error unless the checkpoint `saved` (read from `path`) holds `config`'s recipe, or
    one that `config` extends; `remedy` says what to do instead."""
    if not (config.same_recipe(saved["config"]) or _extends(saved["config"], config)):
        changes = "; ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in _conflict(saved["config"], config).items())
        raise UserError(f"{path} holds another recipe ({changes}); {remedy}")


def _extends(saved: dict, config: TrainConfig) -> bool:
    """Whether `config` is the stored recipe run for more epochs, which a constant meta-learning
    rate allows (a cosine schedule depends on the total, so its runs cannot be extended)."""
    try:
        stored = TrainConfig.from_dict(saved)
    except (TypeError, ValueError):
        return False
    longer = dataclasses.replace(stored, epochs=config.epochs)
    return longer == config and config.epochs > stored.epochs and config.schedule == "constant"


def _snapshot(ck: dict, opt, meta_opt, window: list, imitation_opt=None) -> dict:
    """A copy of the checkpoint as of now (between epochs), independent of the live tensors."""
    return {**ck, "history": list(ck["history"]), "window": list(window),
            "weights": {k: v.detach().clone() for k, v in opt.state_dict().items()},
            "meta_opt": copy.deepcopy(meta_opt.state_dict()),
            **({"imitation_opt": copy.deepcopy(imitation_opt.state_dict())} if imitation_opt else {})}


def finished(ck: dict, config: TrainConfig) -> bool:
    """Whether a checkpoint's training is over: all epochs trained, or validation stopped improving
    (`TrainConfig.patience`, the curriculum's rule: `Trial.record`)."""
    return ck["epoch"] >= config.epochs or ck.get("stopped", False)


MIN_STAGE_VALIDATIONS = 3  # a curriculum stage validates at least this often before it ends [Chen et al.]


class Trial:
    """One meta-training run's bookkeeping, between epochs: its recipe, optimizer, meta-optimizer,
    checkpoint and what an interruption writes. `meta_train` drives one trial; a population
    (`l2l.training.population`) drives several in step, each exactly as it runs alone.

    What is at `path` is never lost by accident: a checkpoint of the same recipe is resumed (or,
    finished, returned as it is); one whose recipe differs only by more epochs at a constant
    meta-learning rate is extended; any other is an error unless `fresh`.
    """

    def __init__(self, config: TrainConfig, path: str | Path | None = None, device: str = "cpu",
                 fresh: bool = False, compile: bool = False):
        self.config, self.path, self.device = config, Path(path) if path else None, device
        self.opt = make_optimizer(config.optimizer, seed=config.seed, compile=compile).to(device)
        self.meta_opt = torch.optim.Adam(self.opt.parameters(), lr=config.meta_lr)
        # imitation has an Adam of its own, at the same rate [Chen et al.]
        self.imitation_opt = torch.optim.Adam(self.opt.parameters(), lr=config.meta_lr) if config.imitation else None
        initial = {k: v.detach().clone() for k, v in self.opt.state_dict().items()}
        self.ck = {
            "config": config.to_dict(),
            "epoch": 0,
            "weights": initial,
            "best": {"epoch": 0, "val": math.inf, "weights": initial},  # a copy, never the live φ
            "history": [],
            "window": [],
            "skipped": 0,
            "wall_time": 0.0,
        }
        path = self.path
        if path and path.exists() and not fresh:
            saved = load_checkpoint(path, device)
            check_recipe(path, saved, config, "choose another output file, or force training afresh over it")
            self.ck = {**saved, "config": config.to_dict()}
            self.opt.load_state_dict(self.ck["weights"])
            self.meta_opt.load_state_dict(self.ck["meta_opt"])
            if self.imitation_opt and "imitation_opt" in self.ck:
                self.imitation_opt.load_state_dict(self.ck["imitation_opt"])
        elif config.start:
            self._start_from(config.start)
        self.window = list(self.ck.get("window", []))  # training meta-losses since the last validation
        self.safe = self._snapshot()  # the last whole epoch
        self.begin()

    def _start_from(self, name: str):
        """A fresh training of a recipe with `start`: φ begins at that checkpoint's best weights,
        validated at this recipe's horizon as the best so far, so that training keeps them unless it
        improves on them (the meta-optimizer's moments and the schedule begin afresh). That
        validation's time counts in the training's wall time."""
        clock = time.perf_counter()
        source = start_path(self.config, self.path)
        begun = load_checkpoint(source, self.device)
        differ = {k: v for k, v in _conflict(begun["config"], self.config).items() if k.startswith("optimizer.")}
        if differ:
            raise UserError(f"{source.name} trained another architecture, so start cannot begin from it: "
                            + "; ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in differ.items()))
        if not validated(begun):
            raise UserError(f"{source.name} has not validated yet: it has no best weights to start from")
        self.opt.load_state_dict(begun["best"]["weights"])
        weights = {k: v.detach().clone() for k, v in self.opt.state_dict().items()}
        val = validate(self.opt, self.config, self.device, self.validation_steps)
        self.ck.update(weights=weights, best={"epoch": 0, "val": val, "weights": weights},
                       started_from={"file": source.name, "epoch": begun["best"]["epoch"], "val": val,
                                     "config": begun["config"]},  # which training it was, should the file change
                       wall_time=time.perf_counter() - clock)

    @property
    def epoch(self) -> int:
        return self.ck["epoch"]

    @property
    def done(self) -> bool:
        """All epochs trained, or validation stopped improving (`TrainConfig.patience`, the
        curriculum's rule: `record`)."""
        return finished(self.ck, self.config)

    def _snapshot(self) -> dict:
        return _snapshot(self.ck, self.opt, self.meta_opt, self.window, self.imitation_opt)

    @property
    def steps(self) -> int:
        """The horizon trained at now (the curriculum's stage)."""
        return self.config.horizons[self.ck.get("stage", 0)]

    @property
    def validation_steps(self) -> int:
        """The horizon validated at: the curriculum's next one, the last one at its end."""
        return self.config.validated_at(self.ck.get("stage", 0))

    def epoch_loss(self, task, graphed=None) -> float:
        """Train one epoch on `task`: a meta-training run at the current horizon, or (on the
        recipe's imitation epochs) a run that imitates the tuned Adam."""
        config = self.config
        if config.imitates(self.ck["epoch"]):
            return train_epoch(self.opt, self.imitation_opt, task, config, steps=self.steps,
                               teacher=Adam(config.teacher_lr))
        return train_epoch(self.opt, self.meta_opt, task, config, graphed, steps=self.steps)

    def begin(self):
        """Start the clock of this call's training (wall time adds to what the checkpoint holds)."""
        self.start, self.last = time.perf_counter(), self.ck["wall_time"]

    def task(self, problem):
        """The next epoch's training functions, with the meta-learning rate set for that epoch."""
        for opt in filter(None, (self.meta_opt, self.imitation_opt)):
            for group in opt.param_groups:
                group["lr"] = self.config.lr_at(self.ck["epoch"], self.ck.get("halvings", 0))
        return problem.sample(self.config.runs, derive_seed(self.config.seed, "train", self.ck["epoch"]),
                              self.device)

    def record(self, loss: float, population: int = 1) -> dict | None:
        """Book one finished epoch's meta-loss (NaN: skipped); at a validation epoch validate, keep
        the best φ, checkpoint, and return the progress bar's postfix."""
        ck, config = self.ck, self.config
        if not math.isfinite(loss):
            ck["skipped"] += 1
        elif config.imitates(ck["epoch"]):  # an imitation loss is not a meta-loss: counted, not averaged in
            ck["imitated"] = ck.get("imitated", 0) + 1
        else:
            self.window.append(loss)
        ck["epoch"] += 1
        ck["wall_time"] = self.last + time.perf_counter() - self.start
        postfix = None
        if ck["epoch"] % config.eval_every == 0 or self.done:
            val = validate(self.opt, config, self.device, self.validation_steps)
            window = self.window
            train_loss = sum(window) / len(window) if window else math.nan
            ck["history"].append({"epoch": ck["epoch"], "train": train_loss, "val": val, "time": ck["wall_time"],
                                  **({"population": population} if population > 1 else {}),
                                  **({"steps": self.steps, "val_steps": self.validation_steps}
                                     if config.curriculum else {})})
            self.window = []
            improved = val < ck["best"]["val"]  # never keeps a non-finite optimizer: val is inf then
            if improved:
                ck["best"] = {"epoch": ck["epoch"], "val": val,
                              "weights": {k: v.detach().clone() for k, v in self.opt.state_dict().items()}}
            ck["stale"] = 0 if improved else ck.get("stale", 0) + 1  # validations since the last new best
            if config.patience and ck["stale"] >= config.patience:
                if (config.schedule == "plateau" and ck.get("halvings", 0) < PLATEAU_HALVINGS
                        and ck["epoch"] < config.epochs):  # none at the last epoch: nothing would follow
                    self._halve()
                else:
                    ck["stopped"] = True
            if config.curriculum:
                self._curriculum(improved)
            postfix = dict(meta_loss=f"{train_loss:.4g}", val=f"{val:.4g}", best=f"{ck['best']['val']:.4g}",
                           skipped=ck["skipped"])
            log.info("%s: epoch %d of %d, meta-loss %.4g, validation %.4g, best %.4g (epoch %d), %.1f min",
                     self.name, ck["epoch"], config.epochs, train_loss, val,
                     ck["best"]["val"], ck["best"]["epoch"], ck["wall_time"] / 60)
        self.safe = self._snapshot()
        if postfix:
            self.save()
        return postfix

    @property
    def name(self) -> str:
        """What the log lines call this trial: its checkpoint's file name, else its problem."""
        return self.path.name if self.path else self.config.problem

    def _halve(self):
        """The plateau schedule: validation stopped improving, so training goes on from the best
        weights at half the meta-learning rate (the next epoch's `task` sets it). Adam's moments
        carry on, as when the curriculum moves on from the best weights."""
        ck = self.ck
        self.opt.load_state_dict(ck["best"]["weights"])
        ck.update(halvings=ck.get("halvings", 0) + 1, stale=0)
        ck["history"][-1].update(halved_to=self.config.lr_at(ck["epoch"], ck["halvings"]))
        log.info("%s: no new best in %d validations: meta-learning rate halved to %.3g (%d of %d), from the best "
                 "weights (epoch %d)", self.name, self.config.patience,
                 ck["history"][-1]["halved_to"], ck["halvings"], PLATEAU_HALVINGS, ck["best"]["epoch"])

    def _curriculum(self, improved: bool):
        """Chen et al.'s rule, after a validation at the next stage's horizon: once the stage has
        validated `MIN_STAGE_VALIDATIONS` times, a validation that does not improve ends it. If an
        earlier one improved, training moves on to the next horizon from the best weights, whose
        validation at the horizon after that becomes the stage's mark to beat; if none did, the
        curriculum has stopped helping and training stops. The last stage only stops."""
        ck, horizons = self.ck, self.config.horizons
        ck["stage_validations"] = ck.get("stage_validations", 0) + 1
        ck["stage_improved"] = ck.get("stage_improved", False) or improved
        if improved or ck["stage_validations"] < MIN_STAGE_VALIDATIONS:
            return
        if not ck["stage_improved"]:
            ck["stopped"] = True
            return
        if ck.get("stage", 0) == len(horizons) - 1:
            return
        self.opt.load_state_dict(ck["best"]["weights"])
        ck.update(stage=ck.get("stage", 0) + 1, stage_validations=0, stage_improved=False, stale=0)
        mark = validate(self.opt, self.config, self.device, self.validation_steps)
        ck["best"] = {**ck["best"], "val": mark}
        ck["history"][-1].update(advanced_to=self.steps, mark=mark)  # the new stage's starting validation

    def save(self):
        """Write the checkpoint as of the last whole epoch (never half an epoch's meta-updates)."""
        self.safe.update(torch=str(torch.__version__), hardware=hardware_chain(self.safe.get("hardware"),
                                                                               hardware(self.device)))
        if self.path:
            save_checkpoint(self.safe, self.path)

    def interrupted(self):
        print(f"interrupted during epoch {self.safe['epoch'] + 1}; checkpoint {self.path} saved as of epoch "
              f"{self.safe['epoch']}, rerun to continue")
        self.save()


def start_path(config: TrainConfig, path: str | Path | None) -> Path:
    """The checkpoint a recipe with `start` begins from: `<start>.pt` in the folder of the one
    trained at `path` (the project's checkpoints without one); an error where it is missing or is
    that checkpoint itself (each retraining would begin from the last)."""
    folder = Path(path).parent if path else checkpoints_dir()
    source = folder / f"{config.start}.pt"
    if not source.exists():
        raise UserError(f"{source} not found: start names a checkpoint in the folder of the one trained")
    if path and source.resolve() == Path(path).resolve():
        raise UserError(f"start names the checkpoint being trained ({source.name}): a training cannot begin from itself")
    return source


def hardware_chain(before: str | None, now: str) -> str:
    """Where a checkpoint's epochs ran, in order: 'AMD EPYC (1 thread), then NVIDIA H200' for a
    training resumed on another machine; `now` is where the latest epochs ran."""
    if not before or before.split(", then ")[-1] == now:
        return before or now
    return f"{before}, then {now}"


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

    What is at `path` is never lost by accident (`Trial`). Resuming is exact: the run continues as
    if it had never stopped (weights, meta-optimizer state, history and the window of training
    losses since the last validation). An interruption (Ctrl-C) writes the checkpoint as of the
    last finished epoch, never one with half an epoch's meta-updates.

    Args:
        config: the recipe.
        path: checkpoint file (None: keep nothing on disk).
        fresh: train from scratch and overwrite whatever is at `path`.
        stop_after: stop (checkpointed) once this many epochs are done, e.g. to split a long run.
        max_minutes: stop (checkpointed) after this much wall time in this call.
        compile: run the optimizer's steps through torch.compile (faster on large problems).
        cuda_graphs: replay each unroll as one captured CUDA graph (`GraphedUnroll`); None: on a
            GPU for the plain coordinatewise LSTM without imitation, the case tested against eager
            training.
    Returns:
        The checkpoint: config, epoch, last and best weights, meta-optimizer state, history.
    """
    check_minutes(max_minutes)
    with training([path]):  # the lock is released however training ends
        problem = make_problem(config.problem)
        trial = Trial(config, path, device, fresh, compile)
        if trial.done:  # finished already: nothing to train, nothing to rewrite
            return trial.ck

        on_gpu = torch.device(device).type == "cuda"
        if cuda_graphs is None:
            cuda_graphs = on_gpu and type(trial.opt) is LSTMOptimizer and not config.imitation
        if cuda_graphs and config.imitation:  # imitation's own Adam would replace the gradients the graph writes
            raise UserError("CUDA graphs and imitation do not combine: train with --no-cuda-graphs")
        if cuda_graphs and not on_gpu:
            raise UserError(f"CUDA graphs need a CUDA device, not {device!r}")
        graphed = None  # captured once, on a task of its own stream, and replayed for every epoch
        if cuda_graphs:
            capture = problem.sample(config.runs, derive_seed(config.seed, "capture"), device)
            graphed = GraphedUnroll(trial.opt, capture, config)
        trial.begin()
        bar = progress_bar(range(trial.epoch, config.epochs), progress, initial=trial.epoch,
                           total=config.epochs, desc=f"meta-train {problem.spec}")
        try:
            for _ in bar:
                postfix = trial.record(trial.epoch_loss(trial.task(problem), graphed))
                if postfix:
                    bar.set_postfix(postfix)
                if trial.done or (stop_after and trial.epoch >= stop_after) or out_of_time(trial.start, max_minutes):
                    break
        except KeyboardInterrupt:
            trial.interrupted()
            raise
        bar.close()
        trial.save()
        return trial.safe


@contextlib.contextmanager
def training(paths: list[str | Path | None]) -> Iterator[None]:
    """Hold the locks of the checkpoints being trained for the `with` block: a second process that
    would train one of them at the same time (a second shell, a sweep's overlapping `--only`)
    fails at once instead of doing the work twice and overwriting the first one's checkpoints.
    `load_or_train` holds the same lock and waits for it (chapters executed in parallel)."""
    with contextlib.ExitStack() as stack:
        for path in filter(None, paths):
            try:
                stack.enter_context(locked(path, wait=False))
            except Busy:
                raise UserError(f"another process is training {path}: let it finish (or stop it) first") from None
        yield


def check_minutes(max_minutes: float | None):
    if max_minutes is not None and not max_minutes > 0:
        raise UserError(f"max_minutes must be positive (or None for no limit), got {max_minutes}")


def out_of_time(start: float, max_minutes: float | None) -> bool:
    """Whether `max_minutes` have passed since `start` (time.perf_counter); never without a limit."""
    return bool(max_minutes) and time.perf_counter() - start > 60 * max_minutes


# Set by the book runner when it retrains: a checkpoint written after this time (seconds since
# the epoch) was retrained by this very run, so another chapter that loads it does not train again.
RETRAINED_SINCE = "L2L_RETRAINED_SINCE"


def before_this_run(path: str | Path) -> bool:
    """Whether the book runner is retraining and `path` was written before it started: a
    checkpoint, or a result another chapter has not made again yet."""
    since, path = os.environ.get(RETRAINED_SINCE), Path(path)
    return bool(since) and path.exists() and path.stat().st_mtime < float(since)


def _retrained_already(path: Path) -> bool:
    return bool(os.environ.get(RETRAINED_SINCE)) and path.exists() and not before_this_run(path)


def load_or_train(config: TrainConfig, path: str | Path, device: str = "cpu", retrain: bool = False,
                  progress: bool = True, compile: bool = False) -> tuple[torch.nn.Module, dict]:
    """The optimizer for `config`: loaded from `path` when a finished checkpoint of the same
    config is there, resumed when an unfinished one is, trained afresh when there is none or on
    `retrain` (another recipe at `path` is an error: `meta_train`)."""
    with locked(path):  # chapters run in parallel share checkpoints: one trains, the other then loads
        fresh = retrain and not _retrained_already(Path(path))
        ck = meta_train(config, path, device=device, fresh=fresh, progress=progress, compile=compile)
    return optimizer_from(ck, device, compile=compile), ck
