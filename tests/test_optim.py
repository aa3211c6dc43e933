"""`l2l.LearnedOptimizer`: the book's trained optimizers as a `torch.optim.Optimizer`."""

import io
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import l2l
from conftest import ROOT, needs_mnist
from l2l.loop import run
from l2l.optim import LearnedOptimizer
from l2l.problems import make_problem
from l2l.training import load_checkpoint, optimizer_from

CKPT = ROOT / "data" / "checkpoints"


def toy_model():
    """Three parameters of three dtypes, and a parameter the loss never uses."""
    g = torch.Generator().manual_seed(0)
    m = nn.Module()
    m.W = nn.Parameter(0.1 * torch.randn(4, 3, generator=g))
    m.b = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    m.s = nn.Parameter(torch.full((3,), 0.5, dtype=torch.float16))
    m.unused = nn.Parameter(torch.ones(2))
    return m


def toy_loss(m, t):
    g = torch.Generator().manual_seed(1000 + t)  # the t-th minibatch, the same in every run
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 3, generator=g)
    return ((x @ m.W + m.b.float() + m.s.float() - y) ** 2).mean()


def train(m, opt, steps, start=0):
    for t in range(start, start + steps):
        toy_loss(m, t).backward()
        opt.step()
        opt.zero_grad()


