"""Device-correct everywhere: every tensor the library makes lives on the device of its inputs.

Two checks that need no GPU:

* a lint over `l2l/` (the AST): a tensor factory (`torch.zeros`, `torch.eye`, `torch.randn`, ...)
  must name its device (`device=...`) or be chained into `.to(...)` (`(s * torch.randn(n,
  generator=g)).to(device)`: a seeded CPU generator, so a seed names the same functions on every
  device, see `l2l/problems/base.py`). The few that are CPU by design are in `ALLOWED`, each with
  its reason. `device="cpu"` written out counts as CPU: it needs an entry too.
* the library run on the `meta` device: problems sampled there and every kind of optimizer
  stepped on them. A meta tensor meeting a CPU one fails as a CUDA one would ("Tensor on device
  meta is not on the expected device cpu"), so a factory that forgot its device shows up here
  even where the lint cannot see it (a helper that builds on the CPU and returns).

`torch.from_numpy` is not a factory here: it wraps a numpy array, whose device (the CPU) it keeps;
the data loaders move what they read with `.to(device)`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from conftest import needs_cifar, needs_mnist

PACKAGE = Path(__file__).resolve().parents[1] / "l2l"

FACTORIES = {"zeros", "ones", "eye", "full", "empty", "empty_strided", "arange", "range", "linspace",
             "logspace", "randn", "rand", "randint", "randperm", "normal", "tensor", "as_tensor",
             "scalar_tensor", "tril_indices", "triu_indices", "Generator"}

# (file relative to l2l/, enclosing function, factory): why it is on the CPU by design
ALLOWED = {
    ("problems/base.py", "generator", "Generator"):
        "the seeded generator of every problem: its draws are moved with .to(device), so a seed "
        "names the same functions on every device",
    ("analysis.py", "step_cost", "Generator"):
        "seeded CPU generator for the timed random gradients, moved with .to(device)",
    ("problems/neural_art.py", "contents", "randperm"):
        "indices into the CPU pool of content images (content_pool reads them on the CPU); the "
        "images are moved to the device by `task`",
    ("training/sweep.py", "draw_trials", "rand"):
        "the sweep's meta-learning rates are plain numbers, drawn on the CPU so that a sweep seed "
        "names the same trials on every machine; no tensor of them reaches a device",
    ("problems/neural_art.py", "content_pool", "empty"):
        "the content images are assembled on the CPU from the CIFAR arrays and the photos; `task` "
        "moves them to the device",
}

# expressions a factory's result may pass through on its way to `.to(...)`
_PASS_THROUGH = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.Subscript)


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _factory(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr in FACTORIES and isinstance(f.value, ast.Name) \
            and f.value.id == "torch":
        return f.attr
    return None


def _names_device(call: ast.Call) -> bool:
    """A `device=` keyword that is not the CPU written out."""
    for k in call.keywords:
        if k.arg == "device":
            v = k.value
            cpu = (isinstance(v, ast.Constant) and v.value == "cpu") or (
                isinstance(v, ast.Call) and ast.unparse(v.func) == "torch.device" and v.args
                and isinstance(v.args[0], ast.Constant) and v.args[0].value == "cpu")
            return not cpu
    return False


def _is_dtype(node: ast.AST) -> bool:
    """`torch.float64`, `x.dtype`: a `.to(...)` that changes the dtype only."""
    text = ast.unparse(node)
    return text.endswith(".dtype") or (text.startswith("torch.") and text != "torch.device"
                                        and not text.startswith("torch.device("))


def _moved(node: ast.AST, parents: dict) -> bool:
    """Whether the value of `node` reaches `.to(...)`: directly (`f(...).to(d)`), through
    arithmetic (`(s * f(...)).to(d)`), or through other method calls (`f(...).float().to(d)`)."""
    while True:
        parent = parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            call = parents.get(parent)
            if not (isinstance(call, ast.Call) and call.func is parent):
                return False
            if parent.attr == "to" and (any(k.arg == "device" for k in call.keywords)
                                        or (call.args and not _is_dtype(call.args[0]))):
                return True
            node = call  # a method chained on the result: follow it
        elif isinstance(parent, _PASS_THROUGH) and not (isinstance(parent, ast.Subscript)
                                                         and parent.slice is node):
            node = parent
        else:
            return False


def _enclosing(node: ast.AST, parents: dict) -> str:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node.name
    return "<module>"


def device_lint(source: str, file: str = "<string>", allowed=None) -> list[str]:
    """Tensor factories in `source` that neither name a device nor are moved by `.to(...)`:
    'file:line: torch.name(...) in function' for each, minus the `allowed` ones."""
    allowed = ALLOWED if allowed is None else allowed
    tree = ast.parse(source)
    parents = _parents(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch":  # `from torch import eye`
            for alias in node.names:  # would hide a factory from the lint: write torch.eye
                if alias.name in FACTORIES:
                    found.append((node.lineno, node.col_offset,
                                  f"{file}:{node.lineno}: from torch import {alias.name} (write torch.{alias.name})"))
        if isinstance(node, ast.Call) and (name := _factory(node)):
            if _names_device(node) or _moved(node, parents):
                continue
            where = _enclosing(node, parents)
            if (file, where, name) not in allowed:
                found.append((node.lineno, node.col_offset, f"{file}:{node.lineno}: torch.{name}(...) in {where}"))
    return [text for *_, text in sorted(found)]


def lint_package(package: Path = PACKAGE) -> tuple[list[str], set]:
    """(offences, allow-list entries that matched nothing) over every module of the package."""
    offences, used = [], set()
    for path in sorted(package.rglob("*.py")):
        file = path.relative_to(package).as_posix()
        everything = device_lint(path.read_text(), file, allowed={})
        for entry in everything:
            key = next((k for k in ALLOWED if k[0] == file and entry.endswith(f"torch.{k[2]}(...) in {k[1]}")), None)
            if key:
                used.add(key)
            else:
                offences.append(entry)
    return offences, set(ALLOWED) - used


def test_every_factory_of_the_package_names_its_device():
    offences, stale = lint_package()
    assert not offences, "tensors made without a device:\n" + "\n".join(offences)
    assert not stale, f"allow-list entries that match nothing (remove them): {sorted(stale)}"


def test_the_lint_catches_factories_without_a_device():
    bad = """
