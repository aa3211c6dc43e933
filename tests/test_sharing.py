"""Information sharing: the memory expresses BFGS, the L-BFGS window matches the full matrix, GAC
outputs are global per run and order-free, runs never mix, and a briefly trained LSTM+GAC learns."""

import dataclasses

import pytest
import torch

from l2l.analysis import head_start, memory_drift, saturation, update_profile
from l2l.loop import run
from l2l.optimizers import (SGD, LSTMConfig, LSTMOptimizer, QuasiNewton, SharingConfig, SharingOptimizer, config_from_dict,
                            config_to_dict, describe, make_optimizer)
from l2l.optimizers.sharing import bfgs_write, memory_bfgs, memory_init, memory_read, memory_write
from l2l.problems import derive_seed, make_problem
from l2l.training import TrainConfig, meta_train, optimizer_from

GAC = SharingConfig(LSTMConfig(preprocess=None), gac=2)
NTM = dataclasses.replace(GAC, memory="bfgs")
NTM_L = dataclasses.replace(GAC, memory="lbfgs", window=4)


def _textbook_bfgs(H, s, y):
    """H' = (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, ρ = 1/yᵀs, one run at a time (Nocedal & Wright 6.17)."""
    out = []
    for Hr, sr, yr in zip(H, s, y):
        rho = 1 / (yr @ sr)
        left = torch.eye(len(sr), dtype=H.dtype) - rho * torch.outer(sr, yr)
        out.append(left @ Hr @ left.T + rho * torch.outer(sr, sr))
    return torch.stack(out)


def test_memory_with_hand_set_outputs_performs_exact_bfgs_on_a_quadratic():
    """The paper's expressivity argument, numerically. Per step (`bfgs_write`), every coordinate k emits only
    functions of its own values and of two global averages (what two GACs provide):
      read  r = y           -> u = M y                       (one read head)
      GACs  sᵀy = n·mean(s∘y), yᵀu = n·mean(y∘u)
      write a = (−ρs, −ρu, (ρ² yᵀu + ρ) s), b = (u, s, s)  (three write heads)
    which is M' = M − ρ s uᵀ − ρ u sᵀ + (ρ² yᵀu + ρ) s sᵀ, the inverse-Hessian BFGS update. Driving
    BFGS with exact line search through the memory must match the textbook update at every step,
    reach the minimum in n steps, and leave M = A⁻¹."""
    R, n = 3, 6
    g = torch.Generator().manual_seed(0)
    W = torch.eye(n, dtype=torch.float64) + 0.3 * torch.randn(R, n, n, generator=g, dtype=torch.float64)
    y0 = torch.randn(R, n, generator=g, dtype=torch.float64)
    A = 2 * W.transpose(1, 2) @ W  # Hessian of ‖Wθ − y0‖²
    grad_of = lambda th: 2 * torch.einsum("rji,rj->ri", W, torch.einsum("rij,rj->ri", W, th) - y0)
    theta = torch.zeros(R, n, dtype=torch.float64)
    grad = grad_of(theta)
    memory, window = memory_init("bfgs", R, n, like=theta), memory_init("lbfgs", R, n, 3, n, like=theta)
    H = torch.eye(n, dtype=torch.float64).expand(R, n, n)
    col = lambda v: v[..., None]
    for _ in range(n):
        d = memory_read(memory, col(-grad))[..., 0]  # direction −H∇, read from the memory
        torch.testing.assert_close(d, -(H @ col(grad))[..., 0])
        alpha = -(grad * d).sum(-1, keepdim=True) / (d * (A @ col(d))[..., 0]).sum(-1, keepdim=True)
        s = alpha * d
        theta = theta + s
        new_grad = grad_of(theta)
        y = new_grad - grad
        memory, window = bfgs_write(memory, s, y), bfgs_write(window, s, y)
        H = _textbook_bfgs(H, s, y)
        torch.testing.assert_close(memory[0], H)
        torch.testing.assert_close((memory[0] @ col(y))[..., 0], s)  # the secant equation
        probe = torch.randn(R, n, 2, generator=g, dtype=torch.float64)
        torch.testing.assert_close(memory_read(window, probe), memory_read(memory, probe))
        grad = new_grad
    torch.testing.assert_close(memory[0], torch.linalg.inv(A))
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-8, rtol=0)
    # the chapter's summary of the same check, for both kinds of memory
    for window in (None, n):
        gaps = memory_bfgs(W, y0, window)
        assert max(gaps["vs_textbook"], gaps["vs_inverse_hessian"], gaps["final_gradient"]) < 1e-8, gaps
        assert gaps["condition"] == pytest.approx(torch.linalg.cond(A).max().item())
    # a window one write too short is no longer BFGS: its memory drifts from H and from A⁻¹
    short = memory_bfgs(W, y0, n - 1)
    assert short["vs_textbook"] > 1e-3 and short["vs_inverse_hessian"] > 1e-3, short


