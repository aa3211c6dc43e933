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


def test_the_budgets_the_prose_states_are_the_presets():
    """A chapter's prose names its budgets (epochs, test runs, horizons, the search's range) in words;
    they must be the ones `l2l/book/presets.py` runs at book scale, so that changing a preset without
    its sentence fails here instead of leaving a page that describes another run."""
    import math
    import re

    import nbformat

    from l2l.book import presets
    from l2l.optim import FAR_PAST

    def prose(name):  # the chapter's markdown, its line breaks read as spaces
        cells = nbformat.read(NOTEBOOKS / f"{name}.ipynb", 4).cells
        return re.sub(r"\s+", " ", " ".join(c.source for c in cells if c.cell_type == "markdown"))

    def power(x):  # 2^{k} as the prose writes a grid's ends
        return f"2^{{{round(math.log2(x))}}}"

    mnist, mnist_test = presets.train_config("mnist", "book"), presets.test_settings("mnist", "book")
    cifar, cifar_test = presets.train_config("cifar", "book"), presets.test_settings("cifar", "book")
    art, art_test = presets.train_config("neural_art", "book"), presets.test_settings("neural_art", "book")
    second = mnist_test["second_search"]
    quadratic = presets.train_config("quadratic", "book")
    stated = {
        "01_quadratics": [f"The {quadratic.steps} steps are cut into {quadratic.steps // quadratic.unroll} unrolls "
                          f"of {quadratic.unroll}"],
        "02_mnist": [f"its {mnist.epochs:,} epochs", f"validation every {mnist.eval_every} epochs on "
                     f"{mnist.eval_runs} functions", f"$[{second['low']}, {second['high']}]$",
                     f"--low {second['low']} --high {second['high']} --trials {mnist_test['sweep_trials']}",
                     f"stop at {mnist_test['chen']['curriculum'][-1]:,} steps"],
        "04_cifar": [f"the same {cifar.epochs:,} epochs", f"{cifar_test['runs']} test functions per curve",
                     f"for {cifar_test['steps']:,} steps", f"**LSTM, both changes, {cifar_test['long_epochs']:,} epochs**",
                     f"${power(min(presets.CIFAR_GRID))}, {power(presets.CIFAR_GRID[1])}, \\dots, "
                     f"{power(max(presets.CIFAR_GRID))}$", f"{cifar.eval_runs} functions"],
        "05_neural_art": [f"the book's {art.epochs:,} epochs", f"**LSTM, {2 * art.epochs:,} epochs**",
                          f"tests' {art_test['runs']} and {art_test['large_runs']} runs"],
        "06_ntm_bfgs": [f"chapter 2's LSTM, trained for {mnist.epochs:,} epochs",
                        f"validate on the same {mnist.eval_runs} functions",
                        f"`MNIST_EPOCHS` = {mnist_test['ntm_epochs']}",
                        f"each train {mnist_test['ntm_more_epochs']:,} epochs more",
                        f"a budget of {mnist_test['ntm_epochs'] + mnist_test['ntm_more_epochs']:,} epochs"],
        "07_own_model": [f"passes {FAR_PAST}× its horizon"],
    }
    for name, phrases in stated.items():
        text = prose(name)
        missing = [p for p in phrases if p not in text]
        assert not missing, f"{name}'s prose does not state the presets' {missing}"
