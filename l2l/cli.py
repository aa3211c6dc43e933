"""Command line: headless reruns of everything the book shows.

    python -m l2l train    --problem SPEC [--scale smoke|book] [--device cpu|cuda] [--out CKPT] [--force]
                           [--seeds 0,1,2: the recipe once per seed, as one population]
                           [recipe options: --epochs --meta-lr --seed --steps --unroll ...; see train -h]
    python -m l2l sweep    --problem SPEC [--trials 8] [--low 1e-4] [--high 1e-2] [--population P] [--backend local|ray] [--only 3,5]
                           [recipe options]
                           [--max-minutes M]
    python -m l2l evaluate [--problem SPEC] --optimizer CKPT [--which best|last] [--label NAME]
                           [--baselines sgd,rmsprop,adam,nag] [--steps N] [--runs N] [--seed S] --json OUT
    python -m l2l ledger   [--results DIR]   (which of the paper's claims hold, from the results)
    python -m l2l bench    [--device D] [--json OUT] [--rounds 3]
    python -m l2l book     [--scale S] [--device D] [--retrain | --recompute] [--jobs N] [--out DIR] [--build]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path

import torch

from l2l.errors import UserError
from l2l.optimizers import BASELINES
from l2l.training.config import PLATEAU_HALVINGS, SCHEDULES


def _device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{name!r} requested but CUDA is not available here")
    try:
        torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    return name


def _positive(kind):
    """An argparse type: a number of `kind` above zero."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _optional(parse):
    """An argparse type that also takes 'none'."""
    def parse_or_none(text: str):
        return None if text.lower() == "none" else parse(text)

    parse_or_none.__name__ = parse.__name__ + " or none"
    return parse_or_none


def _baselines(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}")
    return names


def _integers(what: str, example: str, least: int):
    """A comma-separated list of integers, each at least `least` (--curriculum, --only)."""
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {what} as integers, e.g. {example}") from None
        if min(values) < least:
            raise argparse.ArgumentTypeError(f"{text!r}: {what} must be at least {least}")
        return values
    return parse


CUDA_GRAPHS_HELP = "replay each unroll as one CUDA graph (default: on a GPU, for the plain LSTM)"


def _scales(text: str) -> float | tuple[float, ...]:
    """--output-scale: one positive number, or one per LSTM (0.01,0.1)."""
    scales = tuple(_positive(float)(x) for x in text.split(","))
    return scales[0] if len(scales) == 1 else scales


def _recipe(args):
    """The training recipe the options describe: the scale's preset with every option applied."""
    from dataclasses import replace

    from l2l.book.presets import ARCHITECTURE_OPTIONS, RECIPE_OPTIONS, SHARING_OPTIONS, train_config
    from l2l.optimizers import SharingConfig

    given = vars(args)  # recipe options are absent unless given (`none` is a value: no clipping, say)
    config = train_config(args.problem, args.scale, **{k: given[k] for k in RECIPE_OPTIONS if k in given})
    architecture = {k: given[k] for k in ARCHITECTURE_OPTIONS if k in given}
    if architecture:
        config = replace(config, optimizer=replace(config.optimizer, **architecture))
    biased = [k for k in ("read_bias", "update_bias") if given.get(k, "random") != "random"]
    if biased and not (given.get("gac") or given.get("memory", "none") != "none"):
        raise UserError(f"--{biased[0].replace('_', '-')} sets the head of LSTM+GAC or NTM-BFGS: give --gac or --memory too")
    if given.get("gac") or given.get("memory", "none") != "none":  # --memory alone: SharingConfig's two cells
        sharing = {k: given[k] for k in SHARING_OPTIONS if k in given}
        config = replace(config, optimizer=SharingConfig(config.optimizer, **sharing))
    return config


