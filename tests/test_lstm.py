"""The learned optimizer's mechanics: preprocessing, coordinatewise state, the paper's init."""

import math

import pytest
import torch

from l2l.optimizers import LSTMConfig, LSTMOptimizer
from l2l.optimizers.lstm import preprocess
from l2l.optimizers.reference import reference_step


def test_preprocess_matches_hand_worked_values():
    p = 10.0
    grad = torch.tensor([1.0, -math.exp(-5), math.exp(-10), math.exp(-11), 0.0, -math.exp(-12), 20.0])
    expected = torch.tensor([
        [0.0, 1.0],                 # log 1 / 10 = 0, sign +
        [-0.5, -1.0],               # log e^-5 / 10, sign −
        [-1.0, 1.0],                # |∇| = e^-p sits on the log branch
        [-1.0, math.exp(-1)],       # small: (−1, e^p ∇) = (−1, e^-1)
        [-1.0, 0.0],                # zero gradient
        [-1.0, -math.exp(-2)],
        [math.log(20) / 10, 1.0],
    ])
    torch.testing.assert_close(preprocess(grad, p), expected.t())


def test_preprocess_p5_branch_point_moves():
    # with the official code's p = 5 the switch sits at e^-5
    out = preprocess(torch.tensor([math.exp(-6)]), 5.0)
    torch.testing.assert_close(out, torch.tensor([[-1.0], [math.exp(5 - 6)]]))


def test_forget_gate_bias_is_one_and_state_starts_at_zero():
    opt = LSTMOptimizer(LSTMConfig())
    for cell in opt.cells:
        bias = cell.bias_ih + cell.bias_hh
        assert torch.all(bias[20:40] == 1.0) and torch.all(bias[:20] == 0) and torch.all(bias[40:] == 0)
    state = opt.init(torch.randn(3, 7))
    assert len(state) == 4 and all(s.shape == (20, 21) and not s.any() for s in state)


def _steps(opt, grads):
    state = opt.init(grads[0])
    updates = []
    for g in grads:
        u, state = opt.step(g, state)
        updates.append(u)
    return torch.stack(updates)


@pytest.mark.parametrize("preprocess_p", [None, 10.0])
def test_permuting_coordinates_permutes_updates(preprocess_p):
    torch.manual_seed(0)
    opt = LSTMOptimizer(LSTMConfig(preprocess=preprocess_p), seed=1)
    grads = [torch.randn(2, 50) for _ in range(4)]
    perm = torch.randperm(50)
    with torch.no_grad():
        plain = _steps(opt, grads)
        permuted = _steps(opt, [g[:, perm] for g in grads])
    torch.testing.assert_close(permuted, plain[..., perm])


def test_each_coordinate_has_its_own_state():
    """The bug of an earlier reproduction: several parameter tensors reading one slice of state.

    Changing coordinate j's gradient history may change coordinate j's later updates and no other:
    not another coordinate of the same tensor, of another tensor, or of another run."""
    torch.manual_seed(0)
    opt = LSTMOptimizer(LSTMConfig(), seed=2)
    grads = [torch.randn(3, 40) for _ in range(3)]
    changed = [g.clone() for g in grads]
    changed[0][1, 17] += 5.0  # run 1, coordinate 17, first step only
    with torch.no_grad():
        a, b = _steps(opt, grads), _steps(opt, changed)
    differs = (a != b)
    assert differs[1:, 1, 17].all(), "the changed coordinate's later updates must change"
    differs[:, 1, 17] = False
    assert not differs.any(), "no other coordinate may see another's history"


def test_fused_step_matches_nn_lstmcell_reference():
    torch.manual_seed(0)
    opt = LSTMOptimizer(LSTMConfig(output_scale=0.1), seed=3)
    grad = torch.randn(4, 30)
    state = tuple(torch.randn(20, 120) for _ in range(4))
    with torch.no_grad():
        u1, s1 = opt.step(grad, state)
        u2, s2 = reference_step(opt, grad, tuple(s.t() for s in state))
    torch.testing.assert_close(u1, u2)
    for x, y in zip(s1, s2):
        torch.testing.assert_close(x, y.t())


def test_weights_depend_on_seed_only():
    a, b, c = LSTMOptimizer(seed=5), LSTMOptimizer(seed=5), LSTMOptimizer(seed=6)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.head.weight, c.head.weight)


def test_bad_config_fails_clearly():
    with pytest.raises(ValueError, match="preprocess"):
        LSTMConfig(preprocess=-1.0)


def test_one_lstm_refuses_a_config_of_several_groups():
    """CIFAR's config has two groups, which one LSTMOptimizer cannot honour (it would take the
    per-group scales as one): make_optimizer builds a GroupedLSTM instead."""
    from l2l.errors import UserError
    from l2l.optimizers import make_optimizer
    from l2l.optimizers.grouped import GroupedLSTM

    config = LSTMConfig(groups=2, output_scale=(0.01, 0.1))
    with pytest.raises(UserError, match="2 groups"):
        LSTMOptimizer(config)
    assert isinstance(make_optimizer(config), GroupedLSTM)
