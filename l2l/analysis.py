"""Closer looks at what an optimizer does, for the chapters' diagnostics. Every function here drives
the optimizer through the one loop, `l2l.loop.optimize`, streamed: a trajectory's states can be
large, so only what is asked for is kept.

* `group_trace`: how each parameter group's |θ| and |∇| evolve (CIFAR's conv and fc layers);
* `trajectory`: the final θ, every loss, and ∇ and updates at chosen coordinates (neural art);
* `replay`: the updates an optimizer would propose along another optimizer's gradient history;
* `update_profile`: how much of an update is a shift shared by all coordinates;
* `memory_drift`: how far an NTM-(L-)BFGS memory moves from M_0 = I;
* `saturation`: how many of an MNIST network's sigmoid units an optimizer drives to 0 or 1;
* `head_start`: the biases that set a learned optimizer's first, shared step;
* `step_cost`: milliseconds per step and bytes of state.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from l2l.errors import UserError
from l2l.loop import optimize
from l2l.optimizers.sharing import SharingOptimizer, memory_read
from l2l.problems import Task


@torch.no_grad()
def group_trace(task: Task, opt, steps: int) -> dict[int, dict[str, list[float]]]:
    """How each parameter group moves under `opt`: per step t = 0..steps, the mean |θ| and the
    median |∇| of the group's coordinates over all runs. {group: {"theta": [...], "grad": [...]}}."""
    groups = task.groups if task.groups is not None else torch.zeros(task.theta.shape[1], dtype=torch.long,
                                                                     device=task.theta.device)
    trace = {int(k): {"theta": [], "grad": []} for k in groups.unique()}
    for point in optimize(task, opt, steps):
        for k, rec in trace.items():
            cols = groups == k
            rec["theta"].append(point.theta[:, cols].abs().mean().item())
            rec["grad"].append(point.grad[:, cols].abs().median().item())
    return trace


@torch.no_grad()
def trajectory(task: Task, opt, steps: int, coords: Tensor | None = None) -> dict:
    """Run `opt` on `task` for `steps` steps and keep what the neural-art figures need (Fig. 9 and
    the paper's Appendix B).

    Args:
        coords: [k, 2] pairs (run, coordinate) whose gradients and updates are recorded at every
            step, or None.
    Returns:
        {"theta": final θ [R, n], "losses": [R, steps + 1], and with coords "grads" and
        "updates", each [steps, k]: ∇_t and the update g_t at those coordinates}.
    """
    losses, grads, updates = [], [], []
    for point in optimize(task, opt, steps):
        losses.append(point.loss)
        if coords is not None and point.update is not None:
            grads.append(point.grad[coords[:, 0], coords[:, 1]])
            updates.append(point.update[coords[:, 0], coords[:, 1]])
    out = {"theta": point.theta, "losses": torch.stack(losses, dim=1)}
    if coords is not None:
        out |= {"grads": torch.stack(grads), "updates": torch.stack(updates)}
    return out


@dataclass
class RecordedGradients:
    """A stand-in for a task whose gradient at step t is `grads[t]` [R, n] whatever θ is (and
    whose loss is 0): it lets the one loop drive an optimizer along a history that another
    optimizer made, or along random gradients for timing."""

    theta: Tensor
    grads: Iterator[Tensor]
    groups: Tensor | None = None

    def loss_and_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        grad = next(self.grads, None)
        return theta.new_zeros(len(theta)), torch.zeros_like(theta) if grad is None else grad


@torch.no_grad()
def replay(opt, grads: Tensor) -> Tensor:
    """The updates an elementwise optimizer (a baseline) would propose, step by step, if it saw the
    gradient history grads [T, k] of k coordinates: [T, k]. The history is another optimizer's, so
    this answers "what would SGD or ADAM do here" without changing the trajectory."""
    task = RecordedGradients(torch.zeros_like(grads[:1]), (g[None] for g in grads))
    return torch.stack([p.update[0] for p in optimize(task, opt, len(grads)) if p.update is not None])


