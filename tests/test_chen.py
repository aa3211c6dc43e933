"""Chen et al. (2020)'s two ingredients as options of meta-training: a curriculum of horizons and
imitation of a tuned Adam."""

import dataclasses
import math

import pytest
import torch

import importlib
from l2l.errors import UserError
from l2l.optimizers import Adam, LSTMConfig, LSTMOptimizer
from l2l.problems import make_problem
from l2l.training import TrainConfig, load_checkpoint, meta_train, sweep
from l2l.training.meta_train import Trial
from l2l.training.population import check_population

SMALL = TrainConfig(problem="quadratic", optimizer=LSTMConfig(preprocess=None), epochs=6, runs=2,
                    eval_every=2, eval_runs=4, steps=10, unroll=5, meta_lr=3e-3)


def _imitation_error(opt, teacher, task, steps=20):
    """Mean squared difference of the two optimizers' updates along the teacher's path."""
    theta, state, taught = task.theta, opt.init(task.theta), teacher.init(task.theta)
    step, teach, total = opt.bind(), teacher.bind(), 0.0
    with torch.no_grad():
        for _ in range(steps):
            _, grad = task.loss_and_grad(theta)
            update, state = step(grad, state)
            target, taught = teach(grad, taught)
            total += (update - target).square().mean().item()
            theta = theta + target
    return total / steps


def test_imitation_teaches_the_lstm_to_step_like_adam():
    config = dataclasses.replace(SMALL, imitation=1.0, teacher_lr=0.05, epochs=40, runs=4, steps=20, meta_lr=1e-2)
    test = make_problem("quadratic").sample(16, seed=123)
    before = _imitation_error(LSTMOptimizer(config.optimizer, seed=config.seed), Adam(0.05), test)
    ck = meta_train(config, None, progress=False)
    opt = LSTMOptimizer(config.optimizer)
    opt.load_state_dict(ck["weights"])
    after = _imitation_error(opt, Adam(0.05), test)
    assert after < 0.2 * before, (before, after)
    assert ck["imitated"] == 40 and all(math.isnan(h["train"]) for h in ck["history"])  # no meta-loss to report
    assert ck["imitation_opt"]["state"] and ck["meta_opt"]["state"] == {}  # imitation has an Adam of its own


def test_imitation_epochs_are_drawn_from_seed_and_epoch():
    config = dataclasses.replace(SMALL, imitation=0.3, teacher_lr=0.1)
    drawn = [config.imitates(e) for e in range(2000)]
    assert drawn == [config.imitates(e) for e in range(2000)]
    assert sum(drawn) / 2000 == pytest.approx(0.3, abs=0.03)
    assert not any(SMALL.imitates(e) for e in range(100))


def test_a_curriculum_with_imitation_resumes_exactly(tmp_path):
    config = dataclasses.replace(SMALL, curriculum=(20, 40), imitation=0.4, teacher_lr=0.1, epochs=12, eval_every=1)
    whole = meta_train(config, tmp_path / "whole.pt", progress=False)
    meta_train(config, tmp_path / "cut.pt", progress=False, stop_after=5)
    cut = meta_train(config, tmp_path / "cut.pt", progress=False)
    assert cut.get("stage") == whole.get("stage") and cut["imitated"] == whole["imitated"] > 0
    torch.testing.assert_close(cut["weights"], whole["weights"], rtol=0, atol=0)
    assert [h["val_steps"] for h in whole["history"]] == [h["val_steps"] for h in cut["history"]]
    assert load_checkpoint(tmp_path / "cut.pt")["config"]["curriculum"] == [20, 40]


