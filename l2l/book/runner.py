"""Execute the chapters with papermill and build the HTML book with Jupyter Book.

The chapter sources live in `notebooks/` without outputs; each is executed with its `parameters`
(scale, device, ...) into `<out>/book/`, and `jupyter-book build <out>` renders those copies (the
book's `_config.yml` turns Jupyter Book's own execution off).

`execute(..., jobs=N)` runs up to N chapters at once, each in its own process (and kernel) with
OMP_NUM_THREADS = threads // N (at least 1), where `threads` is $OMP_NUM_THREADS when set and the
CPUs this process may use otherwise. A chapter starts once the chapters it takes checkpoints from
(`NEEDS`) have finished, so it loads what they trained instead of training it a second time; the
shared files they all write go through `l2l.runtime.locked` (the tuned learning rates) or are
written once under a name of their own (atomic_write). Chapters in `ALONE` (the speed appendix:
it times things) run by themselves, after the others, with all the threads. A chapter that fails
does not stop the others: `execute` raises `ChapterFailures`, naming each, once all are done.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from l2l.errors import UserError
from l2l.runtime import repository
from l2l.training.meta_train import RETRAINED_SINCE

ROOT = repository() or Path.cwd()  # the book is built from a checkout of the project
NOTEBOOKS = ROOT / "notebooks"
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")

# Which chapters load checkpoints that other chapters train: {chapter: the chapters it waits for}.
# Chapter 3 and 6 load chapter 2's mnist.pt, chapter 6 chapter 1's quadratic.pt; the speed appendix
# times the quadratic and MNIST optimizers. Chapter 4 reads the meta-learning rate chapter 2's random
# search chose, but need not wait: below book scale it runs that search too (`presets.search`: the
# second to start waits for the first). Keep it in step with the notebooks.
# The claims ledger and the introduction read the results every chapter with claims writes.
WITH_CLAIMS = ("01_quadratics", "02_mnist", "03_relu", "04_cifar", "05_neural_art", "06_ntm_bfgs")
NEEDS = {"03_relu": ("02_mnist",), "06_ntm_bfgs": ("01_quadratics", "02_mnist"),
         "90_speed": ("01_quadratics", "02_mnist"), "00_claims": WITH_CLAIMS, "intro": WITH_CLAIMS}
# Chapters that measure time: run alone, with every thread, after the rest.
ALONE = ("90_speed",)


def chapters(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Names of the notebooks that `_toc.yml` lists under book/ (its root, the introduction, too),
    in order."""
    names = re.findall(r"(?:root|file):\s*book/([\w\-]+)", toc.read_text())
    return [n for n in names if (NOTEBOOKS / f"{n}.ipynb").exists()]


