"""The coordinatewise LSTM optimizer of Andrychowicz et al. (2016).

The optimizee's parameters θ move by the output of a recurrent network m (paper, eq. 1):

    θ_{t+1} = θ_t + g_t,        [g_t; h_{t+1}] = m(∇_t, h_t; φ),        ∇_t = ∇f(θ_t).

m is a two-layer LSTM with 20 units per layer and a linear head 20 → 1, applied to every
coordinate of θ on its own: one set of weights φ is shared by all coordinates, and each coordinate
carries its own hidden state (paper, section 2.1). All coordinates of all parameter tensors of all
runs are stacked into one batch of N columns, so a step is a handful of matrix products, and the
result cannot depend on the order of the parameters.

Layout, for speed: features run along rows and coordinates along columns (states are [H, N]), so
each gate is a contiguous block of rows and one sigmoid call covers all four gates (tanh is taken
as 2σ(2x) − 1, with the cell-input gate's weights doubled on the fly). The weights themselves are
kept in `nn.LSTMCell`'s layout and gate order, so `l2l.optimizers.reference` can run the very
same φ.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from l2l.errors import UserError
from l2l.optimizers.base import Learned

State = tuple[Tensor, ...]  # (h_1, c_1, h_2, c_2, ...), each [hidden, N]


@dataclass(frozen=True)
class LSTMConfig:
    """Architecture of the learned optimizer; the defaults are the paper's."""

    hidden: int = 20  # units per LSTM layer [paper]
    layers: int = 2  # [paper]
    preprocess: float | None = 10.0  # p of Appendix A [paper]; None feeds ∇ raw (quadratics)
    # g_t = scale · head(h): 0.1 on MNIST [paper], 0.01 [code]; with several groups, one scale for
    # all or one per group's LSTM, e.g. (0.01, 0.1): CIFAR's conv kernels grow fast [book]
    output_scale: float | tuple[float, ...] = 1.0
    # One LSTM (own φ) per parameter group of the problem (CIFAR: conv and fully connected) [paper];
    # `l2l.optimizers.grouped`
    groups: int = 1

    def __post_init__(self):
        if self.hidden < 1 or self.layers < 1:
            raise UserError(f"hidden and layers must be positive, got {self.hidden}, {self.layers}")
        if self.groups < 1:
            raise UserError(f"groups must be positive, got {self.groups}")
        if isinstance(self.output_scale, (list, tuple)):  # a checkpoint's JSON-like table holds a list
            object.__setattr__(self, "output_scale", tuple(float(x) for x in self.output_scale))
            if len(self.output_scale) != self.groups or self.groups == 1:
                raise UserError(f"one output scale per LSTM: {self.groups} group(s), got {len(self.output_scale)} "
                                "scales (give one number for a single LSTM)")
        if min(self.scales) <= 0:
            raise UserError(f"output scales must be positive, got {self.output_scale}")
        if self.preprocess is not None and self.preprocess <= 0:
            raise UserError(f"preprocess p must be positive or None, got {self.preprocess}")

    @property
    def scales(self) -> tuple[float, ...]:
        """The output scale of each group's LSTM."""
        scale = self.output_scale
        return scale if isinstance(scale, tuple) else (scale,) * self.groups

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
        [2, N] inputs for the LSTM (row 0 the log part, row 1 the sign part).
    """
    big = grad.abs() >= math.exp(-p)
    # clamp keeps log finite on the branch torch.where discards
    log_part = torch.where(big, grad.abs().clamp_min(math.exp(-p)).log() / p, -torch.ones_like(grad))
    sign_part = torch.where(big, grad.sign(), grad * math.exp(p))
    return torch.stack([log_part, sign_part], dim=-2)


def gate_weights(cell: nn.LSTMCell) -> tuple[Tensor, Tensor]:
    """An `nn.LSTMCell`'s weights as one matrix [4H, in + H] and bias [4H, 1], rows reordered
    from (i, f, g, o) to (i, f, o, g) and the g rows doubled, for `lstm_cell`."""
    H, device = cell.hidden_size, cell.weight_ih.device
    span = lambda a, b: torch.arange(a * H, b * H, device=device)  # made on the device: no copy
    rows = torch.cat([span(0, 2), span(3, 4), span(2, 3)])
    scale = torch.ones(4 * H, 1, device=device)
    scale[3 * H :] = 2.0
    weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)[rows] * scale
    bias = (cell.bias_ih + cell.bias_hh)[rows, None] * scale
    return weight, bias


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM cell with forget gate (Hochreiter & Schmidhuber; Gers et al.), coordinates as columns.

        [i; f; o; g] = W [x; h] + b,   c' = σ(f) c + σ(i) tanh(g),   h' = σ(o) tanh(c')

    Args:
        x: [in, N], h and c: [H, N]; weight [4H, in + H], bias [4H, 1] from `gate_weights`. A
            population of P optimizers (`l2l.optimizers.population`) puts [P] in front of each.
    """
    xh = torch.cat([x, h], dim=-2)
    # [4H, N] (or [P, 4H, N]), g rows already doubled
    gates = torch.addmm(bias, weight, xh) if weight.dim() == 2 else torch.baddbmm(bias, weight, xh)
    i, f, o, g = torch.sigmoid(gates).chunk(4, dim=-2)  # each [H, N], contiguous; g holds σ(2g)
    c = f * c + i * (2 * g - 1)  # tanh(g) = 2σ(2g) − 1
    h = o * (2 * torch.sigmoid(2 * c) - 1)
    return h, c


