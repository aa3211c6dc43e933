"""Command line: headless reruns of everything the book shows.

    python -m l2l train    --problem SPEC [--scale smoke|paper] [--device cpu|cuda] [--out CKPT] [--resume]
    python -m l2l evaluate --problem SPEC --optimizer CKPT [--label NAME] [--baselines sgd,rmsprop,adam,nag]
                           [--steps N] [--runs N] [--seed S] [--device D] [--compile] --json OUT
    python -m l2l bench    [--device D] [--json OUT]
    python -m l2l book     [--scale S] [--device D] [--retrain] [--out DIR] [--build]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from l2l.optimizers import BASELINES


def _device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{name!r} requested but CUDA is not available here")
    try:
        torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    return name


def _baselines(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}")
    return names


def cmd_train(args):
    from dataclasses import replace

    from l2l.book.presets import checkpoint_path, train_config
    from l2l.optimizers import SharingConfig
    from l2l.training import meta_train

    overrides = {k: v for k, v in dict(epochs=args.epochs, runs=args.runs, meta_lr=args.meta_lr,
                                       seed=args.seed).items() if v is not None}
    config = train_config(args.problem, args.scale, **overrides)
    if args.groups is not None:
        config = replace(config, optimizer=replace(config.optimizer, groups=args.groups))
    sharing = {"gac": args.gac or 0, "memory": args.memory or "none"}
    if sharing != {"gac": 0, "memory": "none"}:
        config = replace(config, optimizer=SharingConfig(config.optimizer, **sharing))
    out = Path(args.out) if args.out else checkpoint_path(args.problem, args.scale)
    print(f"training {config}\n-> {out} on {args.device}", file=sys.stderr)
    ck = meta_train(config, out, device=args.device, resume=args.resume,
                    max_minutes=args.max_minutes, compile=args.compile, cuda_graphs=args.cuda_graphs)
    best = ck["best"]
    status = "done" if ck["epoch"] >= config.epochs else "stopped early; continue with --resume"
    print(f"epoch {ck['epoch']}/{config.epochs} ({status}); best validation final loss "
          f"{best['val']:.4g} at epoch {best['epoch']}; {ck['wall_time'] / 60:.1f} min; {out}")


def cmd_evaluate(args):
    from l2l.book.presets import test_settings
    from l2l.evaluation import compare, save
    from l2l.problems import make_problem
    from l2l.runtime import results_dir
    from l2l.training import load_checkpoint, optimizer_from

    problem = make_problem(args.problem)
    settings = test_settings(args.problem, args.scale)
    runs = args.runs or settings["runs"]
    steps = args.steps or settings.get("steps", 100)
    optimizers = {}
    for i, path in enumerate(args.optimizer or []):
        label = args.label[i] if args.label and i < len(args.label) else (
            "LSTM" if i == 0 else f"LSTM ({Path(path).stem})")
        optimizers[label] = optimizer_from(load_checkpoint(path, args.device), args.device,
                                           compile=args.compile)
    cache = None if args.no_cache else results_dir() / "tuned_lr.json"
    curves = compare(problem, optimizers, args.baselines, steps=steps, runs=runs, seed=args.seed,
                     tune_runs=settings["tune_runs"], grid=settings["grid"], device=args.device,
                     tune_steps=settings.get("tune_steps"), cache=cache,
                     curve_cache=None if args.no_cache else results_dir() / "curves")
    save(curves, args.json, problem=problem.spec, steps=steps, runs=runs, seed=args.seed,
         optimizer_checkpoints=args.optimizer or [])
    for label, c in curves.items():
        lr = f" (lr {c.lr:g})" if c.lr is not None else ""
        print(f"{label:>8}{lr}: final loss {c.final:.4g} ± {c.final_ci95:.2g}")
    print(f"-> {args.json}")


def cmd_bench(args):
    from l2l.bench import bench

    runs = [int(r) for r in args.runs.split(",")]
    if min(runs) < 1:
        raise ValueError("--runs must list positive numbers")
    cases = [(spec, r) for spec in ("quadratic", "mnist") for r in runs]
    bench(args.device, cases=cases, updates=args.updates, json_out=args.json)


def cmd_book(args):
    from l2l.book.runner import build, execute

    out = Path(args.out)
    execute(args.scale, args.device, out, retrain=args.retrain, names=args.chapters)
    if args.build:
        build(out, strict=args.scale == "smoke")


def parser() -> argparse.ArgumentParser:
    from l2l.book.presets import SCALES

    p = argparse.ArgumentParser(prog="python -m l2l", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        q.add_argument("--device", type=_device, default="cpu", help="cpu, cuda, cuda:1, ...")
        q.add_argument("--scale", choices=SCALES, default="paper")

    t = sub.add_parser("train", help="meta-train an LSTM optimizer")
    t.add_argument("--problem", required=True, help="e.g. quadratic, mnist:hidden=20")
    common(t)
    t.add_argument("--out", help="checkpoint file (default data/checkpoints/<problem>.pt)")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint at --out")
    t.add_argument("--epochs", type=int)
    t.add_argument("--runs", type=int, help="functions per meta-update")
    t.add_argument("--meta-lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--max-minutes", type=float, help="stop (checkpointed) after this long")
    t.add_argument("--groups", type=int, help="LSTMs, one per parameter group (default: the problem's; "
                                               "cifar has 2, --groups 1 shares one LSTM)")
    t.add_argument("--gac", type=int, help="global averaging cells per LSTM layer (information sharing)")
    t.add_argument("--memory", choices=("none", "bfgs", "lbfgs"), help="NTM-BFGS memory: full matrix or window")
    t.add_argument("--compile", action="store_true", help="torch.compile the optimizer's step (large problems)")
    t.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                   help="replay each unroll as one CUDA graph (default: on a GPU, for the plain LSTM)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test curves of trained optimizers and tuned baselines")
    e.add_argument("--problem", required=True)
    e.add_argument("--optimizer", action="append", help="checkpoint of a trained optimizer (repeatable)")
    e.add_argument("--baselines", type=_baselines, default=list(BASELINES),
                   help="comma-separated, from sgd,rmsprop,adam,nag (default all)")
    e.add_argument("--label", action="append", help="name of each --optimizer in the output (repeatable)")
    e.add_argument("--steps", type=int, help="optimizee steps per test run (default: the scale's, else 100)")
    e.add_argument("--compile", action="store_true", help="torch.compile the learned optimizers' steps")
    e.add_argument("--runs", type=int, help="test functions (default: the scale's)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-cache", action="store_true",
                   help="retune and rerun instead of reusing tuned rates and curves in data/results")
    e.add_argument("--json", required=True, help="output file")
    common(e)
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("bench", help="meta-training throughput: reference against ours")
    b.add_argument("--device", type=_device, default="cpu")
    b.add_argument("--updates", type=int, default=5, help="timed meta-updates per row")
    b.add_argument("--runs", default="1", help="optimizee runs batched per meta-update, e.g. 1,16")
    b.add_argument("--json", help="also write the figures here")
    b.set_defaults(func=cmd_bench)

    k = sub.add_parser("book", help="execute the chapters with papermill (and build the HTML)")
    common(k)
    k.add_argument("--retrain", action="store_true", help="recompute trained optimizers and tunings")
    k.add_argument("--out", default=".", help="book root to write book/*.ipynb under (default .)")
    k.add_argument("--chapters", nargs="*", help="notebook names (default: every chapter in _toc.yml)")
    k.add_argument("--build", action="store_true", help="then run jupyter-book build")
    k.set_defaults(func=cmd_book)
    return p


def main(argv=None):
    p = parser()
    try:
        args = p.parse_args(argv)
        for name in ("steps", "runs", "epochs", "updates"):
            value = getattr(args, name, None)
            if isinstance(value, int) and value < 1:
                raise ValueError(f"--{name} must be positive")
        args.func(args)
    except (ValueError, FileNotFoundError) as error:
        p.exit(2, f"{p.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
