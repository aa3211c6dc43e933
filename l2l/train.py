"""Meta-training: fit the LSTM optimizer's weights φ by truncated backpropagation through time.

The meta-loss of one run of T optimizee steps is (paper, eq. 3, with w_t = 1):

    L(φ) = E_f [ Σ_{t=1..T} f(θ_t) ].

A run is cut into unrolls of K steps (20 of 100 by default). After each unroll φ takes one Adam
step on that unroll's loss Σ_t f(θ_t); θ and the LSTM state then carry over into the next unroll
with their history cut (`truncate`). Gradients ∇_t enter the optimizer as constants: the paper
drops second derivatives, so no Hessian of f is ever formed.

Each run of T steps is an epoch; `runs` functions are batched per epoch and their meta-gradients
averaged. Every `eval_every` epochs the frozen φ runs on a fixed set of validation functions
(never the test functions), and the φ with the lowest mean final loss is kept (early stopping).
The checkpoint written then holds everything needed to resume.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch.utils._pytree import tree_leaves, tree_map

from l2l.evaluate import run
from l2l.lstm import LSTMConfig, LSTMOptimizer, State, detach_state, make_optimizer
from l2l.problems import Task, derive_seed, make_problem
from l2l.report import hardware, progress as progress_bar


@dataclass(frozen=True)
class TrainConfig:
    """One meta-training recipe. Defaults follow the paper where it speaks, else the code."""

    problem: str = "quadratic"  # SPEC of the training family
    optimizer: LSTMConfig = field(default_factory=LSTMConfig)
    steps: int = 100  # T: optimizee steps per run [paper]
    unroll: int = 20  # K: steps per truncation, one meta-update each [paper]
    epochs: int = 1000  # runs of T steps [open]; the code does 10,000
    runs: int = 1  # functions batched per epoch, meta-gradients averaged [open]; 1 in the code
    meta_lr: float = 1e-3  # Adam on φ [code]; the paper random-searched it
    schedule: str = "constant"  # meta-learning rate over epochs: constant [code] or cosine decay to 0
    clip: float | None = None  # clip each meta-gradient to this L2 norm [open]; None: no clipping
    eval_every: int = 100  # epochs between validations [open]; 1,000 in the code
    eval_runs: int = 64  # validation functions [open]; 20 in the code
    seed: int = 0  # seeds φ's init, the training functions and the validation functions

    def __post_init__(self):
        if self.steps % self.unroll:
            raise ValueError(f"steps ({self.steps}) must be a multiple of unroll ({self.unroll})")
        for name in ("steps", "unroll", "epochs", "runs", "eval_every", "eval_runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.meta_lr > 0:
            raise ValueError(f"meta_lr must be positive, got {self.meta_lr}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be positive or None, got {self.clip}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        make_problem(self.problem)  # fail early on a bad SPEC

    def lr_at(self, epoch: int) -> float:
        """The meta-learning rate for an epoch (a pure function of it, so resuming is exact)."""
        if self.schedule == "cosine":
            return self.meta_lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))
        return self.meta_lr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{**d, "optimizer": LSTMConfig(**d["optimizer"])})


def _same_recipe(saved: dict, config: TrainConfig) -> bool:
    """Whether a checkpoint's config is this recipe (fields added since it was saved take their
    defaults, so older checkpoints stay valid)."""
    try:
        return TrainConfig.from_dict(saved) == config
    except (TypeError, ValueError):
        return False


def truncate(theta: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """The truncation boundary of BPTT: θ and the LSTM state keep their values but forget how
    they were computed, so the next meta-update backpropagates through its own unroll only."""
    return theta.detach(), detach_state(state)


def unroll(opt, task: Task, theta, state, grad, steps: int):
    """Run `steps` optimizer steps from θ, keeping the graph of φ.

    Args:
        opt: the learned optimizer (`init`/`step`).
        task: R functions; theta [R, n] and grad = ∇f(θ) [R, n] where the unroll starts.
    Returns:
        (surrogate, losses [steps, R], theta, state, grad): `surrogate.backward()` gives the
        meta-gradient of Σ_t mean_r f_r(θ_t); theta, state and grad are where the unroll ends.
    """
    surrogate, losses = 0.0, []
    step = opt.bind()
    for _ in range(steps):
        update, state = step(grad, state)
        theta = theta + update  # θ_{t+1} = θ_t + g_t
        f, grad = task.loss_and_grad(theta)
        # With ∇_t held constant (second derivatives dropped), ∂f(θ_t)/∂φ = ∇_tᵀ ∂θ_t/∂φ, which is
        # also the meta-gradient of ⟨∇_t, θ_t⟩: the optimizee's graph need not be kept.
        surrogate = surrogate + (grad * theta).sum()
        losses.append(f)
    return surrogate / task.runs, torch.stack(losses), theta, state, grad


def train_epoch(opt, meta_opt, task: Task, config: TrainConfig,
                graphed: "GraphedUnroll | None" = None) -> float:
    """One run of T steps on `task`, with a meta-update after each unroll (through the captured
    CUDA graph with `graphed`, else eagerly).

    Returns the mean meta-loss per unroll (Σ_t f(θ_t), averaged over runs), or NaN when a
    meta-loss or meta-gradient was not finite: that update is skipped and the run abandoned.
    """
    updates = graphed.meta_updates(task, meta_opt) if graphed else _meta_updates(opt, meta_opt, task, config)
    count, total = config.steps // config.unroll, 0.0
    for _, loss in zip(range(count), updates):
        if not math.isfinite(loss):
            return math.nan
        total += loss
    return total / count


def _meta_updates(opt, meta_opt, task: Task, config: TrainConfig) -> Iterator[float]:
    """Eager meta-updates along one run of `task`, one per unroll: each yields its meta-loss, or
    NaN (and takes no step) when the meta-loss or the meta-gradient is not finite."""
    theta = task.theta
    state = opt.init(theta, task.groups)
    _, grad = task.loss_and_grad(theta)
    while True:
        surrogate, losses, theta, state, grad = unroll(opt, task, theta, state, grad, config.unroll)
        meta_loss = losses.sum(0).mean()
        meta_opt.zero_grad(set_to_none=True)
        if not torch.isfinite(meta_loss):
            yield math.nan
            return
        surrogate.backward()
        norm = torch.nn.utils.clip_grad_norm_(opt.parameters(), config.clip or math.inf)
        if not torch.isfinite(norm):
            yield math.nan
            return
        meta_opt.step()
        theta, state = truncate(theta, state)
        yield meta_loss.item()


def _copy_into(static, value):
    """Copy a pytree of tensors into the same-shaped pytree of fixed buffers."""
    for s, v in zip(tree_leaves(static), tree_leaves(value)):
        if isinstance(s, torch.Tensor):  # leaves may be None (no per-run activations, say)
            s.copy_(v)


class GraphedUnroll:
    """`unroll`, the meta-backward and the clipping, captured once as a CUDA graph and replayed.

    On a GPU one optimizee step is some hundred small kernels, and the Python that launches
    them takes longer than they run. Captured, an unroll of K steps is one launch. The graph
    reads fixed buffers (θ, the LSTM state and ∇ where the unroll starts, and the K steps'
    batches), copied in before each replay, and writes φ's gradients in place; Adam's step on φ
    stays outside, after the finiteness checks. One graph serves every task of a family because
    a task's `loss` is the family's pure function and all that differs comes through `batch`.
    The numbers are eager training's up to float rounding (tested on a GPU).

    Args:
        task: any task of the family, only traced: pass one that training does not use, since
            tracing draws its batches.
    """

    def __init__(self, opt, task: Task, config: TrainConfig):
        if task.theta.device.type != "cuda":
            raise ValueError("CUDA graphs need a task on a CUDA device")
        self.opt, self.steps, self.unroll, self.clip = opt, config.steps, config.unroll, config.clip
        self.loss, self.groups = task.loss, task.groups
        state = opt.init(task.theta, task.groups)
        _, grad = task.loss_and_grad(task.theta)
        batches = [task.batch() for _ in range(self.unroll)]
        self.inputs = tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t,
                               (task.theta, state, grad, batches))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: lazy initializations happen outside the capture
            self._forward_backward()
        torch.cuda.current_stream().wait_stream(side)
        opt.zero_grad(set_to_none=True)  # the capture allocates φ's gradients in its own pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = self._forward_backward()

    def _forward_backward(self):
        theta, state, grad, batches = self.inputs
        replay = Task(theta, self.loss, iter(batches).__next__, self.groups)
        surrogate, losses, theta, state, grad = unroll(self.opt, replay, theta, state, grad, self.unroll)
        surrogate.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.opt.parameters(), self.clip or math.inf)
        return losses, norm, (theta, state, grad)

    def start(self, task: Task):
        """Begin a run of `task`: θ_0, the LSTM's initial state and ∇_0 into the buffers."""
        state = self.opt.init(task.theta, task.groups)
        _, grad = task.loss_and_grad(task.theta)
        _copy_into(self.inputs[:3], (task.theta, state, grad))

    def meta_update(self, task: Task, meta_opt) -> float:
        """One unroll of K steps of `task` and Adam's step on φ; returns the meta-loss, or NaN
        (and no step) when the meta-loss or the meta-gradient is not finite."""
        _copy_into(self.inputs[3], [task.batch() for _ in range(self.unroll)])
        self.graph.replay()
        losses, norm, ends = self.outputs
        meta_loss = losses.sum(0).mean()
        if not (torch.isfinite(meta_loss) and torch.isfinite(norm)):
            return math.nan
        meta_opt.step()
        _copy_into(self.inputs[:3], ends)  # the truncation: the next unroll starts here
        return meta_loss.item()

    def meta_updates(self, task: Task, meta_opt) -> Iterator[float]:
        """`_meta_updates` through the graph: a run of `task`, one replay per unroll."""
        self.start(task)
        while True:
            yield self.meta_update(task, meta_opt)


