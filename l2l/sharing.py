"""Information sharing between coordinates (the paper's appendix): LSTM+GAC and NTM-(L-)BFGS.

The coordinatewise LSTM (`l2l.lstm`) updates every coordinate from its own gradient history
alone. The paper's appendix lets coordinates share information in two ways.

**Global averaging cells (LSTM+GAC).** In every LSTM layer the last `gac` of the `hidden` cells
have their outgoing activation h replaced, at every step, by its mean over all coordinates of the
run:

    h^k_{t+1}[j] ← (1/n) Σ_{k'} h^{k'}_{t+1}[j]     for the GAC cells j,

so each coordinate sees the same global summaries (a norm, an inner product) at the next layer and
at the next step. With R runs batched, the mean is over the n coordinates of each run only.

**NTM-BFGS.** A coordinatewise LSTM+GAC controller drives an external memory M_t ∈ R^{n×n} per
run. From its top layer a linear head emits, for every coordinate k, an update channel o^k_t, read
keys r^k_t (one per read head) and write vectors a^k_t, b^k_t (one pair per write head), so that
across coordinates r_t, a_t, b_t are n-vectors. Then

    i_t = M_t r_t                                     (read, with the memory before this write)
    M_{t+1} = M_t + Σ_heads a_t b_tᵀ                   (write: low-rank outer products only)
    g_t = s · (o_t + i_t^{(1)})                       (the update: see below)

and i^k_t returns to coordinate k as an extra LSTM input at step t + 1. M_0 = I (BFGS's H_0).
**NTM-L-BFGS** keeps only the latest `window` writes (each a set of `write_heads` pairs) instead of
M, and reads  M_t r = r + Σ_{pairs j in the window} a_j (b_jᵀ r),  exact while the window still
holds every write; its memory is O(n · window · heads) instead of O(n²), which is what lets it run
on the MNIST network (n = 15,910: the full matrix would take 1 GB per run).

Choices the paper leaves open, and ours:
* **How g_t is produced.** The paper says the read is fed back at the next step but not whether it
  enters the update directly. We add the first read head's result to the LSTM's own output,
  g_t = s (o_t + i_t), and also feed i_t back: a quasi-Newton step is a read (d = −H∇), and this
  path lets the memory express it exactly instead of through the LSTM's saturating cells. With
  M_0 = I, i_t = r_t at first: the controller starts as a plain LSTM with a second linear output.
* **Scale of writes.** Coordinate k emits â^k and the write uses a = â / n, so one write moves a
  read by O(1) whatever n is; the write head's weights start at a tenth of nn.Linear's init.
* **GAC placement.** The last `gac` cells of *every* layer (two by default, as the paper's BFGS
  argument needs sᵀy and yᵀHy); their cell states stay per coordinate, only h is averaged.

The memory functions (`memory_init`, `memory_read`, `memory_write`) are pure, so the tests can
drive them with hand-set controller outputs: they reproduce inverse-Hessian BFGS exactly.
This module also holds the classic quasi-Newton references the chapter compares against.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from l2l.lstm import LSTMConfig, gate_weights, initial_weights, inputs, lstm_cell

# ---------------------------------------------------------------------------------------------
# Global averaging cells


def global_average(h: Tensor, cells: int, runs: int) -> Tensor:
    """Replace the last `cells` rows of h [H, R·n] (coordinates of run r in columns r·n … r·n+n−1)
    by their mean over each run's n coordinates; the other rows pass unchanged."""
    if not cells:
        return h
    H, N = h.shape
    shared = h[H - cells :].view(cells, runs, N // runs)  # [G, R, n]
    mean = shared.mean(-1, keepdim=True).expand_as(shared).reshape(cells, N)
    return torch.cat([h[: H - cells], mean])


# ---------------------------------------------------------------------------------------------
# The external memory, one per run. Vectors are [R, n, heads]: column h is head h's n-vector.

Memory = tuple[Tensor, ...]  # ('bfgs') (M [R, n, n],)   ('lbfgs') (A, B), each [R, n, window·heads]


def memory_init(kind: str, runs: int, n: int, heads: int = 3, window: int = 10,
                like: Tensor | None = None) -> Memory:
    """M_0 = I for every run: the full matrix, or an empty window of write pairs."""
    opts = dict(dtype=like.dtype, device=like.device) if like is not None else {}
    if kind == "bfgs":
        return (torch.eye(n, **opts).expand(runs, n, n).clone(),)
    if kind == "lbfgs":
        empty = torch.zeros(runs, n, window * heads, **opts)  # zero pairs add nothing to a read
        return (empty, empty)
    raise ValueError(f"memory kind must be 'bfgs' or 'lbfgs', got {kind!r}")


def memory_read(memory: Memory, r: Tensor) -> Tensor:
    """i = M r for each run and read head: r [R, n, heads] -> [R, n, heads]."""
    if len(memory) == 1:
        return torch.bmm(memory[0], r)
    A, B = memory
    return r + torch.bmm(A, torch.bmm(B.transpose(1, 2), r))  # M_0 r + Σ_j a_j (b_jᵀ r)


def memory_write(memory: Memory, a: Tensor, b: Tensor) -> Memory:
    """M ← M + Σ_heads a bᵀ, a and b [R, n, heads]. The window drops its oldest write."""
    if len(memory) == 1:
        return (torch.baddbmm(memory[0], a, b.transpose(1, 2)),)
    A, B = memory
    k = a.shape[-1]
    return torch.cat([A[..., k:], a], -1), torch.cat([B[..., k:], b], -1)


def bfgs_write(memory: Memory, s: Tensor, y: Tensor) -> Memory:
    """The paper's expressivity argument: controller outputs, hand-set, that make the memory take
    one inverse-Hessian BFGS step  M' = (I − ρ s yᵀ) M (I − ρ y sᵀ) + ρ s sᵀ,  ρ = 1 / sᵀy.

    Every coordinate k uses only its own s^k, y^k, its read u^k and two global averages:
        read   r = y                     ->  u = M y                        (one read head)
        GACs   sᵀy = n·mean(s∘y),  yᵀu = n·mean(y∘u)                         (two GACs)
        write  a = (−ρ s, −ρ u, (ρ² yᵀu + ρ) s),  b = (u, s, s)             (three write heads)
    since, M being symmetric, M' = M − ρ s uᵀ − ρ u sᵀ + (ρ² yᵀu + ρ) s sᵀ.

    Args:
        memory: M (either kind); s, y: [R, n] step and gradient change of each run.
    """
    R, n = s.shape
    u = memory_read(memory, y[..., None])[..., 0]
    means = global_average(torch.stack([s * y, y * u]).reshape(2, R * n), 2, R).view(2, R, n)
    rho, yu = 1 / (n * means[0]), n * means[1]  # [R, n]: the same value at every coordinate
    a = torch.stack([-rho * s, -rho * u, (rho**2 * yu + rho) * s], -1)
    b = torch.stack([u, s, s], -1)
    return memory_write(memory, a, b)


def memory_bfgs(W: Tensor, target: Tensor, window: int | None = None) -> dict:
    """BFGS with exact line search on f(θ) = ‖Wθ − target‖² (W [R, n, n]) for n steps, with H kept
    in the NTM memory and updated only by `bfgs_write`. Returns the largest gaps to textbook
    BFGS (`bfgs_update`) over the steps and, at the end, to A⁻¹ (A = 2WᵀW) and to ∇ = 0."""
    R, n = target.shape
    A = 2 * W.transpose(1, 2) @ W
    grad_of = lambda th: A @ th[..., None] - 2 * W.transpose(1, 2) @ target[..., None]
    theta = torch.zeros_like(target)
    grad = grad_of(theta)[..., 0]
    memory = memory_init("lbfgs" if window else "bfgs", R, n, 3, window or 0, like=theta)
    H = torch.eye(n, dtype=theta.dtype).expand(R, n, n)
    probe = torch.eye(n, dtype=theta.dtype).expand(R, n, n)  # reading every column: M itself
    gap = 0.0
    for _ in range(n):
        d = memory_read(memory, -grad[..., None])[..., 0]  # direction −M∇, read from the memory
        alpha = -(grad * d).sum(-1, keepdim=True) / (d * (A @ d[..., None])[..., 0]).sum(-1, keepdim=True)
        s = alpha * d
        theta = theta + s
        new_grad = grad_of(theta)[..., 0]
        memory = bfgs_write(memory, s, new_grad - grad)
        H = bfgs_update(H, s, new_grad - grad)
        gap = max(gap, (memory_read(memory, probe) - H).abs().max().item())
        grad = new_grad
    M = memory_read(memory, probe)
    return {"vs_textbook": gap, "vs_inverse_hessian": (M - torch.linalg.inv(A)).abs().max().item(),
            "final_gradient": grad.abs().max().item()}


# ---------------------------------------------------------------------------------------------
# The learned optimizer


def sharing_step(grad: Tensor, state: tuple, cells, head, config: LSTMConfig):
    """One step of LSTM+GAC or NTM-(L-)BFGS: (grad [R, n], state) -> (update [R, n], state).

    state = (LSTM states (h_1, c_1, …) each [H, R·n], last read i_{t-1} [reads, R·n] or None,
    memory (see `memory_init`) or ()).
    """
    R, n = grad.shape
    lstm_state, last_read, memory = state
    x = inputs(grad, config.preprocess)  # [in, R·n]
    if memory:
        x = torch.cat([x, last_read])  # the previous read i_{t-1} returns to each coordinate
    new_state = []
    for k, (weight, bias) in enumerate(cells):
        h, c = lstm_cell(x, lstm_state[2 * k], lstm_state[2 * k + 1], weight, bias)
        x = global_average(h, config.gac, R)  # GAC cells: the same value for every coordinate
        new_state += [x, c]
    out = torch.addmm(head[1], head[0], x)  # [1 + reads + 2·writes, R·n]
    update = out[0].view(R, n)  # o_t
    read = None
    if memory:
        nr, nw = config.read_heads, config.write_heads
        per_run = out[1:].view(-1, R, n).permute(1, 2, 0)  # [R, n, reads + 2·writes]
        r, a, b = per_run.split([nr, nw, nw], dim=-1)
        i = memory_read(memory, r)  # i_t = M_t r_t
        memory = memory_write(memory, a / n, b)  # M_{t+1} = M_t + Σ a bᵀ
        update = update + i[..., 0]  # g_t = o_t + i_t (first read head)
        read = i.permute(2, 0, 1).reshape(nr, R * n)
    return update * config.output_scale, (tuple(new_state), read, memory)


class SharingOptimizer(nn.Module):
    """LSTM+GAC (`config.gac` > 0) or NTM-BFGS / NTM-L-BFGS (`config.memory` 'bfgs' / 'lbfgs').

    Same interface as `l2l.lstm.LSTMOptimizer`: `init(theta [R, n]) -> state`, `bind()`,
    `step(grad, state) -> (update, state)`; each run of the batch has its own averages and memory.

    Args:
        config: the architecture (hidden, layers, gac, memory, read_heads, write_heads, window).
        seed: seeds the initial weights φ.
        compile: accepted for the common interface; steps run eagerly.
    """

    def __init__(self, config: LSTMConfig, seed: int = 0, compile: bool = False):
        super().__init__()
        if config.gac > config.hidden:
            raise ValueError(f"gac ({config.gac}) cannot exceed hidden ({config.hidden})")
        if config.memory != "none" and config.read_heads < 1:
            raise ValueError("a memory needs at least one read head (its result is the update)")
        self.config = config
        H, memory = config.hidden, config.memory != "none"
        reads = config.read_heads if memory else 0
        outputs = 1 + (reads + 2 * config.write_heads if memory else 0)
        self.cells, self.head = initial_weights(config, seed, extra_inputs=reads, outputs=outputs)
        with torch.no_grad():
            if memory:  # gentle writes at first, so M stays near I while the controller learns
                self.head.weight[1 + reads :] *= 0.1
                self.head.bias[1 + reads :] = 0.0

    def init(self, theta: Tensor, groups: Tensor | None = None) -> tuple:
        """Zero LSTM states and last read, M_0 = I, for θ [R, n] (reset every run)."""
        c = self.config
        R, n = theta.shape
        zeros = theta.new_zeros(c.hidden, R * n)
        lstm_state = tuple(zeros for _ in range(2 * c.layers))
        if c.memory == "none":
            return lstm_state, None, ()
        read = theta.new_zeros(c.read_heads, R * n)
        return lstm_state, read, memory_init(c.memory, R, n, c.write_heads, c.window, like=theta)

    def bind(self):
        cells = [gate_weights(cell) for cell in self.cells]
        head = (self.head.weight, self.head.bias[:, None])
        return lambda grad, state: sharing_step(grad, state, cells, head, self.config)

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        return self.bind()(grad, state)


def without_writes(opt: SharingOptimizer) -> SharingOptimizer:
    """A copy of a trained NTM-(L-)BFGS whose write heads emit zeros, so M stays I: an ablation
    that shows how much the learned optimizer relies on what it writes."""
    import copy

    c = opt.config
    ablated = copy.deepcopy(opt)
    with torch.no_grad():
        ablated.head.weight[1 + c.read_heads :] = 0.0
        ablated.head.bias[1 + c.read_heads :] = 0.0
    return ablated


@torch.no_grad()
def memory_drift(opt: SharingOptimizer, task, steps: int) -> Tensor:
    """‖M_T − I‖_F / √n of each run after `steps` steps of a NTM-(L-)BFGS on `task`: [R]."""
    from l2l.evaluate import optimize

    for last in optimize(task, opt, steps):  # streamed: only the end is needed
        pass
    theta, memory = last.theta, last.state[2]
    R, n = theta.shape
    eye = torch.eye(n, dtype=theta.dtype, device=theta.device).expand(R, n, n)
    change = memory_read(memory, eye) - eye  # M − I, read column by column
    return change.flatten(1).norm(dim=1) / math.sqrt(n)


@torch.no_grad()
def update_profile(opt, task, steps: int) -> tuple[float, float]:
    """How coordinate-specific an optimizer's updates are: over `steps` steps and all runs of
    `task`, the mean of |mean_k g^k_t| (the shift shared by all coordinates) and of std_k g^k_t
    (the part that differs between coordinates)."""
    from l2l.evaluate import optimize

    shared, specific = 0.0, 0.0
    for point in optimize(task, opt, steps):
        if point.update is not None:
            shared += point.update.mean(1).abs().mean().item() / steps
            specific += point.update.std(1).mean().item() / steps
    return shared, specific


@torch.no_grad()
def step_cost(opt, n: int, runs: int = 1, steps: int = 20, seed: int = 0) -> tuple[float, int]:
    """(milliseconds per step, bytes of state) of an optimizer on [runs, n] random gradients."""
    import time

    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(runs, n, generator=g) * 0.1 for _ in range(steps + 2)]
    state = opt.init(torch.zeros(runs, n))
    step = opt.bind()
    for grad in grads[:2]:  # warm-up
        _, state = step(grad, state)
    start = time.perf_counter()
    for grad in grads[2:]:
        _, state = step(grad, state)
    return 1000 * (time.perf_counter() - start) / steps, state_bytes(state)


