"""Populations: P optimizers stepped and meta-trained at once give what each gives alone."""

import dataclasses
import math
import shutil

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import needs_mnist
from l2l.errors import UserError
from l2l.optimizers import LSTMConfig, LSTMOptimizer, SharingConfig
from l2l.optimizers.population import Population
from l2l.problems import make_problem, stack_tasks
from l2l.training import TrainConfig, draw_trials, load_checkpoint, meta_train, sweep, trial_path, unroll
from l2l.training.population import CPU_TILE_COLUMNS, check_population, tile_limit, tiles, train_population

SMALL = TrainConfig(problem="quadratic", optimizer=LSTMConfig(preprocess=None), epochs=6, runs=2,
                    eval_every=2, eval_runs=4, steps=20, unroll=5, meta_lr=3e-3)


def _members(config, seeds):
    return [LSTMOptimizer(config, seed=s) for s in seeds]


def _grads(opt):
    return [p.grad.clone() for p in opt.parameters()]


@pytest.mark.parametrize("spec,config", [("quadratic", LSTMConfig(preprocess=None)),
                                         ("quadratic:dim=5", LSTMConfig(output_scale=0.1))])
def test_population_unroll_gives_each_members_trajectory_and_meta_gradient(spec, config):
    problem = make_problem(spec)
    members = _members(config, seeds=[0, 1, 2])
    tasks = lambda: [problem.sample(runs=2, seed=10 + k) for k in range(3)]

    alone = []
    for opt, task in zip(members, tasks()):
        _, grad = task.loss_and_grad(task.theta)
        surrogate, losses, theta, _, _ = unroll(opt, task, task.theta, opt.init(task.theta), grad, 6)
        opt.zero_grad()
        surrogate.backward()
        alone.append((losses, theta, _grads(opt)))

    pop, task = Population(members), stack_tasks(tasks())
    _, grad = task.loss_and_grad(task.theta)
    surrogate, losses, theta, _, _ = unroll(pop, task, task.theta, pop.init(task.theta), grad, 6)
    pop.zero_grad()
    surrogate.backward()
    for k, (l_alone, th_alone, g_alone) in enumerate(alone):
        torch.testing.assert_close(losses[:, 2 * k: 2 * k + 2], l_alone)
        torch.testing.assert_close(theta[2 * k: 2 * k + 2], th_alone)
        for a, b in zip(_grads(members[k]), g_alone):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(g.abs().sum() > 0 for m in members for g in _grads(m))


def _same_checkpoint(a, b):
    assert a["epoch"] == b["epoch"] and a["skipped"] == b["skipped"] and a["best"]["epoch"] == b["best"]["epoch"]
    for key in a["weights"]:
        torch.testing.assert_close(a["weights"][key], b["weights"][key], rtol=1e-4, atol=1e-6)
    for ha, hb in zip(a["history"], b["history"], strict=True):
        assert ha["epoch"] == hb["epoch"]
        assert ha["val"] == pytest.approx(hb["val"], rel=1e-4)
        assert ha["train"] == pytest.approx(hb["train"], rel=1e-4, nan_ok=True)


@pytest.mark.parametrize("tile_columns", [None, 40])  # the CPU's tiles: here one of 3 members; or of 2, then 1
def test_population_training_equals_training_each_trial_alone(tmp_path, tile_columns):
    """Trials that differ in meta-learning rate, seed, schedule, clipping and length train together
    as they train one by one, in one tile or several; the one still at epoch 2 of its run resumes
    from its checkpoint."""
    configs = [SMALL, dataclasses.replace(SMALL, meta_lr=1e-2, seed=1, clip=1.0),
               dataclasses.replace(SMALL, meta_lr=5e-4, seed=2, epochs=4, schedule="cosine")]
    alone = [meta_train(c, tmp_path / f"alone{k}.pt", progress=False) for k, c in enumerate(configs)]
    paths = [tmp_path / f"pop{k}.pt" for k in range(3)]
    meta_train(configs[0], paths[0], progress=False, stop_after=2)  # a trial already under way
    together = train_population(configs, paths, progress=False, tile_columns=tile_columns)
    for a, b, path in zip(alone, together, paths):
        _same_checkpoint(a, b)
        _same_checkpoint(a, load_checkpoint(path))
    # trial 0 validated at epoch 2 alone, then in the population; trial 1's last two epochs were its own
    assert [h.get("population") for h in load_checkpoint(paths[0])["history"]] == [None, 3, 3]
    assert [h.get("population") for h in load_checkpoint(paths[1])["history"]] == [3, 3, None]