@torch.no_grad()
def validate(opt, config: TrainConfig, device) -> float:
    """Mean final loss of the frozen optimizer on the fixed validation functions."""
    problem = make_problem(config.problem)
    task = problem.sample(config.eval_runs, derive_seed(config.seed, "valid"), device)
    final = run(task, opt, config.steps)[:, -1].mean().item()
    return final if math.isfinite(final) else math.inf


def _save(checkpoint: dict, path: Path):
    """Write atomically, so an interruption never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


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
        saved = torch.load(path, map_location=device, weights_only=False)
        if _same_recipe(saved["config"], config):
            ck = {**saved, "config": config.to_dict()}
            opt.load_state_dict(ck["weights"])
            meta_opt.load_state_dict(ck["meta_opt"])
        else:
            print(f"{path}: saved config differs from the requested one; training afresh")

    def checkpoint():
        ck.update(weights=opt.state_dict(), meta_opt=meta_opt.state_dict(), torch=torch.__version__)
        ck["hardware"] = hardware(device)  # where the latest epochs ran
        if path:
            _save(ck, path)

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


def optimizer_from(checkpoint: dict, device: str = "cpu", which: str = "best",
                   compile: bool = False) -> torch.nn.Module:
    """The trained optimizer held in a checkpoint: its best (early-stopped) or its last weights."""
    config = TrainConfig.from_dict(checkpoint["config"])
    opt = make_optimizer(config.optimizer, seed=config.seed, compile=compile).to(device)
    weights = checkpoint["best"]["weights"] if which == "best" else checkpoint["weights"]
    opt.load_state_dict(weights)
    return opt.eval().requires_grad_(False)


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no trained optimizer at {path}; train one with `python -m l2l train`")
    return torch.load(path, map_location=device, weights_only=False)


def load_or_train(config: TrainConfig, path: str | Path, device: str = "cpu", retrain: bool = False,
                  progress: bool = True, compile: bool = False) -> tuple[torch.nn.Module, dict]:
    """The optimizer for `config`: loaded from `path` when a finished checkpoint of the same
    config is there, resumed when an unfinished one is, trained afresh otherwise or on `retrain`."""
    ck = meta_train(config, path, device=device, resume=not retrain, progress=progress, compile=compile)
    return optimizer_from(ck, device, compile=compile), ck