def test_lbfgs_window_reads_match_the_full_matrix_while_it_holds_every_write():
    R, n, heads, T = 2, 7, 3, 5
    g = torch.Generator().manual_seed(1)
    full = memory_init("bfgs", R, n)
    holds_all, short = memory_init("lbfgs", R, n, heads, window=T), memory_init("lbfgs", R, n, heads, window=2)
    writes = []
    for t in range(T):
        a, b = torch.randn(R, n, heads, generator=g) / n, torch.randn(R, n, heads, generator=g)
        writes.append((a, b))
        full, holds_all, short = (memory_write(m, a, b) for m in (full, holds_all, short))
        r = torch.randn(R, n, 2, generator=g)
        torch.testing.assert_close(memory_read(holds_all, r), memory_read(full, r))
        # the short window reads M_0 r + the last two writes only
        expected = r + sum(a @ (b.transpose(1, 2) @ r) for a, b in writes[-2:])
        torch.testing.assert_close(memory_read(short, r), expected)
    assert not torch.allclose(memory_read(short, r), memory_read(full, r))


def _steps(opt, grads):
    state = opt.init(grads[0])
    step, updates, states = opt.bind(), [], []
    for grad in grads:
        update, state = step(grad, state)
        updates.append(update)
        states.append(state)
    return torch.stack(updates), states


def test_gac_outputs_are_the_same_for_every_coordinate_and_ignore_their_order():
    torch.manual_seed(0)
    opt = SharingOptimizer(GAC, seed=1)
    R, n, G = 3, 12, GAC.gac
    grads = [torch.randn(R, n) * torch.tensor([[1.0], [3.0], [0.1]]) for _ in range(3)]
    perm = torch.randperm(n)
    with torch.no_grad():
        updates, states = _steps(opt, grads)
        permuted, pstates = _steps(opt, [x[:, perm] for x in grads])
    for (lstm, _, _), (plstm, _, _) in zip(states, pstates):
        for h, ph in zip(lstm[0::2], plstm[0::2]):  # each layer's outgoing activations h
            gac, pgac = h[-G:].view(G, R, n), ph[-G:].view(G, R, n)
            assert torch.equal(gac, gac[..., :1].expand_as(gac)), "one value per run"
            assert not torch.allclose(gac[:, 0], gac[:, 1]), "each run has its own average"
            torch.testing.assert_close(pgac, gac)  # the coordinates' order does not matter
            assert not torch.allclose(h[:-G].view(-1, R, n)[..., 0], h[:-G].view(-1, R, n)[..., 1])
    torch.testing.assert_close(permuted, updates[..., perm])


@pytest.mark.parametrize("config", [GAC, NTM, NTM_L], ids=["gac", "ntm-bfgs", "ntm-lbfgs"])
def test_runs_never_mix_and_order_of_coordinates_does_not_matter(config):
    torch.manual_seed(0)
    opt = make_optimizer(config, seed=2)
    assert isinstance(opt, SharingOptimizer)
    grads = [torch.randn(3, 9) for _ in range(6)]
    changed = [x.clone() for x in grads]
    changed[0][1] += 2.0  # run 1's first gradient
    perm = torch.randperm(9)
    with torch.no_grad():
        a, _ = _steps(opt, grads)
        b, _ = _steps(opt, changed)
        p, _ = _steps(opt, [x[:, perm] for x in grads])
    assert not torch.allclose(a[1:, 1], b[1:, 1]), "run 1 must react to its own gradient"
    torch.testing.assert_close(a[:, [0, 2]], b[:, [0, 2]], rtol=0, atol=0)  # other runs untouched
    torch.testing.assert_close(p, a[..., perm])


def test_memory_starts_at_identity_and_reads_come_back_as_inputs():
    opt = SharingOptimizer(NTM, seed=0)
    theta = torch.randn(2, 5)
    lstm, read, (M,) = opt.init(theta)
    torch.testing.assert_close(M, torch.eye(5).expand(2, 5, 5))
    assert read.shape == (1, 10) and not read.any()
    assert opt.cells[0].input_size == 2  # the gradient and the last read
    with torch.no_grad():
        update, (_, read, (M,)) = opt.step(torch.randn(2, 5), opt.init(theta))
    assert read.abs().sum() > 0 and not torch.allclose(M, torch.eye(5).expand(2, 5, 5))
    # the state of the windowed memory does not grow with the number of steps
    windowed = SharingOptimizer(NTM_L, seed=0)
    state = windowed.init(theta)
    for _ in range(7):
        _, state = windowed.step(torch.randn(2, 5), state)
    assert state[2][0].shape == (2, 5, NTM_L.window * NTM_L.write_heads)


