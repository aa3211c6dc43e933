"""`python -m l2l bench`: meta-training throughput, the plain reference against the project's path.

Both implementations run the same meta-updates (one unroll of K optimizee steps, the backward
pass and an Adam step on φ) on the same functions, in one process, after a warm-up. Reported:
optimizee steps per second (R batched runs count as R steps each), milliseconds per meta-update,
and the memory autograd keeps for the backward pass of one unroll (saved tensors, deduplicated).
The population row trains P optimizers at once (`l2l.training.population`), each on R runs of its
own, and counts the steps of all of them: against the `ours` row it says what batching trials costs
or saves per trial. On the CPU it is cut in tiles as training cuts it (MNIST: one member a tile);
its autograd memory is then its largest tile's, what is held at once.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from l2l.errors import UserError
from l2l.evaluation.stats import paired
from l2l.optimizers import LSTMConfig, LSTMOptimizer
from l2l.optimizers.population import Population
from l2l.optimizers.reference import reference_init, reference_unroll
from l2l.problems import make_problem, stack_tasks
from l2l.runtime import atomic_write, hardware
from l2l.training import GraphedUnroll, TrainConfig, truncate, unroll
from l2l.training.population import GraphedPopulation, population_updates, tile_limit, tiles

DEFAULT_CASES = (("quadratic", 1), ("mnist", 1))


@contextmanager
def saved_bytes(counter: dict):
    """Count the bytes of tensors that autograd saves for backward (each storage once)."""
    seen = set()

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            counter["bytes"] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def impl_label(impl: str, members: int, device, tile: int | None = None) -> str:
    """A row's implementation as the table names it: a population says its size, how it was cut in
    tiles (`tile` members each), and, on a GPU, that its unrolls replay captured graphs."""
    if "population" not in impl:
        return impl
    one = impl.endswith(", one tile")
    return (f"{impl.removesuffix(', one tile')} of {members}"
            + (" in one tile" if one else f" in tiles of {tile}" if tile and tile < members else "")
            + (" (graphed)" if torch.device(device).type == "cuda" else ""))


def prepare(spec: str, runs: int, impl: str, device="cpu", unroll_steps=20, warmup=2, members: int = 4):
    """One implementation's meta-update on `runs` runs, warmed up (`warmup` meta-updates; the first
    counts autograd's memory, and a compiled path compiles there): 'reference', 'ours' (eager),
    'compiled' (ours through torch.compile), 'graphed' (ours, each unroll one captured CUDA graph;
    GPU only), 'population' (`members` optimizers at once, each with its own Adam, on `runs` runs
    each; on a GPU through captured graphs), 'compiled population' (the same, its batched step
    through torch.compile; CPU) or 'compiled population, one tile' (CPU: all members in one batch).
    A population is cut in tiles as training cuts it (`l2l.training.population.tiles`), one tile
    after another. Returns the meta-update and `row(seconds)`, the table's row for a time per update."""
    problem, on_gpu = make_problem(spec), torch.device(device).type == "cuda"
    population = "population" in impl
    config = LSTMConfig(**problem.optimizer_defaults)
    task = problem.sample(runs, seed=0, device=device)
    if population:  # as training runs it: tile by tile, on a GPU one captured graph per unroll
        groups = tiles(members, task.theta.numel(), None if impl.endswith("one tile") else tile_limit(device))
        updates_of = [_tile_updates(problem, runs, list(ks), config, impl.startswith("compiled"), unroll_steps, device)
                      for ks in groups]
    else:  # one optimizer on `task`
        opt = LSTMOptimizer(config, compile=impl == "compiled").to(device)
        meta_opt = torch.optim.Adam(opt.parameters(), lr=1e-3)
        theta = task.theta
        state = reference_init(opt, theta) if impl == "reference" else opt.init(theta)
        _, grad = task.loss_and_grad(theta)
    memory = {"bytes": 0}

    if impl == "graphed":
        config = TrainConfig(spec, steps=unroll_steps, unroll=unroll_steps)  # only its unroll is read
        graphed = GraphedUnroll(opt, problem.sample(runs, seed=1, device=device), config)
        graphed.start(task)

    def meta_update(count_memory=False):
        nonlocal theta, state, grad
        if impl == "graphed":  # the capture allocates its memory once; saved tensors are not counted
            graphed.meta_update(task, meta_opt)
            return
        if population:  # each tile's own meta-backward and per-member Adam steps; memory: the largest tile's
            for tile_updates in updates_of:
                held = {"bytes": 0}
                with saved_bytes(held) if count_memory else nullcontext():
                    next(tile_updates)
                memory["bytes"] = max(memory["bytes"], held["bytes"])
            return
        with saved_bytes(memory) if count_memory else nullcontext():
            if impl == "reference":
                loss, _, theta, state = reference_unroll(opt, task, theta, state, unroll_steps)
            else:
                loss, _, theta, state, grad = unroll(opt, task, theta, state, grad, unroll_steps)
        meta_opt.zero_grad(set_to_none=True)
        loss.backward()
        meta_opt.step()
        theta, state = truncate(theta, state)

    for i in range(warmup):
        meta_update(count_memory=i == 0)
    _sync(device)

    def row(seconds: float) -> dict:
        out = {
            "problem": problem.spec, "coords": task.theta.shape[1], "runs": runs,
            "impl": impl_label(impl, members, device, len(groups[0]) if population else None),
            "steps_per_s": unroll_steps * runs * (members if population else 1) / seconds,
            "ms_per_meta_update": 1000 * seconds,
            "autograd_MB": math.nan if impl == "graphed" or (population and on_gpu) else memory["bytes"] / 2**20,
        }
        if population:
            out["members"], out["tile"] = members, len(groups[0])
        out |= {"unroll": unroll_steps, "warmup_updates": warmup}
        if on_gpu:
            out["peak_cuda_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            out["threads"] = torch.get_num_threads()
        return out

    return meta_update, row


def seconds_per_update(meta_update, updates: int, device) -> float:
    """Wall seconds per meta-update over `updates` of them (a GPU synchronised at both ends)."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(updates):
        meta_update()
    _sync(device)
    return (time.perf_counter() - start) / updates


def time_meta_updates(spec: str, runs: int, impl: str, device="cpu", unroll_steps=20,
                      updates=5, warmup=2, members: int = 4) -> dict:
    """The row of one implementation (`prepare`) timed over `updates` meta-updates, alone."""
    if impl.startswith("compiled"):
        torch._dynamo.reset()  # each case compiles afresh: no recompile limit across cases
    meta_update, row = prepare(spec, runs, impl, device, unroll_steps, warmup, members)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return row(seconds_per_update(meta_update, updates, device)) | {"timed_updates": updates}


def _tile_updates(problem, runs: int, seeds: list[int], config: LSTMConfig, compile: bool, unroll_steps: int, device):
    """The meta-updates of one tile of a bench population: members and tasks seeded by `seeds`."""
    pop = Population([LSTMOptimizer(config, seed=k).to(device) for k in seeds], compile=compile)
    task = stack_tasks([problem.sample(runs, seed=k, device=device) for k in seeds])
    meta_opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in pop.members]
    configs = [TrainConfig(problem.spec, steps=unroll_steps, unroll=unroll_steps)] * len(seeds)
    if torch.device(device).type != "cuda":
        return population_updates(pop, meta_opts, task, configs)
    capture = stack_tasks([problem.sample(runs, seed=100 + k, device=device) for k in seeds])
    return GraphedPopulation(pop, capture, configs).meta_updates(task, meta_opts)


def bench(device="cpu", cases=DEFAULT_CASES, updates=5,
          impls=("reference", "ours", "compiled", "population", "compiled population", "compiled population, one tile"),
          json_out: str | Path | None = None, verbose: bool = True, members: int | None = None,
          rounds: int | None = None) -> list[dict]:
    """Time every implementation on every (problem, runs) case; with `verbose`, print each row as
    it is measured and the table at the end. The population has `members` optimizers (default 4 on
    the CPU, 16 on a GPU). With `rounds` > 1 (default 3 on the CPU, whose timings drift with what
    else its machine runs, 1 on a GPU) a case's implementations are all prepared, then timed in
    turn, `updates` meta-updates each, round after round; a row gives the median round. A case
    whose population is one tile anyway has no 'one tile' row."""
    on_gpu = torch.device(device).type == "cuda"
    members = members or (16 if on_gpu else 4)
    rounds = (1 if on_gpu else 3) if rounds is None else rounds
    if rounds < 1 or updates < 1:
        raise UserError(f"bench needs at least one round and one update, got {rounds} and {updates}")
    torch.manual_seed(0)
    if on_gpu:  # there a population replays captured graphs instead
        impls = (*(i for i in impls if not i.startswith("compiled population")),
                 *(() if "graphed" in impls else ("graphed",)))
    rows = []
    for spec, runs in cases:
        columns = make_problem(spec).sample(runs, seed=0).theta.numel()
        single_tile = len(tiles(members, columns, tile_limit(device))) == 1
        kept = [i for i in impls if not (i.endswith("one tile") and single_tile)]
        if rounds == 1:
            group = [_measure(spec, runs, impl, device, updates, verbose, members) for impl in kept]
        else:
            group = _interleaved(spec, runs, kept, device, updates, rounds, verbose, members)
        for row in group[1:]:
            row["speedup"] = row["steps_per_s"] / group[0]["steps_per_s"]
        rows += group
        if json_out:  # after every case, so a long bench that breaks off keeps what it measured
            atomic_write(json_out, json.dumps({"device": hardware(device), "torch": torch.__version__,
                                               "rows": rows}, indent=1))
    if verbose:
        print(format_table(rows, f"{hardware(device)}, torch {torch.__version__}"))
    return rows


def _interleaved(spec: str, runs: int, impls, device, updates: int, rounds: int, verbose: bool,
                 members: int) -> list[dict]:
    """A case's rows, its implementations timed in turn for `rounds` rounds: each row's time is its
    median round, and `ms_rounds` keeps every round."""
    torch._dynamo.reset()  # the case's compiled paths compile afresh, and only once
    # each compiled path keeps its own graphs (a few each: first step of an unroll, batched or not)
    with torch._dynamo.config.patch(recompile_limit=8 * len(impls)):
        prepared = [prepare(spec, runs, impl, device, members=members) for impl in impls]
        times = [[] for _ in impls]
        for _ in range(rounds):
            for (meta_update, _), kept in zip(prepared, times):
                kept.append(seconds_per_update(meta_update, updates, device))
    group = []
    for (_, row), kept in zip(prepared, times):
        group.append(row(statistics.median(kept)) | {
            "timed_updates": updates, "rounds": rounds, "ms_rounds": [1000 * t for t in kept]})
        if verbose:
            print(f"{spec} runs={runs} {group[-1]['impl']}: {group[-1]['steps_per_s']:,.0f} steps/s", flush=True)
    return group


def _measure(spec: str, runs: int, impl: str, device, updates: int, verbose: bool, members: int = 4) -> dict:
    """One row of the table; a case that does not fit in the GPU's memory is recorded as such."""
    try:
        row = time_meta_updates(spec, runs, impl, device, updates=updates, members=members)
    except torch.OutOfMemoryError:
        row = {"problem": spec, "coords": None, "runs": runs,
               "impl": impl_label(impl, members, device), "steps_per_s": math.nan,
               "ms_per_meta_update": math.nan, "autograd_MB": math.nan, "error": "out of memory"}
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    if verbose:
        print(f"{row['problem']} runs={runs} {row['impl']}: {row['steps_per_s']:,.0f} steps/s", flush=True)
    return row


def per_trial(pop: dict, alone: dict) -> dict:
    """What a member of the population `pop` costs against one optimizer trained `alone` (two bench
    rows), paired round by round: the rounds were interleaved, so round k of both ran at about the
    same time. Returns the geometric mean of the per-round ratios with its 95% interval (the book's
    paired comparison, `evaluation.stats.paired`, on their logarithms) and the verdict: 'less' or
    'more' per trial when the interval excludes 1, else 'level'. With a single round: the rows'
    ratio, no interval and no verdict."""
    if min(len(pop.get("ms_rounds", [])), len(alone.get("ms_rounds", []))) < 2:
        ratio = pop["ms_per_meta_update"] / pop["members"] / alone["ms_per_meta_update"]
        return {"ratio": ratio, "low": math.nan, "high": math.nan, "verdict": None}
    p = paired([math.log(ms / pop["members"]) for ms in pop["ms_rounds"]], [math.log(ms) for ms in alone["ms_rounds"]])
    return {"ratio": math.exp(p.diff), "low": math.exp(p.low), "high": math.exp(p.high),
            "verdict": {"holds": "less", "fails": "more", "tie": "level"}[p.verdict]}


def format_table(rows: list[dict], where: str) -> str:
    """A Markdown table of bench rows measured on `where` (hardware and software); the speed-up is
    against the reference of the same case."""
    peak = any("peak_cuda_MB" in r for r in rows)
    lines = [f"Meta-training throughput on {where}."
             + (" A population row counts the steps of all its optimizers, each on `runs` runs of its own."
                if any("population" in r["impl"] for r in rows) else ""), "",
             "| problem (coordinates) | runs | implementation | steps/s | speed-up | ms/update | autograd MB |"
             + (" peak GPU MB |" if peak else ""),
             "| --- | ---: | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if peak else "")]
    mb = lambda x: "–" if x is None or not math.isfinite(x) else f"{x:,.1f}" if x < 10 else f"{x:,.0f}"
    for r in rows:
        problem = r["problem"] if r.get("coords") is None else f"{r['problem']} ({r['coords']:,})"
        if "error" in r:
            lines.append(f"| {problem} | {r['runs']} | {r['impl']} | {r['error']} | | | |" + (" |" if peak else ""))
            continue
        speedup = f"{r['speedup']:.2f}×" if "speedup" in r else ""
        lines.append(f"| {problem} | {r['runs']} | {r['impl']} | {r['steps_per_s']:,.0f} | {speedup} | "
                     f"{r['ms_per_meta_update']:,.1f} | {mb(r['autograd_MB'])} |"
                     + (f" {mb(r.get('peak_cuda_MB'))} |" if peak else ""))
    return "\n".join(lines) + protocol_text(rows)


def protocol_text(rows: list[dict]) -> str:
    """How the rows were timed, as each row records it; rows from files written before bench recorded
    it give nothing."""
    measured = [r for r in rows if "timed_updates" in r]
    if not measured:
        return ""
    kinds = {(r.get("rounds", 1), r["timed_updates"], r["unroll"], r["warmup_updates"], r.get("threads"))
             for r in measured}
    return "\n\nTimed: " + "; ".join(
        (f"the median of {rounds} interleaved rounds of " if rounds > 1 else "")
        + f"{timed} meta-update{'s' * (timed != 1)} of {unroll} steps after {warmup} warm-up{'s' * (warmup != 1)}"
        + (f", {threads} CPU thread{'s' * (threads != 1)}" if threads else "")
        for rounds, timed, unroll, warmup, threads in sorted(kinds, key=str)) + " per row."


def elementwise_probe(device="cpu", n: int = 15_910, hidden: int = 20, repeats: int = 50, members: int = 4) -> dict:
    """Microseconds for the element-wise work of one LSTM layer in each layout: sigmoid on one gate
    as a strided slice of [N, 4H] (nn.LSTMCell's layout) and as a contiguous block of [4H, N]
    (ours), and tanh against sigmoid on a contiguous [H, N]; then one product of all four gates
    (into a buffer, so no allocation is timed) for one optimizer and, per member, for a population
    of `members`, whose tensors are that many times larger (what the caches hold shows there)."""
    rows = torch.randn(n, 4 * hidden, device=device)
    cols = torch.randn(4 * hidden, n, device=device)
    block = torch.randn(hidden, n, device=device)
    stacked = torch.randn(2, members, 4 * hidden, n, device=device)  # two operands
    into = torch.empty(members, 4 * hidden, n, device=device)

    def us(fn):
        fn()
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        _sync(device)
        return 1e6 * (time.perf_counter() - start) / repeats

    return {
        "sigmoid, strided gate of [N, 4H]": us(lambda: torch.sigmoid(rows[:, :hidden])),
        "sigmoid, contiguous gate of [4H, N]": us(lambda: torch.sigmoid(cols[:hidden])),
        "tanh on [H, N]": us(lambda: torch.tanh(block)),
        "sigmoid on [H, N]": us(lambda: torch.sigmoid(block)),
        "product on [4H, N], one optimizer": us(lambda: torch.mul(stacked[0, 0], stacked[1, 0], out=into[0])),
        f"product on [{members}, 4H, N], per member of a population of {members}":
            us(lambda: torch.mul(stacked[0], stacked[1], out=into)) / members,
    }