import torch
def identity(theta):
    return torch.eye(theta.shape[1]).expand(len(theta), -1, -1)
def noise(theta, g):
    return theta + torch.randn(theta.shape, generator=g)
def explicit_cpu(theta):
    return torch.zeros(3, device="cpu"), torch.ones(2, device=torch.device("cpu"))
def indexed(x, g):
    return x[torch.randint(3, (2,), generator=g)]
def argument(theta):
    return torch.cat([theta, torch.zeros(1, 3)]).to(theta.device)
def dtype_only(theta, g):
    return torch.randn(3, generator=g).to(torch.float64), torch.rand(2, generator=g).to(theta.dtype)
"""
    found = device_lint(bad)
    assert device_lint("from torch import Tensor, zeros\n") == [
        "<string>:1: from torch import zeros (write torch.zeros)"]
    assert [f.split(": ", 1)[1] for f in found] == [
        "torch.eye(...) in identity", "torch.randn(...) in noise", "torch.zeros(...) in explicit_cpu",
        "torch.ones(...) in explicit_cpu", "torch.randint(...) in indexed", "torch.zeros(...) in argument",
        "torch.randn(...) in dtype_only", "torch.rand(...) in dtype_only"]
    good = """
import torch
def f(theta, g, device):
    a = torch.eye(3, dtype=theta.dtype, device=theta.device)
    b = (0.1 * torch.randn(2, 3, generator=g)).to(device)
    c = (torch.rand(2, generator=g) < 0.5).to(device)
    d = torch.randint(3, (2,), generator=g).to(device)
    e = torch.randn(2, generator=g).double().to(theta.device)
    f = torch.randn(2, generator=g).to(device, torch.float64), torch.rand(2, generator=g).to(device=device)
    return a, b, c, d, e, f, theta.new_zeros(3), torch.zeros_like(theta)
