"""Summaries with uncertainty, baseline tuning, and seeded reproducibility."""

import pytest
import torch

from conftest import needs_cifar
from l2l.evaluation import LR_GRID, compare, mean_ci, t_quantile, tune
from l2l.problems import make_problem


@pytest.mark.parametrize("df,expected", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (19, 2.093),
                                         (99, 1.984), (10_000, 1.960)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(df) == pytest.approx(expected, abs=1e-3)  # also at df = 1 (Cornish-Fisher was 11% low)


def test_mean_ci_by_hand():
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])  # mean 3, sd sqrt(14/3)
    mean, half = mean_ci(x)
    assert mean.item() == pytest.approx(3.0)
    assert half.item() == pytest.approx(3.182 * (14 / 3) ** 0.5 / 2, rel=2e-3)


def test_tuning_picks_the_best_rate_on_the_grid():
    problem = make_problem("quadratic")
    best, scores = tune(problem, "sgd", steps=20, runs=8, seed=0, grid=(1e-4, 1e-2, 10.0))
    assert best == 1e-2
    assert scores[10.0] == float("inf") or scores[10.0] > scores[1e-2]  # diverged runs lose


def test_refining_tries_rates_between_the_best_and_its_neighbours():
    problem = make_problem("quadratic")
    grid = tuple(2.0**k for k in range(-12, 3, 2))  # a factor 4 apart
    coarse, coarse_scores = tune(problem, "sgd", steps=20, runs=8, seed=0, grid=grid)
    best, scores = tune(problem, "sgd", steps=20, runs=8, seed=0, grid=grid, refine=3)
    i = grid.index(coarse)
    assert 0 < i < len(grid) - 1  # the grid's best has a neighbour on each side
    tried = sorted(set(scores) - set(grid))  # 3 on each side, a factor √2 apart: coarse · 2^(±k/2)
    assert tried == pytest.approx(sorted(coarse * 2.0 ** (sign * k / 2) for sign in (-1, 1) for k in (1, 2, 3)))
    assert {lr: scores[lr] for lr in grid} == coarse_scores  # the same validation functions for every rate
    assert scores[best] == min(scores.values()) <= coarse_scores[coarse]
    edge, edge_scores = tune(problem, "sgd", steps=20, runs=8, seed=0, grid=(coarse, 4 * coarse), refine=1)
    assert len(edge_scores) == 3  # at the grid's edge: one neighbour, one rate between


def test_same_seed_same_numbers(tmp_path):
    problem = make_problem("quadratic")
    a = compare(problem, {}, ["adam"], steps=10, runs=6, seed=3, tune_runs=4, progress=False)
    b = compare(problem, {}, ["adam"], steps=10, runs=6, seed=3, tune_runs=4, progress=False,
                cache=tmp_path / "rates.json")
    assert a["ADAM"] == b["ADAM"] and a["ADAM"].lr in LR_GRID
    assert (tmp_path / "rates.json").exists()


def test_finished_curves_are_read_back_and_keyed_by_what_ran(tmp_path):
    from l2l.optimizers import make_baseline
    from l2l.evaluation import fingerprint, test_curve
    from l2l.optimizers import LSTMOptimizer
    from l2l.problems import make_problem

    problem = make_problem("quadratic:dim=3")
    first = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1
    again = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    assert again.mean == first.mean and again.ci95 == first.ci95
    other = test_curve(problem, make_baseline("adam", 0.2), "ADAM", 5, 4, 0, cache=tmp_path)
    assert other.mean != first.mean and len(list(tmp_path.glob("*.json"))) == 2
    # learned optimizers are named by their weights: same seed, same name; other weights, another
    assert fingerprint(LSTMOptimizer(seed=1)) == fingerprint(LSTMOptimizer(seed=1))
    assert fingerprint(LSTMOptimizer(seed=1)) != fingerprint(LSTMOptimizer(seed=2))


