"""The coordinatewise LSTM optimizer of Andrychowicz et al. (2016).

The optimizee's parameters θ move by the output of a recurrent network m (paper, eq. 1):

    θ_{t+1} = θ_t + g_t,        [g_t; h_{t+1}] = m(∇_t, h_t; φ),        ∇_t = ∇f(θ_t).

m is a two-layer LSTM with 20 units per layer and a linear head 20 → 1, applied to every
coordinate of θ on its own: one set of weights φ is shared by all coordinates, and each coordinate
carries its own hidden state (paper, section 2.1). All coordinates of all parameter tensors of all
runs are stacked into one batch of N rows, so a step is a handful of matrix products over [N, ·]
tensors, and the result cannot depend on the order of the parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]  # (h_1, c_1, h_2, c_2, ...), each [N, hidden]


@dataclass(frozen=True)
class LSTMConfig:
    """Architecture of the learned optimizer; the defaults are the paper's."""

    hidden: int = 20  # units per LSTM layer [paper]
    layers: int = 2  # [paper]
    preprocess: float | None = 10.0  # p of Appendix A [paper]; None feeds ∇ raw (quadratics)
    output_scale: float = 1.0  # g_t = scale · head(h): 0.1 on MNIST [paper], 0.01 [code]

    def __post_init__(self):
        if self.hidden < 1 or self.layers < 1:
            raise ValueError(f"hidden and layers must be positive, got {self.hidden}, {self.layers}")
        if self.preprocess is not None and self.preprocess <= 0:
            raise ValueError(f"preprocess p must be positive or None, got {self.preprocess}")

    @property
    def inputs(self) -> int:
        return 1 if self.preprocess is None else 2


def preprocess(grad: Tensor, p: float) -> Tensor:
    """Log-and-sign preprocessing of the paper's Appendix A, per coordinate.

    ∇ ↦ (log|∇| / p, sgn ∇)   if |∇| ≥ e^{-p}
    ∇ ↦ (-1, e^{p} ∇)          otherwise

    Args:
        grad: [N] gradients.
        p: the scale p (10 in the paper, 5 in the official code).
    Returns:
        [N, 2] inputs for the LSTM.
    """
    big = grad.abs() >= math.exp(-p)
    # clamp keeps log finite on the branch torch.where discards
    log_part = torch.where(big, grad.abs().clamp_min(math.exp(-p)).log() / p, -torch.ones_like(grad))
    sign_part = torch.where(big, grad.sign(), grad * math.exp(p))
    return torch.stack([log_part, sign_part], dim=-1)


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM cell with forget gate, gate order (i, f, g, o) as in `nn.LSTMCell`.

    The input and recurrent products are fused into one matrix product: [x, h] @ [W_ih, W_hh]ᵀ.

    Args:
        x: [N, in], h and c: [N, H], weight: [4H, in + H], bias: [4H].
    """
    gates = torch.addmm(bias, torch.cat([x, h], dim=1), weight.t())  # [N, 4H]
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class LSTMOptimizer(nn.Module):
    """m(∇, h; φ): a coordinatewise LSTM that maps gradients to updates.

    Interface shared with the baselines (`l2l.baselines`): `init(theta) -> state` and
    `step(grad, state) -> (update, state)`, with θ_{t+1} = θ_t + update.
    """

    def __init__(self, config: LSTMConfig = LSTMConfig(), seed: int = 0):
        super().__init__()
        self.config = config
        H = config.hidden
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # φ's initial weights depend on the seed alone
        self.cells = nn.ModuleList(
            nn.LSTMCell(config.inputs if k == 0 else H, H) for k in range(config.layers)
        )
        self.head = nn.Linear(H, 1)
        torch.random.set_rng_state(gen_state)
        with torch.no_grad():
            for cell in self.cells:
                cell.bias_ih.zero_()
                cell.bias_hh.zero_()
                cell.bias_ih[H : 2 * H] = 1.0  # forget-gate bias +1 [code]

    def init(self, theta: Tensor) -> State:
        """Zero hidden and cell states, one row per coordinate of θ [R, n] (reset every run [code])."""
        zeros = theta.new_zeros(theta.numel(), self.config.hidden)
        return tuple(zeros for _ in range(2 * self.config.layers))

    def inputs(self, grad: Tensor) -> Tensor:
        """[N, inputs] LSTM inputs from gradients of any shape (one row per coordinate)."""
        g = grad.reshape(-1)
        if self.config.preprocess is None:
            return g[:, None]
        return preprocess(g, self.config.preprocess)

    def step(self, grad: Tensor, state: State) -> tuple[Tensor, State]:
        """One optimizer step: the update g_t (shaped like grad) and the next state.

        The gradient must come in detached (the paper drops second derivatives); nothing here
        differentiates through it.
        """
        x = self.inputs(grad)  # [N, 2]
        new_state = []
        for k, cell in enumerate(self.cells):
            weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)  # [4H, in + H]
            x, c = lstm_cell(x, state[2 * k], state[2 * k + 1], weight, cell.bias_ih + cell.bias_hh)
            new_state += [x, c]
        update = self.head(x).reshape(grad.shape) * self.config.output_scale
        return update, tuple(new_state)
