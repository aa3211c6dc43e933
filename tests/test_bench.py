"""`python -m l2l bench`: its rows, the JSON written after every case, and the table."""

import json
import math

import pytest
import torch

from l2l.bench import bench, elementwise_probe, format_table, per_trial
from l2l.errors import UserError


def test_bench_rows_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    rows = bench("cpu", cases=(("quadratic", 1), ("quadratic", 2)), updates=1, impls=("reference", "ours"),
                 json_out=out, verbose=False, rounds=1)
    assert [(r["runs"], r["impl"]) for r in rows] == [(1, "reference"), (1, "ours"), (2, "reference"), (2, "ours")]
    assert all(r["steps_per_s"] > 0 for r in rows) and "speedup" in rows[1] and "speedup" not in rows[0]
    assert json.loads(out.read_text())["rows"] == rows
    table = format_table(rows + [{"problem": "mnist", "coords": None, "runs": 64, "impl": "reference",
                                  "steps_per_s": float("nan"), "ms_per_meta_update": float("nan"),
                                  "autograd_MB": float("nan"), "error": "out of memory"}], "here")
    assert "| quadratic (10) | 2 | ours |" in table and "| mnist | 64 | reference | out of memory |" in table
    assert all(line.count("|") == 8 for line in table.splitlines()[2:-2])  # every row has every column
    # each row records how it was timed, and the table says it
    assert all((r["timed_updates"], r["warmup_updates"], r["unroll"], r["threads"]) == (1, 2, 20, torch.get_num_threads())
               for r in rows)
    threads = torch.get_num_threads()
    assert table.endswith(f"Timed: 1 meta-update of 20 steps after 2 warm-ups, {threads} CPU thread"
                          f"{'s' * (threads != 1)} per row.")
    assert "Timed" not in format_table([{k: v for k, v in rows[0].items() if k != "timed_updates"}], "old file")


def test_interleaved_rounds_give_each_row_its_median_round():
    """On the CPU (default 3 rounds) a case's implementations take turns; each row keeps every round
    and reports the median one, and the table says how it was timed."""
    rows = bench("cpu", cases=(("quadratic", 1),), updates=2, impls=("reference", "ours"), verbose=False)
    for r in rows:
        assert r["rounds"] == 3 and len(r["ms_rounds"]) == 3 and r["timed_updates"] == 2
        assert r["ms_per_meta_update"] == pytest.approx(sorted(r["ms_rounds"])[1])
        assert r["steps_per_s"] == pytest.approx(20 / (r["ms_per_meta_update"] / 1000))
    threads = torch.get_num_threads()
    assert format_table(rows, "here").endswith("Timed: the median of 3 interleaved rounds of 2 meta-updates of 20 "
                                               f"steps after 2 warm-ups, {threads} CPU thread"
                                               f"{'s' * (threads != 1)} per row.")
    with pytest.raises(UserError, match="at least one round"):
        bench("cpu", cases=(("quadratic", 1),), rounds=0, verbose=False)


def test_a_population_on_the_cpu_is_cut_in_tiles_as_training_cuts_it(monkeypatch):
    """With tiles of 20 columns a member of 2 runs of 10 is a tile of its own; 'one tile' batches all
    members; memory is what the largest tile holds at once. A case whose population is one tile
    anyway has no 'one tile' row."""
    import l2l.training.population

    impls = ("ours", "population", "population, one tile")
    whole = bench("cpu", cases=(("quadratic", 2),), updates=1, rounds=1, verbose=False, members=3, impls=impls)
    assert [r["impl"] for r in whole] == ["ours", "population of 3"]
    monkeypatch.setattr(l2l.training.population, "CPU_TILE_COLUMNS", 20)
    rows = bench("cpu", cases=(("quadratic", 2),), updates=1, rounds=1, verbose=False, members=3, impls=impls)
    assert [r["impl"] for r in rows] == ["ours", "population of 3 in tiles of 1", "population of 3 in one tile"]
    assert [r.get("tile") for r in rows] == [None, 1, 3]
    assert rows[1]["autograd_MB"] == pytest.approx(rows[0]["autograd_MB"], rel=0.05)  # one member's, not three
    assert rows[2]["autograd_MB"] == pytest.approx(3 * rows[0]["autograd_MB"], rel=0.05)


def test_the_population_row_counts_every_members_steps():
    rows = bench("cpu", cases=(("quadratic", 2),), updates=1, impls=("ours", "population", "compiled population"),
                 verbose=False, members=3, rounds=1)
    assert [r["impl"] for r in rows] == ["ours", "population of 3", "compiled population of 3"]
    for row in rows[1:]:
        assert row["runs"] == 2 and row["members"] == 3 and row["steps_per_s"] > 0
        # 3 members × 2 runs × 20 steps in the time of one meta-update
        assert row["steps_per_s"] == pytest.approx(3 * 2 * 20 / (row["ms_per_meta_update"] / 1000))
    assert "population row counts the steps of all its optimizers" in format_table(rows, "here")


def test_a_case_that_runs_out_of_memory_is_a_row_that_says_so(monkeypatch):
    """A population too large for the GPU's memory is recorded, not raised (it was a NameError)."""
    import l2l.bench

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(l2l.bench, "time_meta_updates", out_of_memory)
    rows = bench("cpu", cases=(("quadratic", 2),), updates=1, impls=("ours", "population"), verbose=False, members=16,
                 rounds=1)
    assert [(r["impl"], r["error"]) for r in rows] == [("ours", "out of memory"), ("population of 16", "out of memory")]
    assert all(math.isnan(r["steps_per_s"]) for r in rows)


def test_the_elementwise_probe_times_each_layout_and_a_population_per_member():
    probe = elementwise_probe(n=64, hidden=4, repeats=2, members=3)
    assert list(probe)[-2:] == ["product on [4H, N], one optimizer", "product on [3, 4H, N], per member of a population of 3"]
    assert len(probe) == 6 and all(v > 0 for v in probe.values())


def test_a_member_s_cost_is_paired_round_by_round():
    """Round k of the population against round k alone: a machine that slows down for everyone in
    one round moves both sides. Hand-worked: ratios 1.1, 1.2, 1.1, 1.2 have log-mean 0.1388, log-sd
    0.0502, t(3) 3.182, interval ±0.0799."""
    alone = {"ms_per_meta_update": 100.0, "ms_rounds": [100.0, 200.0, 100.0, 200.0]}
    pop = {"ms_per_meta_update": 440.0, "members": 2, "ms_rounds": [220.0, 480.0, 220.0, 480.0]}
    out = per_trial(pop, alone)
    assert out["verdict"] == "more"
    assert math.log(out["ratio"]) == pytest.approx((2 * math.log(1.1) + 2 * math.log(1.2)) / 4)
    assert math.log(out["high"]) - math.log(out["ratio"]) == pytest.approx(0.0799, abs=2e-4)
    level = per_trial({**pop, "ms_rounds": [180.0, 480.0, 220.0, 360.0]}, alone)  # 0.9, 1.2, 1.1, 0.9
    assert level["verdict"] == "level" and level["low"] < 1 < level["high"]
    cheaper = per_trial({**pop, "ms_rounds": [100.0, 200.0, 100.0, 200.0]}, alone)  # 0.5 each
    assert cheaper["verdict"] == "less" and cheaper["ratio"] == pytest.approx(0.5)
    one = per_trial({"ms_per_meta_update": 440.0, "members": 2}, {"ms_per_meta_update": 200.0})
    assert one["ratio"] == pytest.approx(1.1) and one["verdict"] is None and math.isnan(one["low"])