def test_paired_difference_by_hand():
    from l2l.evaluation import paired

    # d = a - b = [-0.5, -0.5, -0.2, -0.9]: mean -0.525, sd 0.28723, se 0.143614, t(3) = 3.18245
    p = paired([1, 2, 3, 4], [1.5, 2.5, 3.2, 4.9])
    assert p.diff == pytest.approx(-0.525)
    assert (p.low, p.high) == (pytest.approx(-0.98205, abs=1e-4), pytest.approx(-0.06795, abs=1e-4))
    assert p.verdict == "holds" and p.runs == 4 and p.method == "paired t"
    assert paired([1.5, 2.5, 3.2, 4.9], [1, 2, 3, 4]).verdict == "fails"
    assert paired([1, 2, 3, 4], [1.1, 1.9, 3.2, 3.9]).verdict == "tie"


def test_paired_is_narrower_than_unpaired_intervals_when_runs_share_functions():
    """Two optimizers on the same hard and easy functions: the per-function spread cancels."""
    from l2l.evaluation import paired

    hardness = torch.linspace(1, 10, 20)
    a, b = hardness * 0.9, hardness  # A is 10% lower on every function
    _, half_a = mean_ci(a[:, None].double())
    assert (a.mean() - b.mean()).abs() < 2 * half_a.item()  # the unpaired intervals overlap...
    assert paired(a.numpy(), b.numpy()).verdict == "holds"  # ...the paired comparison decides


def test_paired_counts_a_diverged_run_against_the_optimizer_that_diverged():
    from l2l.evaluation import paired

    inf, nan = float("inf"), float("nan")
    p = paired([inf] * 8 + [1.0] * 2, [0.5] * 10)
    assert p.verdict == "fails" and "sign test" in p.method and p.low != p.low
    assert paired([0.5] * 10, [nan] * 9 + [1.0]).verdict == "holds"
    assert paired([inf, 0.1], [inf, 0.2]).verdict == "tie"  # one run each way at most: no evidence
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


def test_curves_keep_per_run_losses_and_means_over_the_run():
    from l2l.evaluation import Curve, recorded_steps

    assert recorded_steps(100) == [0, 1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100]
    assert recorded_steps(7)[-1] == 7
    losses = torch.tensor([[4.0, 3.0, 2.0, 1.0], [2.0, 2.0, 1.0, 0.0]])
    c = Curve.of("X", losses)
    assert c.at(2).tolist() == [2.0, 1.0] and c.at(-1).tolist() == [1.0, 0.0]
    assert c.mean_to(-1).tolist() == [2.0, 1.0]  # mean of steps 1..3
    assert c.mean_to(2).tolist() == [2.5, 1.5] and c.runs == 2
    cut = c.upto(2)
    assert cut.steps == 2 and cut.at(-1).tolist() == [2.0, 1.0] and cut.mean_to(-1).tolist() == [2.5, 1.5]
    with pytest.raises(ValueError, match="kept at steps"):
        Curve.of("Y", torch.rand(3, 12)).at(9)
    with pytest.raises(ValueError, match="no per-run numbers"):
        Curve("old", [1.0], [0.0]).at(0)


def test_a_curve_held_at_its_start_repeats_each_run_s_step_0():
    from l2l.evaluation import Curve, start_of

    c = Curve.of("X", torch.tensor([[4.0, 3.0, 2.0, 1.0], [2.0, 2.0, 1.0, 0.0]]))
    start = start_of(c)
    assert start.label == "X at step 0" and start.steps == 3 and start.lr is None
    assert start.mean == [3.0] * 4 and start.ci95 == [c.ci95[0]] * 4
    assert start.at(-1).tolist() == [4.0, 2.0] and start.mean_to(2).tolist() == [4.0, 2.0]
    assert start_of(Curve("old", [1.0, 0.5], [0.1, 0.1])).per_run is None


