"""Scales: how much work each experiment does, per problem family.

`smoke` proves that everything runs end to end in seconds (CI); `book` is what the book shows: the
book's own budget, which is not the paper's (`OFFICIAL` gives the official code's; each chapter states both).
A chapter's `scale` parameter and the CLI's `--scale` both read this one table.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

from l2l.book.report import how_far, spent, unfinished
from l2l.errors import UserError
from l2l.evaluation import LR_GRID, compare
from l2l.optimizers import LSTMConfig
from l2l.problems import make_problem
from l2l.runtime import caches, checkpoints_dir, locked, repository, results_dir
from l2l.training import TrainConfig, load_checkpoint, load_or_train, optimizer_from, sweep
from l2l.training.checkpoint import validated
from l2l.training.config import flat_recipe

SCALES = ("smoke", "book")

# The official code's meta-training budget (deepmind/learning-to-learn train.py) [code]
OFFICIAL = {"epochs": 10_000, "runs": 1, "meta_lr": 1e-3}

SMOKE_GRID = (2.0**-9, 2.0**-5, 2.0**-1, 2.0**2)  # a coarse learning-rate grid, for smoke runs
CIFAR_GRID = tuple(2.0**k for k in range(-12, 3, 2))  # every other power of two: CIFAR steps are dear
# Neural art: pixel gradients are small (≈ 1e-3), so SGD wants rates far above LR_GRID's top of 8
ART_GRID = tuple(2.0**k for k in range(-10, 11, 2))

# Chapter 2's second random search, over higher meta-learning rates (`python -m l2l sweep --sweep-seed 1
# --low 0.005 --high 0.03`): `search`'s arguments
SECOND_SEARCH = dict(sweep_seed=1, low=0.005, high=0.03)

# train: TrainConfig fields. test: functions per test curve (runs) and per learning rate when
# tuning (tune_runs), the learning-rate grid (and `refine`, rates tried between its best and their
# neighbours), and chapter-specific sizes of further experiments.
PRESETS = {
    "quadratic": {
        "book": {"train": dict(epochs=3000, runs=16, meta_lr=3e-3, eval_every=100, eval_runs=256),
                  "test": dict(runs=1000, tune_runs=256, grid=LR_GRID)},
        "smoke": {"train": dict(epochs=20, runs=4, eval_every=10, eval_runs=16),
                  "test": dict(runs=16, tune_runs=8, grid=SMOKE_GRID)},
    },
    "mnist": {
        "book": {"train": dict(epochs=1500, runs=2, meta_lr=1e-3, schedule="cosine", clip=10.0,
                                eval_every=50, eval_runs=32),
                  "test": dict(runs=100, tune_runs=32, grid=LR_GRID, widths=(5, 10, 20, 30, 40, 50),
                               sweep_runs=64, long_steps=1000, long_runs=50, remedy_epochs=600, sweep_trials=8,
                               second_search=SECOND_SEARCH,
                               official_epochs=OFFICIAL["epochs"],  # the search's winner at the official budget
                               # Chen et al.'s ingredients on the book's recipe (their schedule of stages)
                               chen=dict(curriculum=(200, 500, 1000), imitation=0.3),
                               # chapter 6's MNIST recipes: this many epochs, then more from their best weights
                               ntm_epochs=100, ntm_more_epochs=400)},
        # smoke: short runs, one validation per 2-epoch training (MNIST's steps make `make test`'s time)
        "smoke": {"train": dict(epochs=2, runs=1, steps=40, eval_every=2, eval_runs=2),
                  "test": dict(runs=4, tune_runs=2, grid=SMOKE_GRID, widths=(10, 20), sweep_runs=2, sweep_trials=2,
                               second_search=SECOND_SEARCH,
                               long_steps=30, long_runs=2, remedy_epochs=2, official_epochs=4, ntm_epochs=2,
                               ntm_more_epochs=2, chen=dict(curriculum=(60,), imitation=1.0))},  # every epoch imitates
    },
    "cifar": {
        "book": {"train": dict(epochs=600, runs=1, meta_lr=1e-3, schedule="cosine", clip=10.0,
                                eval_every=50, eval_runs=8),
                  "test": dict(runs=20, tune_runs=4, tune_steps=200, steps=1000, grid=CIFAR_GRID,
                               sub_epochs=400, single_epochs=200, long_epochs=2000, update_runs=4)},
        # smoke: one validation per 2-epoch training, as MNIST's (CIFAR's steps make half of `make test`'s time)
        "smoke": {"train": dict(epochs=2, runs=1, steps=20, eval_every=2, eval_runs=2),
                  "test": dict(runs=2, tune_runs=1, tune_steps=5, steps=10, grid=SMOKE_GRID,
                               sub_epochs=2, single_epochs=1, long_epochs=4, update_runs=4)},
    },
    "neural_art": {
        # ≈ 3 s of one CPU core per epoch (128 steps of a 64×64 image): 800 epochs ≈ 40 min
        "book": {"train": dict(epochs=800, runs=1, steps=128, unroll=32, meta_lr=1e-3, schedule="cosine",
                                clip=10.0, eval_every=50, eval_runs=8),
                  # refine: the grid's factor-4 steps around each best rate split into four (`tune`): the
                  # verdicts at step 128 rest on differences below 1% of the loss
                  "test": dict(runs=100, large_runs=50, tune_runs=8, steps=128, grid=ART_GRID, refine=3)},
        "smoke": {"train": dict(epochs=2, runs=1, steps=16, unroll=8, eval_every=1, eval_runs=2),
                  "test": dict(runs=3, large_runs=2, tune_runs=1, steps=16, grid=SMOKE_GRID, refine=1)},
    },
}


def _preset(family: str, scale: str) -> dict:
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    if family not in PRESETS:
        raise UserError(f"no presets for problem family {family!r}; families: {', '.join(PRESETS)}")
    return PRESETS[family][scale]


def train_config(spec: str, scale: str = "book", **overrides) -> TrainConfig:
    """The meta-training recipe for a problem at a scale; keyword arguments override fields."""
    problem = make_problem(spec)
    settings = {**_preset(problem.family, scale)["train"], **overrides}
    optimizer = settings.pop("optimizer", LSTMConfig(**problem.optimizer_defaults))
    return TrainConfig(problem=problem.spec, optimizer=optimizer, **settings)


def test_settings(spec: str, scale: str = "book") -> dict:
    """The test protocol for a problem at a scale: {runs, tune_runs, grid, ...}."""
    return dict(_preset(make_problem(spec).family, scale)["test"])


def comparison(spec: str, scale: str, results: str | Path | None, seed: int = 0, device="cpu",
               refresh: bool = False):
    """The test protocol for a problem family at a scale: `evaluation.compare` with the scale's test
    functions per curve, tuning functions and learning-rate grid (and, where the scale sets them, its
    test and tuning horizons: `test_settings`), the seed, the device, and the caches of tuned rates
    and finished curves in the `results` folder (`runtime.caches`; None: no caches) bound. The
    caller passes the problem and the optimizers, and any setting it changes (e.g. `steps=200`)."""
    test = test_settings(spec, scale)
    horizons = {k: test[k] for k in ("steps", "tune_steps") if k in test}
    tuned, finished = caches(results) if results is not None else (None, None)
    return partial(compare, runs=test["runs"], tune_runs=test["tune_runs"], grid=test["grid"],
                   refine=test.get("refine", 0), **horizons,
                   seed=seed, device=device, cache=tuned, curve_cache=finished, refresh=refresh)


def _changes(config: TrainConfig, preset: TrainConfig) -> dict:
    """{field: value} for every field of `config` (optimizer fields without their `optimizer.`)
    that differs from the `preset` recipe."""
    mine, base = flat_recipe(config.to_dict()), flat_recipe(preset.to_dict())
    return {k.removeprefix("optimizer."): v for k, v in mine.items() if k != "problem" and v != base.get(k)}


def _value(v, sep: str, number=lambda x: f"{x:g}") -> str:
    """A field's value in a file name (6 digits: 'x' between a tuple's items) or, with number=repr
    (every digit) and ',', as a command-line option's value."""
    if isinstance(v, (tuple, list)):
        return sep.join(_value(x, sep, number) for x in v)
    return "none" if v is None else number(v) if isinstance(v, float) else str(v)