@torch.no_grad()
def update_profile(opt, task: Task, steps: int) -> tuple[float, float]:
    """How coordinate-specific an optimizer's updates are: over `steps` steps and all runs of
    `task`, the mean of |mean_k g^k_t| (the shift shared by all coordinates) and of std_k g^k_t
    (the part that differs between coordinates)."""
    shared, specific = 0.0, 0.0
    for point in optimize(task, opt, steps):
        if point.update is not None:
            shared += point.update.mean(1).abs().mean().item() / steps
            specific += point.update.std(1).mean().item() / steps
    return shared, specific


@torch.no_grad()
def memory_drift(opt: SharingOptimizer, task: Task, steps: int) -> Tensor:
    """‖M_T − I‖_F / √n of each run after `steps` steps of a NTM-(L-)BFGS on `task`: [R]."""
    for last in optimize(task, opt, steps):  # only the end is needed
        pass
    theta, memory = last.theta, last.state[2]
    R, n = theta.shape
    eye = torch.eye(n, dtype=theta.dtype, device=theta.device).expand(R, n, n)
    change = memory_read(memory, eye) - eye  # M − I, read column by column
    return change.flatten(1).norm(dim=1) / math.sqrt(n)


@torch.no_grad()
def saturation(problem, opt, task: Task, at: tuple[int, ...], images: Tensor, margin: float = 0.01) -> dict[int, float]:
    """{step: share of saturated hidden units} of an MNIST sigmoid network (`problem`) along `opt`'s
    runs of `task`: at each step in `at`, the share of the hidden activations, over every run, unit
    and probe image (`images` [B, 784]), within `margin` of 0 or 1, where a sigmoid's gradient is at
    most `margin`. A step shared by every weight drives the units there: each input weight and the
    bias move by the same amount, so a unit's input moves by that amount times (1 + the image's
    summed pixels)."""
    if getattr(problem, "activation", None) != "sigmoid" or not getattr(problem, "layers", 0):
        raise UserError(f"saturation measures the hidden units of an all-sigmoid network, which {problem!r} is not")
    shares = {}
    for t, point in enumerate(optimize(task, opt, max(at))):
        if t in at:
            hidden = problem.layer_outputs(point.theta, images.expand(task.runs, *images.shape))[:-1]
            shares[t] = torch.cat([((h < margin) | (h > 1 - margin)).flatten() for h in hidden]).float().mean().item()
    return shares


def head_start(opt) -> tuple[float, float | None, float]:
    """(bias of the update channel o_t, bias of the first read key r_t or None without a memory,
    output scale) of a learned optimizer with one head (a plain LSTM, LSTM+GAC, NTM-(L-)BFGS). Untrained, the head puts out little more than its
    biases, and with M_0 = I the read returns its key, so at the first step every coordinate moves
    by about output scale × (o + r): a shift shared by all of them."""
    config = getattr(opt.config, "lstm", opt.config)
    bias = opt.head.bias
    reads = getattr(opt.config, "reads", 0)
    return bias[0].item(), bias[1].item() if reads else None, config.output_scale


@torch.no_grad()
def step_cost(opt, n: int, runs: int = 1, steps: int = 20, seed: int = 0, device="cpu") -> tuple[float, int]:
    """(milliseconds per step, bytes of state) of an optimizer on [runs, n] random gradients,
    after two warm-up steps."""
    g = torch.Generator().manual_seed(seed)
    grads = [(torch.randn(runs, n, generator=g) * 0.1).to(device) for _ in range(steps + 3)]
    theta = torch.zeros(runs, n, device=device)
    for _ in optimize(RecordedGradients(theta, iter(grads[:3])), opt, 2):  # warm-up
        pass
    start = time.perf_counter()
    for last in optimize(RecordedGradients(theta, iter(grads[3:])), opt, steps):
        pass
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - start) / steps, state_bytes(last.state)


def state_bytes(state) -> int:
    """Bytes held by an optimizer state (nested tuples and lists of tensors)."""
    if isinstance(state, Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, (tuple, list)):
        return sum(state_bytes(s) for s in state)
    return 0