def test_a_cached_curve_goes_stale_when_the_code_computes_something_else(tmp_path, monkeypatch):
    """The cache is keyed by what ran, and checked against what the code computes now: a change in
    the problem's loss recomputes; the same numbers from other code (a refactor) are reused."""
    from l2l.evaluation import test_curve
    from l2l.optimizers import make_baseline
    from l2l.problems.quadratic import Quadratic

    problem = make_problem("quadratic:dim=3")
    first = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    stamp = next(tmp_path.glob("*.json")).stat().st_mtime_ns
    sample = Quadratic.sample

    def refactored(self, runs, seed, device="cpu"):  # other code, the same function
        task = sample(self, runs, seed, device)
        return type(task)(task.theta.clone(), lambda theta, batch: task.loss(theta, batch), task.batch)

    monkeypatch.setattr(Quadratic, "sample", refactored)
    again = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    assert again == first and next(tmp_path.glob("*.json")).stat().st_mtime_ns == stamp  # read back

    def changed(self, runs, seed, device="cpu"):  # a "fix" to the loss: now it computes 2 f
        task = sample(self, runs, seed, device)
        return type(task)(task.theta, lambda theta, batch: 2 * task.loss(theta, batch), task.batch)

    monkeypatch.setattr(Quadratic, "sample", changed)
    fixed = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    assert fixed.mean[0] == pytest.approx(2 * first.mean[0])  # recomputed, not the stale numbers
    assert len(list(tmp_path.glob("*.json"))) == 1  # and it replaced the stale file
    assert fixed.cost["seconds"] >= 0 and "thread" in fixed.cost["hardware"]


def test_a_cached_curve_without_per_run_numbers_is_computed_again(tmp_path):
    """Curves cached before the cache kept per-run numbers cannot be paired: they are recomputed
    (and replaced), not read back."""
    import json

    from l2l.evaluation import test_curve
    from l2l.optimizers import make_baseline

    problem = make_problem("quadratic:dim=3")
    first = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    file = next(tmp_path.glob("*.json"))
    old = {k: v for k, v in json.loads(file.read_text()).items() if k != "per_run"}
    file.write_text(json.dumps({**old, "mean": [9.0] * len(first.mean)}))  # an old file, other numbers
    again = test_curve(problem, make_baseline("adam", 0.1), "ADAM", 5, 4, 0, cache=tmp_path)
    assert again.mean == first.mean and again.per_run == first.per_run  # computed, not the old file's 9s
    assert json.loads(file.read_text())["per_run"] == first.per_run  # and stored with its runs


def test_the_cache_audit_says_what_a_chapter_would_read_back_and_what_it_would_compute(tmp_path, monkeypatch):
    import json

    from l2l.evaluation import audit, fingerprint, test_curve, tuned_rates
    from l2l.optimizers import LSTMConfig, baselines, make_baseline, make_optimizer

    problem, curves, rates = make_problem("quadratic:dim=3"), tmp_path / "curves", tmp_path / "rates.json"
    lstm = make_optimizer(LSTMConfig(hidden=4), seed=0)
    for opt, label in ((make_baseline("adam", 0.1), "ADAM"), (make_baseline("sgd", 0.1), "SGD"),
                       (make_baseline("nag", 0.1), "NAG"), (lstm, "LSTM")):
        test_curve(problem, opt, label, 5, 4, 0, cache=curves)
    tuned_rates(problem, ["sgd"], 5, 4, 0, grid=(0.01, 0.1), cache=rates, progress=False)
    status = lambda rows: {(r["kind"], r["optimizer"].split("(")[0].strip()): r["status"] for r in rows}
    rows = audit(curves, rates, {fingerprint(lstm): lstm})
    assert set(status(rows).values()) == {"current"} and len(rows) == 5
    assert all(r["seconds"] >= 0 for r in rows if r["kind"] == "curve")
    assert status(audit(curves, rates))[("curve", fingerprint(lstm))] == "unknown"  # no such optimizer given
    for file in curves.glob("*.json"):
        saved = json.loads(file.read_text())
        if saved["key"].split("|")[1].startswith("Adam"):  # a probe this code does not compute
            file.write_text(json.dumps({**saved, "probe": [p * 1.01 for p in saved["probe"]]}))
        if saved["key"].split("|")[1].startswith("NAG"):  # cached before curves kept their runs
            file.write_text(json.dumps({k: v for k, v in saved.items() if k != "per_run"}))
    monkeypatch.setattr(baselines.SGD, "step", lambda self, grad, state: (-2 * self.lr * grad, state))  # a "fix"
    assert status(audit(curves, rates, {fingerprint(lstm): lstm})) == {
        ("curve", "Adam"): "stale", ("curve", "NAG"): "unpaired", ("curve", "SGD"): "stale",
        ("curve", fingerprint(lstm)): "current", ("rate", "sgd"): "stale"}


