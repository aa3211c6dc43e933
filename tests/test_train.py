"""Meta-training mechanics: dropped second derivatives, the fast path against the reference,
truncation, resume, the NaN guard, and a small but real learning check."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import needs_art, needs_cifar, needs_mnist
from l2l.optimizers import SGD
from l2l.loop import run
from l2l.optimizers import LSTMConfig, LSTMOptimizer
from l2l.problems import Task, derive_seed, make_problem
from l2l.optimizers.reference import reference_init, reference_unroll
from l2l.errors import UserError
from l2l.training import (GraphedUnroll, TrainConfig, load_checkpoint, meta_train, optimizer_from, train_epoch,
                          truncate, unroll)

CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


def _meta_grads(opt):
    return [p.grad.clone() for p in opt.parameters()]


def _ours(opt, task, steps):
    theta, state = task.theta, opt.init(task.theta)
    _, grad = task.loss_and_grad(theta)
    surrogate, losses, theta, state, _ = unroll(opt, task, theta, state, grad, steps)
    opt.zero_grad()
    surrogate.backward()
    return _meta_grads(opt), losses, theta


def _reference(opt, task, steps):
    theta, state = task.theta, reference_init(opt, task.theta)
    meta_loss, losses, theta, _ = reference_unroll(opt, task, theta, state, steps)
    opt.zero_grad()
    meta_loss.backward()
    return _meta_grads(opt), losses, theta


CASES = [("quadratic", LSTMConfig(preprocess=None)), ("quadratic:dim=5", LSTMConfig(output_scale=0.1))]


@pytest.mark.parametrize("spec,config", CASES)
def test_fast_path_gives_reference_meta_gradients_and_trajectory(spec, config):
    problem = make_problem(spec)
    opt = LSTMOptimizer(config, seed=0)
    sample = lambda: problem.sample(runs=3, seed=11)
    g_ours, l_ours, th_ours = _ours(opt, sample(), steps=6)
    g_ref, l_ref, th_ref = _reference(opt, sample(), steps=6)
    torch.testing.assert_close(l_ours, l_ref)
    torch.testing.assert_close(th_ours, th_ref)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in g_ours)


@needs_mnist
def test_fast_path_gives_reference_meta_gradients_on_mnist():
    problem = make_problem("mnist:hidden=5,batch=16")
    opt = LSTMOptimizer(LSTMConfig(output_scale=0.1), seed=0)
    g_ours, l_ours, _ = _ours(opt, problem.sample(runs=2, seed=3), steps=4)
    g_ref, l_ref, _ = _reference(opt, problem.sample(runs=2, seed=3), steps=4)
    torch.testing.assert_close(l_ours, l_ref)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_second_derivatives_are_dropped_but_earlier_updates_carry_gradient():
    """The meta-gradient must equal the one with ∇_t held constant, and differ from the one that
    differentiates through ∇_t (which would form Hessian-vector products)."""
    problem = make_problem("quadratic")
    opt = LSTMOptimizer(LSTMConfig(preprocess=None), seed=0)
    task = problem.sample(runs=2, seed=5)
    g_ours, _, _ = _ours(opt, task, steps=4)

    # the same unroll with second derivatives kept: grad taken with create_graph=True
    task = problem.sample(runs=2, seed=5)
    theta, state = task.theta.clone().requires_grad_(True), opt.init(task.theta)
    meta = 0.0
    grad = torch.autograd.grad(task.loss(theta, task.batch()).sum(), theta, create_graph=True)[0]
    for _ in range(4):
        update, state = opt.step(grad, state)
        theta = theta + update
        f = task.loss(theta, task.batch())
        grad = torch.autograd.grad(f.sum(), theta, create_graph=True)[0]
        meta = meta + f.mean()
    opt.zero_grad()
    meta.backward()
    g_second = _meta_grads(opt)
    assert any(g.abs().sum() > 0 for g in g_ours), "the meta-gradient flows through earlier updates"
    assert not all(torch.allclose(a, b, rtol=1e-2) for a, b in zip(g_ours, g_second)), "second derivatives leaked"

    # and ∇_t handed to the optimizer has no graph at all
    f, grad = task.loss_and_grad(task.theta.requires_grad_(True) * 2)
    assert grad.grad_fn is None and not grad.requires_grad and f.grad_fn is None


def test_truncate_cuts_history_but_keeps_values():
    opt = LSTMOptimizer(LSTMConfig(preprocess=None))
    task = make_problem("quadratic").sample(runs=2, seed=0)
    theta, state = task.theta, opt.init(task.theta)
    _, grad = task.loss_and_grad(theta)
    _, _, theta, state, _ = unroll(opt, task, theta, state, grad, 3)
    assert theta.requires_grad and all(s.requires_grad for s in state)
    cut_theta, cut_state = truncate(theta, state)
    assert not cut_theta.requires_grad and not any(s.requires_grad for s in cut_state)
    torch.testing.assert_close(cut_theta, theta.detach())


SMALL = TrainConfig(problem="quadratic", optimizer=LSTMConfig(preprocess=None), epochs=6, runs=2,
                    eval_every=2, eval_runs=4, steps=20, unroll=5, meta_lr=3e-3)


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    whole = meta_train(SMALL, tmp_path / "whole.pt", progress=False)
    part = meta_train(SMALL, tmp_path / "split.pt", progress=False, stop_after=3)
    assert part["epoch"] == 3
    resumed = meta_train(SMALL, tmp_path / "split.pt", progress=False)
    assert resumed["epoch"] == 6
    torch.testing.assert_close(resumed["weights"], whole["weights"], rtol=0, atol=0)
    assert resumed["best"]["val"] == whole["best"]["val"]
    assert [h["val"] for h in resumed["history"]] == [h["val"] for h in whole["history"]]


def test_another_recipe_never_overwrites_a_checkpoint_unless_fresh(tmp_path):
    path = tmp_path / "a.pt"
    meta_train(SMALL, path, progress=False, stop_after=2)
    before = path.read_bytes()
    other = dataclasses.replace(SMALL, meta_lr=1e-2)
    with pytest.raises(UserError, match="another recipe.*meta_lr: 0.003 there, 0.01 asked"):
        meta_train(other, path, progress=False, stop_after=1)
    assert path.read_bytes() == before
    ck = meta_train(other, path, progress=False, stop_after=1, fresh=True)
    assert ck["epoch"] == 1 and TrainConfig.from_dict(load_checkpoint(path)["config"]) == other


def test_a_finished_constant_rate_run_is_extended_by_more_epochs(tmp_path):
    whole = meta_train(dataclasses.replace(SMALL, epochs=8), tmp_path / "whole.pt", progress=False)
    meta_train(SMALL, tmp_path / "grown.pt", progress=False)  # 6 epochs, finished
    grown = meta_train(dataclasses.replace(SMALL, epochs=8), tmp_path / "grown.pt", progress=False)
    assert grown["epoch"] == 8
    torch.testing.assert_close(grown["weights"], whole["weights"], rtol=0, atol=0)
    cosine = dataclasses.replace(SMALL, schedule="cosine")
    meta_train(cosine, tmp_path / "cos.pt", progress=False)
    with pytest.raises(UserError, match="another recipe"):  # its rates depend on the total
        meta_train(dataclasses.replace(cosine, epochs=8), tmp_path / "cos.pt", progress=False)


def test_best_weights_are_a_copy_even_when_no_validation_is_finite(tmp_path):
    # updates of 1e30: every loss is infinite, every epoch skipped, no validation finite
    config = dataclasses.replace(SMALL, optimizer=LSTMConfig(preprocess=None, output_scale=1e30), epochs=2,
                                 eval_every=1)
    ck = meta_train(config, tmp_path / "nan.pt", progress=False)
    assert ck["epoch"] == 2 and ck["skipped"] == 2 and all(h["val"] == math.inf for h in ck["history"])
    assert ck["best"]["epoch"] == 0
    torch.testing.assert_close(ck["best"]["weights"], LSTMOptimizer(config.optimizer, seed=config.seed).state_dict(),
                               rtol=0, atol=0)
    live = optimizer_from(ck, which="last").state_dict()
    assert all(w.data_ptr() != v.data_ptr() for w, v in zip(ck["best"]["weights"].values(), live.values()))
    assert all(w.data_ptr() != v.data_ptr() for w, v in zip(ck["best"]["weights"].values(), ck["weights"].values()))


def test_the_window_of_training_losses_survives_a_resume(tmp_path, caplog):
    config = dataclasses.replace(SMALL, eval_every=4, epochs=8)
    with caplog.at_level("INFO", logger="l2l"):  # without a bar, a log line per validation
        whole = meta_train(config, tmp_path / "whole.pt", progress=False)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == ["whole.pt: epoch 4 of 8", "whole.pt: epoch 8 of 8"]
    last = whole["history"][-1]
    assert f"validation {last['val']:.4g}, best {whole['best']['val']:.4g} (epoch {whole['best']['epoch']})" in lines[1]
    part = meta_train(config, tmp_path / "split.pt", progress=False, stop_after=3)  # mid-window
    assert len(load_checkpoint(tmp_path / "split.pt")["window"]) == 3
    resumed = meta_train(config, tmp_path / "split.pt", progress=False)
    assert [h["train"] for h in resumed["history"]] == [h["train"] for h in whole["history"]]
    assert part["epoch"] == 3


def test_checkpoints_load_without_running_code_and_bad_files_name_themselves(tmp_path):
    meta_train(SMALL, tmp_path / "ok.pt", progress=False, stop_after=1)
    assert load_checkpoint(tmp_path / "ok.pt")["epoch"] == 1  # weights_only=True inside
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((tmp_path / "ok.pt").read_bytes()[:500])
    with pytest.raises(UserError, match="truncated.pt is not a readable checkpoint"):
        load_checkpoint(truncated)

    class Payload:  # a pickle that would run code when loaded with weights_only=False
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"config": Payload()}, evil)
    with pytest.raises(UserError, match="evil.pt is not a readable checkpoint"):
        load_checkpoint(evil)
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a checkpoint of this project"):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("name", sorted(p.name for p in CHECKPOINTS.glob("**/*.pt")))
def test_every_committed_checkpoint_loads_safely(name):
    path = next(CHECKPOINTS.glob(f"**/{name}"))
    ck = load_checkpoint(path)
    opt = optimizer_from(ck)
    assert sum(p.numel() for p in opt.parameters()) > 0 and 0 < ck["epoch"] <= ck["config"]["epochs"]


def test_nan_meta_loss_is_skipped_and_weights_untouched():
    opt = LSTMOptimizer(LSTMConfig(preprocess=None))
    meta_opt = torch.optim.Adam(opt.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in opt.state_dict().items()}
    theta = torch.zeros(2, 3)
    task = Task(theta, lambda th, b: (th.sum(-1) + 1) * math.inf)
    assert math.isnan(train_epoch(opt, meta_opt, task, SMALL))
    torch.testing.assert_close(opt.state_dict(), before, rtol=0, atol=0)


def test_short_meta_training_beats_fixed_step_sgd(tmp_path):
    config = TrainConfig(problem="quadratic", optimizer=LSTMConfig(preprocess=None), epochs=150,
                         runs=8, eval_every=50, eval_runs=32, meta_lr=3e-3)
    ck = meta_train(config, tmp_path / "q.pt", progress=False)
    lstm = optimizer_from(ck)
    problem = make_problem("quadratic")
    test = lambda opt: run(problem.sample(128, derive_seed(0, "test")), opt, 100)[:, -1].mean().item()
    untrained = LSTMOptimizer(config.optimizer, seed=0)
    lstm_loss, sgd_loss = test(lstm), test(SGD(lr=0.01))
    assert lstm_loss < sgd_loss, (lstm_loss, sgd_loss)
    assert lstm_loss < test(untrained), "training must improve on the initial optimizer"


def test_compiled_step_gives_the_eager_meta_gradients():
    problem = make_problem("quadratic:dim=64")
    eager = LSTMOptimizer(LSTMConfig(output_scale=0.1), seed=0)
    compiled = LSTMOptimizer(LSTMConfig(output_scale=0.1), seed=0, compile=True)
    g_eager, l_eager, _ = _ours(eager, problem.sample(runs=2, seed=4), steps=5)
    g_comp, l_comp, _ = _ours(compiled, problem.sample(runs=2, seed=4), steps=5)
    torch.testing.assert_close(l_comp, l_eager, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_cosine_schedule_and_clip_settings():
    config = TrainConfig(epochs=100, meta_lr=1e-3, schedule="cosine")
    assert config.lr_at(0) == pytest.approx(1e-3) and config.lr_at(50) == pytest.approx(5e-4)
    assert config.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    assert TrainConfig(meta_lr=2e-3).lr_at(77) == 2e-3
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="clip"):
        TrainConfig(clip=0.0)
    with pytest.raises(ValueError, match="multiple of unroll"):
        TrainConfig(steps=30, unroll=20)


def test_clipping_bounds_the_meta_gradient():
    config = TrainConfig(problem="quadratic", optimizer=LSTMConfig(preprocess=None), steps=20, unroll=20,
                         clip=1e-3)
    opt = LSTMOptimizer(config.optimizer)
    seen = []
    meta_opt = torch.optim.SGD(opt.parameters(), lr=0.0)  # records nothing; check grads after the step
    meta_opt.register_step_post_hook(lambda o, a, k: seen.append(
        torch.sqrt(sum((p.grad ** 2).sum() for p in opt.parameters())).item()))
    train_epoch(opt, meta_opt, make_problem("quadratic").sample(2, seed=0), config)
    assert seen and seen[0] == pytest.approx(1e-3, rel=1e-3)


def test_a_recipe_with_start_begins_at_that_trainings_best_weights_and_keeps_them_unless_it_improves(
        tmp_path, monkeypatch):
    """`start` (a later stage with a schedule of its own, say) begins at another checkpoint's best φ,
    validated at its own horizon as its epoch-0 best (that validation's time counted); the
    meta-optimizer and schedule start afresh; it resumes like any recipe, and a missing file, another
    architecture, an unvalidated training or the output itself is an error that changes nothing."""
    import importlib

    module = importlib.import_module("l2l.training.meta_train")  # the package's meta_train is the function
    real = module.validate

    first = meta_train(SMALL, tmp_path / "first.pt", progress=False)
    first["weights"] = {k: v + 1.0 for k, v in first["weights"].items()}  # its last weights: not its best
    torch.save(first, tmp_path / "first.pt")
    longer = dataclasses.replace(SMALL, steps=40, epochs=4, schedule="cosine", start="first")
    assert module.Trial(longer, tmp_path / "begun.pt").ck["wall_time"] > 0  # the start's validation, not 0
    calls = []
    with monkeypatch.context() as m:  # every validation after the start's does worse: the start stays the best
        m.setattr(module, "validate", lambda *a: (calls.append(a), real(*a) if len(calls) == 1 else math.inf)[1])
        ck = meta_train(longer, tmp_path / "stalled.pt", progress=False)
    assert len(calls) == 3  # the start's, then epochs 2 and 4
    assert ck["started_from"] == {"file": "first.pt", "epoch": first["best"]["epoch"],
                                  "val": real(optimizer_from(first), longer, "cpu", 40),
                                  "config": first["config"]}
    assert ck["best"]["epoch"] == 0 and ck["best"]["val"] == ck["started_from"]["val"]
    torch.testing.assert_close(ck["best"]["weights"], first["best"]["weights"], rtol=0, atol=0)
    assert [h["epoch"] for h in ck["history"]] == [2, 4]  # the start's validation is not a history entry
    assert ck["meta_opt"]["state"][0]["step"] == 4 * 40 // 5  # a fresh Adam: 8 updates an epoch
    whole = meta_train(longer, tmp_path / "whole.pt", progress=False)
    assert not torch.equal(whole["weights"]["head.weight"], first["best"]["weights"]["head.weight"])
    meta_train(longer, tmp_path / "split.pt", progress=False, stop_after=1)
    resumed = meta_train(longer, tmp_path / "split.pt", progress=False)  # resumed, not started again
    torch.testing.assert_close(resumed["weights"], whole["weights"], rtol=0, atol=0)
    assert resumed["started_from"] == whole["started_from"]
    assert TrainConfig.from_dict(whole["config"]) == longer
    with pytest.raises(UserError, match="none.pt not found"):
        meta_train(dataclasses.replace(longer, start="none"), tmp_path / "x.pt", progress=False)
    with pytest.raises(UserError, match="start names the checkpoint being trained"):
        meta_train(longer, tmp_path / "first.pt", progress=False, fresh=True)
    with pytest.raises(UserError, match="another architecture.*hidden: 20 there, 8 asked"):
        meta_train(dataclasses.replace(longer, optimizer=LSTMConfig(preprocess=None, hidden=8)),
                   tmp_path / "x.pt", progress=False)
    meta_train(dataclasses.replace(SMALL, eval_every=4), tmp_path / "early.pt", progress=False, stop_after=2)
    with pytest.raises(UserError, match="early.pt has not validated yet"):
        meta_train(dataclasses.replace(longer, start="early"), tmp_path / "x.pt", progress=False)
    assert not (tmp_path / "x.pt").exists()
    for bad in ("", "first.pt", "a/first"):
        with pytest.raises(UserError, match="without .pt"):
            dataclasses.replace(SMALL, start=bad)


def test_older_checkpoints_without_new_fields_still_match(tmp_path):
    meta_train(SMALL, tmp_path / "old.pt", progress=False, stop_after=2)
    saved = load_checkpoint(tmp_path / "old.pt")
    for field in ("schedule", "clip"):  # as written before these fields existed
        del saved["config"][field]
    torch.save(saved, tmp_path / "old.pt")
    resumed = meta_train(SMALL, tmp_path / "old.pt", progress=False, stop_after=3)
    assert resumed["epoch"] == 3


FAMILIES = ["quadratic", pytest.param("mnist:activation=mix", marks=needs_mnist),
            pytest.param("cifar:classes=2", marks=needs_cifar),
            pytest.param("neural_art:split=test", marks=needs_art)]


@pytest.mark.parametrize("spec", FAMILIES)
def test_a_tasks_loss_is_its_familys_function_and_its_data_come_through_batch(spec):
    """What lets one captured CUDA graph serve every task: task A's loss on task B's batch is
    task B's loss."""
    problem = make_problem(spec)
    a, b = problem.sample(2, seed=1), problem.sample(2, seed=2)
    batch = b.batch()
    torch.testing.assert_close(a.loss(b.theta, batch), b.loss(b.theta, batch))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("spec", ["quadratic", pytest.param("mnist", marks=needs_mnist)])
def test_cuda_graph_epochs_equal_eager_epochs(spec):
    """Two epochs (two tasks, one graph) through GraphedUnroll give train_epoch's meta-losses and φ."""
    config = TrainConfig(spec, steps=20, unroll=5, runs=3)
    problem = make_problem(spec)
    results = []
    for graphs in (False, True):
        torch.manual_seed(0)
        opt = LSTMOptimizer(LSTMConfig(**problem.optimizer_defaults)).cuda()
        meta_opt = torch.optim.Adam(opt.parameters(), lr=1e-2)
        graphed, losses = None, []
        for epoch in range(2):
            task = problem.sample(config.runs, seed=epoch, device="cuda")
            if graphs:
                graphed = graphed or GraphedUnroll(opt, problem.sample(config.runs, 99, "cuda"), config)
            losses.append(train_epoch(opt, meta_opt, task, config, graphed))
        results.append((losses, [p.detach().clone() for p in opt.parameters()]))
    (eager_losses, eager_phi), (graph_losses, graph_phi) = results
    assert eager_losses == pytest.approx(graph_losses, rel=1e-4)
    for e, g in zip(eager_phi, graph_phi):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


def test_cuda_graphs_refuse_a_cpu_device():
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        meta_train(TrainConfig("quadratic", epochs=1, steps=5, unroll=5), device="cpu", cuda_graphs=True,
                   progress=False)


@cuda
def test_meta_train_with_cuda_graphs_equals_eager_meta_train(tmp_path):
    config = TrainConfig("quadratic", epochs=3, steps=20, unroll=5, runs=4, eval_every=3, eval_runs=8)
    eager = meta_train(config, tmp_path / "eager.pt", device="cuda", cuda_graphs=False, progress=False)
    graphed = meta_train(config, tmp_path / "graphed.pt", device="cuda", progress=False)  # on by default
    assert graphed["history"][-1]["val"] == pytest.approx(eager["history"][-1]["val"], rel=1e-4)
    for k, v in eager["weights"].items():
        torch.testing.assert_close(graphed["weights"][k], v, rtol=1e-4, atol=1e-6)


def test_a_retraining_book_run_trains_each_checkpoint_once(tmp_path, monkeypatch):
    """With RETRAIN, a chapter that loads a checkpoint another chapter of the same run has just
    retrained (written after the run's start) loads it instead of training it a second time."""
    import time

    from l2l.training import load_or_train
    from l2l.training.meta_train import RETRAINED_SINCE

    path = tmp_path / "q.pt"
    meta_train(dataclasses.replace(SMALL, seed=9), path, progress=False)  # an old one, another recipe
    monkeypatch.setenv(RETRAINED_SINCE, repr(time.time() + 3600))  # the run started after it: retrain
    _, ck = load_or_train(SMALL, path, retrain=True, progress=False)
    assert ck["epoch"] == SMALL.epochs and load_checkpoint(path)["config"]["seed"] == SMALL.seed
    monkeypatch.setenv(RETRAINED_SINCE, repr(path.stat().st_mtime - 1))  # written by this run: reuse
    before = path.read_bytes()
    load_or_train(SMALL, path, retrain=True, progress=False)
    assert path.read_bytes() == before


def test_an_optimizer_on_another_device_than_its_task_is_a_clear_error():
    task = make_problem("quadratic").sample(2, seed=0, device="meta")
    with pytest.raises(UserError, match="weights are on cpu and the task on meta"):
        run(task, LSTMOptimizer(LSTMConfig(preprocess=None)), 3)


def test_other_seeds_leave_out_unfinished_trainings_at_book_scale(tmp_path):
    """A chapter never starts an hour of training for a seed: it names what is missing instead."""
    from l2l.book import presets
    from l2l.book.report import hardware_text
    from l2l.training import meta_train

    config = presets.train_config("quadratic:dim=3", "book", seed=1)
    meta_train(config, presets.checkpoint_path("quadratic:dim=3", "book", tmp_path, variant="seed1"),
               stop_after=1, progress=False)
    found, missing, costs = presets.other_seeds("quadratic:dim=3", "book", (1, 2), tmp_path)
    assert found == {}
    assert list(costs) == ["LSTM seed 1"]  # what each seed with a checkpoint took so far, and where
    here = load_checkpoint(presets.checkpoint_path("quadratic:dim=3", "book", tmp_path, variant="seed1"))["hardware"]
    assert costs["LSTM seed 1"] == f"1 of 3,000 epochs (unfinished), 0.0 min on {hardware_text(here)}"
    assert missing[0].startswith("seed 1: 1 of 3,000 epochs") and "--seed 1" in missing[0]
    assert missing[1].startswith("seed 2: not trained")
    assert presets.seeds_unfinished("quadratic:dim=3", "book", (1, 2), tmp_path) == ["LSTM seed 1: 1 of 3,000 epochs"]
    found, missing, _ = presets.other_seeds("quadratic:dim=3", "smoke", (1,), tmp_path)
    assert list(found) == ["LSTM seed 1"] and missing == []
    # another recipe's seeds (the search's winner at a longer budget): its own files, labels and commands
    found, missing, _ = presets.other_seeds("quadratic:dim=3", "book", (1,), tmp_path, label="LSTM-10k",
                                         meta_lr=0.002, epochs=10)
    assert found == {} and "--epochs 10" in missing[0] and "--meta-lr 0.002" in missing[0]
    # or, asked to, shown as far as they got, the line saying how far (LSTM-10k's seeds, hours each),
    # once they have validated: before, their best weights would be the untrained ones
    found, lines, _ = presets.other_seeds("quadratic:dim=3", "book", (1, 2), tmp_path, partial=True)
    assert found == {} and lines[0].startswith("seed 1: 1 of 3,000 epochs") and "not validated yet" in lines[0]
    often = presets.train_config("quadratic:dim=3", "book", seed=1, eval_every=2)  # a validation at epoch 2
    meta_train(often, presets.recipe_path(often, "book", tmp_path), stop_after=2, progress=False)
    found, lines, _ = presets.other_seeds("quadratic:dim=3", "book", (1, 2), tmp_path, partial=True, eval_every=2)
    assert list(found) == ["LSTM seed 1"]
    assert lines[0].startswith("seed 1: shown with its best weights after 2 of 3,000 epochs")
    assert "--seed 1" in lines[0] and lines[1].startswith("seed 2: not trained")
    found, _, _ = presets.other_seeds("quadratic:dim=3", "smoke", (1,), tmp_path, label="LSTM-10k", epochs=3)
    assert list(found) == ["LSTM-10k seed 1"]
    _, _, best = presets.other_seeds("quadratic:dim=3", "smoke", (1,), tmp_path, label="LSTM-10k", epochs=3,
                                     describe=lambda ck, recipe: f"{ck['epoch']} of {recipe.epochs}")
    assert best == {"LSTM-10k seed 1": "3 of 3"}  # a chapter's own line for each seed's checkpoint
    assert presets.recipe_path(presets.train_config("quadratic:dim=3", "smoke", seed=1, epochs=3), "smoke",
                               tmp_path).exists()


def test_a_chapter_may_show_an_unfinished_training_as_it_stands_and_says_so(tmp_path):
    """`presets.trained(partial=True)`: at book scale an unfinished checkpoint gives its best
    weights so far, with a line saying how far it got; another recipe at the path is an error."""
    from l2l.book import presets
    from l2l.training import meta_train, optimizer_from

    config = presets.train_config("quadratic:dim=3", "book")
    path = tmp_path / "partial.pt"
    ck = meta_train(dataclasses.replace(config, eval_every=1), path, stop_after=2, progress=False)
    mine = dataclasses.replace(config, eval_every=1)
    opt, got, line = presets.trained(mine, path, "book", partial=True, command="python -m l2l train …")
    assert got["epoch"] == 2 and line == "2 of 3,000 epochs (`partial.pt`; `python -m l2l train …`)"
    reference = optimizer_from(ck)
    assert all(torch.equal(a, b) for a, b in zip(opt.state_dict().values(), reference.state_dict().values()))
    assert presets.trained(mine, path, "book")[0] is None  # without partial: left out
    assert presets.trained(mine, tmp_path / "none.pt", "book")[2] == "not trained (`none.pt`)"
    with pytest.raises(UserError, match="another recipe"):
        presets.trained(config, path, "book", partial=True)


def test_a_sweep_on_the_cpu_refuses_cuda_graphs(tmp_path):
    from l2l.training.sweep import sweep

    config = TrainConfig(problem="quadratic:dim=3", epochs=2, runs=2, eval_every=1, eval_runs=2)
    with pytest.raises(UserError, match="CUDA"):
        sweep(config, 1, tmp_path, tmp_path / "sweep.json", progress=False, cuda_graphs=True)


def test_a_sweep_draws_log_uniform_rates_picks_by_validation_and_resumes(tmp_path):
    """The paper's random search: trials differ only in meta_lr, each a resumable checkpoint; the
    table's winner has the lowest validation loss; rerunning trains nothing more."""
    import json

    from l2l.book import presets
    from l2l.training import draw_trials, sweep

    config = presets.train_config("quadratic:dim=3", "smoke", epochs=4, eval_every=2)
    drawn = draw_trials(config, 5, 1e-4, 1e-1, seed=3)
    assert drawn == draw_trials(config, 5, 1e-4, 1e-1, seed=3)  # the same trials every time
    assert all(1e-4 <= t.meta_lr <= 1e-1 for t in drawn) and len({t.meta_lr for t in drawn}) == 5
    assert {dataclasses.replace(t, meta_lr=1.0) for t in drawn} == {dataclasses.replace(config, meta_lr=1.0)}
    # the seed alone names the rates: a search on another problem, or with fewer trials, draws the same
    # ones (chapter 4 trains CIFAR's trial at the rate the MNIST search chose)
    other = presets.train_config("mnist", "smoke")
    assert [t.meta_lr for t in draw_trials(other, 2, 1e-4, 1e-1, seed=3)] == [t.meta_lr for t in drawn[:2]]
    assert draw_trials(config, 5, 1e-4, 1e-1, seed=4) != drawn
    table = tmp_path / "sweep.json"
    first = sweep(config, 3, tmp_path / "trials", table, 1e-4, 1e-1, seed=3, progress=False, max_minutes=1e-6)
    assert not first["complete"] and first["winner"] is None  # stopped at once: nothing finished
    result = sweep(config, 3, tmp_path / "trials", table, 1e-4, 1e-1, seed=3, progress=False)
    assert result["complete"] and json.loads(table.read_text()) == result
    rows = result["rows"]
    assert [r["meta_lr"] for r in rows] == [t.meta_lr for t in drawn[:3]]
    assert result["winner"] == min(rows, key=lambda r: r["best_val"])["trial"]
    assert all(r["finished"] and r["epochs"] == 4 and len(r["validation"]) == 2 for r in rows)
    stamps = [p.stat().st_mtime_ns for p in sorted((tmp_path / "trials").glob("*.pt"))]
    again = sweep(config, 3, tmp_path / "trials", table, 1e-4, 1e-1, seed=3, progress=False)
    assert again["rows"] == rows and stamps == [p.stat().st_mtime_ns for p in sorted((tmp_path / "trials").glob("*.pt"))]


def test_patience_stops_training_once_validation_stops_improving(monkeypatch, tmp_path):
    import importlib

    scores = iter([1.0, 0.9, 0.95, 0.97, 0.99, 0.5])
    monkeypatch.setattr(importlib.import_module("l2l.training.meta_train"), "validate",
                        lambda opt, config, device, steps=None: next(scores))
    config = dataclasses.replace(SMALL, epochs=12, eval_every=1, patience=3)
    ck = meta_train(config, tmp_path / "p.pt", progress=False)
    assert ck["stopped"] and ck["epoch"] == 5 and ck["best"]["epoch"] == 2  # three validations after the best
    assert meta_train(config, tmp_path / "p.pt", progress=False)["epoch"] == 5  # finished: not trained on
    with pytest.raises(UserError, match="patience"):
        dataclasses.replace(SMALL, patience=0)


def test_the_plateau_schedule_halves_the_rate_from_the_best_weights_then_stops(monkeypatch, tmp_path, caplog):
    """"Until validation stops improving" on a noisy validation: a plateau (`patience` validations
    without a new best) halves the meta-learning rate and goes on from the best weights; after
    PLATEAU_HALVINGS halvings the next plateau stops training."""
    import importlib

    from l2l.training.config import PLATEAU_HALVINGS

    module = importlib.import_module("l2l.training.meta_train")
    scores = iter([1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.7, 0.9, 0.9, 0.9])
    monkeypatch.setattr(module, "validate", lambda opt, config, device, steps=None: next(scores))
    rates, weights, task = [], {}, module.Trial.task

    def watched(trial, problem):  # the rate and weights each epoch starts from
        out = task(trial, problem)
        rates.append(trial.meta_opt.param_groups[0]["lr"])
        weights[trial.epoch] = {k: v.clone() for k, v in trial.opt.state_dict().items()}
        return out

    monkeypatch.setattr(module.Trial, "task", watched)
    config = dataclasses.replace(SMALL, epochs=40, eval_every=1, patience=2, schedule="plateau")
    with caplog.at_level("INFO", logger=module.log.name):
        ck = meta_train(config, tmp_path / "p.pt", progress=False)
    assert PLATEAU_HALVINGS == 3 and ck["halvings"] == 3 and ck["stopped"]
    said = [r.getMessage() for r in caplog.records if "halved" in r.getMessage()]  # each halving is logged
    assert len(said) == 3 and "halved to 0.0015 (1 of 3), from the best weights (epoch 2)" in said[0]
    assert ck["epoch"] == 12 and ck["best"]["epoch"] == 10  # the fourth plateau (epochs 11, 12) stops it
    lr = SMALL.meta_lr
    assert rates == pytest.approx([lr] * 4 + [lr / 2] * 3 + [lr / 4] * 2 + [lr / 8] * 3, rel=0, abs=0)
    assert [h.get("halved_to") for h in ck["history"] if "halved_to" in h] == [lr / 2, lr / 4, lr / 8]
    assert [h["epoch"] for h in ck["history"] if "halved_to" in h] == [4, 7, 9]
    torch.testing.assert_close(weights[4], weights[2], rtol=0, atol=0)  # after epoch 4: epoch 2's (best) weights
    assert not all(torch.equal(weights[3][k], weights[2][k]) for k in weights[2])
    with pytest.raises(UserError, match="plateau.*patience"):
        dataclasses.replace(SMALL, schedule="plateau")
    with pytest.raises(UserError, match="plateau.*curriculum"):
        dataclasses.replace(SMALL, schedule="plateau", patience=2, curriculum=(40,))


def test_a_plateau_run_resumed_after_interruption_equals_an_uninterrupted_one(tmp_path):
    config = dataclasses.replace(SMALL, epochs=10, eval_every=1, patience=1, schedule="plateau", meta_lr=0.05)
    whole = meta_train(config, tmp_path / "whole.pt", progress=False)
    halved = next(h["epoch"] for h in whole["history"] if "halved_to" in h)
    assert halved < config.epochs - 1  # a halving with epochs after it, to carry over
    for stop in (halved, halved + 1):  # interrupted at the halving, or one epoch after it
        meta_train(config, tmp_path / f"split{stop}.pt", progress=False, stop_after=stop)
        assert load_checkpoint(tmp_path / f"split{stop}.pt")["epoch"] == stop
        resumed = meta_train(config, tmp_path / f"split{stop}.pt", progress=False)
        torch.testing.assert_close(resumed["weights"], whole["weights"], rtol=0, atol=0)
        assert [h["val"] for h in resumed["history"]] == [h["val"] for h in whole["history"]]
        assert resumed["halvings"] == whole["halvings"]


def test_a_training_resumed_on_another_machine_names_both(tmp_path):
    """A checkpoint's `hardware` says where its epochs ran, in order, so that a chapter never
    credits one machine with minutes another spent (LSTM-10k: a CPU, then an H200, then a CPU)."""
    from l2l.runtime import hardware
    from l2l.training.checkpoint import save_checkpoint

    path = tmp_path / "moved.pt"
    meta_train(SMALL, path, stop_after=2, progress=False)
    here = hardware("cpu")
    assert load_checkpoint(path)["hardware"] == here
    meta_train(SMALL, path, stop_after=4, progress=False)  # the same machine: named once
    assert load_checkpoint(path)["hardware"] == here
    ck = load_checkpoint(path)
    save_checkpoint({**ck, "hardware": "NVIDIA H200"}, path)  # as if its epochs so far ran there
    meta_train(SMALL, path, progress=False)
    ck = load_checkpoint(path)
    assert ck["epoch"] == SMALL.epochs and ck["hardware"] == f"NVIDIA H200, then {here}"


@needs_mnist
def test_two_chapters_running_the_search_at_once_both_read_it_finished(tmp_path):
    """Chapters 2 and 4 both call `presets.search` and may run side by side: below book scale the
    second to start waits for the first and reads the finished table, instead of meeting the trial
    the first is training (and stopping). At book scale a chapter only reads the table."""
    import concurrent.futures as cf
    import threading

    from l2l.book import presets

    start = threading.Barrier(2)

    def chapter():
        start.wait()
        return presets.search("mnist", "smoke", tmp_path)

    with cf.ThreadPoolExecutor(2) as pool:
        (first_path, first), (_, second) = [f.result() for f in [pool.submit(chapter) for _ in range(2)]]
    assert first_path == presets.sweep_path("mnist", "smoke", tmp_path / "results")
    trials = presets.test_settings("mnist", "smoke")["sweep_trials"]
    assert first["complete"] and second == first and len(first["rows"]) == trials
    assert len(list((tmp_path / "checkpoints" / "sweeps").glob("*.pt"))) == trials
    assert presets.search("mnist", "book", tmp_path) == (presets.sweep_path("mnist", "book", tmp_path / "results"), None)
    # chapter 2's second search, over higher rates: a table and trials of its own beside the first's
    path, higher = presets.search("mnist", "smoke", tmp_path, sweep_seed=1, low=0.005, high=0.03)
    assert path == presets.sweep_path("mnist", "smoke", tmp_path / "results", seed=1) and path.name.startswith("sweep-mnist-1")
    assert higher["complete"] and higher["range"] == [0.005, 0.03] and higher["seed"] == 1
    assert all(0.005 <= r["meta_lr"] <= 0.03 for r in higher["rows"]) and json.loads(first_path.read_text()) == first
    assert len(list((tmp_path / "checkpoints" / "sweeps").glob("*.pt"))) == 2 * trials


def test_a_seed_label_gives_back_its_seed():
    """`seed_of` reads the seed `seed_label` wrote; a chapter's own training (no suffix) is the default."""
    from l2l.book.presets import seed_label, seed_of, seed_suffix

    label = seed_label("NTM-L-BFGS, head biases 0", 12)
    assert seed_suffix(label) == " seed 12" and seed_of(label, 0) == 12
    assert seed_of("NTM-L-BFGS, head biases 0", 3) == 3 and seed_of("LSTM seed 1 copy", 5) == 5
