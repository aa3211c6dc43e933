"""The one loop that runs an optimizer on a task: θ_{t+1} = θ_t + g_t, [g_t; state] = step(∇_t, state).

Evaluation (`run`), the chapters' diagnostics (`l2l.analysis`), the neural-art trajectories, the
classic quasi-Newton references and meta-training's unrolls (`l2l.training.unroll`) all go through
`optimize`, so they step alike by construction.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import torch
from torch import Tensor

from l2l.errors import UserError
from l2l.problems import Task


class Step(NamedTuple):
    """One point of an optimizer's trajectory: θ_t, f(θ_t), ∇_t, the update g_t taken from θ_t
    (None at the last point) and the optimizer's state after it."""

    theta: Tensor
    loss: Tensor | None
    grad: Tensor
    update: Tensor | None
    state: Any


def begin(task: Task, opt) -> tuple[Tensor, Any, Tensor, Tensor]:
    """Where every run starts: θ_0, the optimizer's initial state, f(θ_0) and ∇_0."""
    weights = next(opt.parameters(), None) if isinstance(opt, torch.nn.Module) else None
    if weights is not None and weights.device != task.theta.device:
        raise UserError(f"the optimizer's weights are on {weights.device} and the task on {task.theta.device}: "
                        "move one, e.g. opt.to(device)")
    state = opt.init(task.theta, task.groups)
    f, grad = task.loss_and_grad(task.theta)
    return task.theta, state, f, grad


def optimize(task: Task, opt, steps: int, start: tuple[Tensor, Any, Tensor] | None = None) -> Iterator[Step]:
    """Run `opt` on every function of `task`, yielding each of the steps + 1 points.

    Args:
        task: R functions and their θ_0 [R, n].
        opt: any optimizer (`l2l.optimizers.base`).
        steps: how many updates.
        start: (θ, state, ∇) to continue a run from instead of its beginning, as meta-training's
            unrolls do; the first point's loss is then None (it belongs to the unroll before).
    """
    if start is None:
        theta, state, f, grad = begin(task, opt)
    else:
        (theta, state, grad), f = start, None
    step = opt.bind()
    for _ in range(steps):
        update, state = step(grad, state)
        yield Step(theta, f, grad, update, state)
        theta = theta + update
        f, grad = task.loss_and_grad(theta)
    yield Step(theta, f, grad, None, state)


@torch.no_grad()
def run(task: Task, opt, steps: int) -> Tensor:
    """Optimize every function of `task` for `steps` steps with `opt`.

    Returns:
        [R, steps + 1] losses f(θ_0), …, f(θ_steps) of each run.
    """
    return torch.stack([point.loss for point in optimize(task, opt, steps)], dim=1)