def test_the_package_export_is_lazy():
    assert l2l.LearnedOptimizer is LearnedOptimizer
    done = subprocess.run([sys.executable, "-c", "import l2l, sys; print('torch' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@needs_mnist
def test_it_follows_the_package_loop_on_mnist():
    steps = 30
    spec = "mnist:hidden=5,batch=16"
    lstm = optimizer_from(load_checkpoint(CKPT / "mnist.pt"))
    expected = run(make_problem(spec).sample(1, seed=3), lstm, steps)[0]

    task = make_problem(spec).sample(1, seed=3)  # the same θ_0 and minibatches
    sizes = [784 * 5, 5, 5 * 10, 10]  # W1, b1, W2, b2 in θ's flat layout
    shapes = [(784, 5), (5,), (5, 10), (10,)]
    params = [nn.Parameter(t.reshape(s).clone()) for t, s in zip(task.theta[0].split(sizes), shapes)]
    opt = LearnedOptimizer(params, "mnist")
    losses = []
    for t in range(steps + 1):
        theta = torch.cat([p.reshape(-1) for p in params])
        loss = task.loss(theta[None], task.batch())[0]
        losses.append(loss.item())
        if t < steps:
            loss.backward()
            opt.step()
            opt.zero_grad()
    assert torch.allclose(torch.tensor(losses), expected, rtol=1e-5, atol=1e-6)
    assert expected[-1] < 0.9 * expected[0]  # and it did learn something
    assert all(opt.state[p]["step"] == steps for p in params)


def test_state_dict_round_trip_continues_the_same_trajectory():
    straight = toy_model()
    opt = LearnedOptimizer(straight.parameters(), "mnist")
    train(straight, opt, 80)

    first = toy_model()
    opt = LearnedOptimizer(first.parameters(), "mnist")
    train(first, opt, 40)
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)

    second = toy_model()
    opt = LearnedOptimizer(second.parameters(), "mnist")
    second.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    assert all(s["lstm"].dtype == torch.float32 for s in opt.state.values())  # not the half's dtype
    train(second, opt, 40, start=40)
    for a, b in zip(straight.parameters(), second.parameters()):
        assert torch.equal(a, b)
    assert opt.state[second.W]["step"] == 80


def test_parameters_without_a_gradient_are_left_alone():
    m = toy_model()
    opt = LearnedOptimizer(m.parameters(), "mnist")
    train(m, opt, 3)
    assert torch.equal(m.unused, torch.ones(2)) and m.unused not in opt.state
    assert m.s.dtype == torch.float16 and not torch.equal(m.s, torch.full((3,), 0.5, dtype=torch.float16))
    m.b.requires_grad_(False)  # b now gets no gradient: it stays, and its state does not advance
    before = (m.b.clone(), opt.state[m.b]["lstm"].clone())
    train(m, opt, 2, start=3)
    assert torch.equal(m.b, before[0]) and torch.equal(opt.state[m.b]["lstm"], before[1])
    assert opt.state[m.b]["step"] == 3 and opt.state[m.W]["step"] == 5


def test_each_coordinate_has_its_own_state_as_in_the_package():
    """One step on a [2, 3] parameter equals the LSTM's own step on its 6 coordinates."""
    lstm = optimizer_from(load_checkpoint(CKPT / "mnist.pt"))
    p = nn.Parameter(torch.zeros(2, 3))
    grads = [torch.randn(2, 3, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    opt = LearnedOptimizer([p], "mnist")
    state = lstm.init(torch.zeros(1, 6))
    theta = torch.zeros(1, 6)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        update, state = lstm.step(g.reshape(1, 6), state)
        theta = theta + update
    assert torch.allclose(p.reshape(1, 6), theta, atol=1e-7)


def test_cifar_checkpoint_maps_its_two_lstms_to_parameter_groups():
    nets = optimizer_from(load_checkpoint(CKPT / "cifar.pt")).nets
    grad = torch.randn(5, generator=torch.Generator().manual_seed(0))

    def one_step(groups):
        params = [p for g in groups for p in g["params"]]
        opt = LearnedOptimizer(groups, "cifar")
        for p in params:
            p.grad = grad.clone()
        opt.step()
        return [p.detach().clone() for p in params]

    def own(k):
        return nets[k].step(grad[None], nets[k].init(torch.zeros(1, 5)))[0][0]

    conv, fc = one_step([{"params": [nn.Parameter(torch.zeros(5))]}, {"params": [nn.Parameter(torch.zeros(5))]}])
    assert torch.allclose(conv, own(0), atol=1e-7) and torch.allclose(fc, own(1), atol=1e-7)
    assert not torch.allclose(conv, fc)  # two different LSTMs
    both = one_step([{"params": [nn.Parameter(torch.zeros(5))], "lstm": 1},
                     {"params": [nn.Parameter(torch.zeros(5))], "lstm": 1}])
    assert torch.allclose(both[0], own(1), atol=1e-7) and torch.allclose(both[1], own(1), atol=1e-7)
    alone = one_step([{"params": [nn.Parameter(torch.zeros(5))], "lstm": 0}])  # one group, named LSTM
    assert torch.allclose(alone[0], own(0), atol=1e-7)
    with pytest.raises(ValueError, match="2 LSTMs.*1 group.*'lstm'"):
        LearnedOptimizer([nn.Parameter(torch.zeros(5))], "cifar")
    with pytest.raises(ValueError, match="LSTMs 0..1"):
        LearnedOptimizer([{"params": [nn.Parameter(torch.zeros(5))], "lstm": 2}], "cifar")
    with pytest.raises(ValueError, match="LSTM True"):  # a bool is an int to Python, not an LSTM's index
        LearnedOptimizer([{"params": [nn.Parameter(torch.zeros(5))], "lstm": True}], "cifar")
    opt = LearnedOptimizer([{"params": [nn.Parameter(torch.zeros(5))], "lstm": k} for k in (0, 1)], "cifar")
    for bad, match in [({"lstm": 7}, "LSTM 7"), ({}, "2 LSTMs.*3 group")]:  # groups added later are checked too
        with pytest.raises(ValueError, match=match):
            opt.add_param_group({"params": [nn.Parameter(torch.zeros(5))], **bad})
        assert len(opt.param_groups) == 2
    opt.add_param_group({"params": [nn.Parameter(torch.zeros(5))], "lstm": 1})
    assert [opt._lstm_of(k, g) for k, g in enumerate(opt.param_groups)] == [0, 1, 1]


def test_it_says_what_it_is_and_refuses_what_it_cannot_run():
    opt = LearnedOptimizer(toy_model().parameters(), CKPT / "mnist.pt", which="last")
    ck = load_checkpoint(CKPT / "mnist.pt")
    for text in (repr(opt), opt.__doc__):
        assert "'mnist'" in text and "100-step" in text and "p=10" in text and "× 0.1" in text
        assert f"last weights (epoch {ck['epoch']} of {ck['epoch']})" in text
    assert f"best weights (epoch {ck['best']['epoch']}" in repr(LearnedOptimizer([nn.Parameter(torch.zeros(1))]))
    with pytest.raises(FileNotFoundError, match="shipped: .*mnist"):
        LearnedOptimizer([nn.Parameter(torch.zeros(1))], "no-such-optimizer")
    with pytest.raises(ValueError, match="shares information"):
        LearnedOptimizer([nn.Parameter(torch.zeros(1))], "quadratic-gac")
    with pytest.raises(ValueError, match="best.*last"):
        LearnedOptimizer([nn.Parameter(torch.zeros(1))], "mnist", which="final")


def test_it_warns_once_far_past_its_horizon():
    p = nn.Parameter(torch.zeros(3))
    opt = LearnedOptimizer([p], "mnist")  # horizon 100: the warning comes after step 500
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in range(520):
            p.grad = torch.full((3,), 0.01)
            opt.step()
            if t == 499:
                assert not caught
    assert len(caught) == 1 and "100 steps" in str(caught[0].message)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_it_runs_on_cuda_like_on_cpu():
    cpu, gpu = toy_model(), toy_model().cuda()
    opt_cpu = LearnedOptimizer(cpu.parameters(), "mnist")
    opt_gpu = LearnedOptimizer(gpu.parameters(), "mnist")
    for t in range(20):
        toy_loss(cpu, t).backward()
        g = torch.Generator().manual_seed(1000 + t)
        x, y = torch.randn(8, 4, generator=g).cuda(), torch.randn(8, 3, generator=g).cuda()
        ((x @ gpu.W + gpu.b.float() + gpu.s.float() - y) ** 2).mean().backward()
        for opt in (opt_cpu, opt_gpu):
            opt.step()
            opt.zero_grad()
    assert opt_gpu.state[gpu.W]["lstm"].is_cuda
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        assert b.is_cuda and torch.allclose(a.float(), b.cpu().float(), atol=1e-3)


def test_a_training_stopped_before_its_first_validation_has_no_best_weights(tmp_path):
    """Its best weights would be the untrained LSTM's: asked for them, it says so; its last
    weights load, and a chapter shows it as not validated yet rather than untrained."""
    from l2l.book import presets
    from l2l.training import TrainConfig, meta_train
    from l2l.optimizers import LSTMConfig

    config = TrainConfig(problem="quadratic", optimizer=LSTMConfig(preprocess=None), epochs=6, runs=2,
                         eval_every=4, eval_runs=4, steps=20, unroll=5)
    path = tmp_path / "early.pt"
    meta_train(config, path, progress=False, stop_after=3)  # as a Ctrl-C or --max-minutes would leave it
    with pytest.raises(ValueError, match="epoch 3, before its first validation.*which='last'"):
        LearnedOptimizer([nn.Parameter(torch.zeros(1))], path)
    assert LearnedOptimizer([nn.Parameter(torch.zeros(1))], path, which="last").epoch == 3
    opt, ck, line = presets.trained(config, path, "book", partial=True)
    assert opt is None and ck["epoch"] == 3 and line.endswith("not validated yet")
