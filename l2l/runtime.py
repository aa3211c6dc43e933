"""Where the project keeps what it makes, how it writes files, and what it tells about the run.

* Paths: trained optimizers in `<data>/checkpoints/`, results in `<data>/results/`, downloaded
  datasets in `<data>/datasets/`. `<data>` is `$L2L_DATA` when set, else the `data/` folder of the
  repository this package sits in (an editable install or a checkout), else `./data`.
* `atomic_write`: every file the project writes goes through it, so an interruption (Ctrl-C, a
  killed process, a full disk) leaves either the old file or the new one, never half of one, and
  two processes writing the same file never interleave.
* `locked`: a lock across processes (chapters executed in parallel) around a read-modify-write
  of a shared file, such as the tuned learning rates' JSON, or around training a checkpoint that
  another chapter may be training too; with `wait=False` it raises `Busy` instead of waiting.
* `one_thread`: a block computed on one CPU thread, so its float rounding does not depend on how
  many threads the caller has (a cache's `probe`).
* `progress` bars and a one-line `hardware` description for the chapters' records.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; one process at a time is then the user's affair
    fcntl = None

import torch
from tqdm import tqdm

DATA_VAR = "L2L_DATA"
PACKAGE = Path(__file__).resolve().parent


def repository() -> Path | None:
    """The checkout this package was imported from (it has the book's `_toc.yml`), or None when
    the package was installed elsewhere (`pip install .`)."""
    root = PACKAGE.parent
    return root if (root / "_toc.yml").exists() else None


def data_dir() -> Path:
    """The folder of checkpoints, results and datasets (module docstring)."""
    if os.environ.get(DATA_VAR):
        return Path(os.environ[DATA_VAR]).expanduser().resolve()
    repo = repository()
    return repo / "data" if repo else Path.cwd() / "data"


def checkpoints_dir() -> Path:
    return data_dir() / "checkpoints"


def results_dir() -> Path:
    return data_dir() / "results"


def caches(results: str | Path | None = None) -> tuple[Path, Path]:
    """The evaluation's caches in a results folder (default the project's): the tuned learning
    rates' JSON file and the folder of finished test curves, one file each."""
    results = Path(results) if results is not None else results_dir()
    return results / "tuned_lr.json", results / "curves"


def atomic_write(path: str | Path, content: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write `content` (text, bytes, or a function that writes into a binary file, such as
    `lambda f: torch.save(obj, f)`) to `path` atomically: into a temporary file of the same
    folder, then renamed over `path`. Creates the folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private (0600): give it an ordinary file's mode
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class Busy(RuntimeError):
    """`locked(path, wait=False)`: another process holds `path`'s lock."""


_held: dict[tuple[int, Path], int] = {}  # (thread, lock file): how deep this thread holds it


def lock_path(path: str | Path) -> Path:
    """The lock file of `path`: `.<name>.lock` beside it (hidden, git-ignored)."""
    path = Path(path).resolve()
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: str | Path, wait: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on `path` across processes for the `with` block; yields `path`.

    The lock is `fcntl.flock` on `lock_path(path)` (created with its folder, never removed), so
    it waits while another process holds it (or, with `wait=False`, raises `Busy`) and is
    released when the block ends or the process dies. Reentrant within a thread: a nested
    `locked(path)` does not wait on itself. The lock guards nothing by itself: every
    reader-modifier-writer of `path` must take it, and must read `path` again inside it (what was
    read before may be stale), e.g.

        with locked(cache):
            store = json.loads(cache.read_text()) if cache.exists() else {}
            atomic_write(cache, json.dumps({**store, key: value}))
    """
    lock = lock_path(path)
    key = (threading.get_ident(), lock)
    if _held.get(key) or fcntl is None:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield Path(path)
        finally:
            _held[key] -= 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(str(path)) from None
        _held[key] = 1
        try:
            yield Path(path)
        finally:
            _held.pop(key, None)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def in_use(path: str | Path) -> bool:
    """Whether another process (or thread) holds `path`'s lock (`locked`) right now."""
    try:
        with locked(path, wait=False):
            return False
    except Busy:
        return True


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the `with` block on one CPU thread, then give the caller its threads back. A sum split
    over threads is rounded differently for each thread count; on one thread, the same code on the
    same CPU gives the same bits however many threads the process has."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def progress(iterable=None, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm progress bar, off when `enabled` is False or the environment sets L2L_PROGRESS=0
    (the book runner does: an executed chapter should not store hundreds of bar updates)."""
    off = not enabled or os.environ.get("L2L_PROGRESS") == "0"
    return tqdm(iterable, disable=off, mininterval=1.0, dynamic_ncols=True, **kwargs)


def hardware(device="cpu") -> str:
    """A one-line description of where a computation runs."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{cpu_model()} ({threads} thread{'s' if threads > 1 else ''})"


def cpu_model() -> str:
    """This machine's CPU model, e.g. 'AMD EPYC family 25 model 1' (`cpu_model_of` /proc/cpuinfo;
    the architecture where it has none)."""
    try:
        with open("/proc/cpuinfo") as info:
            return cpu_model_of(info.read()) or platform.machine()
    except OSError:
        return platform.machine()


def cpu_model_of(cpuinfo: str) -> str | None:
    """The first processor's name in /proc/cpuinfo's text, with its family and model numbers where
    it gives them: one name can stand for several generations (a virtual machine's 'AMD EPYC' for
    a Zen 2 or a Zen 3), whose float arithmetic rounds differently, and a probe made on one is
    checked as one from another CPU model (`l2l.evaluation.tuning.matches`). None without a name."""
    fields = {}
    for line in cpuinfo.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name, family, model = fields.get("model name"), fields.get("cpu family"), fields.get("model")
    if not name:  # ARM names none: its implementer and part numbers tell the cores apart
        part = fields.get("CPU part")
        return f"ARM implementer {fields.get('CPU implementer')} part {part}" if part else None
    return f"{name} family {family} model {model}" if family and model else name


def cpu_of(description: str | None) -> str | None:
    """The CPU model in a `hardware` description of a CPU computation; None for a GPU's or none."""
    match = re.fullmatch(r"(.+) \(\d+ threads?\)", description or "")
    return match.group(1) if match else None