def test_tiles_cut_a_population_by_columns():
    assert tiles(5, 20, 40) == [range(0, 2), range(2, 4), range(4, 5)]
    assert tiles(3, 20, 10) == [range(0, 1), range(1, 2), range(2, 3)]  # a member wider than a tile is a tile
    assert tiles(3, 20, None) == [range(0, 3)]
    # on the CPU an MNIST member (15,910 coordinates a run) is a tile of its own; a GPU batches them all;
    # the book's quadratic members (16 runs of 10) batch a hundred at once
    assert tiles(4, 15_910, tile_limit("cpu")) == [range(k, k + 1) for k in range(4)]
    assert tiles(4, 15_910, tile_limit("cuda")) == [range(0, 4)]
    assert tiles(16, 160, tile_limit("cpu")) == [range(0, 16)] and CPU_TILE_COLUMNS // 160 == 102
    with pytest.raises(UserError, match="tiles need members"):
        tiles(0, 20, 40)


class _Ops(TorchDispatchMode):
    """The aten operations run inside the `with` block."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_a_population_of_one_steps_exactly_as_its_member():
    """A tile of one takes the member's own 2-D products (on the CPU the batched ones cost more at
    MNIST's size): the same numbers to the last bit, and no batched product."""
    problem, member = make_problem("quadratic"), LSTMOptimizer(LSTMConfig(), seed=3)
    task = problem.sample(runs=4, seed=1)
    _, grad = task.loss_and_grad(task.theta)
    pop = Population([member])
    alone = member.bind()(grad, member.init(task.theta))
    with _Ops() as ops:
        together = pop.bind()(grad, pop.init(task.theta))
    assert "addmm" in ops.names and not {"bmm", "baddbmm"} & ops.names
    torch.testing.assert_close(together[0], alone[0], rtol=0, atol=0)
    for a, b in zip(together[1], alone[1]):
        torch.testing.assert_close(a[0], b, rtol=0, atol=0)
    with _Ops() as ops:  # two members: one batched product per layer and for the head
        two = Population(_members(LSTMConfig(), [3, 4]))
        two.bind()(torch.cat([grad, grad]), two.init(torch.cat([task.theta, task.theta])))
    assert "baddbmm" in ops.names


def test_a_plateau_trial_halves_its_rate_in_a_population_as_alone(tmp_path):
    """The plateau schedule puts a member back on its best weights at half its rate, in the
    population as alone (the population holds no copy of the members' weights)."""
    plateau = dataclasses.replace(SMALL, epochs=10, eval_every=1, patience=1, schedule="plateau", meta_lr=0.01)
    alone = meta_train(plateau, tmp_path / "alone.pt", progress=False)
    assert alone["halvings"] >= 1
    together = train_population([plateau, SMALL], [tmp_path / "p0.pt", tmp_path / "p1.pt"], progress=False)
    _same_checkpoint(alone, together[0])
    assert together[0]["halvings"] == alone["halvings"]
    assert any("halved_to" in h and h.get("population") == 2 for h in together[0]["history"])  # beside the other


def test_a_started_trial_begins_at_its_start_in_a_population_as_alone(tmp_path):
    """`start` loads the other checkpoint's best weights into the member itself, so a population
    trains from them as the trial alone does."""
    meta_train(SMALL, tmp_path / "first.pt", progress=False)
    started = dataclasses.replace(SMALL, seed=1, start="first")
    alone = meta_train(started, tmp_path / "alone.pt", progress=False)
    together = train_population([started, SMALL], [tmp_path / "p0.pt", tmp_path / "p1.pt"], progress=False)
    _same_checkpoint(alone, together[0])
    assert together[0]["started_from"] == alone["started_from"] and "started_from" not in together[1]


def test_a_diverging_member_is_skipped_alone(tmp_path):
    """A member whose numbers are not finite (here its φ was poisoned with a NaN after one epoch)
    is skipped in every epoch, as alone, and leaves the others' numbers untouched."""
    calm, wild = dataclasses.replace(SMALL, epochs=4), dataclasses.replace(SMALL, epochs=4, seed=1)
    ck = meta_train(wild, tmp_path / "wild.pt", progress=False, stop_after=1)
    ck["weights"]["head.bias"][0] = math.nan
    torch.save(ck, tmp_path / "wild.pt")
    shutil.copy(tmp_path / "wild.pt", tmp_path / "wild-alone.pt")
    alone = [meta_train(calm, None, progress=False), meta_train(wild, tmp_path / "wild-alone.pt", progress=False)]
    together = train_population([calm, wild], [None, tmp_path / "wild.pt"], progress=False)
    assert alone[1]["skipped"] == together[1]["skipped"] == 3 and together[0]["skipped"] == 0
    assert together[1]["epoch"] == 4
    _same_checkpoint(alone[0], together[0])