@contextlib.contextmanager
def _terminate_saves():
    """SIGTERM (`kill`, a scheduler's stop) as Ctrl-C: training saves its last whole epoch. A job
    started in the background by a shell ignores SIGINT, so `kill` is how one stops it."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def cmd_train(args):
    from dataclasses import replace

    from l2l.book.presets import recipe_path
    from l2l.training import check_population, meta_train, train_population
    from l2l.training.meta_train import start_path

    config = _recipe(args)
    if args.seeds and ("seed" in vars(args) or args.out):
        raise UserError("--seeds names each seed's checkpoint itself: give it without --seed and --out")
    configs = [replace(config, seed=s) for s in dict.fromkeys(args.seeds)] if args.seeds else [config]
    if len(configs) > 1:
        check_population(configs)  # before a line is printed: a population of these cannot train
    # the default file names every change to the scale's recipe, so it never meets another's
    outs = [Path(args.out)] if args.out else [recipe_path(c, args.scale) for c in configs]
    for c, out in zip(configs, outs):
        if c.start and (args.force or not out.exists()):  # one to begin: a missing start is an error before
            start_path(c, out)  # anything is printed (a training under way resumes without it)
    for c, out in zip(configs, outs):
        print(f"training {c}\n-> {out} on {args.device}", file=sys.stderr)
    run = dict(device=args.device, fresh=args.force, progress=not args.no_progress, max_minutes=args.max_minutes,
               compile=args.compile, cuda_graphs=args.cuda_graphs)
    with _terminate_saves():
        cks = ([meta_train(configs[0], outs[0], **run)] if len(configs) == 1 else
               train_population(configs, outs, **run))  # the seeds at once: one population, the LSTM batched
    for c, ck, out in zip(configs, cks, outs):
        best = ck["best"]
        status = ("done" if ck["epoch"] >= c.epochs else
                  "done: validation stopped improving" if ck.get("stopped") else
                  "stopped early; the same command continues it")
        print(f"epoch {ck['epoch']}/{c.epochs} ({status}); best validation final loss "
              f"{best['val']:.4g} at epoch {best['epoch']}; {ck['wall_time'] / 60:.1f} min; {out}")


def cmd_sweep(args):
    from l2l.book.presets import sweep_path
    from l2l.runtime import checkpoints_dir
    from l2l.training.sweep import sweep

    config = _recipe(args)
    if "meta_lr" in vars(args):
        raise UserError("a sweep draws the meta-learning rate: give --low and --high instead of --meta-lr")
    table = sweep_path(args.problem, args.scale, seed=args.sweep_seed)  # its trials in checkpoints/sweeps/
    with _terminate_saves():
        result = sweep(config, args.trials, checkpoints_dir() / "sweeps", table, args.low, args.high,
                       args.sweep_seed, args.device, args.compile, not args.no_progress, args.max_minutes,
                       args.population, args.backend, train=not args.status, cuda_graphs=args.cuda_graphs,
                       only=args.only)
    for r in result["rows"]:
        mark = " <- winner" if r["trial"] == result["winner"] else ""
        print(f"trial {r['trial']}: meta-lr {r['meta_lr']:g}, {r['epochs']} epochs"
              f"{'' if r['finished'] else ' (unfinished)'}, best validation {r['best_val']:.4g} at epoch "
              f"{r['best_epoch']}, {r['minutes']:.1f} min{mark}")
    done = "" if result["complete"] else "; unfinished: the same command continues"
    print(f"-> {table}{done}")


def _labels(args, paths: list[str]) -> list[str]:
    from l2l.optimizers import LABELS

    given = args.label or []
    if len(given) > len(paths):
        raise UserError(f"{len(given)} --label for {len(paths)} --optimizer: one label per optimizer")
    labels = given + ["LSTM" if i == 0 else f"LSTM ({Path(p).stem})" for i, p in enumerate(paths)][len(given):]
    taken = [label for label in labels if label in LABELS.values()]
    if taken:
        raise UserError(f"label {taken[0]!r} is a baseline's name; choose another")
    if len(set(labels)) < len(labels):
        raise UserError(f"labels must differ, got {', '.join(labels)}")
    return labels


def _check_family(problem, config, path: str):
    """Warn when an optimizer meets a problem unlike the ones it was trained on."""
    from l2l.problems import make_problem

    trained = make_problem(config.problem)
    lstm = getattr(config.optimizer, "lstm", config.optimizer)
    expected = problem.optimizer_defaults
    if trained.family != problem.family:
        print(f"warning: {path} was trained on {trained.spec}, not on the {problem.family} family", file=sys.stderr)
    for field in ("preprocess", "output_scale"):  # per-LSTM scales (a tuple) are a deliberate choice
        if field in expected and getattr(lstm, field) != expected[field] and not isinstance(getattr(lstm, field), tuple):
            print(f"warning: {path} has {field}={getattr(lstm, field)}, while {problem.family} optimizers "
                  f"use {expected[field]}", file=sys.stderr)


def cmd_evaluate(args):
    from l2l.book.presets import comparison, test_settings
    from l2l.book.report import ranking
    from l2l.evaluation import recorded_steps, save
    from l2l.problems import make_problem
    from l2l.runtime import results_dir
    from l2l.training import TrainConfig, load_checkpoint, optimizer_from

    out = Path(args.json)
    if out.is_dir() or not out.parent.is_dir():  # before the work, not after it
        raise UserError(f"--json {out}: give a file in an existing folder")
    paths = args.optimizer or []
    checkpoints = [load_checkpoint(path, args.device) for path in paths]
    configs = [TrainConfig.from_dict(ck["config"]) for ck in checkpoints]
    if args.problem is None and not configs:
        raise UserError("give --problem, or an --optimizer whose training problem to test on")
    spec = args.problem if args.problem is not None else configs[0].problem
    problem = make_problem(spec)
    for path, config in zip(paths, configs):
        _check_family(problem, config, path)
    settings = test_settings(spec, args.scale)
    runs = args.runs or settings["runs"]
    steps = args.steps or settings.get("steps", 100)
    optimizers = {label: optimizer_from(ck, args.device, which=args.which, compile=args.compile)
                  for label, ck in zip(_labels(args, paths), checkpoints)}
    compare = comparison(spec, args.scale, None if args.no_cache else results_dir(), args.seed, args.device)
    curves = compare(problem, optimizers, args.baselines, steps=steps, runs=runs, progress=not args.no_progress)
    save(curves, args.json, problem=problem.spec, steps=steps, runs=runs, seed=args.seed,
         optimizer_checkpoints=paths, weights=args.which)
    for label, c in curves.items():
        lr = f" (lr {c.lr:g})" if c.lr is not None else ""
        print(f"{label:>8}{lr}: final loss {c.final:.4g} ± {c.final_ci95:.2g}")
    for label in optimizers:
        print(ranking(curves, label))
    print(f"-> {args.json} (with each test run's numbers at steps {', '.join(map(str, recorded_steps(steps)))})")


def cmd_ledger(args):
    from l2l.book import ledger
    from l2l.runtime import results_dir

    rows = ledger.ledger(ledger.CLAIMS, args.results or results_dir())
    for r in rows:
        print(f"{r.verdict:>10}  {r.claim.claim}: {r.ours}; difference {r.difference}; "
              f"{r.runs} runs; trained optimizers holding {r.trained}" + (f" [{r.note}]" if r.note else ""))
    print(ledger.summary(rows))


def cmd_cache(args):
    from l2l.evaluation import audit, fingerprint
    from l2l.runtime import caches, checkpoints_dir, results_dir
    from l2l.training import load_checkpoint, optimizer_from
    from l2l.training.checkpoint import validated

    results = Path(args.results) if args.results else results_dir()
    tuned, finished = caches(results)
    checkpoints = results.parent / "checkpoints" if args.results else checkpoints_dir()  # a chapter's artifacts
    learned, where = {}, {}
    for path in sorted(checkpoints.rglob("*.pt")):  # every trained optimizer, best and last weights
        ck = load_checkpoint(path)
        for which in ("best", "last") if validated(ck) else ("last",):
            trained = optimizer_from(ck, which=which)
            for opt in (trained, *trained.ablations()):  # and what chapters test made from them
                name = fingerprint(opt)
                learned[name], where[name] = opt, path.relative_to(checkpoints)
    rows = audit(finished, tuned, learned)
    for r in rows:
        if r["status"] != "current" or args.all:
            name = f"{where[r['optimizer']]} ({r['optimizer']})" if r["optimizer"] in where else r["optimizer"]
            took = f", took {r['seconds'] / 60:.1f} min" if r["seconds"] else ""
            print(f"{r['status']:>8}  {r['kind']} {r['problem']} | {name} | {r['key'].split('|', 2)[-1]}{took}")
    for kind in ("curve", "rate"):
        mine = [r for r in rows if r["kind"] == kind]
        counts = {s: sum(r["status"] == s for r in mine) for s in ("current", "stale", "unpaired", "unknown")}
        print(f"{kind}s: {len(mine)}, " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    again = [r for r in rows if r["status"] in ("stale", "unpaired")]
    known = sum(r["seconds"] or 0 for r in again)
    print(f"executing the chapters now computes {len(again)} of them again"
          + (f" (those that recorded their cost took {known / 60:.0f} min)" if known else ""))
    orphans = [r for r in rows if r["kind"] == "curve" and r["status"] == "unknown"
               and r["optimizer"].startswith("learned-")]  # weights that no checkpoint holds any more
    curves = lambda n: f"{n} curve{'s' if n != 1 else ''}"
    if args.prune and not learned:  # no checkpoint read: every learned curve would look orphaned
        raise UserError(f"no checkpoints in {checkpoints}: --prune would delete every learned optimizer's curve")
    if args.prune:
        for r in orphans:
            (finished / r["file"]).unlink()
        print(f"pruned {curves(len(orphans))} of learned optimizers that no checkpoint in {checkpoints} holds")
    elif orphans:
        print(f"{curves(len(orphans))} of learned optimizers that no checkpoint in {checkpoints} holds "
              "(superseded weights, or checkpoints kept elsewhere): --prune deletes them")


def cmd_bench(args):
    from l2l.bench import bench

    cases = [(spec, r) for spec in ("quadratic", "mnist") for r in args.runs]
    bench(args.device, cases=cases, updates=args.updates, json_out=args.json, rounds=args.rounds)


def cmd_book(args):
    from l2l.book.runner import ChapterFailures, build, execute

    out = Path(args.out)
    try:
        execute(args.scale, args.device, out, retrain=args.retrain, names=args.chapters, jobs=args.jobs,
                recompute=args.recompute)
    except ChapterFailures as failures:
        for name, text in failures.failed.items():
            print(f"--- {name} failed:\n{text.strip()[-2000:]}", file=sys.stderr)
        print(f"error: {failures}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.build:
        build(out, strict=args.scale == "smoke")


def _running_options(t):
    """How a training runs (not what it makes): train's and sweep's."""
    run = t.add_argument_group("running")
    run.add_argument("--max-minutes", type=_positive(float), help="stop (checkpointed) after this long; "
                     "the same command continues")
    run.add_argument("--compile", action="store_true", help="torch.compile the optimizer's step (large problems)")
    run.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None, help=CUDA_GRAPHS_HELP)
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar: a line per validation instead (for a background run's log)")


def _recipe_options(t):
    """The options that change the scale's recipe (train and sweep share them)."""
    recipe = t.add_argument_group("recipe (default: the scale's preset)", argument_default=argparse.SUPPRESS)
    recipe.add_argument("--epochs", type=_positive(int), help="runs of --steps steps; more than a finished "
                        "constant-rate run's extends it")
    recipe.add_argument("--runs", type=_positive(int), help="functions per meta-update")
    recipe.add_argument("--meta-lr", type=_positive(float), help="Adam's learning rate on the optimizer's weights")
    recipe.add_argument("--schedule", choices=SCHEDULES, help="meta-learning rate over epochs (plateau: halved "
                        f"from the best weights after --patience validations without a new best, {PLATEAU_HALVINGS} "
                        "times at most; the next plateau stops)")
    recipe.add_argument("--clip", type=_optional(_positive(float)), help="meta-gradient norm limit, or none")
    recipe.add_argument("--seed", type=int)
    recipe.add_argument("--steps", type=_positive(int), help="optimizee steps per run (the horizon T)")
    recipe.add_argument("--unroll", type=_positive(int), help="steps per truncation (one meta-update each)")
    recipe.add_argument("--eval-every", type=_positive(int), help="epochs between validations")
    recipe.add_argument("--eval-runs", type=_positive(int), help="validation functions")
    recipe.add_argument("--patience", type=_optional(_positive(int)),
                        help="stop after this many validations without a new best (with --schedule plateau: "
                        "halve the meta-learning rate; default: train every epoch)")
    recipe.add_argument("--curriculum", type=_integers("horizons", "200,500,1000", least=1),
                        help="longer horizons after --steps, e.g. 200,500,1000: "
                        "train at one, validate at the next, move on when that stops improving (Chen et al. 2020)")
    recipe.add_argument("--imitation", type=float, help="fraction of epochs that imitate a tuned Adam "
                        "(Chen et al. 2020); needs --teacher-lr")
    recipe.add_argument("--teacher-lr", type=_positive(float), help="the imitated Adam's (tuned) learning rate")
    recipe.add_argument("--start", help="a checkpoint in the output's folder (a sweep's: checkpoints/sweeps/), "
                        "by its file name without .pt (e.g. mnist): start from its best weights, instead of the seed's draw, with a fresh "
                        "meta-optimizer and schedule; they stay the best unless training improves on them")
    arch = t.add_argument_group("the learned optimizer (default: the problem's)",
                                argument_default=argparse.SUPPRESS)
    arch.add_argument("--hidden", type=_positive(int), help="units per LSTM layer (paper: 20)")
    arch.add_argument("--layers", type=_positive(int), help="LSTM layers (paper: 2)")
    arch.add_argument("--preprocess", type=_optional(_positive(float)),
                      help="p of the log/sign preprocessing (paper: 10), or none for raw gradients")
    arch.add_argument("--output-scale", type=_scales, help="update = scale × LSTM output; with several LSTMs "
                      "one scale each, e.g. 0.01,0.1 (in the order of the problem's parameter groups)")
    arch.add_argument("--groups", type=_positive(int), help="LSTMs, one per parameter group (default: the "
                      "problem's; cifar has 2, --groups 1 shares one LSTM)")
    arch.add_argument("--gac", type=int, help="global averaging cells per LSTM layer (information sharing; 2 when only --memory is given)")
    arch.add_argument("--memory", choices=("none", "bfgs", "lbfgs"), help="NTM-BFGS memory: full matrix or window")
    arch.add_argument("--read-bias", choices=("random", "zero"), help="where the memory's read keys' biases start "
                      "(default random, nn.Linear's draw; zero: no step shared by every coordinate at first)")
    arch.add_argument("--update-bias", choices=("random", "zero"), help="where the bias of LSTM+GAC's or "
                      "NTM-BFGS's update channel starts (default random; zero: likewise; needs --gac or --memory)")


