"""Baselines against torch.optim: the same trajectory, step for step."""

import pytest
import torch

from l2l.optimizers import make_baseline
from l2l.loop import run
from l2l.problems import make_problem

TORCH = {
    "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "nag": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.99, eps=1e-8),
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.9, 0.999), eps=1e-8),
}


@pytest.mark.parametrize("name", TORCH)
def test_trajectory_matches_torch_optim(name):
    lr = 0.01
    task = make_problem("quadratic").sample(runs=3, seed=7)
    ours = run(task, make_baseline(name, lr), steps=30)

    task = make_problem("quadratic").sample(runs=3, seed=7)
    theta = task.theta.clone().requires_grad_(True)
    optimizer = TORCH[name]([theta], lr)
    losses = []
    for _ in range(31):
        optimizer.zero_grad()
        f = task.loss(theta, task.batch())
        losses.append(f.detach())
        f.sum().backward()
        optimizer.step()
    torch.testing.assert_close(ours, torch.stack(losses, 1), rtol=1e-5, atol=1e-6)


def test_unknown_baseline_fails_clearly():
    with pytest.raises(ValueError, match="sgd, rmsprop, adam, nag"):
        make_baseline("adagrad", 0.1)
