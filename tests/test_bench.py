"""`python -m l2l bench`: its rows, the JSON written after every case, and the table."""

import json
import math

import pytest
import torch

from l2l.bench import bench, elementwise_probe, format_table


def test_bench_rows_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    rows = bench("cpu", cases=(("quadratic", 1), ("quadratic", 2)), updates=1, impls=("reference", "ours"),
                 json_out=out, verbose=False)
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


def test_the_population_row_counts_every_members_steps():
    rows = bench("cpu", cases=(("quadratic", 2),), updates=1, impls=("ours", "population", "compiled population"),
                 verbose=False, members=3)
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
    rows = bench("cpu", cases=(("quadratic", 2),), updates=1, impls=("ours", "population"), verbose=False, members=16)
    assert [(r["impl"], r["error"]) for r in rows] == [("ours", "out of memory"), ("population of 16", "out of memory")]
    assert all(math.isnan(r["steps_per_s"]) for r in rows)


def test_the_elementwise_probe_times_each_layout_and_a_population_per_member():
    probe = elementwise_probe(n=64, hidden=4, repeats=2, members=3)
    assert list(probe)[-2:] == ["product on [4H, N], one optimizer", "product on [3, 4H, N], per member of a population of 3"]
    assert len(probe) == 6 and all(v > 0 for v in probe.values())
