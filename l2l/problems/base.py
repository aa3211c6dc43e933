"""What every optimizee family shares: the `Task`, the SPEC registry, seeds.

A problem family samples a `Task`: R functions at once, with their initial parameters θ_0 as one
[R, n] tensor (row r belongs to run r) and a pure loss f(θ, batch) -> [R]. Batching runs this way
lets every optimizer advance many independent runs in the same tensor operations. All randomness
comes from a `torch.Generator` on the CPU, seeded through `derive_seed`, so a seed names the same
functions on every device.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils._pytree import tree_leaves, tree_map

from l2l.errors import UserError


def derive_seed(seed: int, stream: str, index: int = 0) -> int:
    """An independent seed for one use ('train' epoch k, 'valid', 'test', ...) of a master seed."""
    digest = hashlib.sha256(f"{seed}/{stream}/{index}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass
class Task:
    """R optimizee functions drawn from one family, with their starting point.

    Attributes:
        theta: [R, n] initial parameters θ_0, one row per run.
        loss: pure function (θ [R, n], batch) -> f [R]; run r's loss depends on row r alone. It is
            the same function for every task of a family: all that differs between tasks (a
            quadratic's W and y, a minibatch) comes through `batch`, so one captured CUDA graph
            serves every task (`l2l.training.GraphedUnroll`).
        batch: draws the data of one optimizee step (a fresh minibatch; a quadratic's W and y).
        groups: [n] parameter group of each coordinate (CIFAR: 0 convolutional, 1 fully
            connected), for optimizers with one LSTM per group; None when there is one group.
    """

    theta: Tensor
    loss: Callable[[Tensor, Any], Tensor]
    batch: Callable[[], Any] = field(default=lambda: None)
    groups: Tensor | None = None

    @property
    def runs(self) -> int:
        return self.theta.shape[0]

    def loss_and_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """f(θ_t) and ∇_t on a fresh batch, both detached from any graph θ belongs to.

        Detaching here is the paper's dropped second derivatives: ∇_t enters the optimizer as a
        constant input, and the optimizee's own graph is freed at once.
        """
        theta = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.loss(theta, self.batch())
            (grad,) = torch.autograd.grad(f.sum(), theta)  # rows are independent: ∇ of each run
        return f.detach(), grad


def stack_tasks(tasks: list[Task]) -> Task:
    """Tasks of one family as one task of all their runs, in order (θ [ΣR, n]): what a population
    of optimizers (`l2l.optimizers.population`) trains on, each member on its own task's rows.

    Every step draws each task's own batch, so each task sees the very data it sees alone. Needs
    equal run counts (a population splits rows evenly) and batches whose tensors all have a
    leading run dimension; a family whose batches share data between runs cannot be stacked. One
    task is returned as it is.
    """
    if len(tasks) == 1:
        return tasks[0]
    if len({t.runs for t in tasks}) != 1 or len({t.theta.shape[1] for t in tasks}) != 1:
        raise UserError("stacked tasks need equal run counts and problem sizes")
    groups = tasks[0].groups
    if any((t.groups is None) != (groups is None) or (groups is not None and not torch.equal(t.groups, groups))
           for t in tasks):
        raise UserError("stacked tasks need the same parameter groups")
    runs = tasks[0].runs

    def batch():
        drawn = [t.batch() for t in tasks]
        leaves = [leaf for b in drawn for leaf in tree_leaves(b) if isinstance(leaf, Tensor)]
        if any(leaf.dim() == 0 or leaf.shape[0] != runs for leaf in leaves):
            raise UserError("this family's batches are shared between runs: its tasks cannot be stacked")
        return tree_map(lambda *xs: torch.cat(xs) if isinstance(xs[0], Tensor) else xs[0], *drawn)

    return Task(torch.cat([t.theta for t in tasks]), tasks[0].loss, batch, groups)


# ---------------------------------------------------------------------------------------------
# The registry and SPEC strings


PROBLEMS: dict[str, type] = {}


def register(cls):
    PROBLEMS[cls.family] = cls
    return cls


def _options(cls) -> str:
    return ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))


def _parse_value(text: str, default: Any, key: str):
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() not in ("0", "1", "true", "false"):
                raise UserError
            return text.lower() in ("1", "true")
        return kind(text)
    except ValueError:
        raise UserError(f"option {key}={text!r}: expected a {kind.__name__}") from None


def make_problem(spec: str):
    """Parse a SPEC `family[:key=value,...]` into a problem; unknown names fail with the choices."""
    family, _, options = spec.strip().partition(":")
    if family not in PROBLEMS:
        known = "; ".join(f"{name} ({_options(c)})" for name, c in PROBLEMS.items())
        raise UserError(f"unknown problem {family!r}. Known problems and their options: {known}")
    cls = PROBLEMS[family]
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    kwargs = {}
    for item in filter(None, (s.strip() for s in options.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            raise UserError(f"{family}: bad option {item!r}. Options (with defaults): {_options(cls)}")
        kwargs[key] = _parse_value(value, defaults[key], key)
    return cls(**kwargs)


class Problem:
    """Base of the problem families: a SPEC round trip and a file-name-safe slug."""

    family = ""
    # The learned optimizer's input and output treatment for this family (`LSTMConfig` fields)
    optimizer_defaults: dict = {}

    @property
    def spec(self) -> str:
        """The canonical SPEC: the family plus the options that differ from their defaults."""
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return self.family + (":" + ",".join(changed) if changed else "")

    @property
    def slug(self) -> str:
        return self.spec.replace(":", "-").replace(",", "-").replace("=", "")

    def sample(self, runs: int, seed: int, device: str | torch.device = "cpu") -> Task:
        raise NotImplementedError

    def held_out(self):
        """The family that test curves are drawn from: the same functions on data that training
        never used (for datasets, the test split); the family itself when there is no data."""
        return self


def check_choice(name: str, value, choices):
    if value not in choices:
        raise UserError(f"{name}={value!r}: choose from {', '.join(map(str, choices))}")