def test_a_rule_is_read_back_from_its_fingerprint_and_nothing_else_is():
    from l2l.evaluation import fingerprint, rule_from
    from l2l.optimizers import Adam, QuasiNewton, make_baseline

    for opt in (make_baseline("adam", 0.03125), make_baseline("nag", 2.0**-6), QuasiNewton(0.5, history=5)):
        assert rule_from(fingerprint(opt)) == opt
    for name in ("learned-0123abcd", "Adam(lr=__import__('os'))", "Adam(0.1)", "Adam(lr=0.1, speed=2)",
                 "Path(lr=0.1)", "Adam(lr=0.1"):
        assert rule_from(name) is None, name
    assert rule_from("Adam(lr=0.1)") == Adam(0.1)


def test_tuned_rates_are_retuned_when_the_baseline_computes_something_else(tmp_path, monkeypatch):
    from l2l.evaluation import tuning
    from l2l.optimizers import baselines

    problem, cache = make_problem("quadratic:dim=3"), tmp_path / "rates.json"
    calls = []
    tune = tuning.tune
    monkeypatch.setattr(tuning, "tune", lambda *a, **k: calls.append(a[1]) or tune(*a, **k))
    first = tuning.tuned_rates(problem, ["sgd"], 5, 4, 0, grid=(0.01, 0.1), cache=cache, progress=False)
    assert tuning.tuned_rates(problem, ["sgd"], 5, 4, 0, grid=(0.01, 0.1), cache=cache, progress=False) == first
    assert calls == ["sgd"]  # the second call read the cache
    monkeypatch.setattr(baselines.SGD, "step", lambda self, grad, state: (-2 * self.lr * grad, state))
    tuning.tuned_rates(problem, ["sgd"], 5, 4, 0, grid=(0.01, 0.1), cache=cache, progress=False)
    assert calls == ["sgd", "sgd"]  # SGD's step changed: tuned again
    tuning.tuned_rates(problem, ["sgd"], 5, 4, 0, grid=(0.01, 0.1), cache=cache, progress=False, refresh=True)
    assert calls == ["sgd", "sgd", "sgd"]


def test_the_probe_runs_a_compiled_optimizer_eagerly_and_leaves_it_compiled():
    """The probe must not depend on torch.compile (it rounds otherwise): it steps a copy with the
    LSTM's switch off, and the caller's optimizer keeps its switch and torch's own Module.compile."""
    from l2l.evaluation import probe
    from l2l.optimizers import LSTMConfig, LSTMOptimizer
    from l2l.optimizers.population import Population

    config = LSTMConfig(output_scale=0.1)
    compiled, population = LSTMOptimizer(config, seed=0, compile=True), Population([LSTMOptimizer(config)], compile=True)
    problem = make_problem("quadratic:dim=3")
    assert probe(problem, compiled) == probe(problem, LSTMOptimizer(config, seed=0))
    assert compiled.compiled and population.compiled
    assert callable(compiled.compile) and callable(population.compile)  # nn.Module.compile, not a flag over it


