"""The package's shape: imports run one way (no cycle, not even through an import inside a
function), and an ordinary install works away from the repository."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "l2l"


def _module(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every l2l module a file imports, at any depth of its code (function bodies included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names if a.name.split(".")[0] == "l2l"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "l2l":
            modules.add(node.module)
            # `from l2l import loop` imports the module l2l.loop
            modules |= {f"{node.module}.{a.name}" for a in node.names}
    return modules


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the l2l modules it imports}, without a package's imports of its own submodules."""
    files = {_module(p, package): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        targets = {t for t in _imports(path) if t in files and t != name}
        graph[name] = {t for t in targets if not (is_package and t.startswith(name + "."))}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles_through_function_level_imports(tmp_path):
    pkg = tmp_path / "l2l"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from l2l import a\n")
    (pkg / "sub" / "__init__.py").write_text("from l2l.sub import c\n")  # a package's own: fine
    (pkg / "sub" / "c.py").write_text("import torch\n")
    (pkg / "a.py").write_text("from l2l.sub.c import x\n")
    (pkg / "b.py").write_text("def f():\n    from l2l import a\n")
    assert find_cycle(import_graph(pkg)) is None
    (pkg / "sub" / "c.py").write_text("def g():\n    from l2l.b import f\n")
    (pkg / "a.py").write_text("from l2l.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from l2l import a\n")
    assert find_cycle(import_graph(pkg)) == ["l2l.a", "l2l.b", "l2l.a"]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 20 and "l2l.optimizers.lstm" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_submodules_never_import_their_own_package():
    """`from l2l.problems import Task` inside l2l/problems/ would run the package's __init__,
    which imports that very submodule: a cycle the graph above leaves out by design."""
    graph = import_graph()
    offenders = [(m, t) for m, targets in graph.items() for t in targets if m.startswith(t + ".")]
    assert not offenders


def test_the_layers_run_one_way():
    """Lower layers never import higher ones: problems → optimizers → loop → training and
    evaluation → analysis and the torch.optim adapter → book helpers → bench and command line."""
    layers = [["l2l.errors"], ["l2l.runtime", "l2l.data"], ["l2l.problems"], ["l2l.optimizers"], ["l2l.loop"],
              ["l2l.training", "l2l.evaluation"], ["l2l.analysis", "l2l.optim"], ["l2l.book"],
              ["l2l.bench", "l2l.cli"]]
    rank = lambda m: next(i for i, layer in enumerate(layers) for p in layer if m == p or m.startswith(p + "."))
    graph = import_graph()
    upward = [(m, t) for m, targets in graph.items() if m not in ("l2l", "l2l.__main__")
              for t in targets if t != "l2l" and rank(t) > rank(m)]
    assert not upward


@pytest.mark.skipif(os.environ.get("L2L_SKIP_INSTALL_TEST") == "1", reason="L2L_SKIP_INSTALL_TEST=1")
def test_a_plain_install_runs_from_another_folder(tmp_path):
    """`pip install .` (not editable), then the command line from elsewhere, with the data folder
    named by L2L_DATA: every subpackage is installed and nothing needs the repository's paths."""
    source = tmp_path / "source"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(PACKAGE, source / "l2l", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PACKAGE.parent / name, source / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    assert (target / "l2l" / "optimizers" / "lstm.py").exists()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "L2L_DATA": str(tmp_path / "data"), "L2L_PROGRESS": "0"}
    out = work / "q.json"
    subprocess.run([sys.executable, "-m", "l2l", "train", "--problem", "quadratic:dim=3", "--scale", "smoke",
                    "--epochs", "2"], cwd=work, env=env, check=True, capture_output=True)
    checkpoint = tmp_path / "data" / "checkpoints" / "quadratic-dim3-epochs2-smoke.pt"
    assert checkpoint.exists(), list((tmp_path / "data").rglob("*"))
    done = subprocess.run([sys.executable, "-c", "import l2l, sys; print(l2l.__file__)"], cwd=work, env=env,
                          check=True, capture_output=True, text=True)
    assert done.stdout.startswith(str(target))
    subprocess.run([sys.executable, "-m", "l2l", "evaluate", "--problem", "quadratic:dim=3", "--optimizer",
                    str(checkpoint), "--scale", "smoke", "--steps", "5", "--runs", "4", "--json", str(out)],
                   cwd=work, env=env, check=True, capture_output=True)
    assert out.exists() and (tmp_path / "data" / "results" / "tuned_lr.json").exists()
