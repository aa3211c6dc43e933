"""Chapters in parallel: the runner's order and scheduling (with a fake chapter), and the
cross-process lock that shared files are written under."""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import threading
import time

import pytest

from l2l.book import runner
from l2l.runtime import atomic_write, lock_path, locked

NEEDS = {"03_relu": ("02_mnist",), "06_ntm_bfgs": ("01_quadratics", "02_mnist"),
         "90_speed": ("01_quadratics", "02_mnist")}
NAMES = ["01_quadratics", "02_mnist", "03_relu", "04_cifar", "05_neural_art", "06_ntm_bfgs", "90_speed"]


def test_the_order_puts_every_chapter_after_the_ones_it_needs():
    assert runner.order(NAMES, NEEDS) == NAMES  # the book's own order already is one
    assert runner.order(["06_ntm_bfgs", "04_cifar", "03_relu", "02_mnist", "01_quadratics"], NEEDS) == \
        ["02_mnist", "01_quadratics", "06_ntm_bfgs", "04_cifar", "03_relu"]  # needed ones first
    assert runner.order(["03_relu", "04_cifar"], NEEDS) == ["03_relu", "04_cifar"]  # 02 not run: no wait
    with pytest.raises(ValueError, match="cycle"):
        runner.order(["a", "b"], {"a": ("b",), "b": ("a",)})


def test_the_runners_table_names_real_chapters():
    known = set(runner.chapters())
    assert set(runner.NEEDS) | {d for ds in runner.NEEDS.values() for d in ds} <= known
    assert set(runner.ALONE) <= known


class FakeChapter:
    """Sleeps a little, records (event, name, threads, time), fails for the names in `fail`."""

    def __init__(self, fail=()):
        self.events, self.fail, self.lock = [], set(fail), threading.Lock()

    def __call__(self, name, threads):
        with self.lock:
            self.events.append(("start", name, threads, time.perf_counter()))
        time.sleep(0.05 if name != "02_mnist" else 0.2)
        with self.lock:
            self.events.append(("end", name, threads, time.perf_counter()))
        if name in self.fail:
            raise RuntimeError(f"{name} broke")
        return 1.0


def _run(jobs, fail=(), threads=4):
    work, lines = FakeChapter(fail), []
    with cf.ThreadPoolExecutor(jobs) as pool:
        results = runner.schedule(NAMES, jobs, work, pool=pool, needs=NEEDS, alone=("90_speed",),
                                  threads=threads, log=lines.append)
    return work.events, results, lines


def test_jobs_run_together_after_what_they_need_and_the_timing_chapter_alone():
    events, results, lines = _run(jobs=2)
    when = {(e, n): t for e, n, _, t in events}
    for name, needs in NEEDS.items():
        assert all(when["start", name] >= when["end", d] for d in needs), name
    starts = [n for e, n, *_ in events if e == "start"]
    assert starts[:2] == ["01_quadratics", "02_mnist"]  # what others need starts first
    # at most 2 at a time, and really 2 at a time: 04 runs while 02 does
    running, most = 0, 0
    for e, *_ in sorted(events, key=lambda e: e[3]):
        running += 1 if e == "start" else -1
        most = max(most, running)
    assert most == 2 and when["start", "04_cifar"] < when["end", "02_mnist"]
    # the speed appendix: last, alone, with every thread; the others with threads // jobs
    assert starts[-1] == "90_speed" and when["start", "90_speed"] >= max(t for (e, _), t in when.items() if e == "end"
                                                                       and _ != "90_speed")
    assert {n: k for e, n, k, _ in events if e == "start"} == {**{n: 2 for n in NAMES}, "90_speed": 4}
    assert set(results) == set(NAMES) and all(r == 1.0 for r in results.values())
    assert any(line.startswith("start 01_quadratics (2 threads)") for line in lines)
    assert any(line.startswith("  02_mnist: done in") for line in lines)


def test_one_job_runs_one_chapter_at_a_time_with_every_thread():
    events, results, _ = _run(jobs=1, threads=3)
    assert [n for e, n, *_ in events if e == "start"] == NAMES
    assert [e for e, *_ in events] == ["start", "end"] * len(NAMES)
    assert all(k == 3 for _, _, k, _ in events)


def test_a_failing_chapter_is_reported_by_name_and_the_others_finish():
    events, results, lines = _run(jobs=2, fail=("02_mnist",))
    assert isinstance(results["02_mnist"], RuntimeError)
    assert all(results[n] == 1.0 for n in NAMES if n != "02_mnist")  # its dependents ran too
    assert any("02_mnist: FAILED (RuntimeError)" in line for line in lines)
    error = runner.ChapterFailures({"02_mnist": "Traceback ...\nValueError: \x1b[0;31mbad\x1b[0m\n"})
    assert "02_mnist: ValueError: bad" in str(error)


