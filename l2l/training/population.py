"""Meta-training a population: several trials (recipes that differ in meta-learning rate, seed,
schedule, clipping or length) trained at once in one process, each as if alone.

Every epoch, each unfinished trial draws its own next task (its seed, its epoch); the tasks are
stacked (`l2l.problems.stack_tasks`) and one `Population` optimizer steps all their runs together.
After each unroll one backward pass fills every member's own meta-gradient; each member is then
clipped and stepped by its own Adam, at its own rate, and skipped alone when its numbers are not
finite. Validation, checkpoints and resuming are each trial's own (`Trial`), so a trial trained in
a population is an ordinary checkpoint: it resumes alone or in another population.

On the CPU a population is batched in tiles of at most `CPU_TILE_COLUMNS` columns (coordinates ×
runs) each, one tile's unroll after another: a batched step's tensors grow with the population and
leave the caches, so past that size a member costs more batched than alone (chapter 90 measures
it). Quadratics then batch a hundred members at once; an MNIST member (15,910 coordinates per run)
is a tile of its own and costs what it costs alone. On a GPU the whole population is one tile.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import torch

from l2l.errors import UserError
from l2l.loop import begin
from l2l.optimizers import SharingConfig
from l2l.optimizers.population import Population
from l2l.problems import Task, derive_seed, make_problem, stack_tasks
from l2l.runtime import progress as progress_bar
from l2l.training.config import TrainConfig
from l2l.training.meta_train import Trial, check_minutes, meta_train, out_of_time, training
from l2l.training.unroll import GraphedUnroll, copy_into, truncate, unroll


CPU_TILE_COLUMNS = 2**14  # [4H, 2^14] floats are 5 MB for H = 20: a step's tensors stay in a 32 MB L3


def tile_limit(device) -> int | None:
    """The columns one batched tile may hold on `device`: `CPU_TILE_COLUMNS` on the CPU, no limit on a GPU."""
    return None if torch.device(device).type == "cuda" else CPU_TILE_COLUMNS


def tiles(members: int, columns: int, limit: int | None) -> list[range]:
    """`members` members of `columns` columns each, in consecutive tiles of at most `limit` columns
    (at least one member a tile); one tile without a limit."""
    if members < 1 or columns < 1:
        raise UserError(f"tiles need members and columns, got {members} and {columns}")
    per = members if limit is None else max(1, limit // columns)
    return [range(k, min(k + per, members)) for k in range(0, members, per)]


def population_updates(pop: Population, meta_opts: list, task: Task, configs: list[TrainConfig]) -> Iterator[list[float]]:
    """Meta-updates of every member along one run of the stacked `task`, one per unroll: yields
    the members' meta-losses. A member whose meta-loss or meta-gradient is not finite gets NaN and
    takes no more steps in this run, as `l2l.training.unroll.meta_updates` abandons it alone."""
    unroll_steps, alive = configs[0].unroll, [True] * len(pop)
    theta, state, _, grad = begin(task, pop)
    while any(alive):
        surrogate, losses, theta, state, grad = unroll(pop, task, theta, state, grad, unroll_steps)
        meta_losses = losses.reshape(unroll_steps, len(pop), -1).sum(0).mean(-1)  # [P]
        for meta_opt in meta_opts:
            meta_opt.zero_grad(set_to_none=True)
        surrogate.backward()  # members share no weights: each φ gets its own meta-gradient only
        norms = torch.stack([torch.nn.utils.clip_grad_norm_(m.parameters(), c.clip or math.inf)
                             for m, c in zip(pop.members, configs)])
        values = step_finite(meta_opts, alive, meta_losses, norms)
        theta, state = truncate(theta, state)
        yield values


def step_finite(meta_opts: list, alive: list[bool], meta_losses: torch.Tensor, norms: torch.Tensor) -> list[float]:
    """Adam's step for each member still alive whose meta-loss and clipped meta-gradient's norm are
    finite; any other member is abandoned for the rest of the run (`alive` updated in place) and
    gets NaN. Returns the members' meta-losses. One rule for the eager and the graphed paths."""
    finite = (torch.isfinite(meta_losses) & torch.isfinite(norms)).tolist()
    values = meta_losses.tolist()
    for k, meta_opt in enumerate(meta_opts):
        if alive[k] and finite[k]:
            meta_opt.step()
        else:
            alive[k], values[k] = False, math.nan
    return values


