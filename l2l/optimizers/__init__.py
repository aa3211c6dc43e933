"""Optimizers, hand-designed and learned, behind one interface (`base`): `init`, `step`, `bind`.

* `lstm`: the paper's coordinatewise LSTM optimizer (`LSTMConfig`, `LSTMOptimizer`);
* `grouped`: one such LSTM per parameter group of the problem (CIFAR's conv and fc layers);
* `sharing`: LSTM+GAC and NTM-(L-)BFGS, which share information across coordinates (`SharingConfig`);
* `baselines`: SGD, RMSprop, ADAM, NAG; `quasi_newton`: classic BFGS and L-BFGS;
* `reference`: a plain port of one meta-training unroll, the yardstick of tests and bench.

`make_optimizer` builds the learned optimizer a config describes; `config_to_dict` and
`config_from_dict` are the configs' form inside checkpoints.
"""

from __future__ import annotations

import dataclasses

from l2l.errors import UserError
from l2l.optimizers.baselines import BASELINES, LABELS, SGD, Adam, NAG, RMSprop, make_baseline
from l2l.optimizers.base import Learned, Optimizer, Rule, detach_state
from l2l.optimizers.grouped import GroupedLSTM
from l2l.optimizers.lstm import LSTMConfig, LSTMOptimizer
from l2l.optimizers.quasi_newton import QuasiNewton
from l2l.optimizers.sharing import SharingConfig, SharingOptimizer

OptimizerConfig = LSTMConfig | SharingConfig

# A checkpoint stores an architecture as one flat table; sharing fields at these values mean none.
_NO_SHARING = {"gac": 0, "memory": "none", "read_heads": 1, "write_heads": 3, "window": 10}
# sharing fields added since, stored only away from their defaults: the tables (and the test curves'
# fingerprints, `describe`) of every architecture that leaves them alone stay as they were
_LATER = {"read_bias": "random", "update_bias": "random"}


def make_optimizer(config: OptimizerConfig, seed: int = 0, compile: bool = False) -> Learned:
    """The learned optimizer a config describes: one LSTM, one per parameter group, or one that
    shares information across coordinates."""
    if isinstance(config, SharingConfig):
        return SharingOptimizer(config, seed=seed, compile=compile)
    if config.groups > 1:
        return GroupedLSTM(config, seed=seed, compile=compile)
    return LSTMOptimizer(config, seed=seed, compile=compile)


def config_to_dict(config: OptimizerConfig) -> dict:
    """The flat table a checkpoint stores: the LSTM's fields, then the sharing fields (at their
    'none' values for a plain LSTM). The same table as before sharing had a config of its own,
    so every checkpoint reads and writes alike."""
    if isinstance(config, SharingConfig):
        sharing = {k: getattr(config, k) for k in _NO_SHARING}
        later = {k: getattr(config, k) for k, v in _LATER.items() if getattr(config, k) != v}
        return {**dataclasses.asdict(config.lstm), **sharing, **later}
    return {**dataclasses.asdict(config), **_NO_SHARING}


def config_from_dict(table: dict) -> OptimizerConfig:
    """The config a checkpoint's table describes (fields a table lacks take their defaults)."""
    lstm_fields = {f.name for f in dataclasses.fields(LSTMConfig)}
    unknown = set(table) - lstm_fields - set(_NO_SHARING) - set(_LATER)
    if unknown:
        raise UserError(f"unknown optimizer fields {', '.join(sorted(unknown))}")
    lstm = LSTMConfig(**{k: v for k, v in table.items() if k in lstm_fields})
    sharing = {**_NO_SHARING, **_LATER, **{k: v for k, v in table.items() if k in _NO_SHARING or k in _LATER}}
    if sharing["gac"] == 0 and sharing["memory"] == "none" and all(sharing[k] == v for k, v in _LATER.items()):
        return lstm
    return SharingConfig(lstm, **sharing)


def describe(config: OptimizerConfig) -> str:
    """A config as one line of text, stable across versions of the package (the text the result
    caches were keyed by when every field was in one `LSTMConfig`)."""
    return "LSTMConfig(" + ", ".join(f"{k}={v!r}" for k, v in config_to_dict(config).items()) + ")"


__all__ = ["BASELINES", "LABELS", "SGD", "Adam", "NAG", "RMSprop", "make_baseline", "Learned", "Optimizer",
           "Rule", "detach_state", "GroupedLSTM", "LSTMConfig", "LSTMOptimizer", "QuasiNewton",
           "SharingConfig", "SharingOptimizer", "OptimizerConfig", "make_optimizer", "config_to_dict",
           "config_from_dict", "describe"]
