"""MNIST multi-layer perceptrons (paper section 3.2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from l2l.data import mnist
from l2l.errors import UserError
from l2l.problems.base import Problem, Task, check_choice, generator, register


@register
@dataclass(frozen=True)
class MNIST(Problem):
    """Cross-entropy of an MLP 784-hidden-…-10 on a fresh random minibatch every step [paper].

    θ holds every weight and bias of the network flattened into one row per run; `layers` hidden
    layers of `hidden` units each use `activation`. θ_0 ~ N(0, init_std²) i.i.d. [paper; std from code].
    `activation=mix` draws sigmoid or ReLU for each run (a remedy for the ReLU failure).
    """

    family = "mnist"
    optimizer_defaults = {"preprocess": 10.0, "output_scale": 0.1}  # [paper]

    hidden: int = 20
    layers: int = 1
    activation: str = "sigmoid"
    batch: int = 128
    split: str = "train"
    init_std: float = 0.01

    def __post_init__(self):
        check_choice("activation", self.activation, ("sigmoid", "relu", "tanh", "mix"))
        check_choice("split", self.split, ("train", "test"))
        if self.hidden < 1 or self.layers < 0 or self.batch < 1:
            raise UserError("hidden and batch must be positive, layers non-negative")

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer, input to logits."""
        sizes = [784] + [self.hidden] * self.layers + [10]
        return list(zip(sizes[:-1], sizes[1:]))

    @property
    def size(self) -> int:
        return sum(i * o + o for i, o in self.shapes)

    def held_out(self):
        return dataclasses.replace(self, split="test")

    def logits(self, theta: Tensor, x: Tensor, relu_runs: Tensor | None = None) -> Tensor:
        """MLP forward pass for R runs at once: θ [R, n], x [R, B, 784] -> [R, B, 10].

        With `activation=mix`, `relu_runs` [R] (bool) says which runs use ReLU, the rest sigmoid.
        """
        return self.layer_outputs(theta, x, relu_runs)[-1]

    def layer_outputs(self, theta: Tensor, x: Tensor, relu_runs: Tensor | None = None) -> list[Tensor]:
        """Every layer's output, input to logits: each hidden layer's activations [R, B, hidden],
        then the logits [R, B, 10] (`logits`)."""
        if self.activation == "mix":
            mask = relu_runs[:, None, None]
            act = lambda z: torch.where(mask, torch.relu(z), torch.sigmoid(z))
        else:
            act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[self.activation]
        offset, outputs = 0, []
        for k, (i, o) in enumerate(self.shapes):
            W = theta[:, offset : offset + i * o].view(-1, i, o)  # [R, in, out]
            b = theta[:, offset + i * o : offset + i * o + o]  # [R, out]
            offset += i * o + o
            x = torch.baddbmm(b[:, None, :], x, W)  # [R, B, out]
            if k < len(self.shapes) - 1:
                x = act(x)
            outputs.append(x)
        return outputs

    def sample(self, runs, seed, device="cpu"):
        images, labels = mnist(self.split, device)  # [N, 784] floats in [0, 1], [N]
        g = generator(seed)
        theta = (self.init_std * torch.randn(runs, self.size, generator=g)).to(device)
        relu_runs = (torch.rand(runs, generator=g) < 0.5).to(device) if self.activation == "mix" else None

        def batch():
            idx = torch.randint(len(labels), (runs, self.batch), generator=g).to(device)
            return images[idx], labels[idx], relu_runs  # [R, B, 784], [R, B], [R] or None

        def loss(theta, batch):
            x, y, relu = batch
            logits = self.logits(theta, x, relu)
            return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(-1)  # [R]

        return Task(theta, loss, batch)