class GraphedPopulation(GraphedUnroll):
    """`GraphedUnroll` for a population: the captured unroll clips each member's meta-gradient by
    its own limit, and each replay steps the members whose numbers are finite, each with its own
    Adam (`population_updates`' rules). One capture serves one set of members; a population whose
    membership changes (a trial finished) is captured anew.

    Args:
        task: a stacked task of the family for the members (only traced).
    """

    def __init__(self, pop: Population, task: Task, configs: list[TrainConfig]):
        self.clips = [c.clip or math.inf for c in configs]  # before the capture, which reads them
        super().__init__(pop, task, configs[0])

    def _clip(self) -> torch.Tensor:
        """Each member's meta-gradient clipped by its own limit; their norms before clipping."""
        return torch.stack([torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
                            for m, clip in zip(self.opt.members, self.clips)])

    def meta_updates(self, task: Task, meta_opts: list) -> Iterator[list[float]]:
        """`population_updates` through the graph: a run of the stacked `task`, one replay per unroll."""
        self.start(task)
        alive = [True] * len(self.opt)
        while any(alive):
            copy_into(self.inputs[3], [task.batch() for _ in range(self.unroll)])
            self.graph.replay()
            losses, norms, ends = self.outputs
            meta_losses = losses.reshape(self.unroll, len(self.opt), -1).sum(0).mean(-1)
            values = step_finite(meta_opts, alive, meta_losses, norms)
            copy_into(self.inputs[:3], ends)  # the truncation: the next unroll starts here
            yield values


def population_epoch(pop: Population, meta_opts: list, task: Task, configs: list[TrainConfig],
                     graphed: GraphedPopulation | None = None) -> list[float]:
    """One epoch of every member (`l2l.training.unroll.train_epoch` for a population), through the
    captured graph with `graphed`: each member's mean meta-loss per unroll, or NaN when it was
    abandoned."""
    count = configs[0].steps // configs[0].unroll
    totals = [0.0] * len(pop)
    updates = graphed.meta_updates(task, meta_opts) if graphed else population_updates(pop, meta_opts, task, configs)
    for _, losses in zip(range(count), updates):
        totals = [t + x for t, x in zip(totals, losses)]  # NaN stays NaN
    return [t / count if math.isfinite(t) else math.nan for t in totals]


def check_population(configs: list[TrainConfig]):
    """Trials that can share a population: one problem, one architecture (a plain LSTM), one run
    length, unroll and batch of runs. They may differ in meta-learning rate, schedule, clipping,
    epochs, validation and seed."""
    if not configs:
        raise UserError("a population needs at least one trial")
    if any(isinstance(c.optimizer, SharingConfig) or c.optimizer.groups > 1 for c in configs):
        raise UserError("a population trains plain coordinatewise LSTMs (groups=1, no information sharing): "
                        "train other architectures one trial at a time (train: --seed; sweep: --population 1)")
    if any(c.curriculum or c.imitation for c in configs):
        raise UserError("a population trains at one horizon without imitation: train curricula and "
                        "imitation one trial at a time")
    shared = ("problem", "optimizer", "steps", "unroll", "runs")
    for name in shared:
        values = {repr(getattr(c, name)) for c in configs}
        if len(values) > 1:
            raise UserError(f"trials in one population must share {', '.join(shared)}; they differ in "
                            f"{name}: {', '.join(sorted(values))}")


