"""A population: P learned optimizers of one architecture stepped together, each on its own runs.

A random search trains many optimizers that differ only in their recipe (meta-learning rate,
seed). Stepping them one by one leaves a GPU idle between tiny kernels; stacked, their φ become
[P, ...] weights and every LSTM layer one batched matrix product (`torch.baddbmm`) over the P
members, so a population costs about one launch per operation, whatever P.

θ and ∇ are [P·R, n]: member k owns rows k·R ... (k+1)·R − 1 (a stacked task,
`l2l.problems.stack_tasks`). Each member's columns meet only its own weights, so its updates,
and the meta-gradients that reach its φ, are what it computes alone, up to float rounding
(tested). The members stay ordinary `LSTMOptimizer`s: each keeps its own parameters, checkpoint
and meta-optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from l2l.errors import UserError
from l2l.optimizers.base import Learned
from l2l.optimizers.lstm import LSTMOptimizer, State, compiled_lstm_step, gate_weights, lstm_step


class Population(Learned):
    """P coordinatewise LSTMs (`LSTMOptimizer`, same `LSTMConfig`) as one optimizer.

    Args:
        members: the optimizers; their weights stay theirs (the population holds no copy), so
            meta-gradients land in each member's own parameters.
        compile: run the batched step through `torch.compile`.
    """

    def __init__(self, members: list[LSTMOptimizer], compile: bool = False):
        super().__init__()
        if not members:
            raise UserError("a population needs at least one member")
        if any(type(m) is not LSTMOptimizer for m in members):
            raise UserError("a population batches plain coordinatewise LSTMs only (no groups, no sharing)")
        if len({m.config for m in members}) > 1:
            raise UserError("a population's members must share one architecture (LSTMConfig)")
        self.config, self.compiled = members[0].config, compile
        self.members = nn.ModuleList(members)

    def __len__(self) -> int:
        return len(self.members)

    def runs_each(self, theta: Tensor) -> int:
        """Runs per member in a stacked θ [P·R, n]."""
        if theta.shape[0] % len(self):
            raise UserError(f"{theta.shape[0]} runs do not split evenly among {len(self)} members")
        return theta.shape[0] // len(self)

    def init(self, theta: Tensor, groups: Tensor | None = None) -> State:
        """Zero states [P, hidden, R·n], member k's columns holding its own runs' coordinates."""
        zeros = theta.new_zeros(len(self), self.config.hidden, self.runs_each(theta) * theta.shape[1])
        return tuple(zeros for _ in range(2 * self.config.layers))

    def bind(self):
        """The batched step for the members' current weights (stacked once, as `LSTMOptimizer.bind`
        fuses its own once). A population of one steps as its member would alone, through the same
        (compiled) code: on the CPU the batched products and kernels over [1, ...] cost more."""
        fused = [[gate_weights(cell) for cell in m.cells] for m in self.members]
        heads = [(m.head.weight, m.head.bias[:, None]) for m in self.members]
        step = compiled_lstm_step() if self.compiled else lstm_step
        p, scale = self.config.preprocess, self.config.output_scale
        if len(self) == 1:
            return lambda grad, state: _one(step(grad, tuple(s[0] for s in state), fused[0], heads[0], p, scale))
        cells = [(torch.stack([f[k][0] for f in fused]), torch.stack([f[k][1] for f in fused]))
                 for k in range(self.config.layers)]
        head = (torch.stack([w for w, _ in heads]), torch.stack([b for _, b in heads]))
        return lambda grad, state: step(grad, state, cells, head, p, scale)


def _one(stepped: tuple[Tensor, State]) -> tuple[Tensor, State]:
    """A lone member's update and its state, the state back in the population's [1, ...] shape."""
    update, state = stepped
    return update, tuple(s.unsqueeze(0) for s in state)
