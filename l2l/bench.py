"""`python -m l2l bench`: meta-training throughput, the plain reference against the project's path.

Both implementations run the same meta-updates (one unroll of K optimizee steps, the backward
pass and an Adam step on φ) on the same functions, in one process, after a warm-up. Reported:
optimizee steps per second (R batched runs count as R steps each), milliseconds per meta-update,
and the memory autograd keeps for the backward pass of one unroll (saved tensors, deduplicated).
The population row trains P optimizers at once (`l2l.training.population`), each on R runs of its
own, and counts the steps of all of them: against the `ours` row it says what batching trials costs
or saves per trial.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from l2l.optimizers import LSTMConfig, LSTMOptimizer
from l2l.optimizers.population import Population
from l2l.optimizers.reference import reference_init, reference_unroll
from l2l.problems import make_problem, stack_tasks
from l2l.runtime import atomic_write, hardware
from l2l.training import GraphedUnroll, TrainConfig, truncate, unroll
from l2l.training.population import GraphedPopulation, population_updates

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


def impl_label(impl: str, members: int, device) -> str:
    """A row's implementation as the table names it: a population says its size and, on a GPU,
    that its unrolls replay captured graphs."""
    if not impl.endswith("population"):
        return impl
    return f"{impl} of {members}" + (" (graphed)" if torch.device(device).type == "cuda" else "")


def time_meta_updates(spec: str, runs: int, impl: str, device="cpu", unroll_steps=20,
                      updates=5, warmup=2, members: int = 4) -> dict:
    """Time `updates` meta-updates of one implementation: 'reference', 'ours' (eager),
    'compiled' (ours through torch.compile; the warm-up absorbs the compilation), 'graphed'
    (ours, each unroll one captured CUDA graph; GPU only), 'population' (`members` optimizers
    at once, each with its own Adam, on `runs` runs each; on a GPU through captured graphs) or
    'compiled population' (the same, its batched step through torch.compile; CPU)."""
    problem, on_gpu = make_problem(spec), torch.device(device).type == "cuda"
    population = impl.endswith("population")
    if impl.startswith("compiled"):
        torch._dynamo.reset()  # each case compiles afresh: no recompile limit across cases
    config = LSTMConfig(**problem.optimizer_defaults)
    opt = LSTMOptimizer(config, compile=impl == "compiled").to(device)
    meta_opt = torch.optim.Adam(opt.parameters(), lr=1e-3)
    task = problem.sample(runs, seed=0, device=device)
    if population:
        opt = Population([LSTMOptimizer(config, seed=k).to(device) for k in range(members)],
                         compile=impl == "compiled population")
        task = stack_tasks([problem.sample(runs, seed=k, device=device) for k in range(members)])
        meta_opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in opt.members]
        configs = [TrainConfig(spec, steps=unroll_steps, unroll=unroll_steps)] * members
        if on_gpu:  # as training runs it there: one captured graph per unroll
            capture = stack_tasks([problem.sample(runs, seed=100 + k, device=device) for k in range(members)])
            updates_of = GraphedPopulation(opt, capture, configs).meta_updates(task, meta_opts)
        else:
            updates_of = population_updates(opt, meta_opts, task, configs)
    theta = task.theta
    state = reference_init(opt, theta) if impl == "reference" else opt.init(theta)
    _, grad = task.loss_and_grad(theta)
    memory = {"bytes": 0}

    if impl == "graphed":
        config = TrainConfig(spec, steps=unroll_steps * (updates + warmup), unroll=unroll_steps)
        graphed = GraphedUnroll(opt, problem.sample(runs, seed=1, device=device), config)
        graphed.start(task)

    def meta_update(count_memory=False):
        nonlocal theta, state, grad
        if impl == "graphed":  # the capture allocates its memory once; saved tensors are not counted
            graphed.meta_update(task, meta_opt)
            return
        with saved_bytes(memory) if count_memory else nullcontext():
            if population:  # its own meta-backward and per-member Adam steps
                next(updates_of)
                return
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
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(updates):
        meta_update()
    _sync(device)
    seconds = (time.perf_counter() - start) / updates
    row = {
        "problem": problem.spec, "coords": task.theta.shape[1], "runs": runs,
        "impl": impl_label(impl, members, device),
        "steps_per_s": unroll_steps * task.runs / seconds, "ms_per_meta_update": 1000 * seconds,
        "autograd_MB": math.nan if impl == "graphed" or (population and on_gpu) else memory["bytes"] / 2**20,
    }
    if population:
        row["members"] = members
    row |= {"unroll": unroll_steps, "warmup_updates": warmup, "timed_updates": updates}  # the protocol
    if torch.device(device).type == "cpu":
        row["threads"] = torch.get_num_threads()
    if torch.device(device).type == "cuda":
        row["peak_cuda_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def bench(device="cpu", cases=DEFAULT_CASES, updates=5,
          impls=("reference", "ours", "compiled", "population", "compiled population"),
          json_out: str | Path | None = None, verbose: bool = True, members: int | None = None) -> list[dict]:
    """Time every implementation on every (problem, runs) case; with `verbose`, print each row as
    it is measured and the table at the end. The population has `members` optimizers (default 4 on
    the CPU, 16 on a GPU)."""
    members = members or (16 if torch.device(device).type == "cuda" else 4)
    torch.manual_seed(0)
    if torch.device(device).type == "cuda":  # there a population replays captured graphs instead
        impls = (*(i for i in impls if i != "compiled population"), *(() if "graphed" in impls else ("graphed",)))
    rows = []
    for spec, runs in cases:
        group = [_measure(spec, runs, impl, device, updates, verbose, members) for impl in impls]
        for row in group[1:]:
            row["speedup"] = row["steps_per_s"] / group[0]["steps_per_s"]
        rows += group
        if json_out:  # after every case, so a long bench that breaks off keeps what it measured
            atomic_write(json_out, json.dumps({"device": hardware(device), "torch": torch.__version__,
                                               "rows": rows}, indent=1))
    if verbose:
        print(format_table(rows, f"{hardware(device)}, torch {torch.__version__}"))
    return rows


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
    kinds = {(r["timed_updates"], r["unroll"], r["warmup_updates"], r.get("threads")) for r in measured}
    return "\n\nTimed: " + "; ".join(
        f"{timed} meta-update{'s' * (timed != 1)} of {unroll} steps after {warmup} warm-up{'s' * (warmup != 1)}"
        + (f", {threads} CPU thread{'s' * (threads != 1)}" if threads else "")
        for timed, unroll, warmup, threads in sorted(kinds, key=str)) + " per row."


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