@needs_mnist
def test_population_on_mnist_steps_as_each_member_alone():
    problem = make_problem("mnist")
    members = _members(LSTMConfig(preprocess=10.0, output_scale=0.1), seeds=[0, 1])
    tasks = lambda: [problem.sample(runs=1, seed=k) for k in range(2)]
    pop, task = Population(members), stack_tasks(tasks())
    step = pop.bind()
    _, grad = task.loss_and_grad(task.theta)
    update, _ = step(grad, pop.init(task.theta))
    for k, (opt, t) in enumerate(zip(members, tasks())):
        _, g = t.loss_and_grad(t.theta)
        torch.testing.assert_close(update[k: k + 1], opt.bind()(g, opt.init(t.theta))[0])


def test_populations_refuse_what_they_cannot_batch():
    with pytest.raises(UserError, match="share"):
        check_population([SMALL, dataclasses.replace(SMALL, unroll=10)])
    for other in (SharingConfig(SMALL.optimizer, gac=2), dataclasses.replace(SMALL.optimizer, groups=2)):
        with pytest.raises(UserError, match="plain coordinatewise LSTMs"):
            check_population([dataclasses.replace(SMALL, optimizer=other)] * 2)
    with pytest.raises(UserError, match="architecture"):
        Population([LSTMOptimizer(LSTMConfig()), LSTMOptimizer(LSTMConfig(hidden=10))])
    with pytest.raises(UserError, match="distinct"):
        train_population([SMALL, SMALL], ["same.pt", "same.pt"], progress=False)
    problem = make_problem("quadratic")
    with pytest.raises(UserError, match="equal run counts"):
        stack_tasks([problem.sample(2, seed=0), problem.sample(3, seed=1)])
    with pytest.raises(UserError, match="split evenly"):
        Population(_members(LSTMConfig(), [0, 1])).init(torch.zeros(3, 10))


def test_a_sweep_in_populations_is_the_sweep_one_by_one(tmp_path):
    one = sweep(SMALL, 3, tmp_path / "one", tmp_path / "one.json", progress=False)
    two = sweep(SMALL, 3, tmp_path / "two", tmp_path / "two.json", progress=False, population=2)
    assert one["winner"] == two["winner"] and one["complete"] and two["complete"]
    for a, b in zip(one["rows"], two["rows"], strict=True):
        assert (a["trial"], a["meta_lr"], a["best_epoch"]) == (b["trial"], b["meta_lr"], b["best_epoch"])
        assert a["best_val"] == pytest.approx(b["best_val"], rel=1e-4)
    assert [r["population"] for r in two["rows"]] == [2, 2, 1]


def test_two_processes_share_a_sweep_by_trial_numbers(tmp_path):
    whole = sweep(SMALL, 3, tmp_path / "a", tmp_path / "a.json", progress=False)
    folder, table = tmp_path / "b", tmp_path / "b.json"
    part = sweep(SMALL, 3, folder, table, progress=False, only=[2])
    assert [r["trial"] for r in part["rows"]] == [2] and not part["complete"]
    assert sorted(p.name for p in folder.glob("*.pt")) == [trial_path(folder, table, 2).name] == ["b-trial2.pt"]
    shared = sweep(SMALL, 3, folder, table, progress=False, only=[1, 0])  # the rest; trial 2 is read, not trained
    assert shared["complete"] and shared["winner"] == whole["winner"]
    for a, b in zip(whole["rows"], shared["rows"], strict=True):
        assert (a["trial"], a["meta_lr"], a["best_epoch"], a["best_val"]) == \
            (b["trial"], b["meta_lr"], b["best_epoch"], b["best_val"])
    with pytest.raises(UserError, match="trial numbers from 0 to 2"):
        sweep(SMALL, 3, folder, table, progress=False, only=[3])


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("spec", ["quadratic", pytest.param("mnist", marks=needs_mnist)])
def test_graphed_population_epochs_equal_eager_population_epochs(spec):
    from l2l.training.population import GraphedPopulation, population_epoch

    problem = make_problem(spec)
    configs = [TrainConfig(spec, steps=20, unroll=5, runs=2, clip=c) for c in (None, 1.0, 0.1)]
    results = []
    for graphs in (False, True):
        pop = Population(_members(LSTMConfig(**problem.optimizer_defaults), seeds=[0, 1, 2])).cuda()
        meta_opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in pop.members]
        graphed = GraphedPopulation(pop, stack_tasks([problem.sample(2, 90 + k, "cuda") for k in range(3)]),
                                    configs) if graphs else None
        losses = [population_epoch(pop, meta_opts, stack_tasks([problem.sample(2, 10 * e + k, "cuda")
                                                                 for k in range(3)]), configs, graphed)
                  for e in range(2)]
        results.append((losses, [p.detach().clone() for p in pop.parameters()]))
    (eager_losses, eager_phi), (graph_losses, graph_phi) = results
    for e, g in zip(eager_losses, graph_losses):
        assert g == pytest.approx(e, rel=1e-4)
    for e, g in zip(eager_phi, graph_phi):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


