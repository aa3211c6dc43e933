"""One coordinatewise LSTM per parameter group of the problem (paper, section 3.3: CIFAR-10 needs
one LSTM for the convolutional layers and one for the fully connected ones)."""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import Tensor, nn

from l2l.errors import UserError
from l2l.optimizers.base import Learned
from l2l.optimizers.lstm import LSTMConfig, LSTMOptimizer


class GroupedLSTM(Learned):
    """Several coordinatewise LSTMs, one per parameter group of the problem (paper, section 3.3).

    The problem labels each coordinate of θ with a group (`Task.groups`: for CIFAR 0 for the
    convolutional layers, 1 for the fully connected ones); LSTM k, with its own weights φ_k, updates
    the coordinates of group k. Each is an `LSTMOptimizer` of the same architecture, with its
    group's output scale (`LSTMConfig.scales`).
    """

    def __init__(self, config: LSTMConfig, seed: int = 0, compile: bool = False):
        super().__init__()
        self.config = config
        single = lambda k: dataclasses.replace(config, groups=1, output_scale=config.scales[k])
        self.nets = nn.ModuleList(LSTMOptimizer(single(k), seed=seed + k, compile=compile)
                                  for k in range(config.groups))

    def init(self, theta: Tensor, groups: Tensor | None = None) -> tuple:
        """(columns of each group, inverse permutation, each LSTM's zero state)."""
        if groups is None or int(groups.max()) + 1 != len(self.nets):
            found = "none" if groups is None else int(groups.max()) + 1
            raise UserError(f"this optimizer has {len(self.nets)} LSTMs but the problem labels "
                             f"{found} parameter groups")
        cols = tuple((groups == k).nonzero().squeeze(1).to(theta.device) for k in range(len(self.nets)))
        inverse = torch.argsort(torch.cat(cols))
        return cols, inverse, tuple(net.init(theta[:, c]) for net, c in zip(self.nets, cols))

    def bind(self):
        steps = [net.bind() for net in self.nets]

        def step(grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
            cols, inverse, states = state
            outs = [s(grad[:, c], st) for s, c, st in zip(steps, cols, states)]
            update = torch.cat([u for u, _ in outs], dim=1)[:, inverse]  # back to θ's order
            return update, (cols, inverse, tuple(st for _, st in outs))

        return step

    def silenced(self, group: int) -> "GroupedLSTM":
        """A copy whose LSTM for `group` proposes no update (that group's parameters stay at θ_0):
        an ablation that shows what each LSTM contributes."""
        quiet = copy.deepcopy(self)
        with torch.no_grad():  # a zero head: the weights say so, not the config (`evaluation.fingerprint`)
            quiet.nets[group].head.weight.zero_()
            quiet.nets[group].head.bias.zero_()
        return quiet

    def ablations(self) -> list["GroupedLSTM"]:
        """Each LSTM silenced in turn (chapter 4's ablation)."""
        return [self.silenced(k) for k in range(len(self.nets))]
