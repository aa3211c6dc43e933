"""Checkpoints: one file holds a meta-training run's recipe, weights (last and best), meta-optimizer
state and history, enough to resume it or to use the trained optimizer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.torch_version import TorchVersion

from l2l.errors import UserError
from l2l.optimizers import make_optimizer
from l2l.runtime import atomic_write
from l2l.training.config import TrainConfig


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """Write atomically (`l2l.runtime.atomic_write`): an interruption never leaves half a file."""
    return atomic_write(path, lambda f: torch.save(checkpoint, f))


REQUIRED = ("config", "epoch", "weights", "best", "history")


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)`: tensors and plain data only, so a
    file from a stranger cannot run code. A missing, truncated or malformed file is a `UserError`
    (FileNotFoundError when missing) that names it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no trained optimizer at {path}; train one with `python -m l2l train`")
    try:
        # older checkpoints stored torch.__version__ itself, a harmless subclass of str
        with torch.serialization.safe_globals([TorchVersion]):
            checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated zip, not a torch file, pickled code, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path} is not a readable checkpoint ({reason[:200]})") from None
    missing = [k for k in REQUIRED if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise UserError(f"{path} is not a checkpoint of this project (missing {', '.join(missing)})")
    return checkpoint


def validated(checkpoint: dict) -> bool:
    """Whether a training's best weights are trained ones: it has validated at least once, or it
    started from another training's best (`TrainConfig.start`)."""
    return bool(checkpoint["history"]) or "started_from" in checkpoint


def optimizer_from(checkpoint: dict, device: str = "cpu", which: str = "best",
                   compile: bool = False) -> torch.nn.Module:
    """The trained optimizer held in a checkpoint: its best (early-stopped) or its last weights.
    A training stopped before its first validation has no best weights (only its initial ones)."""
    if which not in ("best", "last"):
        raise UserError(f"which must be 'best' or 'last', got {which!r}")
    if which == "best" and not validated(checkpoint):
        raise UserError(f"this training stopped at epoch {checkpoint['epoch']}, before its first validation: "
                        "it has no best weights yet (its last weights: which='last', or --which last)")
    config = TrainConfig.from_dict(checkpoint["config"])
    opt = make_optimizer(config.optimizer, seed=config.seed, compile=compile).to(device)
    weights = checkpoint["best"]["weights"] if which == "best" else checkpoint["weights"]
    opt.load_state_dict(weights)
    return opt.eval().requires_grad_(False)