def parser() -> argparse.ArgumentParser:
    from l2l.book.presets import SCALES

    p = argparse.ArgumentParser(prog="python -m l2l", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        q.add_argument("--device", type=_device, default="cpu", help="cpu, cuda, cuda:1, ...")
        q.add_argument("--scale", choices=SCALES, default="book")

    t = sub.add_parser("train", help="meta-train a learned optimizer (resumes an unfinished run)")
    t.add_argument("--problem", required=True, help="e.g. quadratic, mnist:hidden=20")
    common(t)
    t.add_argument("--out", help="checkpoint file (default: data/checkpoints/<problem>[-<each option that "
                                 "changes the scale's recipe>].pt)")
    t.add_argument("--seeds", type=_integers("seeds", "0,1,2", least=0),
                   help="train the recipe once per seed (e.g. 0,1,2), all at once as one population (the LSTM "
                        "batched over them: pays on a GPU), each into its own default checkpoint")
    t.add_argument("--force", action="store_true",
                   help="train afresh even over a finished checkpoint or one of another recipe")
    _recipe_options(t)
    _running_options(t)
    t.set_defaults(func=cmd_train)

    w = sub.add_parser("sweep", help="random search over the meta-learning rate (the paper's protocol), "
                                     "each trial a resumable checkpoint; the winner by validation")
    w.add_argument("--problem", required=True, help="e.g. mnist")
    common(w)
    w.add_argument("--trials", type=_positive(int), default=8, help="recipes tried (default 8)")
    w.add_argument("--low", type=_positive(float), default=1e-4, help="smallest meta-learning rate drawn")
    w.add_argument("--high", type=_positive(float), default=1e-2, help="largest meta-learning rate drawn")
    w.add_argument("--sweep-seed", type=int, default=0, help="names the draws (and the trials' files)")
    w.add_argument("--population", type=_positive(int), default=1,
                   help="trials trained at once in one process, the LSTM batched over them (default 1; pays "
                        "on a GPU and on small problems, not for MNIST on a CPU)")
    w.add_argument("--only", type=_integers("trial numbers", "3,5", least=0),
                   help="train these trials alone (e.g. 3,5), so that two processes or "
                   "machines share a sweep; the table still reads every trial")
    w.add_argument("--status", action="store_true",
                   help="train nothing: write and print the table from the trials' checkpoints as they are")
    w.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="ray: each population a Ray Tune trial, as many at once as the cluster holds "
                        "(pip install -e '.[sweep]'; RAY_ADDRESS names a cluster)")
    _recipe_options(w)
    _running_options(w)
    w.set_defaults(func=cmd_sweep)

    e = sub.add_parser("evaluate", help="test curves of trained optimizers and tuned baselines")
    e.add_argument("--problem", help="SPEC to test on (default: the first optimizer's training problem)")
    e.add_argument("--optimizer", action="append", help="checkpoint of a trained optimizer (repeatable)")
    e.add_argument("--which", choices=("best", "last"), default="best",
                   help="the early-stopped (best) or the final (last) weights")
    e.add_argument("--baselines", type=_baselines, default=list(BASELINES),
                   help="comma-separated, from sgd,rmsprop,adam,nag (default all)")
    e.add_argument("--label", action="append", help="name of each --optimizer in the output (repeatable)")
    e.add_argument("--steps", type=_positive(int), help="optimizee steps per test run (default: the scale's, else 100)")
    e.add_argument("--compile", action="store_true", help="torch.compile the learned optimizers' steps")
    e.add_argument("--runs", type=_positive(int), help="test functions (default: the scale's)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-cache", action="store_true",
                   help="retune and rerun instead of reusing tuned rates and curves in data/results")
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.add_argument("--json", required=True, help="output file")
    common(e)
    e.set_defaults(func=cmd_evaluate)

    g = sub.add_parser("ledger", help="which of the paper's claims hold, computed from data/results")
    g.add_argument("--results", help="results folder (default: the project's data/results)")
    g.set_defaults(func=cmd_ledger)

    c = sub.add_parser("cache", help="which cached curves and tuned rates the code and machine still reproduce")
    c.add_argument("--results", help="results folder (default: the project's data/results); the checkpoints "
                   "are read from the checkpoints folder beside it")
    c.add_argument("--all", action="store_true", help="list the current entries too")
    c.add_argument("--prune", action="store_true",
                   help="delete the cached curves of learned optimizers that no checkpoint holds (in "
                        "data/checkpoints, or beside --results)")
    c.set_defaults(func=cmd_cache)

    b = sub.add_parser("bench", help="meta-training throughput: reference against ours")
    b.add_argument("--device", type=_device, default="cpu")
    b.add_argument("--updates", type=_positive(int), default=5, help="timed meta-updates per row and round")
    b.add_argument("--rounds", type=_positive(int), help="rounds in which a case's implementations take turns; "
                   "a row gives its median round (default: 3 on the CPU, 1 on a GPU)")
    b.add_argument("--runs", type=_integers("runs", "1,16", least=1), default=(1,),
                   help="optimizee runs batched per meta-update, e.g. 1,16")
    b.add_argument("--json", help="also write the figures here")
    b.set_defaults(func=cmd_bench)

    k = sub.add_parser("book", help="execute the chapters with papermill (and build the HTML)")
    common(k)
    k.add_argument("--retrain", action="store_true", help="meta-train, tune and test again (each checkpoint once)")
    k.add_argument("--recompute", action="store_true",
                   help="tune and test again, reusing the trained optimizers (no cached rates or curves)")
    k.add_argument("--out", default=".", help="book root (default .): book/*.ipynb and the chapters' data/ "
                   "(checkpoints, results) go under it, so at book scale another root starts without the "
                   "committed optimizers and trains them")
    k.add_argument("--chapters", nargs="*", help="notebook names (default: every chapter in _toc.yml)")
    k.add_argument("--build", action="store_true", help="then run jupyter-book build")
    k.add_argument("--jobs", type=_positive(int), default=1,
                   help="chapters executed at once, each kernel on OMP_NUM_THREADS/jobs threads (default 1)")
    k.set_defaults(func=cmd_book)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if getattr(args, "no_progress", False):  # instead of a bar, a line per validation (background runs' logs)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                            stream=sys.stdout)
    try:
        args.func(args)
    except (UserError, FileNotFoundError) as error:  # the user's to fix: one line. Bugs keep their traceback.
        p.exit(2, f"{p.prog}: error: {error}\n")
    except KeyboardInterrupt:  # Ctrl-C or `kill` (`_terminate_saves`): what finished is saved
        p.exit(130, f"{p.prog}: interrupted; training saved its last whole epoch, and testing every finished "
                    "curve: the same command continues\n")


if __name__ == "__main__":
    main()