def variant(config: TrainConfig, preset: TrainConfig) -> str:
    """A file-name part naming every field in which `config` differs from the `preset` recipe,
    e.g. 'epochs600-seed3' or 'groups1' ('' when it is the preset itself)."""
    return "-".join(f"{k.replace('_', '')}{_value(v, 'x')}" for k, v in _changes(config, preset).items())


# The recipe fields `python -m l2l train` has an option for (`--meta-lr` sets meta_lr): the recipe's,
# the learned optimizer's and, for LSTM+GAC and NTM-BFGS, its information sharing's
RECIPE_OPTIONS = ("epochs", "runs", "meta_lr", "seed", "steps", "unroll", "clip", "schedule", "eval_every",
                  "eval_runs", "patience", "curriculum", "imitation", "teacher_lr", "start")
ARCHITECTURE_OPTIONS = ("hidden", "layers", "preprocess", "output_scale", "groups")
SHARING_OPTIONS = ("gac", "memory", "read_bias", "update_bias")


def command(config: TrainConfig, scale: str = "book", out: str | Path | None = None, compile: bool = True) -> str:
    """The `python -m l2l train` call that makes (or continues) `config`, with one option per field
    in which it differs from the scale's preset. Its checkpoint is the CLI's default,
    `recipe_path(config, scale)`, unless `out` names another file, shown relative to the project's
    folder when inside it (the book's commands run there)."""
    changes = _changes(config, train_config(config.problem, scale))
    missing = [k for k in changes if k not in RECIPE_OPTIONS + ARCHITECTURE_OPTIONS + SHARING_OPTIONS]
    if missing:
        raise UserError(f"`python -m l2l train` has no option for {', '.join(missing)}")
    options = "".join(f" --{k.replace('_', '-')} {_value(v, ',', repr)}" for k, v in changes.items())
    where = "" if out is None or Path(out) == recipe_path(config, scale) else f" --out {_from_project(out)}"
    return (f"python -m l2l train --problem {config.problem}" + ("" if scale == "book" else f" --scale {scale}")
            + options + where + (" --compile" if compile else ""))