@cuda
def test_population_training_on_a_gpu_equals_training_each_trial_alone(tmp_path):
    configs = [SMALL, dataclasses.replace(SMALL, meta_lr=1e-2, seed=1, epochs=4)]
    alone = [meta_train(c, None, device="cuda", progress=False) for c in configs]
    together = train_population(configs, [None, None], device="cuda", progress=False)  # graphed by default
    for a, b in zip(alone, together):
        _same_checkpoint(a, b)


def test_a_population_on_the_cpu_refuses_cuda_graphs():
    with pytest.raises(UserError, match="CUDA graphs need a CUDA device"):
        train_population([SMALL], [None], device="cpu", cuda_graphs=True, progress=False)


def test_a_member_that_dies_mid_epoch_keeps_its_earlier_updates_and_spares_the_others():
    """Member 1's functions turn to NaN at step 7, in its second unroll of four: it keeps the first
    meta-update and takes no other, as alone, while member 0 trains on as alone."""
    from l2l.problems import Task
    from l2l.training import train_epoch
    from l2l.training.population import population_epoch

    problem, config = make_problem("quadratic"), SMALL

    def task(seed, poison_after=None):
        clean, calls = problem.sample(2, seed), iter(range(10**6))

        def batch():
            W, y = clean.batch()
            return (W * math.nan, y) if poison_after is not None and next(calls) >= poison_after else (W, y)
        return Task(clean.theta, clean.loss, batch)

    def fresh():
        members = _members(config.optimizer, seeds=[0, 1])
        return members, [torch.optim.Adam(m.parameters(), lr=1e-2) for m in members]

    members, opts = fresh()
    alone = [train_epoch(members[0], opts[0], task(0), config), train_epoch(members[1], opts[1], task(1, 7), config)]
    alone_phi = [[p.detach().clone() for p in m.parameters()] for m in members]
    members, opts = fresh()
    before = [p.detach().clone() for p in members[1].parameters()]
    together = population_epoch(Population(members), opts, stack_tasks([task(0), task(1, 7)]), [config] * 2)
    assert math.isnan(alone[1]) and math.isnan(together[1]) and together[0] == pytest.approx(alone[0], rel=1e-5)
    for m, phi in zip(members, alone_phi):
        for p, q in zip(m.parameters(), phi):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(p, b) for p, b in zip(members[1].parameters(), before))  # the first update stayed


def test_a_sweeps_table_comes_from_its_checkpoints_even_when_nothing_trains(tmp_path):
    folder, table = tmp_path / "trials", tmp_path / "s.json"
    empty = sweep(SMALL, 3, folder, table, progress=False, train=False)
    assert empty["rows"] == [] and not empty["complete"] and empty["winner"] is None and table.exists()
    meta_train(draw_trials(SMALL, 3)[1], folder / "s-trial1.pt", progress=False, stop_after=2)  # one under way
    status = sweep(SMALL, 3, folder, table, progress=False, train=False)
    assert [(r["trial"], r["epochs"], r["finished"]) for r in status["rows"]] == [(1, 2, False)]
    done = sweep(SMALL, 3, folder, table, progress=False)
    assert sweep(SMALL, 3, folder, table, progress=False, train=False) == done and done["complete"]