def inputs(grad: Tensor, p: float | None, members: int | None = None) -> Tensor:
    """[inputs, N] LSTM inputs from gradients of any shape (a column per coordinate); with
    `members`, [members, inputs, N/members]: the rows of grad split evenly among a population."""
    g = grad.reshape(-1) if members is None else grad.reshape(members, -1)
    return g.unsqueeze(-2) if p is None else preprocess(g, p)


def lstm_step(grad: Tensor, state: State, cells: list[tuple[Tensor, Tensor]], head: tuple[Tensor, Tensor],
              p: float | None, scale: float) -> tuple[Tensor, State]:
    """m(∇_t, h_t; φ) as a pure function of fused weights (`gate_weights`) and the head's (w, b).

    Returns the update g_t, shaped like grad, and the next state. Weights stacked over a
    population ([P, 4H, in + H], ...: `l2l.optimizers.population`) step P optimizers at once,
    member k on the k-th P-th of grad's rows.
    """
    stacked = cells[0][0].dim() == 3
    x = inputs(grad, p, cells[0][0].shape[0] if stacked else None)  # [2, N] (or [P, 2, N/P])
    new_state = []
    for k, (weight, bias) in enumerate(cells):
        x, c = lstm_cell(x, state[2 * k], state[2 * k + 1], weight, bias)
        new_state += [x, c]
    update = torch.addmm(head[1], head[0], x) if not stacked else torch.baddbmm(head[1], head[0], x)  # [1, N]
    return update.reshape(grad.shape) * scale, tuple(new_state)


@functools.cache
def compiled_lstm_step():
    """`lstm_step` through torch.compile, made on first use (compiling takes seconds). Shapes
    start static and turn dynamic when a second problem size appears (evaluation sweeps)."""
    # on a machine without CUDA, inductor's first compile logs a warning that means nothing here
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(lstm_step)


def initial_weights(config: LSTMConfig, seed: int, extra_inputs: int = 0,
                    outputs: int = 1) -> tuple[nn.ModuleList, nn.Linear]:
    """φ at the start of meta-training: the LSTM layers (`nn.LSTMCell`s, forget-gate bias +1 [code],
    other biases 0) and the linear head, drawn from `seed` alone (the global RNG is left as it was).
    `extra_inputs` and `outputs` widen the first layer and the head (`l2l.optimizers.sharing`)."""
    H = config.hidden
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    cells = nn.ModuleList(
        nn.LSTMCell(config.inputs + extra_inputs if k == 0 else H, H) for k in range(config.layers)
    )
    head = nn.Linear(H, outputs)
    torch.random.set_rng_state(gen_state)
    with torch.no_grad():
        for cell in cells:
            cell.bias_ih.zero_()
            cell.bias_hh.zero_()
            cell.bias_ih[H : 2 * H] = 1.0  # forget-gate bias +1 [code]
    return cells, head


class LSTMOptimizer(Learned):
    """m(∇, h; φ): a coordinatewise LSTM that maps gradients to updates.

    The interface of every optimizer (`l2l.optimizers.base`): `init(theta, groups=None) -> state`,
    `step(grad, state) -> (update, state)` with θ_{t+1} = θ_t + update, and `bind()`, which returns
    the step function with φ's per-call work done once (φ is fixed within an unroll).

    Args:
        config: the architecture.
        seed: seeds the initial weights φ.
        compile: run steps through `torch.compile` (same numbers up to float rounding; pays off
            on large problems such as MNIST, costs a compilation per new problem size).
    """

    def __init__(self, config: LSTMConfig = LSTMConfig(), seed: int = 0, compile: bool = False):
        super().__init__()
        if config.groups != 1:
            raise UserError(f"an LSTMOptimizer is one LSTM, but the config asks for {config.groups} groups: "
                            "make_optimizer builds a GroupedLSTM for that")
        self.config = config
        self.compiled = compile
        self.cells, self.head = initial_weights(config, seed)

    def init(self, theta: Tensor, groups: Tensor | None = None) -> State:
        """Zero hidden and cell states, a column per coordinate of θ [R, n] (reset every run [code]).
        One LSTM serves every coordinate, so the problem's parameter `groups` play no part."""
        zeros = theta.new_zeros(self.config.hidden, theta.numel())
        return tuple(zeros for _ in range(2 * self.config.layers))

    def inputs(self, grad: Tensor) -> Tensor:
        return inputs(grad, self.config.preprocess)

    def bind(self):
        """The step function (grad, state) -> (update, state) for the current φ."""
        cells = [gate_weights(cell) for cell in self.cells]
        head = (self.head.weight, self.head.bias[:, None])
        step = compiled_lstm_step() if self.compiled else lstm_step
        p, scale = self.config.preprocess, self.config.output_scale
        return lambda grad, state: step(grad, state, cells, head, p, scale)
