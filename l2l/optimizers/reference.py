"""A plain reference for one meta-training unroll, written the way a direct port of the paper reads.

Two `nn.LSTMCell`s called per step, the optimizee's loss f(θ_t) kept in the graph of the
meta-loss, and `torch.autograd.grad(..., retain_graph=True)` to read ∇_t. It shares φ with
`l2l.optimizers.lstm.LSTMOptimizer`, so the tests can check that the project's path
(`l2l.training.unroll`) gives the same trajectories and meta-gradients, and `python -m l2l bench`
can time both. It keeps a step loop of its own on purpose: a reference that ran through the
project's loop (`l2l.loop.optimize`) could not catch a bug in it.
"""

from __future__ import annotations

import torch

from l2l.optimizers.lstm import LSTMOptimizer, State
from l2l.problems import Task


def reference_init(opt: LSTMOptimizer, theta: torch.Tensor) -> State:
    """Zero states in `nn.LSTMCell`'s layout: [N, hidden], a row per coordinate."""
    return tuple(s.t() for s in opt.init(theta))


def reference_step(opt: LSTMOptimizer, grad: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """One optimizer step through the `nn.LSTMCell` modules themselves (states [N, hidden])."""
    x = opt.inputs(grad).t()  # [N, 2]
    new_state = []
    for k, cell in enumerate(opt.cells):
        x, c = cell(x, (state[2 * k], state[2 * k + 1]))
        new_state += [x, c]
    return opt.head(x).reshape(grad.shape) * opt.config.output_scale, tuple(new_state)


def reference_unroll(opt: LSTMOptimizer, task: Task, theta: torch.Tensor, state: State, steps: int):
    """`steps` optimizer steps from θ (history cut); returns (meta_loss, losses [steps, R], θ, state).

    `state` is in the reference layout (`reference_init`).

    meta_loss = Σ_{t=1..steps} mean_r f_r(θ_t), differentiable in φ; ∇_t is detached.
    """
    theta = theta.detach().requires_grad_(True)
    f = task.loss(theta, task.batch())
    grad = torch.autograd.grad(f.sum(), theta)[0].detach()
    meta_loss, losses = 0.0, []
    for _ in range(steps):
        update, state = reference_step(opt, grad, state)
        theta = theta + update
        f = task.loss(theta, task.batch())  # stays in the graph of the meta-loss
        grad = torch.autograd.grad(f.sum(), theta, retain_graph=True)[0].detach()  # no 2nd derivatives
        meta_loss = meta_loss + f.mean()
        losses.append(f.detach())
    return meta_loss, torch.stack(losses), theta, state
