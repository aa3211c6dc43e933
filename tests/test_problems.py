"""Problem families: SPEC parsing, hand-checked losses, and the MNIST data and network."""

import math

import pytest
import torch

from conftest import needs_mnist
from l2l.problems import MNIST, Quadratic, derive_seed, make_problem, quadratic_loss


def test_spec_round_trip_and_defaults():
    assert make_problem("quadratic") == Quadratic()
    p = make_problem("mnist:hidden=40,layers=2,activation=relu")
    assert (p.hidden, p.layers, p.activation) == (40, 2, "relu")
    assert p.spec == "mnist:hidden=40,layers=2,activation=relu" and make_problem(p.spec) == p
    assert make_problem("quadratic").slug == "quadratic"


@pytest.mark.parametrize("spec,match", [
    ("rosenbrock", "Known problems.*quadratic.*mnist"),
    ("quadratic:size=3", "Options .*dim=10"),
    ("quadratic:dim=ten", "expected a int"),
    ("mnist:activation=swish", "sigmoid, relu, tanh"),
    ("quadratic:dim", "bad option"),
])
def test_bad_specs_fail_with_the_choices(spec, match):
    with pytest.raises(ValueError, match=match):
        make_problem(spec)


def test_quadratic_loss_by_hand():
    W = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    y = torch.tensor([[1.0, -1.0]])
    theta = torch.tensor([[0.5, -1.0]])
    # Wθ − y = (0.5 − 2 − 1, 1.5 − 4 + 1) = (−2.5, −1.5); ‖·‖² = 6.25 + 2.25
    assert quadratic_loss(theta, W, y).item() == pytest.approx(8.5)


def test_quadratic_gradient_is_analytic():
    task = Quadratic().sample(runs=4, seed=1)
    theta = torch.randn(4, 10)
    f, g = task.loss_and_grad(theta)
    # recover W, y through the loss: f(θ) = ‖Wθ − y‖², so ∇ = 2Wᵀ(Wθ − y); check by finite differences
    eps = 1e-3
    e = torch.zeros_like(theta)
    e[:, 3] = eps
    fd = (task.loss(theta + e, task.batch()) - task.loss(theta - e, task.batch())) / (2 * eps)
    torch.testing.assert_close(fd, g[:, 3], rtol=1e-2, atol=1e-2)


def test_seeds_name_the_same_functions_and_streams_differ():
    a = Quadratic().sample(3, seed=derive_seed(0, "test"))
    b = Quadratic().sample(3, seed=derive_seed(0, "test"))
    c = Quadratic().sample(3, seed=derive_seed(0, "valid"))
    torch.testing.assert_close(a.loss(a.theta, a.batch()), b.loss(b.theta, b.batch()))
    assert not torch.allclose(a.loss(a.theta, a.batch()), c.loss(c.theta, c.batch()))


def test_mnist_network_size_matches_the_paper():
    assert MNIST().size == 15_910  # 784·20 + 20 + 20·10 + 10
    assert MNIST(layers=2).size == 15_910 + 20 * 20 + 20


@needs_mnist
def test_mnist_data_and_initial_loss():
    from l2l.data import mnist

    x, y = mnist("train")
    assert x.shape == (60_000, 784) and y.shape == (60_000,)
    assert 0.0 <= x.min() and x.max() <= 1.0 and torch.bincount(y).min() > 5000
    task = MNIST().sample(runs=3, seed=0)
    f, g = task.loss_and_grad(task.theta)
    assert torch.allclose(f, torch.full((3,), math.log(10)), atol=0.01)  # all start near ln 10
    assert g.shape == (3, 15_910)
    # a fresh minibatch every step: two draws differ
    b1, b2 = task.batch(), task.batch()
    assert b1[0].shape == (3, 128, 784) and not torch.equal(b1[1], b2[1])


def test_missing_mnist_names_both_ways(monkeypatch, tmp_path):
    import l2l.data as data

    monkeypatch.setenv("L2L_DATA_MIRROR", str(tmp_path))
    monkeypatch.setenv("L2L_DATA", str(tmp_path / "nowhere"))  # where torchvision would download
    monkeypatch.setattr("torchvision.datasets.MNIST", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    data._mnist_numpy.cache_clear()
    with pytest.raises(FileNotFoundError, match="L2L_DATA_MIRROR.*torchvision"):
        data._mnist_raw_dir()
    data._mnist_numpy.cache_clear()


@needs_mnist
def test_mix_draws_both_activations_and_held_out_uses_test_images():
    problem = make_problem("mnist:activation=mix,hidden=5")
    task = problem.sample(runs=16, seed=0)
    f, _ = task.loss_and_grad(task.theta)
    assert f.shape == (16,)
    # a run's loss must equal the pure-activation network's on the same parameters and batch
    theta, (x, _, _) = task.theta, task.batch()
    sig = make_problem("mnist:hidden=5").logits(theta, x)
    relu = make_problem("mnist:activation=relu,hidden=5").logits(theta, x)
    out = problem.logits(theta, x, torch.arange(16) % 2 == 0)
    torch.testing.assert_close(out[0::2], relu[0::2])
    torch.testing.assert_close(out[1::2], sig[1::2])
    assert problem.held_out().split == "test" and make_problem("quadratic").held_out() == make_problem("quadratic")