"""
    assert device_lint(good) == []
    assert device_lint(bad, allowed={("<string>", "identity", "eye")})[0].endswith("in noise")


# ---------------------------------------------------------------------------------------------
# The library on the meta device: a CPU tensor meeting a meta one fails, as with CUDA.

META = torch.device("meta")


def _optimizers():
    from l2l.optimizers import LSTMConfig, QuasiNewton, SharingConfig, make_baseline, make_optimizer

    lstm = LSTMConfig(hidden=4)
    return {"sgd": make_baseline("sgd", 0.1), "adam": make_baseline("adam", 0.1),
            "nag": make_baseline("nag", 0.1), "rmsprop": make_baseline("rmsprop", 0.1),
            "lstm": make_optimizer(lstm).to(META),
            "gac": make_optimizer(SharingConfig(lstm, gac=2)).to(META),
            "ntm-bfgs": make_optimizer(SharingConfig(lstm, memory="bfgs")).to(META),
            "ntm-lbfgs": make_optimizer(SharingConfig(lstm, memory="lbfgs")).to(META),
            "bfgs": QuasiNewton(0.1), "lbfgs": QuasiNewton(0.1, 5)}


def test_the_meta_device_catches_a_cpu_tensor():
    with pytest.raises(RuntimeError, match="device"):
        torch.zeros(3, device=META) + torch.randn(3)


@pytest.mark.parametrize("name", list(_optimizers()))
def test_every_optimizer_steps_on_the_device_of_its_task(name):
    from l2l.loop import optimize
    from l2l.problems import make_problem

    task = make_problem("quadratic:dim=5").sample(3, 0, META)
    assert task.theta.device == META
    with torch.no_grad():
        points = list(optimize(task, _optimizers()[name], 3))
    assert all(p.theta.device == META and p.grad.device == META for p in points)
    assert all(p.update.device == META for p in points[:-1])


def test_the_sharing_memory_and_the_diagnostics_follow_their_inputs():
    from l2l import analysis
    from l2l.optimizers.sharing import memory_init, memory_read

    like = torch.zeros(2, 4, dtype=torch.float64, device=META)
    for kind in ("bfgs", "lbfgs"):
        memory = memory_init(kind, 2, 4, 3, 5, like=like)
        assert all(m.device == META and m.dtype == torch.float64 for m in memory)
        assert memory_read(memory, torch.zeros(2, 4, 3, dtype=torch.float64, device=META)).device == META
    opt = _optimizers()["ntm-lbfgs"]
    from l2l.problems import make_problem

    assert analysis.memory_drift(opt, make_problem("quadratic:dim=5").sample(2, 0, META), 2).device == META
    grads = torch.zeros(4, 3, device=META)
    assert analysis.replay(_optimizers()["adam"], grads).device == META


def test_cifar_groups_are_made_on_the_device_asked_for():
    from l2l.problems import make_problem

    assert make_problem("cifar").groups(META).device == META


@pytest.mark.parametrize("spec", [pytest.param("mnist:activation=mix", marks=needs_mnist),
                                  pytest.param("cifar:classes=2", marks=needs_cifar)])
def test_the_dataset_problems_sample_and_step_on_the_device_asked_for(spec):
    """Their data, θ_0, batches and parameter groups all on the task's device."""
    import torch.fx.experimental._config as fx_config

    from l2l.loop import optimize
    from l2l.problems import make_problem

    # CIFAR keeps its classes with nonzero(), whose size a meta tensor cannot know: assume all
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        task = make_problem(spec).sample(2, 0, META)
    assert task.theta.device == META and (task.groups is None or task.groups.device == META)
    with torch.no_grad():
        for opt in (_optimizers()["adam"], _optimizers()["lstm"]):
            points = list(optimize(task, opt, 2))
            assert all(p.grad.device == META for p in points)