def _from_project(path: str | Path) -> Path:
    root, path = repository(), Path(path).resolve()
    return path.relative_to(root) if root and path.is_relative_to(root) else path


def recipe_path(config: TrainConfig, scale: str = "book", folder: str | Path | None = None) -> Path:
    """Where `python -m l2l train` keeps `config` (in `folder`, else the project's checkpoints): its
    problem and scale, and `variant` against the scale's preset."""
    return checkpoint_path(config.problem, scale, folder, variant(config, train_config(config.problem, scale)))


def _name(spec: str, scale: str, variant: str = "") -> str:
    slug = make_problem(spec).slug + (f"-{variant}" if variant else "")
    return slug if scale == "book" else f"{slug}-{scale}"


def checkpoint_path(spec: str, scale: str = "book", folder: str | Path | None = None,
                    variant: str = "") -> Path:
    """`<data>/checkpoints/<problem>[-<variant>].pt` at book scale, `…-<scale>.pt` otherwise; a
    variant names a second optimizer for the same problem (e.g. `single`: one shared LSTM)."""
    return Path(folder or checkpoints_dir()) / f"{_name(spec, scale, variant)}.pt"


def results_path(spec: str, scale: str = "book", folder: str | Path | None = None, name: str | None = None) -> Path:
    """`<data>/results/<problem>.json` at book scale, `<problem>-<scale>.json` otherwise; `name` stands
    for the problem's slug when a chapter keeps another result of it (e.g. 'mnist-long', or
    'mnist-sweep/mnist-hidden5' in a folder)."""
    if name == "":  # e.g. a step's `ledger.tuned100` where it names none: never the problem's own file
        raise ValueError("an empty results name (None names the problem's own file)")
    stem = name or make_problem(spec).slug
    return Path(folder or results_dir()) / (f"{stem}.json" if scale == "book" else f"{stem}-{scale}.json")


def sweep_path(spec: str, scale: str = "book", folder: str | Path | None = None, seed: int = 0) -> Path:
    """The table of `python -m l2l sweep --problem <spec> --sweep-seed <seed>` (its trials'
    checkpoints: `l2l.training.trial_path`)."""
    return results_path(spec, scale, folder, name=f"sweep-{make_problem(spec).slug}-{seed}")


def search(spec: str, scale: str, folder: str | Path, seed: int = 0, sweep_seed: int = 0,
           **rates: float) -> tuple[Path, dict | None]:
    """A chapter's random search over the meta-learning rate of `spec`'s recipe (chapter 2's, read
    by chapter 4 too), its rates drawn by `sweep_seed` from [`low`, `high`] (`rates`; `sweep`'s own
    range where not given): the path of its table
    (`sweep_path`, in `folder`/results) and the table, or None where it has not been run. At book
    scale it takes days of a CPU, so `python -m l2l sweep` runs it and a chapter only reads it;
    below, the chapter runs it first (seconds), holding the table's lock, so that another chapter
    running it at the same time waits, then reads it."""
    folder = Path(folder)
    path = sweep_path(spec, scale, folder / "results", seed=sweep_seed)
    if scale != "book":
        with locked(path):  # a chapter beside one running it waits here (else: two sweeps, one trial)
            sweep(train_config(spec, scale, seed=seed), test_settings(spec, scale)["sweep_trials"],
                  folder / "checkpoints" / "sweeps", path, seed=sweep_seed, progress=False, **rates)
    return path, json.loads(path.read_text()) if path.exists() else None


