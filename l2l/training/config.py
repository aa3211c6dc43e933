"""A meta-training recipe: what is trained, on which functions, for how long, and how."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field

from l2l.errors import UserError
from l2l.optimizers import LSTMConfig, OptimizerConfig, config_from_dict, config_to_dict
from l2l.problems import derive_seed, make_problem


def flat_recipe(stored: dict) -> dict:
    """A recipe as a checkpoint stores it (`TrainConfig.to_dict`), on one level: the optimizer's
    fields named `optimizer.<field>`."""
    return {**{k: v for k, v in stored.items() if k != "optimizer"},
            **{f"optimizer.{k}": v for k, v in stored.get("optimizer", {}).items()}}


SCHEDULES = ("constant", "cosine", "plateau")
PLATEAU_HALVINGS = 3  # the plateau schedule's halvings of the meta-learning rate before it stops [book]


@dataclass(frozen=True)
class TrainConfig:
    """One meta-training recipe. Defaults follow the paper where it speaks, else the code."""

    problem: str = "quadratic"  # SPEC of the training family
    optimizer: OptimizerConfig = field(default_factory=LSTMConfig)  # `l2l.optimizers.make_optimizer`
    steps: int = 100  # T: optimizee steps per run [paper]
    unroll: int = 20  # K: steps per truncation, one meta-update each [paper]
    epochs: int = 1000  # runs of T steps [open]; the code does 10,000
    runs: int = 1  # functions batched per epoch, meta-gradients averaged [open]; 1 in the code
    meta_lr: float = 1e-3  # Adam on φ [code]; the paper random-searched it
    # meta-learning rate over epochs: constant [code], cosine decay to 0, or plateau [book]: halved
    # from the best weights after `patience` validations without a new best, PLATEAU_HALVINGS times at
    # most; the next plateau ends training (`Trial.record`)
    schedule: str = "constant"
    clip: float | None = None  # clip each meta-gradient to this L2 norm [open]; None: no clipping
    eval_every: int = 100  # epochs between validations [open]; 1,000 in the code
    eval_runs: int = 64  # validation functions [open]; 20 in the code
    seed: int = 0  # seeds φ's init, the training functions and the validation functions
    patience: int | None = None  # stop after this many validations without a new best [book]; None: never
    # Chen et al. (2020), "Training stronger baselines for learning to optimize" [book]:
    # a curriculum of longer horizons after `steps`: train at one, validate at the next; after 3
    # validations in a stage, the first that does not improve moves on from the best weights (or
    # ends training, if none improved): `Trial._curriculum`
    curriculum: tuple[int, ...] = ()
    imitation: float = 0.0  # fraction of epochs that imitate a tuned Adam: (g_LSTM − g_Adam)² on its path
    teacher_lr: float | None = None  # that Adam's learning rate (the tuned one)
    # the checkpoint whose best weights φ starts from instead of the seed's draw, by its file name
    # without .pt, in the folder of the one trained; validated at this recipe's horizon, they are the
    # best so far (epoch 0), and the meta-optimizer and schedule start afresh [book]
    start: str | None = None

    def __post_init__(self):
        if self.steps % self.unroll:
            raise UserError(f"steps ({self.steps}) must be a multiple of unroll ({self.unroll})")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"patience must be positive or None, got {self.patience}")
        for name in ("steps", "unroll", "epochs", "runs", "eval_every", "eval_runs"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.meta_lr > 0:
            raise UserError(f"meta_lr must be positive, got {self.meta_lr}")
        if self.clip is not None and not self.clip > 0:
            raise UserError(f"clip must be positive or None, got {self.clip}")
        horizons = self.horizons
        if any(b <= a for a, b in zip(horizons, horizons[1:])) or any(h % self.unroll for h in horizons):
            raise UserError(f"the curriculum's horizons must grow from steps ({self.steps}) and be multiples of "
                            f"unroll ({self.unroll}), got {list(horizons)}")
        if not 0 <= self.imitation <= 1:
            raise UserError(f"imitation is a fraction of epochs in [0, 1], got {self.imitation}")
        if self.imitation and not (self.teacher_lr and self.teacher_lr > 0):
            raise UserError("imitation needs the tuned Adam's learning rate to imitate (teacher_lr)")
        if self.teacher_lr is not None and not self.imitation:  # it would only rename the checkpoint
            raise UserError("teacher_lr is the imitated Adam's learning rate: give imitation too, or leave it out")
        if self.schedule not in SCHEDULES:
            raise UserError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "plateau" and self.patience is None:
            raise UserError("the plateau schedule halves the meta-learning rate after `patience` validations "
                            "without a new best: give a patience")
        if self.schedule == "plateau" and self.curriculum:
            raise UserError("the plateau schedule and a curriculum both act when validation stops improving: "
                            "choose one")
        if self.start is not None and (not self.start or "/" in self.start or self.start.endswith(".pt")):
            raise UserError(f"start names a checkpoint in the trained one's folder by its file name without .pt "
                            f"(e.g. 'mnist'), got {self.start!r}")
        make_problem(self.problem)  # fail early on a bad SPEC

    @property
    def horizons(self) -> tuple[int, ...]:
        """The training horizons in order: `steps`, then the curriculum's."""
        return (self.steps, *self.curriculum)

    def validated_at(self, stage: int = 0) -> int:
        """The horizon a curriculum's `stage` validates at: the next one, the last one at its end
        (`steps` without a curriculum)."""
        return self.horizons[min(stage + 1, len(self.horizons) - 1)]

    def imitates(self, epoch: int) -> bool:
        """Whether an epoch imitates the teacher: drawn from the seed and epoch alone, so that a
        resumed run draws the same."""
        return self.imitation > 0 and random.Random(derive_seed(self.seed, "imitate", epoch)).random() < self.imitation

    def lr_at(self, epoch: int, halvings: int = 0) -> float:
        """The meta-learning rate for an epoch, after `halvings` plateaus (the plateau schedule; a
        checkpoint keeps them), so resuming is exact."""
        if self.schedule == "cosine":
            return self.meta_lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))
        if self.schedule == "plateau":
            return self.meta_lr * 0.5 ** halvings
        return self.meta_lr

    def to_dict(self) -> dict:
        """The recipe as a checkpoint stores it (the optimizer as `config_to_dict`'s table)."""
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                "optimizer": config_to_dict(self.optimizer), "curriculum": list(self.curriculum)}  # as JSON has it

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The recipe a checkpoint stores; fields added since it was written take their defaults."""
        return cls(**{**d, "optimizer": config_from_dict(d["optimizer"]),
                      "curriculum": tuple(d.get("curriculum", ()))})

    def same_recipe(self, saved: dict) -> bool:
        """Whether a checkpoint's stored recipe is this one (older checkpoints, which lack fields
        added since, stay valid)."""
        try:
            return TrainConfig.from_dict(saved) == self
        except (TypeError, ValueError):
            return False
