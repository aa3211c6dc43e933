"""One meta-update at a time: truncated backpropagation through time (paper, section 2).

The meta-loss of one run of T optimizee steps is (paper, eq. 3, with w_t = 1):

    L(φ) = E_f [ Σ_{t=1..T} f(θ_t) ].

A run is cut into unrolls of K steps (20 of 100 by default). After each unroll φ takes one Adam
step on that unroll's loss Σ_t f(θ_t); θ and the LSTM state then carry over into the next unroll
with their history cut (`truncate`). Gradients ∇_t enter the optimizer as constants: the paper
drops second derivatives, so no Hessian of f is ever formed. `GraphedUnroll` replays an unroll as
one captured CUDA graph.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils._pytree import tree_leaves, tree_map

from l2l.loop import begin, optimize
from l2l.optimizers import detach_state
from l2l.optimizers.lstm import State
from l2l.optimizers.population import Population
from l2l.problems import Task
from l2l.training.config import TrainConfig


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
        For a `Population`, the mean runs over each member's own runs and the members' meta-losses
        add up, so each member's φ gets the meta-gradient it gets alone.
    """
    runs = opt.runs_each(theta) if isinstance(opt, Population) else task.runs
    surrogate, losses = 0.0, []
    # The loop of every other use (`l2l.loop.optimize`), continued from where the last unroll
    # ended. What differs is only what the meta-gradient needs: grad mode stays on, so θ_t keeps
    # its graph back to φ, and each point adds to the surrogate below.
    points = optimize(task, opt, steps, start=(theta, state, grad))
    next(points)  # the unroll's first point: its loss belongs to the unroll before
    for point in points:
        # With ∇_t held constant (second derivatives dropped), ∂f(θ_t)/∂φ = ∇_tᵀ ∂θ_t/∂φ, which is
        # also the meta-gradient of ⟨∇_t, θ_t⟩: the optimizee's graph need not be kept.
        surrogate = surrogate + (point.grad * point.theta).sum()
        losses.append(point.loss)
    return surrogate / runs, torch.stack(losses), point.theta, point.state, point.grad


def train_epoch(opt, meta_opt, task: Task, config: TrainConfig,
                graphed: "GraphedUnroll | None" = None, steps: int | None = None, teacher=None) -> float:
    """One run of T steps on `task` (`steps`, default the recipe's), with a meta-update after
    each unroll (through the captured CUDA graph with `graphed`, else eagerly); with a `teacher`,
    the run follows the teacher and each update imitates it (`imitation_updates`).

    Returns the mean meta-loss per unroll (Σ_t f(θ_t), averaged over runs; imitating, the
    imitation loss), or NaN when a meta-loss or meta-gradient was not finite: that update is
    skipped and the run abandoned.
    """
    if teacher is not None:
        updates = imitation_updates(opt, meta_opt, task, config, teacher)
    elif graphed:
        updates = graphed.meta_updates(task, meta_opt)
    else:
        updates = meta_updates(opt, meta_opt, task, config)
    count, total = (steps or config.steps) // config.unroll, 0.0
    for _, loss in zip(range(count), updates):
        if not math.isfinite(loss):
            return math.nan
        total += loss
    return total / count


def meta_updates(opt, meta_opt, task: Task, config: TrainConfig) -> Iterator[float]:
    """Eager meta-updates along one run of `task`, one per unroll: each yields its meta-loss, or
    NaN (and takes no step) when the meta-loss or the meta-gradient is not finite."""
    theta, state, _, grad = begin(task, opt)
    while True:
        surrogate, losses, theta, state, grad = unroll(opt, task, theta, state, grad, config.unroll)
        meta_loss = losses.sum(0).mean()
        if not meta_step(opt, meta_opt, meta_loss, surrogate, config.clip):
            yield math.nan
            return
        theta, state = truncate(theta, state)
        yield meta_loss.item()


def meta_step(opt, meta_opt, loss, objective, clip: float | None) -> bool:
    """One step on φ: backpropagate `objective` (whose gradient is that of `loss`), clip, and step;
    False (and no step) when the loss or the clipped gradient's norm is not finite."""
    meta_opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return False
    objective.backward()
    norm = torch.nn.utils.clip_grad_norm_(opt.parameters(), clip or math.inf)
    if not torch.isfinite(norm):
        return False
    meta_opt.step()
    return True


def imitation_updates(opt, meta_opt, task: Task, config: TrainConfig, teacher) -> Iterator[float]:
    """Off-policy imitation (Chen et al. 2020): θ follows the `teacher` (a tuned Adam), the learned
    optimizer sees the teacher's gradients ∇_t with its own hidden state, and each meta-update
    minimizes ½ Σ_t mean (g_t − g_t^teacher)² over the unroll's K steps (the mean over coordinates
    and runs; Chen et al.'s ½ Σ over the parameters / their number). Yields that loss, or NaN
    (no step, run abandoned) when it or its gradient is not finite."""
    theta, state, _, grad = begin(task, opt)
    taught = teacher.init(theta, task.groups)
    teach = teacher.bind()
    while True:
        step, loss = opt.bind(), 0.0
        for _ in range(config.unroll):
            update, state = step(grad, state)
            target, taught = teach(grad, taught)
            loss = loss + 0.5 * (update - target).square().mean()
            theta = theta + target
            _, grad = task.loss_and_grad(theta)
        if not meta_step(opt, meta_opt, loss, loss, config.clip):
            yield math.nan
            return
        state = detach_state(state)
        yield loss.item()


def copy_into(static, value):
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
        self.opt, self.unroll, self.clip = opt, config.unroll, config.clip
        self.loss, self.groups = task.loss, task.groups
        _, state, _, grad = begin(task, opt)
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
        return losses, self._clip(), (theta, state, grad)

    def _clip(self) -> torch.Tensor:
        """φ's meta-gradient clipped in place, inside the capture; its norm before clipping."""
        return torch.nn.utils.clip_grad_norm_(self.opt.parameters(), self.clip or math.inf)

    def start(self, task: Task):
        """Begin a run of `task`: θ_0, the LSTM's initial state and ∇_0 into the buffers."""
        theta, state, _, grad = begin(task, self.opt)
        copy_into(self.inputs[:3], (theta, state, grad))

    def meta_update(self, task: Task, meta_opt) -> float:
        """One unroll of K steps of `task` and Adam's step on φ; returns the meta-loss, or NaN
        (and no step) when the meta-loss or the meta-gradient is not finite."""
        copy_into(self.inputs[3], [task.batch() for _ in range(self.unroll)])
        self.graph.replay()
        losses, norm, ends = self.outputs
        meta_loss = losses.sum(0).mean()
        if not (torch.isfinite(meta_loss) and torch.isfinite(norm)):
            return math.nan
        meta_opt.step()
        copy_into(self.inputs[:3], ends)  # the truncation: the next unroll starts here
        return meta_loss.item()

    def meta_updates(self, task: Task, meta_opt) -> Iterator[float]:
        """`meta_updates` through the graph: a run of `task`, one replay per unroll."""
        self.start(task)
        while True:
            yield self.meta_update(task, meta_opt)
