"""Summaries with uncertainty, baseline tuning, and seeded reproducibility."""

import pytest
import torch

from l2l.evaluation import LR_GRID, compare, mean_ci, t_quantile, tune
from l2l.problems import make_problem


@pytest.mark.parametrize("df,expected", [(4, 2.776), (9, 2.262), (19, 2.093), (99, 1.984), (10_000, 1.960)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(df) == pytest.approx(expected, abs=2e-3)


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