def trained(config: TrainConfig, path: str | Path, scale: str, device="cpu", retrain: bool = False,
            compile: bool = False, partial: bool = False, command: str = "") -> tuple:
    """A recipe's trained optimizer for a chapter: (optimizer or None, checkpoint or None, a line on
    what is missing or unfinished, else ""). At book scale without `retrain` a chapter never starts
    or continues hours of training: a missing checkpoint gives None, and an unfinished one None too,
    or with `partial` its best weights so far, the line saying how far it got. `command` (the CLI
    call that makes or continues it) ends the line. Elsewhere the recipe is loaded or trained."""
    path = Path(path)
    if scale != "book" or retrain:
        opt, ck = load_or_train(config, path, device=device, retrain=retrain, progress=False, compile=compile)
        return opt, ck, ""
    ck = load_checkpoint(path) if path.exists() else None
    if ck is not None and TrainConfig.from_dict(ck["config"]) != config:
        raise UserError(f"{path} holds another recipe than the one asked for")
    how = f"; `{command}`" if command else ""
    if ck is None:
        return None, None, f"not trained (`{path.name}`{how})"  # backticks: MyST would link a .pt name
    left = how_far(ck, config)
    if left is None:
        return optimizer_from(ck, device, compile=compile), ck, ""
    line = f"{left} (`{path.name}`{how})" + ("" if validated(ck) else ", not validated yet")
    return (optimizer_from(ck, device, compile=compile) if partial and validated(ck) else None), ck, line


def other_seeds(spec: str, scale: str, seeds, folder: str | Path | None = None, device="cpu",
                retrain: bool = False, compile: bool = False, label: str = "LSTM", partial: bool = False,
                describe=spent, **overrides) -> tuple[dict, list[str], dict]:
    """The chapter's recipe (with `overrides` of its fields) trained with other seeds, for the
    variance across meta-training: ({"<label> seed k": optimizer}, [a line per seed left out],
    {"<label> seed k": `describe(checkpoint, recipe)`, by default what its meta-training took so
    far, `report.spent`, for each with a checkpoint}). At book scale without `retrain`, a seed whose
    checkpoint is missing or unfinished is left out rather than trained inside a chapter (MNIST
    takes about an hour): `trained`. With `partial` an unfinished seed is shown with its best
    weights so far, and its line says how far it got."""
    found, lines, costs = {}, [], {}
    for k, recipe, path in _seeded(spec, scale, seeds, folder, **overrides):
        opt, ck, line = trained(recipe, path, scale, device, retrain, compile, partial=partial,
                                command=command(recipe, scale, path))
        if opt is not None:
            found[seed_label(label, k)] = opt
        if ck is not None:
            costs[seed_label(label, k)] = describe(ck, recipe)
        if line:
            lines.append(f"seed {k}: " + (f"shown with its best weights after {line}" if opt is not None else line))
    return found, lines, costs


def seeds_unfinished(spec: str, scale: str, seeds, folder: str | Path | None = None, label: str = "LSTM",
                     **overrides) -> list[str]:
    """How far each of `other_seeds`' trainings still under way has got, "<label> seed k: 455 of
    1,500 epochs (best weights: epoch 300)" (`report.unfinished`), for a results file's `unfinished`
    (the ledger's note) beside the recipe's own."""
    lines = []
    for k, recipe, path in _seeded(spec, scale, seeds, folder, **overrides):
        left = unfinished(load_checkpoint(path), recipe, label=seed_label(label, k)) if path.exists() else None
        if left:
            lines.append(left)
    return lines


def seed_label(label: str, seed: int) -> str:
    """How a chapter names another seed's training of `label`'s recipe ("LSTM seed 1"); the seed the
    chapter runs with is `label` itself."""
    return f"{label} seed {seed}"


def seed_suffix(label: str) -> str:
    """The " seed k" that `seed_label` put at the end of `label`, or "" for a chapter's own training."""
    found = re.search(r" seed \d+$", label)
    return found.group() if found else ""


def seed_of(label: str, default: int) -> int:
    """The seed k of a `seed_label` ("LSTM seed 1": 1), or `default` (the chapter's) for its own training."""
    suffix = seed_suffix(label)
    return int(suffix.split()[-1]) if suffix else default


def _seeded(spec: str, scale: str, seeds, folder: str | Path | None = None, **overrides):
    """(seed, the chapter's recipe with that seed and `overrides`, its checkpoint's path) for each seed."""
    for k in seeds:
        recipe = train_config(spec, scale, seed=k, **overrides)
        yield k, recipe, recipe_path(recipe, scale, folder)


def budget(spec: str, scale: str = "book", **overrides) -> str:
    """A recipe's meta-training budget in words, beside the official code's (`OFFICIAL`)."""
    c = train_config(spec, scale, **overrides)
    return (f"{c.epochs:,} epochs of {c.steps} steps, {c.runs} function{'s' if c.runs > 1 else ''} per "
            f"meta-update, meta-learning rate {c.meta_lr:g} ({c.schedule}); the official code: "
            f"{OFFICIAL['epochs']:,} epochs, {OFFICIAL['runs']} function, {OFFICIAL['meta_lr']:g} (constant)")
