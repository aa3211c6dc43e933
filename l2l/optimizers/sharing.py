"""Information sharing between coordinates (the paper's appendix): LSTM+GAC and NTM-(L-)BFGS.

The coordinatewise LSTM (`l2l.optimizers.lstm`) updates every coordinate from its own gradient history
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
* **Where the head's biases start.** The write heads' at zero; the read key's and the update
  channel's at nn.Linear's draw, or at zero (`read_bias`, `update_bias`). With M_0 = I the first
  reads return their keys, so each random bias is a step shared by every coordinate from the start
  (chapter 6 measures what it does on MNIST).
* **GAC placement.** The last `gac` cells of *every* layer (two by default, as the paper's BFGS
  argument needs sᵀy and yᵀHy); their cell states stay per coordinate, only h is averaged.

The memory functions (`memory_init`, `memory_read`, `memory_write`) are pure, so the tests can
drive them with hand-set controller outputs: they reproduce inverse-Hessian BFGS exactly. The
classic quasi-Newton methods the chapter compares against are in `l2l.optimizers.quasi_newton`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor

from l2l.errors import UserError
from l2l.optimizers.base import Learned
from l2l.optimizers.lstm import LSTMConfig, gate_weights, initial_weights, inputs, lstm_cell
from l2l.optimizers.quasi_newton import bfgs_update

MEMORIES = ("none", "bfgs", "lbfgs")
BIASES = ("random", "zero")  # where a head bias starts: nn.Linear's draw, or zero


@dataclass(frozen=True)
class SharingConfig:
    """A coordinatewise LSTM that shares information across coordinates (module docstring).

    lstm: the controller's architecture, input and output treatment (one LSTM: `groups` = 1).
    gac: global averaging cells at the end of every layer (2 express BFGS's inner products).
    memory: 'none' (LSTM+GAC), 'bfgs' (the full n×n matrix) or 'lbfgs' (a window of write pairs).
    read_heads, write_heads: of the memory (the paper's BFGS argument needs 1 and 3).
    window: NTM-L-BFGS: how many writes (each `write_heads` pairs) are kept.
    read_bias, update_bias: where the biases of the read keys and of the update channel o_t start:
        'random' (nn.Linear's draw) or 'zero' (as the write heads'). With M_0 = I a read returns its
        key, so either random bias is a step shared by every coordinate from the first step.
    """

    lstm: LSTMConfig = field(default_factory=LSTMConfig)
    gac: int = 2
    memory: str = "none"
    read_heads: int = 1
    write_heads: int = 3
    window: int = 10
    read_bias: str = "random"
    update_bias: str = "random"

    def __post_init__(self):
        if self.gac == 0 and self.memory == "none":
            raise UserError("no averaging cells and no memory share nothing: that is LSTMConfig")
        if self.memory not in MEMORIES:
            raise UserError(f"memory must be one of {', '.join(MEMORIES)}, got {self.memory!r}")
        if min(self.gac, self.read_heads, self.write_heads, self.window) < 0:
            raise UserError("gac, read_heads, write_heads and window must be non-negative")
        if self.gac > self.lstm.hidden:
            raise UserError(f"gac ({self.gac}) cannot exceed hidden ({self.lstm.hidden})")
        if self.memory != "none" and self.read_heads < 1:
            raise UserError("a memory needs at least one read head (its result is the update)")
        if self.lstm.groups > 1:
            raise UserError("several LSTMs (groups > 1) and information sharing do not combine")
        for name in ("read_bias", "update_bias"):
            if getattr(self, name) not in BIASES:
                raise UserError(f"{name} must be one of {', '.join(BIASES)}, got {getattr(self, name)!r}")
        if self.read_bias != "random" and self.memory == "none":
            raise UserError("read_bias sets the memory's read keys: without a memory there are none")

    @property
    def reads(self) -> int:
        """Read heads in use (none without a memory)."""
        return self.read_heads if self.memory != "none" else 0


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
    # on the device (and dtype) of `like`; without one, torch's defaults
    dtype, device = (like.dtype, like.device) if like is not None else (None, None)
    if kind == "bfgs":
        return (torch.eye(n, dtype=dtype, device=device).expand(runs, n, n).clone(),)
    if kind == "lbfgs":
        empty = torch.zeros(runs, n, window * heads, dtype=dtype, device=device)  # zero pairs add nothing to a read
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
    BFGS (`bfgs_update`) over the steps and, at the end, to A⁻¹ (A = 2WᵀW; relative to the largest
    entry of A⁻¹, worst run) and to ∇ = 0, with the largest condition number of A (rounding grows with it)."""
    R, n = target.shape
    A = 2 * W.transpose(1, 2) @ W
    grad_of = lambda th: A @ th[..., None] - 2 * W.transpose(1, 2) @ target[..., None]
    theta = torch.zeros_like(target)
    grad = grad_of(theta)[..., 0]
    memory = memory_init("lbfgs" if window else "bfgs", R, n, 3, window or 0, like=theta)
    H = torch.eye(n, dtype=theta.dtype, device=theta.device).expand(R, n, n)
    probe = H  # reading every column of the memory: M itself
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
    inverse = torch.linalg.inv(A)
    relative = (memory_read(memory, probe) - inverse).abs().amax((1, 2)) / inverse.abs().amax((1, 2))
    return {"vs_textbook": gap, "vs_inverse_hessian": relative.max().item(),
            "final_gradient": grad.abs().max().item(), "condition": torch.linalg.cond(A).max().item()}


# ---------------------------------------------------------------------------------------------
# The learned optimizer


def sharing_step(grad: Tensor, state: tuple, cells, head, config: SharingConfig):
    """One step of LSTM+GAC or NTM-(L-)BFGS: (grad [R, n], state) -> (update [R, n], state).

    state = (LSTM states (h_1, c_1, …) each [H, R·n], last read i_{t-1} [reads, R·n] or None,
    memory (see `memory_init`) or ()).
    """
    R, n = grad.shape
    lstm_state, last_read, memory = state
    x = inputs(grad, config.lstm.preprocess)  # [in, R·n]
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
    return update * config.lstm.output_scale, (tuple(new_state), read, memory)


class SharingOptimizer(Learned):
    """LSTM+GAC (`config.memory` 'none') or NTM-BFGS / NTM-L-BFGS (`config.memory` 'bfgs' / 'lbfgs').

    The interface of every optimizer (`l2l.optimizers.base`); each run of the batch has its own
    averages and memory.

    Args:
        config: the architecture (`SharingConfig`).
        seed: seeds the initial weights φ.
        compile: accepted for the common interface; steps run eagerly.
    """

    def __init__(self, config: SharingConfig, seed: int = 0, compile: bool = False):
        super().__init__()
        self.config = config
        outputs = 1 + (config.reads + 2 * config.write_heads if config.reads else 0)
        self.cells, self.head = initial_weights(config.lstm, seed, extra_inputs=config.reads, outputs=outputs)
        with torch.no_grad():
            if config.reads:  # gentle writes at first, so M stays near I while the controller learns
                self.head.weight[1 + config.reads :] *= 0.1
                self.head.bias[1 + config.reads :] = 0.0
                if config.read_bias == "zero":  # keys start without a shared part: i_t = r_t has none
                    self.head.bias[1 : 1 + config.reads] = 0.0
            if config.update_bias == "zero":  # o_t starts without one either
                self.head.bias[0] = 0.0

    def init(self, theta: Tensor, groups: Tensor | None = None) -> tuple:
        """Zero LSTM states and last read, M_0 = I, for θ [R, n] (reset every run)."""
        c = self.config
        R, n = theta.shape
        zeros = theta.new_zeros(c.lstm.hidden, R * n)
        lstm_state = tuple(zeros for _ in range(2 * c.lstm.layers))
        if c.memory == "none":
            return lstm_state, None, ()
        read = theta.new_zeros(c.read_heads, R * n)
        return lstm_state, read, memory_init(c.memory, R, n, c.write_heads, c.window, like=theta)

    def bind(self):
        cells = [gate_weights(cell) for cell in self.cells]
        head = (self.head.weight, self.head.bias[:, None])
        return lambda grad, state: sharing_step(grad, state, cells, head, self.config)

    def without_writes(self) -> "SharingOptimizer":
        """A copy of a trained NTM-(L-)BFGS whose write heads emit zeros, so M stays I: an
        ablation that shows how much the learned optimizer relies on what it writes."""
        ablated = copy.deepcopy(self)
        with torch.no_grad():
            ablated.head.weight[1 + self.config.read_heads :] = 0.0
            ablated.head.bias[1 + self.config.read_heads :] = 0.0
        return ablated