def test_the_probe_is_computed_on_one_thread_whatever_the_callers_count(monkeypatch):
    """A sum split over threads rounds differently per thread count (a trained optimizer's CIFAR
    probe moved by 7e-4 on two threads): the probe's steps see one thread, and the caller keeps
    its own, even when a step fails."""
    from l2l.evaluation import probe
    from l2l.optimizers import baselines

    seen, step = [], baselines.SGD.step
    monkeypatch.setattr(baselines.SGD, "step", lambda self, g, s: seen.append(torch.get_num_threads()) or step(self, g, s))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first = probe(make_problem("quadratic:dim=3"), baselines.SGD(0.1))
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert probe(make_problem("quadratic:dim=3"), baselines.SGD(0.1)) == first
        torch.set_num_threads(2)
        monkeypatch.setattr(baselines.SGD, "step", lambda self, g, s: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            probe(make_problem("quadratic:dim=3"), baselines.SGD(0.1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_a_probe_may_differ_by_what_a_nudge_of_its_start_moves_and_no_more():
    """Rounding on another CPU model moves a probe's later numbers by more than float rounding:
    with a nudged probe, `same_probe` allows 1e-4 plus `slack` times the largest relative move of
    the nudged numbers up to each number's step (hand-worked). A probe: 2 runs of f_0..f_5, ‖g_0‖..‖g_4‖."""
    from l2l.evaluation import same_probe

    here = [1.0] * 22
    f3 = 3  # run 0's f_3
    g1 = 7  # run 0's ‖g_1‖
    stored = list(here)
    stored[f3] = 1.05  # 5% apart: past rtol 1e-4
    assert not same_probe(stored, here)
    nudged = list(here)
    nudged[g1 + 11] = 1.006  # run 1's ‖g_1‖ moved by 6e-3: by step 3, 1e-4 + 10 * 6e-3 allowed
    assert same_probe(stored, here, nudged)
    nudged[g1 + 11] = 1.004  # allowed 0.0401 < 0.05
    assert not same_probe(stored, here, nudged)
    nudged[g1 + 11], nudged[4] = 1.0, 1.01  # a move at step 4 allows nothing more at step 3
    assert not same_probe(stored, here, nudged)
    nudged[1] = float("nan")  # a nudged run that diverged by step 1: anything goes after it
    assert same_probe(stored, here, nudged)
    assert same_probe([float("inf")] + here[1:], [float("inf")] + here[1:])  # diverged alike
    assert not same_probe([float("inf")] + here[1:], here) and not same_probe(None, here)
    assert not same_probe(here[1:], here)


def test_only_a_probe_from_another_cpu_model_gets_the_nudges_allowance(monkeypatch):
    """On the CPU model that made a stored probe, only float rounding is allowed, so a change that
    hides in a nudge's move is still caught there: the model comes from a curve's cost or a rate's
    "cpu"; where neither records it, the allowance applies."""
    from l2l.evaluation import tuning
    from l2l.evaluation.curves import cached_status
    from l2l.runtime import cpu_model, hardware

    here, nudged, stored = [1.0] * 22, [1.0] * 22, [1.0] * 22
    nudged[5], stored[5] = 1.01, 1.05  # run 0's f_5: allowed 1e-4 + 10 * 0.01 from another CPU model
    monkeypatch.setattr(tuning, "probe", lambda problem, opt, nudge=0.0: nudged if nudge else here)
    assert tuning.matches(stored, None, None) and tuning.matches(stored, None, None, made_on="Other CPU")
    assert not tuning.matches(stored, None, None, made_on=cpu_model())
    assert tuning.matches(here, None, None, made_on=cpu_model())

    curve = {"probe": stored, "per_run": [[1.0]]}
    assert cached_status({**curve, "cost": {"hardware": hardware()}}, None, None) == "stale"
    assert cached_status({**curve, "cost": {"hardware": "Other CPU (1 thread)"}}, None, None) == "current"
    assert cached_status({**curve, "cost": {"hardware": "NVIDIA H200"}}, None, None) == "current"  # probed on its host's CPU
    assert not tuning.rate_is_current(None, "sgd", {"lr": 0.1, "probe": stored, "cpu": cpu_model()})
    assert tuning.rate_is_current(None, "sgd", {"lr": 0.1, "probe": stored})


def test_a_cpu_model_names_its_family_and_model_where_its_name_is_generic(monkeypatch):
    """A virtual machine's 'AMD EPYC' is a Zen 2 on one machine and a Zen 3 on another, whose
    arithmetic rounds differently: SGD's CIFAR probe moved by 2e-3 between two such machines. The
    family and model numbers tell them apart, so each sees the other's probes as another CPU's;
    the probes stored under the bare name get the same allowance."""
    from l2l.evaluation import tuning
    from l2l.runtime import cpu_model_of

    zen3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
    zen2 = zen3.replace("cpu family\t: 25\nmodel\t\t: 1", "cpu family\t: 23\nmodel\t\t: 49")
    assert cpu_model_of(zen3 + "\n" + zen2.replace("processor\t: 0", "processor\t: 1")) == "AMD EPYC family 25 model 1"
    assert cpu_model_of(zen2) == "AMD EPYC family 23 model 49" != cpu_model_of(zen3)
    assert cpu_model_of("model name\t: Apple M2\n") == "Apple M2" and cpu_model_of("processor\t: 0\n") is None
    assert cpu_model_of("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n") == "ARM implementer 0x41 part 0xd0c"
    here, nudged, stored = [1.0] * 22, [1.0] * 22, [1.0] * 22
    nudged[5], stored[5] = 1.01, 1.05
    monkeypatch.setattr(tuning, "probe", lambda problem, opt, nudge=0.0: nudged if nudge else here)
    monkeypatch.setattr(tuning, "cpu_model", lambda: "AMD EPYC family 25 model 1")
    assert not tuning.matches(stored, None, None, made_on="AMD EPYC family 25 model 1")  # this very model: rounding only
    assert tuning.matches(stored, None, None, made_on="AMD EPYC family 23 model 49")  # another generation
    assert tuning.matches(stored, None, None, made_on="AMD EPYC")  # stored under the bare name: which one is unknown


@needs_cifar
def test_a_probe_made_on_another_cpu_model_is_current_and_a_changed_rule_is_not():
    """SGD at 0.25's CIFAR-10 probe as an AMD EPYC computed it (the book's tuned rate): on an Intel
    Xeon its last numbers differ by up to 1e-3 (rounding grown over five steps), yet it matches
    there, as on the EPYC; the same rule at a rate 1% off, or NAG, does not."""
    from l2l.evaluation.tuning import matches
    from l2l.optimizers import NAG, SGD

    epyc = [2.304104, 2.287574, 2.257723, 2.239631, 2.240612, 2.225962, 0.3152302, 0.2294034, 0.2255085,
            0.3312564, 0.3061788, 2.306912, 2.292734, 2.293932, 2.268063, 2.244827, 2.226117, 0.3019962,
            0.2312216, 0.4847796, 0.2662659, 0.178346]
    cifar = make_problem("cifar")
    assert matches(epyc, cifar, SGD(0.25))
    assert not matches(epyc, cifar, SGD(0.25 * 1.01))
    assert not matches(epyc, cifar, NAG(0.25 / 10, momentum=0.9))


def test_save_and_load_keep_per_run_numbers(tmp_path):
    from l2l.evaluation import Curve, load, save

    curves = {"A": Curve.of("A", torch.rand(5, 11)), "B": Curve.of("B", torch.rand(5, 11), lr=0.1)}
    save(curves, tmp_path / "r.json", problem="quadratic", trained=["A"])
    back, meta = load(tmp_path / "r.json")
    assert back == curves and meta["trained"] == ["A"] and meta["problem"] == "quadratic"


def test_a_chapter_s_protocol_is_compare_with_its_scale_s_settings_and_the_project_s_caches(tmp_path):
    """`presets.comparison` binds what every chapter passed by hand: the scale's test and tuning
    functions and grid, the seed, and the caches in the results folder; the numbers are compare's."""
    from l2l.book.presets import comparison, test_settings
    from l2l.optimizers import make_baseline
    from l2l.runtime import caches

    problem, settings = make_problem("quadratic:dim=3"), test_settings("quadratic", "smoke")
    learned = {"fixed": make_baseline("sgd", 0.05)}
    direct = compare(problem, learned, ("adam",), steps=6, runs=settings["runs"], seed=3,
                     tune_runs=settings["tune_runs"], grid=settings["grid"], progress=False)
    bound = comparison("quadratic", "smoke", tmp_path, seed=3)(problem, learned, ("adam",), steps=6, progress=False)
    assert [(k, c.lr, c.mean) for k, c in bound.items()] == [(k, c.lr, c.mean) for k, c in direct.items()]
    assert bound["fixed"].runs == settings["runs"]
    tuned, finished = caches(tmp_path)
    assert tuned.exists() and len(list(finished.glob("*.json"))) == 2  # both curves kept for the next reader
    comparison("quadratic", "smoke", None, seed=3)(problem, learned, ("adam",), steps=6, runs=2, progress=False)
    assert len(list(finished.glob("*.json"))) == 2  # None: no caches (these 2-run curves are kept nowhere)