@pytest.mark.parametrize("config", [NTM, NTM_L], ids=["ntm-bfgs", "ntm-lbfgs"])
def test_without_writes_the_memory_stays_identity(config):
    opt = SharingOptimizer(config, seed=3)
    task = make_problem("quadratic:dim=5").sample(4, seed=1)
    assert (memory_drift(opt, task, 6) > 0).all()
    torch.testing.assert_close(memory_drift(opt.without_writes(), task, 6), torch.zeros(4))
    assert (opt.head.weight != 0).all(), "the ablation works on a copy"


def test_update_profile_separates_shared_and_coordinate_specific_parts():
    task = make_problem("quadratic:dim=5").sample(3, seed=0)
    shared, specific = update_profile(SGD(lr=0.01), task, 4)
    assert shared > 0 and specific > 0

    class Shift:  # the same update for every coordinate
        def init(self, theta, groups=None):
            return ()

        def bind(self):
            return lambda grad, state: (torch.ones_like(grad), state)

    assert update_profile(Shift(), task, 3) == (1.0, 0.0)


def test_the_head_can_start_without_a_shared_step():
    """With M_0 = I an untrained read returns its key, so nn.Linear's random bias on the read key is a
    step shared by every coordinate, as the update channel's is; read_bias='zero' and update_bias='zero'
    start those biases at zero (as the write heads'), change nothing else, and are stored only where
    they are set (older tables and test curves' fingerprints stay)."""
    zero = dataclasses.replace(NTM_L, read_bias="zero")
    drawn, zeroed = SharingOptimizer(NTM_L, seed=2), SharingOptimizer(zero, seed=2)
    assert drawn.head.bias[1] != 0 and zeroed.head.bias[1] == 0
    torch.testing.assert_close(zeroed.head.bias[[0, *range(2, len(zeroed.head.bias))]],
                               drawn.head.bias[[0, *range(2, len(drawn.head.bias))]])
    torch.testing.assert_close(zeroed.head.weight, drawn.head.weight)
    # the first read is the key itself: the two reads differ by the read key's bias alone
    theta, grad = torch.zeros(1, 6), torch.linspace(-1, 1, 6)[None]
    with torch.no_grad():
        reads = [opt.step(grad, opt.init(theta))[1][1] for opt in (drawn, zeroed)]
    torch.testing.assert_close(reads[0] - reads[1], drawn.head.bias[1].detach().expand(1, 6))
    assert "read_bias" not in config_to_dict(NTM_L) and config_to_dict(zero)["read_bias"] == "zero"
    assert config_from_dict(config_to_dict(zero)) == zero
    assert "bias" not in describe(NTM_L) and describe(zero) != describe(NTM_L)  # older fingerprints stay
    with pytest.raises(ValueError, match="read_bias"):
        dataclasses.replace(GAC, read_bias="zero")  # no memory, no read keys
    with pytest.raises(ValueError, match="read_bias"):
        dataclasses.replace(NTM, read_bias="small")
    # the update channel's bias likewise; with both at zero an untrained step's mean over coordinates
    # is the weights' part alone: the random biases' sum less
    both = dataclasses.replace(zero, update_bias="zero")
    unbiased = SharingOptimizer(both, seed=2)
    assert unbiased.head.bias[0] == 0 and unbiased.head.bias[1] == 0 and drawn.head.bias[0] != 0
    torch.testing.assert_close(unbiased.head.bias[2:], drawn.head.bias[2:])
    with torch.no_grad():
        steps = [opt.step(grad, opt.init(theta))[0] for opt in (drawn, unbiased)]
    torch.testing.assert_close(steps[0] - steps[1], NTM_L.lstm.output_scale * drawn.head.bias[:2].sum().detach().expand(1, 6))
    o, r, scale = head_start(drawn)  # what the chapter's start tables print: the same shared step
    assert (o, r, scale) == (drawn.head.bias[0].item(), drawn.head.bias[1].item(), NTM_L.lstm.output_scale)
    torch.testing.assert_close(steps[0] - steps[1], torch.full((1, 6), scale * (o + r)))
    assert head_start(unbiased)[:2] == (0.0, 0.0)
    full = SharingOptimizer(NTM, seed=2)  # the full-matrix memory reads its key the same way at first
    o, r, scale = head_start(full)
    with torch.no_grad():
        first = full.step(grad, full.init(theta))[0] - SharingOptimizer(
            dataclasses.replace(NTM, read_bias="zero", update_bias="zero"), seed=2).step(grad, full.init(theta))[0]
    torch.testing.assert_close(first, torch.full((1, 6), scale * (o + r)))
    assert head_start(SharingOptimizer(GAC, seed=2))[1] is None  # LSTM+GAC: no memory, no read key
    lstm = LSTMOptimizer(dataclasses.replace(NTM_L.lstm, output_scale=0.5), seed=2)
    assert head_start(lstm) == (lstm.head.bias[0].item(), None, 0.5)  # no memory, no read key
    assert config_from_dict(config_to_dict(both)) == both
    with pytest.raises(ValueError, match="update_bias"):
        dataclasses.replace(GAC, update_bias="none")
    # without a memory the head has the update channel alone
    gac = SharingOptimizer(dataclasses.replace(GAC, update_bias="zero"), seed=2)
    assert gac.head.bias.tolist() == [0.0] and SharingOptimizer(GAC, seed=2).head.bias.item() != 0