def train_population(configs: list[TrainConfig], paths: list[str | Path | None], device: str = "cpu",
                     fresh: bool = False, progress: bool = True, max_minutes: float | None = None,
                     compile: bool = False, cuda_graphs: bool | None = None,
                     tile_columns: int | None = None) -> list[dict]:
    """Meta-train the trials `configs` together, each checkpointed to its path (`meta_train`'s
    rules: resumed, extended, or an error for another recipe unless `fresh`). Trials may be at
    different epochs; each finishes at its own length and leaves the population. With
    `max_minutes`, stops (checkpointed) after that much wall time. `cuda_graphs` (default: on a
    GPU) replays each unroll of a tile as one captured graph (`GraphedPopulation`). Each epoch the
    population trains in tiles of at most `tile_columns` columns (`tiles`; default: `tile_limit`
    of the device). Returns the checkpoints.

    Each trial's wall time is the population's: they train at once, so none takes less.
    """
    check_minutes(max_minutes)
    check_population(configs)
    if len(paths) != len(configs):
        raise UserError(f"{len(configs)} trials need {len(configs)} checkpoint paths, got {len(paths)}")
    named = [Path(p) for p in paths if p]
    if len(set(named)) < len(named):
        raise UserError("trials of a population need distinct checkpoint paths")
    on_gpu = torch.device(device).type == "cuda"
    cuda_graphs = on_gpu if cuda_graphs is None else cuda_graphs
    if cuda_graphs and not on_gpu:
        raise UserError(f"CUDA graphs need a CUDA device, not {device!r}")
    with training(paths):  # each trial's lock, released however training ends
        problem = make_problem(configs[0].problem)
        trials = [Trial(c, p, device, fresh, compile) for c, p in zip(configs, paths)]
        total = sum(c.epochs for c in configs)
        bar = progress_bar(None, progress, initial=sum(t.epoch for t in trials), total=total,
                           desc=f"population of {len(trials)} on {problem.spec}", unit="epoch")
        for trial in trials:
            trial.begin()
        pending = [t for t in trials if not t.done]  # a finished checkpoint is read, never written again
        limit = tile_columns or tile_limit(device)
        members, groups = None, []
        try:
            while True:
                active = [t for t in trials if not t.done]
                if not active:
                    break
                tasks = [t.task(problem) for t in active]
                if active != members:  # the first epoch, or a trial has finished: a population of those left
                    members = active
                    groups = [(ks, *_tile([active[k] for k in ks], problem, device, compile, cuda_graphs))
                              for ks in tiles(len(active), tasks[0].theta.numel(), limit)]
                for ks, pop, graphed in groups:  # each tile's epoch, one after another
                    tile = [active[k] for k in ks]
                    losses = population_epoch(pop, [t.meta_opt for t in tile], stack_tasks([tasks[k] for k in ks]),
                                              [t.config for t in tile], graphed)
                    for trial, loss in zip(tile, losses):
                        postfix = trial.record(loss, population=len(active))
                        if postfix and len(trials) == 1:
                            bar.set_postfix(postfix)
                bar.update(len(active))
                if out_of_time(trials[0].start, max_minutes):
                    break
        except KeyboardInterrupt:
            for trial in pending:
                trial.interrupted()
            raise
        bar.close()
        for trial in pending:
            trial.save()
        return [t.safe for t in trials]


def _tile(tile: list[Trial], problem, device, compile: bool, cuda_graphs: bool) -> tuple:
    """A tile's `Population` and, with `cuda_graphs`, its captured unroll (else None)."""
    pop = Population([t.opt for t in tile], compile=compile)
    if not cuda_graphs:
        return pop, None
    capture = stack_tasks([problem.sample(t.config.runs, derive_seed(t.config.seed, "capture"), device) for t in tile])
    return pop, GraphedPopulation(pop, capture, [t.config for t in tile])


def train_group(configs: list[TrainConfig], paths: list[Path], device: str = "cpu", compile: bool = False,
                max_minutes: float | None = None, progress: bool = False,
                cuda_graphs: bool | None = None) -> list[dict]:
    """Trials trained together: alone through `meta_train`, several as a population."""
    if len(configs) == 1:
        return [meta_train(configs[0], paths[0], device=device, progress=progress, compile=compile,
                           max_minutes=max_minutes, cuda_graphs=cuda_graphs)]
    return train_population(configs, paths, device=device, progress=progress, max_minutes=max_minutes,
                            compile=compile, cuda_graphs=cuda_graphs)
