"""Test curves: learned optimizers and tuned baselines on the same fresh test functions.

Seeds are split by use (`derive_seed`): baselines' learning rates and the learned optimizer's early
stopping are chosen on the 'valid' functions, and every reported curve comes from the 'test'
functions, which neither ever saw. All optimizers of a comparison see the same functions and
minibatches, so their per-run numbers pair up (`l2l.evaluation.stats.paired`).

A finished curve can be cached on disk. Its file is named by what it is (problem, optimizer,
steps, runs, seed) and holds a `probe` of what the code computes: the optimizer's first steps on
two fixed functions of the problem. A cached curve whose probe the current code no longer
reproduces (to float rounding, as grown along the steps on another CPU model: `tuning.matches`)
is stale and computed again, so a change to a loss, a baseline or the LSTM's step cannot silently
reuse old numbers, while a refactor that computes the same keeps them.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from l2l.evaluation.stats import Curve
from l2l.evaluation.tuning import LR_GRID, matches, probe, rate_is_current, tuned_rates
from l2l.loop import run
from l2l.optimizers import BASELINES, LABELS, NAG, SGD, Adam, QuasiNewton, RMSprop, describe, make_baseline
from l2l.problems import derive_seed, make_problem
from l2l.runtime import atomic_write, cpu_of, hardware, progress as progress_bar


def fingerprint(opt) -> str:
    """A short hash naming an optimizer by what it is: a baseline's rule and learning rate,
    a learned optimizer's architecture and weights."""
    if isinstance(opt, torch.nn.Module):
        config = getattr(opt, "config", None)
        digest = hashlib.sha256((describe(config) if config is not None else repr(type(opt))).encode())
        for name, tensor in sorted(opt.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
        return "learned-" + digest.hexdigest()[:16]
    return repr(opt)  # a frozen dataclass, e.g. Adam(lr=0.03125, beta1=0.9, ...)


def test_curve(test, opt, label: str, steps: int, runs: int, seed: int, device="cpu",
               lr: float | None = None, cache: str | Path | None = None, refresh: bool = False) -> Curve:
    """One optimizer's curve on `runs` test functions.

    With `cache` (a folder), a curve computed before for the same functions, optimizer
    (`fingerprint`), steps and seed is read back, unless the current code's `probe` differs from
    the one stored with it (stale), it was stored without per-run numbers (before the cache kept
    them: it could not be paired with the other optimizers' runs) or `refresh` is set; a curve
    computed here is stored there.
    Long evaluations (CIFAR: 1,000 steps) so survive interruptions curve by curve.
    """
    key = f"{test.spec}|{fingerprint(opt)}|steps={steps}|runs={runs}|seed={seed}"
    file = Path(cache) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json" if cache else None
    check = probe(test, opt) if file else None
    if file and file.exists() and not refresh:
        saved = json.loads(file.read_text())
        if cached_status(saved, test, opt, check) == "current":
            return Curve(label, saved["mean"], saved["ci95"], lr, saved.get("per_run"), saved.get("cost"))
    started = time.perf_counter()
    task = test.sample(runs, derive_seed(seed, "test"), device)
    losses = run(task, opt, steps).cpu()
    cost = {"seconds": round(time.perf_counter() - started, 2), "hardware": hardware(device)}
    curve = Curve.of(label, losses, lr, cost)
    if file:
        atomic_write(file, json.dumps({"key": key, "probe": check, "mean": curve.mean, "ci95": curve.ci95,
                                       "per_run": curve.per_run, "cost": cost}))
    return curve


def cached_status(saved: dict, problem, opt, check: list[float] | None = None) -> str:
    """A cached curve of `opt` on `problem` against what the current code computes (`matches`, on
    the CPU model its cost names; `check`: its probe, when the caller has it): "current" (read
    back), "stale" (the code computes something else) or "unpaired" (no per-run numbers: it cannot
    be paired)."""
    made_on = cpu_of((saved.get("cost") or {}).get("hardware"))
    return ("stale" if not matches(saved.get("probe"), problem, opt, check, made_on) else "unpaired"
            if not saved.get("per_run") else "current")


RULES = {cls.__name__: cls for cls in (SGD, NAG, RMSprop, Adam, QuasiNewton)}


def rule_from(name: str):
    """The hand-designed optimizer a `fingerprint` names (its repr, e.g. 'Adam(lr=0.03125, ...)'),
    or None when it names none of `RULES`."""
    match = re.fullmatch(r"(\w+)\((.*)\)", name)
    cls = RULES.get(match.group(1)) if match else None
    if cls is None:
        return None
    try:
        call = ast.parse(f"f({match.group(2)})", mode="eval").body
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        return cls(**kwargs) if not call.args and set(kwargs) <= {f.name for f in fields(cls)} else None
    except (SyntaxError, ValueError, TypeError):
        return None


def audit(folder: str | Path, rates: str | Path | None = None, learned=None) -> list[dict]:
    """What a chapter executed now would read back from the caches, and what it would compute again.

    Each cached curve in `folder` (`test_curve`) and each tuned rate in the JSON file `rates`
    (`tuned_rates`) gets a row: {"kind": "curve" or "rate", "problem", "optimizer", "key", "file",
    "status", "seconds"}, status "current" (its probe is what this code computes here, `matches`:
    read back), "stale" (it is not: computed again), "unpaired" (a curve without per-run numbers:
    computed again) or "unknown" (a learned optimizer not among `learned`, {fingerprint: optimizer},
    or a rule this code does not know: not checked); "seconds", what computing it took, where
    recorded. The probes take seconds each (CIFAR's), not the hours of the curves."""
    learned, rows = learned or {}, []
    for file in sorted(Path(folder).glob("*.json")):
        saved = json.loads(file.read_text())
        spec, name = saved["key"].split("|")[:2]
        opt = learned.get(name) if name.startswith("learned-") else rule_from(name)
        status = "unknown" if opt is None else cached_status(saved, make_problem(spec), opt)
        rows.append({"kind": "curve", "problem": spec, "optimizer": name, "key": saved["key"], "file": file.name,
                     "status": status, "seconds": (saved.get("cost") or {}).get("seconds")})
    stored = json.loads(Path(rates).read_text()) if rates and Path(rates).exists() else {}
    for key, entries in stored.items():
        problem = make_problem(key.split("|")[0])
        for name, entry in entries.items():
            rows.append({"kind": "rate", "problem": problem.spec, "optimizer": f"{name} (lr {entry['lr']:g})",
                         "key": key, "file": Path(rates).name,
                         "status": "current" if rate_is_current(problem, name, entry) else "stale",
                         "seconds": None})
    return rows


def compare(problem, optimizers: dict, baselines=tuple(BASELINES), steps: int = 100,
            runs: int = 100, seed: int = 0, tune_runs: int = 32, device="cpu", grid=LR_GRID,
            tune_steps: int | None = None, cache: str | Path | None = None,
            progress: bool = True, curve_cache: str | Path | None = None,
            refresh: bool = False, refine: int = 0) -> dict[str, Curve]:
    """Test curves of learned optimizers and tuned baselines on the same fresh functions.

    Baselines are tuned on `problem` itself (for MNIST: training images) and every optimizer is
    tested on `problem.held_out()` (for MNIST: the test images).

    Args:
        problem: a problem family (`l2l.problems.make_problem`).
        optimizers: {label: optimizer} for learned (or any fixed) optimizers.
        baselines: short names from `l2l.optimizers.BASELINES`, each tuned on validation functions.
        steps, runs, seed: the test: `runs` functions from the seed's 'test' stream.
        tune_runs, grid, refine: validation functions per learning rate, the rates tried, and how
            many more between the grid's best and each neighbour (`tune`).
        tune_steps: the horizon whose final loss picks the rate (default `steps`).
        cache: JSON file for the tuned rates.
        curve_cache: folder of finished test curves (`test_curve`), for long evaluations.
        refresh: tune and test again, ignoring (and replacing) what the caches hold.
    Returns:
        {label: Curve}, learned optimizers first.
    """
    rates = tuned_rates(problem, baselines, tune_steps or steps, tune_runs, seed, device, grid, cache,
                        progress, refresh, refine) if baselines else {}  # none to tune: nothing written to `cache`
    test = problem.held_out()
    candidates = {label: (opt, None) for label, opt in optimizers.items()}
    candidates |= {LABELS[n]: (make_baseline(n, rates[n]), rates[n]) for n in baselines}
    curves = {}
    for label, (opt, lr) in progress_bar(candidates.items(), progress, desc="testing"):
        curves[label] = test_curve(test, opt, label, steps, runs, seed, device, lr, curve_cache, refresh)
    return curves


def save(curves: dict[str, Curve], path: str | Path, **meta) -> dict:
    """Write the curves (per-run numbers included) and any metadata, e.g. problem, steps, runs,
    seed, `trained` (the labels of independently trained optimizers), as JSON; returns it."""
    result = {**meta, "optimizers": {k: {**asdict(c), "final": c.final, "final_ci95": c.final_ci95}
                                     for k, c in curves.items()}}
    atomic_write(path, json.dumps(result, separators=(",", ":")))  # compact: thousands of per-run numbers
    return result


def load(path: str | Path) -> tuple[dict[str, Curve], dict]:
    """The curves and the metadata that `save` wrote."""
    result = json.loads(Path(path).read_text())
    fields = ("label", "mean", "ci95", "lr", "per_run", "cost")
    curves = {k: Curve(**{f: v[f] for f in fields if f in v}) for k, v in result.pop("optimizers").items()}
    return curves, result


def cost_of(curves: dict[str, Curve]) -> tuple[float, set[str]]:
    """What computing the curves took, from their own records: seconds, and where they ran."""
    known = [c.cost for c in curves.values() if c.cost]
    return sum(c["seconds"] for c in known), {c["hardware"] for c in known}