def test_saturation_counts_sigmoid_units_a_shared_step_drives_to_zero_or_one():
    """Hand-worked on two hidden layers of 3 units: θ_0 = 0 and a step of +1 for every coordinate put
    every weight and bias at t after t steps. The first layer's input is t·(1 + the image's summed
    pixels): t on a blank image, 2t on one with a single lit pixel; the second's is t·(1 + Σ of the
    3 units below). σ(z) is within 0.01 of 1 from z = ln 99 ≈ 4.6. Step 0: every unit at σ(0) = 0.5;
    step 1: inputs 1, 2, then 3.2, 3.6: none; step 2: 2, 4 (none), then 7.3, 7.9: half; step 3:
    3 (not), 6, then 11.6, 11.8: 9 of 12; step 5: all."""
    problem = make_problem("mnist:hidden=3,layers=2")
    task = dataclasses.replace(problem.sample(2, seed=0), theta=torch.zeros(2, problem.size))
    images = torch.zeros(2, 784)
    images[1, 400] = 1.0

    class Shift:  # the same update for every coordinate
        def init(self, theta, groups=None):
            return ()

        def bind(self):
            return lambda grad, state: (torch.ones_like(grad), state)

    assert saturation(problem, Shift(), task, (0, 1, 2, 3, 5), images) == {0: 0.0, 1: 0.0, 2: 0.5, 3: 0.75, 5: 1.0}
    batch = images[None].expand(2, 2, 784)
    assert torch.equal(problem.layer_outputs(task.theta, batch)[-1], problem.logits(task.theta, batch))
    for spec in ("mnist:activation=relu", "mnist:activation=mix", "mnist:layers=0"):
        with pytest.raises(ValueError, match="all-sigmoid"):
            saturation(make_problem(spec), Shift(), task, (1,), images)


def test_weights_depend_on_seed_only():
    a, b, c = SharingOptimizer(NTM, seed=5), SharingOptimizer(NTM, seed=5), SharingOptimizer(NTM, seed=6)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.head.weight, c.head.weight)
    with pytest.raises(ValueError, match="gac"):
        SharingConfig(LSTMConfig(hidden=4), gac=5)


def test_classic_references_solve_a_quadratic():
    problem = make_problem("quadratic:dim=6")
    task = problem.sample(8, seed=3)
    exact = run(task, QuasiNewton.exact_on(task), 8)  # n steps of exact-line-search BFGS reach the minimum
    assert (exact[:, 7] < 1e-6 * exact[:, 0]).all()  # float32 rounding: one step of slack
    limited = run(task, QuasiNewton.exact_on(task, history=2), 8)  # the same iterates in exact arithmetic (CG)
    torch.testing.assert_close(limited[:, :5], exact[:, :5], rtol=1e-3, atol=1e-6)
    assert (limited[:, -1] < 1e-3 * exact[:, 0]).all()
    fixed = run(problem.sample(8, seed=3), QuasiNewton(lr=0.05), 60)[:, -1]
    limited = run(problem.sample(8, seed=3), QuasiNewton(lr=0.05, history=5), 60)[:, -1]
    assert fixed.mean() < 0.1 * exact[:, 0].mean() and limited.mean() < 0.1 * exact[:, 0].mean()


def test_short_meta_training_of_lstm_gac_beats_fixed_step_sgd(tmp_path):
    config = TrainConfig(problem="quadratic", optimizer=GAC, epochs=100, runs=8, eval_every=50,
                         eval_runs=32, meta_lr=3e-3)
    ck = meta_train(config, tmp_path / "gac.pt", progress=False)
    opt = optimizer_from(ck)
    problem = make_problem("quadratic")
    test = lambda o: run(problem.sample(128, derive_seed(0, "test")), o, 100)[:, -1].mean().item()
    learned, sgd = test(opt), test(SGD(lr=0.01))
    assert learned < sgd, (learned, sgd)
    assert learned < test(SharingOptimizer(GAC, seed=0)), "training must improve on the initial optimizer"
