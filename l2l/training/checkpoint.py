"""Checkpoints: one file holds a meta-training run's recipe, weights (last and best), meta-optimizer
state and history, enough to resume it or to use the trained optimizer."""

from __future__ import annotations

from pathlib import Path

import torch

from l2l.optimizers import make_optimizer
from l2l.runtime import atomic_write
from l2l.training.config import TrainConfig


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """Write atomically (`l2l.runtime.atomic_write`): an interruption never leaves half a file."""
    return atomic_write(path, lambda f: torch.save(checkpoint, f))


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no trained optimizer at {path}; train one with `python -m l2l train`")
    return torch.load(path, map_location=device, weights_only=False)


def optimizer_from(checkpoint: dict, device: str = "cpu", which: str = "best",
                   compile: bool = False) -> torch.nn.Module:
    """The trained optimizer held in a checkpoint: its best (early-stopped) or its last weights."""
    config = TrainConfig.from_dict(checkpoint["config"])
    opt = make_optimizer(config.optimizer, seed=config.seed, compile=compile).to(device)
    weights = checkpoint["best"]["weights"] if which == "best" else checkpoint["weights"]
    opt.load_state_dict(weights)
    return opt.eval().requires_grad_(False)
