"""Execute the chapters with papermill and build the HTML book with Jupyter Book.

The chapter sources live in `notebooks/` without outputs; each is executed with its `parameters`
(scale, device, ...) into `<out>/book/`, and `jupyter-book build <out>` renders those copies (the
book's `_config.yml` turns Jupyter Book's own execution off).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from l2l.runtime import repository

ROOT = repository() or Path.cwd()  # the book is built from a checkout of the project
NOTEBOOKS = ROOT / "notebooks"
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")


def chapters(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Names of the notebooks that `_toc.yml` lists under book/, in order."""
    names = re.findall(r"file:\s*book/([\w\-]+)", toc.read_text())
    return [n for n in names if (NOTEBOOKS / f"{n}.ipynb").exists()]


def drafts(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Chapter sources in `notebooks/` that the book does not list yet (not executed at paper
    scale): smoke runs execute them too, so they keep working before they enter the book."""
    listed = set(chapters(toc))
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb") if p.stem not in listed)


def execute(scale: str, device: str, out: Path, retrain: bool = False, names=None):
    """Run every chapter (or the named ones) into `out/book/`; at smoke scale the drafts too.

    Artifacts (trained optimizers, tuned rates) go to the project's `data/` when `out` is the
    project itself, and to `out/data/` otherwise, so a smoke run never touches the committed ones.
    """
    import papermill as pm

    os.environ["L2L_PROGRESS"] = "0"  # the kernels inherit it: no progress bars stored in chapters
    if os.environ.get("L2L_DATA_MIRROR"):  # kernels run in notebooks/: a relative path would break
        os.environ["L2L_DATA_MIRROR"] = str(Path(os.environ["L2L_DATA_MIRROR"]).resolve())

    out = Path(out).resolve()
    names = names or (chapters() + drafts() if scale == "smoke" else chapters())
    unknown = [n for n in names if not (NOTEBOOKS / f"{n}.ipynb").exists()]
    if unknown:
        raise ValueError(f"no notebook(s) {', '.join(unknown)} in {NOTEBOOKS}")
    parameters = {"scale": scale, "device": device, "retrain": retrain}
    if out != ROOT:
        parameters["artifacts"] = str(out / "data")
    (out / "book").mkdir(parents=True, exist_ok=True)
    for name in names:
        start = time.perf_counter()
        print(f"executing {name} at scale {scale} on {device} ...", file=sys.stderr, flush=True)
        pm.execute_notebook(NOTEBOOKS / f"{name}.ipynb", out / "book" / f"{name}.ipynb",
                            parameters=parameters, cwd=str(NOTEBOOKS), kernel_name="python3",
                            progress_bar=False)
        print(f"  {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


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
