"""The sweep on Ray Tune (the optional backend for clusters) trains the same trials into the same
files as the local sweep: a tiny sweep on a local Ray, so that path keeps working."""

import pytest

# in requirements.txt, so that `make test` runs this; for users an optional extra: pip install -e '.[sweep]'
ray = pytest.importorskip("ray", reason="Ray is the optional extra [sweep]")

from l2l.training import sweep
from test_population import SMALL

# by itself (`make test` runs these after the parallel ones): on a busy machine Ray's dashboard agent can
# take over the raylet's fixed 15 s to start, and the start fails (ray-project/ray#65983)
pytestmark = pytest.mark.serial


def test_a_ray_sweep_is_the_local_sweep(tmp_path):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        here = sweep(SMALL, 3, tmp_path / "here", tmp_path / "here.json", progress=False, population=2)
        there = sweep(SMALL, 3, tmp_path / "there", tmp_path / "there.json", progress=False, population=2,
                      backend="ray")
    finally:
        ray.shutdown()
    assert there["winner"] == here["winner"] and there["complete"]
    for a, b in zip(here["rows"], there["rows"], strict=True):
        assert (a["trial"], a["meta_lr"], a["best_epoch"], a["population"]) == (
            b["trial"], b["meta_lr"], b["best_epoch"], b["population"])
        assert a["best_val"] == pytest.approx(b["best_val"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "there").glob("*.pt")) == [f"there-trial{k}.pt" for k in range(3)]
