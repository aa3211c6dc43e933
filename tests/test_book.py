"""The book runner: which notebooks the book lists, and which run only as drafts at smoke scale."""

from l2l.book.runner import NOTEBOOKS, ROOT, chapters, drafts


def test_chapters_follow_the_toc_and_drafts_are_the_rest(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("root: book/intro\nchapters:\n  - file: book/02_mnist\n  - file: book/01_quadratics\n"
                   "  - file: book/references\n")
    assert chapters(toc) == ["intro", "02_mnist", "01_quadratics"]  # toc order; pages without a notebook skipped
    rest = drafts(toc)
    assert "01_quadratics" not in rest and "02_mnist" not in rest
    assert sorted(chapters(toc) + rest) == sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def test_the_kernel_every_chapter_names_exists_and_runs_the_project():
    """`make lab` and papermill open the chapters with the kernel their metadata names: it must
    be installed in this environment, and its Python must import the project."""
    import json
    import subprocess
    import sys

    from jupyter_client.kernelspec import KernelSpecManager

    names = {json.loads(p.read_text())["metadata"]["kernelspec"]["name"] for p in NOTEBOOKS.glob("*.ipynb")}
    assert names == {"python3"}, names
    for name in names:
        spec = KernelSpecManager().get_kernel_spec(name)
        # jupyter_client starts a kernel whose command is plain `python` with its own interpreter
        python = sys.executable if spec.argv[0] in ("python", "python3") else spec.argv[0]
        subprocess.run([python, "-c", "import l2l, ipykernel"], check=True)


def test_no_executed_page_prints_a_bare_value():
    """A cell whose last line is a call that returns something (a saved results dict, say) prints
    its repr into the page: thousands of lines no reader wants. The book's executed copies show
    tables, sentences and figures, never a value longer than a few lines."""
    import json

    pages = sorted((ROOT / "book").glob("*.ipynb"))
    assert pages
    for page in pages:
        for cell in json.loads(page.read_text())["cells"]:
            for out in cell.get("outputs", []):
                if out["output_type"] == "execute_result" and set(out["data"]) == {"text/plain"}:
                    text = "".join(out["data"]["text/plain"])
                    assert len(text) < 2000, f"{page.name}, cell {cell['id']}: prints {len(text):,} characters"