def drafts(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Chapter sources in `notebooks/` that the book does not list yet (not executed at paper
    scale): smoke runs execute them too, so they keep working before they enter the book."""
    listed = set(chapters(toc))
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb") if p.stem not in listed)


class ChapterFailures(RuntimeError):
    """Some chapters failed (the others finished): {name: the error's text}."""

    def __init__(self, failed: dict[str, str], out: Path | None = None):
        self.failed = failed
        where = f" (their executed copies in {out / 'book'} show where)" if out else ""
        super().__init__(f"{len(failed)} chapter(s) failed{where}: " + "; ".join(
            f"{name}: {_last_line(text)}" for name, text in failed.items()))


def _last_line(text: str) -> str:
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def thread_budget() -> int:
    """Threads all chapters together may use: $OMP_NUM_THREADS when set, else the usable CPUs."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def order(names: list[str], needs: dict = NEEDS) -> list[str]:
    """`names` in an order where every chapter comes after those it needs (among `names`), the
    chapters others need as early as they can be, otherwise the given order."""
    needed = {d for n in names for d in needs.get(n, ()) if d in names}
    done, out = set(), []
    while len(out) < len(names):
        ready = [n for n in names if n not in done and all(d in done for d in needs.get(n, ()) if d in names)]
        if not ready:
            raise ValueError(f"the chapters' NEEDS have a cycle among {sorted(set(names) - done)}")
        first = next((n for n in ready if n in needed), ready[0])
        done.add(first)
        out.append(first)
    return out


def schedule(names: list[str], jobs: int, work: Callable[[str, int], object], pool=None,
             needs: dict = NEEDS, alone=ALONE, threads: int | None = None, log=print) -> dict[str, object]:
    """Run `work(name, threads)` for every chapter, `jobs` at a time, in `pool` (an Executor with
    at least `jobs` workers; by default one process per chapter). A chapter is submitted once
    those it `needs` have finished (failed or not), those other chapters need first; the `alone`
    ones last, one by one, with every thread. Returns {name: work's result or the exception},
    in the order the chapters finished; `log` gets one line as each starts and ends."""
    threads = threads or thread_budget()
    together = [n for n in order(names, needs) if n not in alone]
    by_themselves = [n for n in order(names, needs) if n in alone]
    own_pool = pool is None
    pool = pool or cf.ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                                          max_tasks_per_child=1)  # a fresh process per chapter
    results, running, stamp = {}, {}, {}
    each = max(1, threads // max(1, jobs))

    def submit(name, k):
        stamp[name] = time.perf_counter()
        log(f"start {name} ({k} thread{'s' if k > 1 else ''})")
        running[pool.submit(work, name, k)] = name

    def collect(wait_all=False):
        finished, _ = cf.wait(running, return_when=cf.ALL_COMPLETED if wait_all else cf.FIRST_COMPLETED)
        for future in finished:
            name = running.pop(future)
            try:
                results[name] = future.result()
                status = "done"
            except Exception as error:  # noqa: BLE001 - reported with the chapter's name
                results[name] = error
                status = f"FAILED ({type(error).__name__})"
            log(f"  {name}: {status} in {time.perf_counter() - stamp[name]:.0f} s")

    try:
        pending = list(together)
        while pending or running:
            ready = [n for n in pending
                     if all(d in results for d in needs.get(n, ()) if d in names)]
            while ready and len(running) < max(1, jobs):
                name = ready.pop(0)
                pending.remove(name)
                submit(name, each)
            if running:
                collect()
            elif pending:  # cannot happen with an acyclic NEEDS: order() checked it
                raise RuntimeError(f"chapters {pending} can never start")
        for name in by_themselves:
            submit(name, threads)
            collect(wait_all=True)
    finally:
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def _execute_one(name: str, threads: int, parameters: dict, out: str) -> float:
    """Execute one chapter into `out/book/` in this process, its kernel on `threads` threads."""
    import papermill as pm

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # the kernel inherits them (and torch reads them at start)
    start = time.perf_counter()
    target = Path(out) / "book" / f"{name}.ipynb"
    # executed into a copy of its own, so a chapter that fails or is cut short never replaces the
    # book's; a failed one is kept beside it as <name>.failed.ipynb, showing the failing cell
    partial, failed = target.with_name(f".{name}.partial.ipynb"), target.with_name(f"{name}.failed.ipynb")
    try:
        pm.execute_notebook(NOTEBOOKS / f"{name}.ipynb", partial, parameters=parameters, cwd=str(NOTEBOOKS),
                            kernel_name="python3", progress_bar=False)
    except BaseException:
        if partial.exists():
            os.replace(partial, failed)
        raise
    _hide_injected_parameters(partial)
    os.replace(partial, target)
    failed.unlink(missing_ok=True)
    return time.perf_counter() - start


def _hide_injected_parameters(path: Path):
    """The cell papermill adds with the chapter's parameters stays in the executed copy, out of the
    rendered page (the chapters print their scale, seed and hardware in words at the end)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


class _Chapter:
    """`work` for `schedule`: a picklable callable that executes one chapter."""

    def __init__(self, parameters: dict, out: Path):
        self.parameters, self.out = parameters, str(out)

    def __call__(self, name: str, threads: int) -> float:
        return _execute_one(name, threads, self.parameters, self.out)


def execute(scale: str, device: str, out: Path, retrain: bool = False, names=None, jobs: int = 1,
            recompute: bool = False):
    """Run every chapter (or the named ones) into `out/book/`; at smoke scale the drafts too.

    Artifacts (trained optimizers, tuned rates) go to the project's `data/` when `out` is the
    project itself, and to `out/data/` otherwise, so a smoke run never touches the committed ones.
    `jobs` chapters run at once (module docstring). Prints each chapter's wall time and the total;
    raises `ChapterFailures` when any failed, after the others finished.

    retrain: meta-train, tune and test again (each checkpoint once: a chapter that loads one
        another chapter of this run retrained reuses it, see `l2l.training.load_or_train`).
    recompute: tune and test again, reusing the trained optimizers (no cached rates or curves).
    """
    os.environ["L2L_PROGRESS"] = "0"  # the kernels inherit it: no progress bars stored in chapters
    if os.environ.get("L2L_DATA_MIRROR"):  # kernels run in notebooks/: a relative path would break
        os.environ["L2L_DATA_MIRROR"] = str(Path(os.environ["L2L_DATA_MIRROR"]).resolve())

    out = Path(out).resolve()
    names = list(names or (chapters() + drafts() if scale == "smoke" else chapters()))
    unknown = [n for n in names if not (NOTEBOOKS / f"{n}.ipynb").exists()]
    if unknown:
        raise UserError(f"no notebook(s) {', '.join(unknown)} in {NOTEBOOKS}")
    if jobs < 1:
        raise UserError(f"jobs must be at least 1, got {jobs}")
    parameters = {"scale": scale, "device": device, "retrain": retrain, "recompute": recompute}
    if retrain:  # the kernels inherit it: what this run has trained already counts as retrained
        os.environ[RETRAINED_SINCE] = repr(time.time())
    if out != ROOT:
        parameters["artifacts"] = str(out / "data")
    (out / "book").mkdir(parents=True, exist_ok=True)
    log = lambda line: print(line, file=sys.stderr, flush=True)
    log(f"executing {len(names)} chapter(s) at scale {scale} on {device}, {jobs} at a time ...")
    start = time.perf_counter()
    results = schedule(names, jobs, _Chapter(parameters, out), log=log)
    total = time.perf_counter() - start
    log("chapter times (papermill's): " + ", ".join(
        f"{n} {r:.0f} s" if isinstance(r, float) else f"{n} failed" for n, r in results.items()))
    log(f"total: {total:.0f} s with {jobs} job(s)")
    failed = {n: str(r) for n, r in results.items() if isinstance(r, BaseException)}
    if failed:
        raise ChapterFailures(failed, out)
    return results


def build(out: Path, strict: bool = False):
    """`jupyter-book build out`; a book outside the project gets the project's pages copied in."""
    out = Path(out).resolve()
    if out != ROOT:
        for f in BOOK_FILES:
            shutil.copy(ROOT / f, out / f)
        for page in (ROOT / "book").iterdir():
            if page.suffix != ".ipynb":
                if page.is_dir():
                    shutil.copytree(page, out / "book" / page.name, dirs_exist_ok=True)
                else:
                    shutil.copy(page, out / "book" / page.name)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(out)]
    if strict:
        command += ["-W", "--keep-going"]  # warnings are errors
    subprocess.run(command, check=True)
    print(f"book: {out / '_build' / 'html' / 'index.html'}")
