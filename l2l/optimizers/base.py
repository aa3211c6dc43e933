"""The one interface every optimizer of the book implements, hand-designed or learned.

An optimizer maps gradients to updates, θ_{t+1} = θ_t + g_t, for R independent runs at once
(θ and ∇ are [R, n], a row per run):

    state = opt.init(theta, groups)          # before the first step; `groups` labels each
                                             # coordinate's parameter group (or None)
    update, state = opt.step(grad, state)    # g_t, shaped like grad, and the next state
    step = opt.bind()                        # `step` with the per-call work done once

`bind` matters for the learned optimizers, whose weights φ are fixed within a run or an unroll:
their fused weight matrices are built once instead of at every step. `l2l.loop.optimize` is the
one loop that drives any of them.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from torch import Tensor, nn

Step = Callable[[Tensor, Any], tuple[Tensor, Any]]


class Optimizer(Protocol):
    def init(self, theta: Tensor, groups: Tensor | None = None) -> Any: ...

    def step(self, grad: Tensor, state: Any) -> tuple[Tensor, Any]: ...

    def bind(self) -> Step: ...


class Rule:
    """Base of the hand-designed rules (baselines, quasi-Newton): nothing to precompute."""

    def bind(self) -> Step:
        return self.step


class Learned(nn.Module):
    """Base of the learned optimizers: subclasses define `init` and `bind`; `step` binds the
    current weights for one step."""

    def step(self, grad: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: the update g_t (shaped like grad) and the next state. The gradient must come
        in detached (the paper drops second derivatives); nothing here differentiates through it."""
        return self.bind()(grad, state)

    def ablations(self) -> list["Learned"]:
        """Copies of these weights with a part switched off, which a chapter tests beside them (none
        here): their cached curves belong to the same checkpoint (`python -m l2l cache --prune`)."""
        return []


def detach_state(state):
    """An optimizer state (nested tuples of tensors and numbers) with every tensor detached."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        return tuple(detach_state(s) for s in state)
    return state
