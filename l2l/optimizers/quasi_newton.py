"""Classic quasi-Newton methods, the references of the information-sharing chapter: BFGS and L-BFGS
(Nocedal & Wright, ch. 6-7) behind the interface of every optimizer (`l2l.optimizers.base`).

H_t approximates the inverse Hessian from consecutive steps' s = θ_{t+1} − θ_t and
y = ∇_{t+1} − ∇_t, and the update is g_t = α_t d_t with d_t = −H_t ∇_t. The step length α_t is a
fixed, tuned `lr` (one gradient per step, like every other optimizer here), or with `exact` the
exact line search of a quadratic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from l2l.errors import UserError
from l2l.optimizers.base import Rule



def bfgs_update(H: Tensor, s: Tensor, y: Tensor) -> Tensor:
    """Inverse-Hessian BFGS, per run: H [R, n, n], s = θ_{k+1} − θ_k and y = ∇_{k+1} − ∇_k [R, n].

        H' = (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ,   ρ = 1 / yᵀs

    Runs whose curvature yᵀs is not positive keep their H.
    """
    sy = (s * y).sum(-1)
    ok = sy > 1e-12 * (s.norm(dim=-1) * y.norm(dim=-1)).clamp_min(1e-30)
    rho = torch.where(ok, 1 / torch.where(ok, sy, torch.ones_like(sy)), torch.zeros_like(sy))[:, None, None]
    eye = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    left = eye - rho * s[:, :, None] * y[:, None, :]
    return left @ H @ left.transpose(1, 2) + rho * s[:, :, None] * s[:, None, :]


def lbfgs_direction(grad: Tensor, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    """−H ∇ by the two-loop recursion over the stored (s, y) pairs (oldest first), H_0 = I.
    Runs whose yᵀs is not positive skip that pair."""
    q, alphas = grad.clone(), []
    for s, y in reversed(pairs):
        sy = (s * y).sum(-1, keepdim=True)
        rho = torch.where(sy > 0, 1 / torch.where(sy > 0, sy, torch.ones_like(sy)), torch.zeros_like(sy))
        alpha = rho * (s * q).sum(-1, keepdim=True)
        q = q - alpha * y
        alphas.append((alpha, rho))
    for (s, y), (alpha, rho) in zip(pairs, reversed(alphas)):
        beta = rho * (y * q).sum(-1, keepdim=True)
        q = q + s * (alpha - beta)
    return -q


@dataclass(frozen=True)
class QuasiNewton(Rule):
    """BFGS (`history` None) or L-BFGS (the last `history` pairs), H_0 = I.

    Args:
        lr: the fixed step length α (tuned like the baselines' learning rates), or None with
            `exact`.
        history: L-BFGS's number of stored (s, y) pairs; None: full BFGS.
        exact: for a quadratic, the gradient function θ [R, n] -> ∇f(θ) [R, n] that makes the
            step length exact, α = −∇ᵀd / dᵀAd, with the curvature A d = ∇f(θ + d) − ∇f(θ) (exact
            on a quadratic; it costs a second gradient per step). In exact arithmetic BFGS and
            L-BFGS then coincide with conjugate gradients and reach the minimum of an
            n-dimensional quadratic in n steps.
    """

    lr: float | None = None
    history: int | None = None
    exact: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self):
        if (self.lr is None) == (self.exact is None):
            raise UserError("give exactly one of a fixed step length lr and an exact line search")

    @classmethod
    def exact_on(cls, task, history: int | None = None) -> "QuasiNewton":
        """(L-)BFGS with the exact line search of a quadratic `task` (its gradients make the
        curvature)."""
        return cls(history=history, exact=lambda theta: task.loss_and_grad(theta)[1])

    def init(self, theta: Tensor, groups=None) -> tuple:
        """(H or the pairs, the previous update and gradient, and θ where the line search needs it)."""
        R, n = theta.shape
        memory = [] if self.history else torch.eye(n, dtype=theta.dtype, device=theta.device).expand(R, n, n)
        return memory, None, None, theta if self.exact else None

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        memory, s, last, theta = state
        if s is not None:  # the pair (s, y) from the step just taken
            if self.history:
                memory = (memory + [(s, grad - last)])[-self.history :]
            else:
                memory = bfgs_update(memory, s, grad - last)
        if self.history:
            direction = lbfgs_direction(grad, memory)
        else:
            direction = -torch.bmm(memory, grad[:, :, None])[..., 0]
        if self.exact is None:
            update = self.lr * direction
        else:
            curvature = ((self.exact(theta + direction) - grad) * direction).sum(-1, keepdim=True)  # dᵀAd
            alpha = torch.where(curvature > 0,
                                -(grad * direction).sum(-1, keepdim=True) / curvature.clamp_min(1e-300),
                                torch.zeros_like(curvature))
            update = alpha * direction
        return update, (memory, update, grad, theta + update if self.exact else None)