def test_the_curriculum_follows_chen_et_al(monkeypatch):
    """Scripted validations, one per epoch, and the mark set on entering a stage (*):
    stage 0 (train 10, validate 20): 1.0, 0.8, 0.9: the third validation does not improve, an
        earlier one did: move on from the weights of epoch 2;
    stage 1 (train 20, validate 40): *5.0, 4.0, 4.2, 4.5: on to the last stage from epoch 4's weights;
    stage 2 (train 40, validate 40): *3.9, 3.95, 4.1, 4.0: three validations without improving on
        the mark: training stops, at epoch 9 of 20."""
    scores = iter([1.0, 0.8, 0.9, 5.0, 4.0, 4.2, 4.5, 3.9, 3.95, 4.1, 4.0])
    asked = []
    monkeypatch.setattr(importlib.import_module("l2l.training.meta_train"), "validate",
                        lambda opt, config, device, steps=None: asked.append(steps) or next(scores))
    config = dataclasses.replace(SMALL, curriculum=(20, 40), epochs=20, eval_every=1)
    trial = Trial(config)
    problem = make_problem(config.problem)
    trained, weights_at = [], {}
    while not trial.done:
        trained.append(trial.steps)
        trial.record(trial.epoch_loss(trial.task(problem)))
        weights_at[trial.epoch] = {k: v.clone() for k, v in trial.opt.state_dict().items()}
        if trial.epoch in (3, 6):  # moved on: the live weights are the best ones, not the epoch's training
            torch.testing.assert_close(weights_at[trial.epoch], trial.ck["best"]["weights"])
            assert trial.ck["best"]["epoch"] == {3: 2, 6: 4}[trial.epoch]
            torch.testing.assert_close(weights_at[trial.epoch], weights_at[trial.ck["best"]["epoch"]], rtol=0, atol=0)
    assert trained == [10, 10, 10, 20, 20, 20, 40, 40, 40]
    assert asked == [20, 20, 20, 40, 40, 40, 40, 40, 40, 40, 40]  # each stage validates at the next horizon
    assert trial.ck["stopped"] and trial.epoch == 9 and trial.ck["stage"] == 2
    assert trial.ck["best"]["val"] == 3.9 and trial.ck["best"]["epoch"] == 4
    assert [h.get("advanced_to") for h in trial.ck["history"]] == [None, None, 20, None, None, 40, None, None, None]
    assert [h.get("mark") for h in trial.ck["history"]] == [None, None, 5.0, None, None, 3.9, None, None, None]

    scores = iter([1.0, 0.8, 0.9, 5.0, 4.0, 4.2, 4.5, 3.9, 3.95, 4.1, 4.0])  # meta_train ends there too
    ck = meta_train(config, None, progress=False)
    assert ck["stopped"] and ck["epoch"] == 9


def test_recipes_for_the_curriculum_and_imitation_are_checked():
    with pytest.raises(UserError, match="curriculum"):
        dataclasses.replace(SMALL, curriculum=(10,))
    with pytest.raises(UserError, match="multiples"):
        dataclasses.replace(SMALL, curriculum=(22,))
    with pytest.raises(UserError, match="teacher_lr"):
        dataclasses.replace(SMALL, imitation=0.5)
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        dataclasses.replace(SMALL, imitation=1.5, teacher_lr=0.1)
    with pytest.raises(UserError, match="one trial at a time"):
        check_population([dataclasses.replace(SMALL, curriculum=(20,))])
    with pytest.raises(UserError, match="one horizon"):
        sweep(dataclasses.replace(SMALL, curriculum=(20,)), 2, "unused", "unused.json")
    with pytest.raises(UserError, match="do not combine"):
        meta_train(dataclasses.replace(SMALL, imitation=0.5, teacher_lr=0.1), None, cuda_graphs=True,
                   device="cuda" if torch.cuda.is_available() else "cpu", progress=False)
    assert TrainConfig.from_dict(dataclasses.replace(SMALL, curriculum=(20,)).to_dict()).curriculum == (20,)


def test_a_curriculum_validates_at_its_next_horizon_and_the_last_stage_at_its_own():
    from l2l.training import TrainConfig

    config = TrainConfig(problem="quadratic", steps=100, unroll=20, curriculum=(200, 500))
    assert [config.validated_at(stage) for stage in range(3)] == [200, 500, 500]
    assert TrainConfig(problem="quadratic", steps=100, unroll=20).validated_at() == 100