def test_execute_rejects_unknown_chapters_and_bad_jobs(tmp_path):
    with pytest.raises(ValueError, match="no notebook"):
        runner.execute("smoke", "cpu", tmp_path, names=["99_nothing"])
    with pytest.raises(ValueError, match="jobs"):
        runner.execute("smoke", "cpu", tmp_path, names=["01_quadratics"], jobs=0)


def test_the_thread_budget_is_omp_num_threads_when_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "6")
    assert runner.thread_budget() == 6
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert runner.thread_budget() >= 1


# ---------------------------------------------------------------------------------------------
# The lock


def _increment(path: str, times: int) -> None:
    from pathlib import Path

    for _ in range(times):
        with locked(path):
            store = json.loads(Path(path).read_text()) if Path(path).exists() else {}
            time.sleep(0.001)  # widen the window a lost update would need
            atomic_write(path, json.dumps({"n": store.get("n", 0) + 1}))


def test_processes_incrementing_one_json_under_the_lock_lose_no_update(tmp_path):
    path = tmp_path / "results" / "counter.json"  # the folder does not exist yet
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_increment, args=(str(path), 25)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert json.loads(path.read_text()) == {"n": 75}
    assert lock_path(path) == path.parent / ".counter.json.lock" and lock_path(path).exists()


def test_the_lock_waits_for_another_process_and_is_reentrant(tmp_path):
    path = tmp_path / "x.json"
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()

    def hold():
        with locked(path):
            held.set()
            release.wait(10)

    other = context.Process(target=hold)
    other.start()
    assert held.wait(10)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (locked(path).__enter__(), got.set()), daemon=True)
    waiter.start()
    assert not got.wait(0.3)  # the other process holds it
    release.set()
    assert got.wait(10)
    other.join(10)
    with locked(path), locked(path):  # nested in one thread: no deadlock
        pass


def test_tuned_rates_merge_what_another_process_wrote_meanwhile(tmp_path, monkeypatch):
    """The read-modify-write of the tuned rates reads the cache again under the lock: entries
    another chapter wrote while this one was tuning survive."""
    from l2l.evaluation import tuning
    from l2l.problems import make_problem

    cache = tmp_path / "tuned_lr.json"

    def tune(problem, name, *args):  # meanwhile, another process writes its own key
        store = json.loads(cache.read_text()) if cache.exists() else {}
        atomic_write(cache, json.dumps({**store, "other": {"adam": 0.5}}))
        return 0.25, {}

    monkeypatch.setattr(tuning, "tune", tune)
    rates = tuning.tuned_rates(make_problem("quadratic:dim=3"), ["sgd"], 5, 2, 0, cache=cache, progress=False)
    store = json.loads(cache.read_text())
    assert rates == {"sgd": 0.25} and store["other"] == {"adam": 0.5} and len(store) == 2


def _sleepy_chapter(name, threads):
    """A chapter for the process pool (module-level: picklable); reports the threads its
    process would give a kernel."""
    import os

    if name == "bad":
        raise ValueError("bad broke")
    return (name, threads, os.getpid())


def test_the_default_pool_runs_each_chapter_in_a_process_of_its_own():
    results = runner.schedule(["a", "bad", "c"], 2, _sleepy_chapter, needs={"c": ("a",)}, alone=(),
                              threads=4, log=lambda line: None)
    assert isinstance(results["bad"], ValueError) and str(results["bad"]) == "bad broke"
    (_, k_a, pid_a), (_, k_c, pid_c) = results["a"], results["c"]
    assert k_a == k_c == 2 and len({pid_a, pid_c, __import__("os").getpid()}) == 3


def test_a_chapter_that_fails_never_replaces_the_books_copy(tmp_path, monkeypatch):
    import nbformat

    from l2l.book import runner

    sources = tmp_path / "notebooks"
    sources.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("scale = 'book'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("raise RuntimeError('broken chapter')")]
    nbformat.write(nb, sources / "x.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOKS", sources)
    book = tmp_path / "out" / "book"
    book.mkdir(parents=True)
    (book / "x.ipynb").write_text("the book's copy")
    with pytest.raises(Exception, match="broken chapter"):
        runner._execute_one("x", 1, {"scale": "smoke"}, str(tmp_path / "out"))
    assert (book / "x.ipynb").read_text() == "the book's copy"
    assert "broken chapter" in (book / "x.failed.ipynb").read_text()
    assert not list(book.glob(".*partial*"))
    nb.cells = [params, nbformat.v4.new_code_cell("print('fine')")]
    nbformat.write(nb, sources / "x.ipynb")
    runner._execute_one("x", 1, {"scale": "smoke"}, str(tmp_path / "out"))
    assert "fine" in (book / "x.ipynb").read_text() and not (book / "x.failed.ipynb").exists()
    injected = [c for c in nbformat.read(book / "x.ipynb", as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]  # not on the page
