"""A sweep's populations on Ray Tune, the optional backend for more than one machine
(`pip install -e .[sweep]`; `python -m l2l sweep --backend ray`).

Ray only schedules: each Tune trial trains one population of the sweep's trials exactly as the
local backend does (`l2l.training.sweep.train_group`), into the same checkpoint files, so the
table, the winner and resuming are the same whichever backend ran it. Each population asks for
one CPU, or one GPU when the device is CUDA. On a cluster, the checkpoint folder must be storage
every node sees; `RAY_ADDRESS` names a running cluster (without it Ray starts one on this machine).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from l2l.errors import UserError
from l2l.training.checkpoint import load_checkpoint
from l2l.training.config import TrainConfig
from l2l.training.population import train_group


def run_groups(groups: list[list[TrainConfig]], paths: list[list[Path]], device: str = "cpu",
               compile: bool = False, max_minutes: float | None = None,
               cuda_graphs: bool | None = None) -> list[list[dict]]:
    """Train each group of trials as one Ray Tune trial (into their checkpoint files); returns each
    group's checkpoints."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError("the ray backend needs Ray Tune: pip install -e '.[sweep]'") from None
    paths = [[Path(p).resolve() for p in group] for group in paths]  # Ray runs each trial in a folder of its own
    def trainable(spec: dict):
        k = spec["group"]
        cks = train_group(groups[k], paths[k], device=device, compile=compile, max_minutes=max_minutes,
                          cuda_graphs=cuda_graphs)
        return {"epochs": [ck["epoch"] for ck in cks]}

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    gpu = device.startswith("cuda")
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"gpu": 1} if gpu else {"cpu": 1}),
        param_space={"group": tune.grid_search(list(range(len(groups))))},
        run_config=tune.RunConfig(name="l2l-sweep", storage_path=tempfile.mkdtemp(prefix="l2l-ray-"), verbose=0),
    )
    failed = [r.error for r in tuner.fit() if r.error]
    if failed:
        raise UserError(f"{len(failed)} of {len(groups)} populations failed on Ray: {failed[0]}")
    return [[load_checkpoint(p) for p in group] for group in paths]