def state_bytes(state) -> int:
    """Bytes held by an optimizer state (nested tuples of tensors)."""
    if isinstance(state, Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, tuple):
        return sum(state_bytes(s) for s in state)
    return 0


# ---------------------------------------------------------------------------------------------
# Classic quasi-Newton references


def bfgs_update(H: Tensor, s: Tensor, y: Tensor) -> Tensor:
    """Inverse-Hessian BFGS, per run: H [R, n, n], s = θ_{k+1} − θ_k and y = ∇_{k+1} − ∇_k [R, n].

        H' = (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ,   ρ = 1 / yᵀs

    Runs whose curvature yᵀs is not positive keep their H.
    """
    sy = (s * y).sum(-1)
    ok = sy > 1e-12 * (s.norm(dim=-1) * y.norm(dim=-1)).clamp_min(1e-30)
    rho = torch.where(ok, 1 / torch.where(ok, sy, torch.ones_like(sy)), torch.zeros_like(sy))[:, None, None]
    eye = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    left = eye - rho * s[:, :, None] * y[:, None, :]
    return left @ H @ left.transpose(1, 2) + rho * s[:, :, None] * s[:, None, :]


def lbfgs_direction(grad: Tensor, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    """−H ∇ by the two-loop recursion over the stored (s, y) pairs (oldest first), H_0 = I.
    Runs whose yᵀs is not positive skip that pair."""
    q, alphas = grad.clone(), []
    for s, y in reversed(pairs):
        sy = (s * y).sum(-1, keepdim=True)
        rho = torch.where(sy > 0, 1 / torch.where(sy > 0, sy, torch.ones_like(sy)), torch.zeros_like(sy))
        alpha = rho * (s * q).sum(-1, keepdim=True)
        q = q - alpha * y
        alphas.append((alpha, rho))
    for (s, y), (alpha, rho) in zip(pairs, reversed(alphas)):
        beta = rho * (y * q).sum(-1, keepdim=True)
        q = q + s * (alpha - beta)
    return -q


class QuasiNewton:
    """BFGS (history None) or L-BFGS (the last `history` pairs) with a fixed step length `lr`.

    One gradient per step, like every other optimizer here: θ_{t+1} = θ_t − lr · H_t ∇_t, and H is
    updated from consecutive steps' (s, y). Shares the baselines' interface, so `l2l.evaluate.run`
    drives it and its `lr` is tuned the same way.
    """

    def __init__(self, lr: float, history: int | None = None):
        self.lr, self.history = lr, history

    def init(self, theta: Tensor, groups=None) -> tuple:
        R, n = theta.shape
        mem = [] if self.history else torch.eye(n, dtype=theta.dtype).expand(R, n, n)
        return mem, None, None  # H or pairs, previous update, previous gradient

    def step(self, grad: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        mem, s, last = state
        if s is not None:  # the pair (s, y) from the step just taken
            if self.history:
                mem = (mem + [(s, grad - last)])[-self.history :]
            else:
                mem = bfgs_update(mem, s, grad - last)
        if self.history:
            direction = lbfgs_direction(grad, mem)
        else:
            direction = -torch.bmm(mem, grad[:, :, None])[..., 0]
        update = self.lr * direction
        return update, (mem, update, grad)

    def bind(self):
        return self.step


def bfgs_exact(task, steps: int, history: int | None = None) -> Tensor:
    """Classic (L-)BFGS with exact line search, for quadratic tasks; returns [R, steps + 1] losses.

    The step length α = −∇ᵀd / dᵀAd needs the curvature along d, obtained as
    A d = ∇f(θ + d) − ∇f(θ) (exact on a quadratic): each step costs two gradients. In exact
    arithmetic BFGS and L-BFGS (any history, H_0 = I) then coincide with conjugate gradients and
    reach the minimum of an n-dimensional quadratic in n steps.
    """
    theta = task.theta
    f, grad = task.loss_and_grad(theta)
    R, n = theta.shape
    H = torch.eye(n, dtype=theta.dtype).expand(R, n, n)
    pairs, losses = [], [f]
    for _ in range(steps):
        d = lbfgs_direction(grad, pairs) if history else -torch.bmm(H, grad[:, :, None])[..., 0]
        _, grad_d = task.loss_and_grad(theta + d)
        curvature = ((grad_d - grad) * d).sum(-1, keepdim=True)  # dᵀAd
        alpha = torch.where(curvature > 0, -(grad * d).sum(-1, keepdim=True) / curvature.clamp_min(1e-300),
                            torch.zeros_like(curvature))
        s = alpha * d
        theta = theta + s
        f, new_grad = task.loss_and_grad(theta)
        if history:
            pairs = (pairs + [(s, new_grad - grad)])[-history:]
        else:
            H = bfgs_update(H, s, new_grad - grad)
        grad = new_grad
        losses.append(f)
    return torch.stack(losses, dim=1)


def tune_lr(problem, make, steps: int, runs: int, seed: int, grid, device="cpu") -> tuple[float, dict]:
    """The learning rate of `make(lr)` (e.g. a `QuasiNewton`) with the lowest mean final loss on the
    validation functions, exactly as the baselines are tuned (`l2l.evaluate.tune`)."""
    from l2l.evaluate import tune

    return tune(problem, make, steps, runs, seed, device, grid)