def test_a_checkpoint_that_another_process_is_training_is_not_trained_twice(tmp_path):
    """Two shells that would train one checkpoint at once: the second fails at once with a clear
    error (meta_train, a population) or, in a sweep, leaves that trial alone and trains the rest."""
    import threading

    from l2l.runtime import in_use, locked
    from l2l.training import train_population

    folder, table = tmp_path / "trials", tmp_path / "s.json"
    busy = trial_path(folder, table, 1)
    held, release = threading.Event(), threading.Event()

    def other_process():  # a flock on its own file description: to this thread, another holder
        with locked(busy):
            held.set()
            release.wait()

    holder = threading.Thread(target=other_process)
    holder.start()
    held.wait()
    try:
        assert in_use(busy) and not in_use(trial_path(folder, table, 0))
        with pytest.raises(UserError, match="another process is training .*s-trial1.pt"):
            meta_train(SMALL, busy, progress=False)
        with pytest.raises(UserError, match="another process is training"):
            train_population([SMALL, SMALL], [tmp_path / "free.pt", busy], progress=False)
        result = sweep(SMALL, 2, folder, table, progress=False)
        assert [r["trial"] for r in result["rows"]] == [0] and not busy.exists()
        assert not (tmp_path / "free.pt").exists()  # the population never started
    finally:
        release.set()
        holder.join()
    assert not in_use(busy)
    assert [r["trial"] for r in sweep(SMALL, 2, folder, table, progress=False)["rows"]] == [0, 1]


def test_a_trial_another_sweep_takes_after_this_one_started_is_left_alone(tmp_path, monkeypatch, capsys):
    """Two sweeps of one table started together: each finds every trial free at its start, then the
    other takes one. Meeting it, a sweep leaves it alone and trains the rest (it used to stop with
    "another process is training")."""
    import importlib
    import threading

    from l2l.runtime import locked

    sweeps = importlib.import_module("l2l.training.sweep")  # the module, which `l2l.training.sweep` (the function) hides

    folder, table = tmp_path / "trials", tmp_path / "s.json"
    taken = trial_path(folder, table, 1)
    held, release = threading.Event(), threading.Event()

    def other_sweep():  # a flock on its own file description: to the sweep's thread, another holder
        with locked(taken):
            held.set()
            release.wait()

    holder = threading.Thread(target=other_sweep)
    train_group = sweeps.train_group

    def then_the_other_takes_trial_1(*args, **kwargs):
        done = train_group(*args, **kwargs)
        if not holder.is_alive() and not held.is_set():  # after trial 0, before the sweep reaches trial 1
            holder.start()
            held.wait()
        return done

    monkeypatch.setattr(sweeps, "train_group", then_the_other_takes_trial_1)
    try:
        result = sweep(SMALL, 3, folder, table, progress=False)
    finally:
        release.set()
        if holder.is_alive():
            holder.join()
    assert held.is_set() and [r["trial"] for r in result["rows"]] == [0, 2] and not taken.exists()
    assert "trial 1: another process is training it (s-trial1.pt)" in capsys.readouterr().out
    monkeypatch.undo()
    assert sweep(SMALL, 3, folder, table, progress=False)["complete"]


def test_a_sweep_of_another_recipe_or_range_leaves_its_table_and_trials_alone(tmp_path):
    """The table is named by problem, scale and sweep seed: a second sweep under that name with
    another recipe or rate range would describe the first one's checkpoints with its own rates."""
    folder, table = tmp_path / "trials", tmp_path / "s.json"
    sweep(SMALL, 2, folder, table, progress=False)
    before = table.read_bytes()
    for config, low, high in [(dataclasses.replace(SMALL, clip=1.0), 1e-4, 1e-2), (SMALL, 0.5, 0.9)]:
        for train in (True, False):  # training it, or only writing its table (--status)
            with pytest.raises(UserError, match="s-trial0.pt holds another recipe .*table of its own"):
                sweep(config, 2, folder, table, low, high, progress=False, train=train)
    assert table.read_bytes() == before


def test_a_population_leaves_a_finished_trial_s_checkpoint_as_it_was(tmp_path):
    """As `meta_train` does: a finished trial trains no epoch, so its file (hardware, wall time,
    modification time) stays as it was; the unfinished one beside it trains and is saved."""
    done, fresh = tmp_path / "done.pt", tmp_path / "fresh.pt"
    meta_train(SMALL, done, progress=False)
    before = (done.read_bytes(), done.stat().st_mtime_ns)
    short = dataclasses.replace(SMALL, epochs=2, seed=1)
    train_population([SMALL, short], [done, fresh], progress=False)
    assert (done.read_bytes(), done.stat().st_mtime_ns) == before and load_checkpoint(fresh)["epoch"] == 2
