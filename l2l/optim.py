"""The book's trained optimizers as a `torch.optim.Optimizer`, for any PyTorch model.

    opt = l2l.LearnedOptimizer(model.parameters(), "mnist")   # data/checkpoints/mnist.pt
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()          # θ ← θ + g, [g; h] = m(∇, h; φ) for every coordinate
        opt.zero_grad()

Each coordinate of each parameter carries its own LSTM state (paper, section 2.1), kept in
`opt.state[p]` beside a step count. A step gathers the gradients of a parameter group into one
vector, runs the LSTM once on all its coordinates (in float32, on the parameters' device) and
splits the update back. Checkpoints with one LSTM per parameter group (CIFAR's conv and fully
connected LSTMs) map LSTM k to parameter group k, or to the groups whose `"lstm"` key is k.
Optimizers that share information across coordinates (LSTM+GAC, NTM-BFGS) average over a whole
problem's coordinates and are not offered here.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from l2l.errors import UserError
from l2l.optimizers import GroupedLSTM, LSTMOptimizer
from l2l.runtime import checkpoints_dir
from l2l.training import TrainConfig, load_checkpoint, optimizer_from

FAR_PAST = 5  # warn when a parameter's step count passes this many training horizons


def shipped() -> list[str]:
    """Names of the trained optimizers in `data/checkpoints/` (`gpu/mnist` for gpu/mnist.pt)."""
    root = checkpoints_dir()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.pt"))


def resolve(checkpoint: str | Path) -> Path:
    """A checkpoint's file: an existing path, or a name of `data/checkpoints/` without `.pt`."""
    path = Path(checkpoint)
    if path.is_file():
        return path
    named = checkpoints_dir() / f"{checkpoint}.pt"
    if named.is_file():
        return named
    names = ", ".join(shipped()) or "none"
    raise FileNotFoundError(f"no trained optimizer {str(checkpoint)!r}: not a file, nor a name in "
                            f"{checkpoints_dir()} (shipped: {names})")


class LearnedOptimizer(torch.optim.Optimizer):
    """A trained coordinatewise LSTM optimizer of the book, stepping a model's parameters.

    Args:
        params: parameters or parameter groups, as for any `torch.optim.Optimizer`. A group may
            name the LSTM that updates it with an `"lstm"` key (an index into the checkpoint's
            LSTMs); without it, group k uses LSTM k.
        checkpoint: a name of `data/checkpoints/` (e.g. "mnist", "cifar") or a path to a
            checkpoint file written by `python -m l2l train`.
        which: "best" (the early-stopped weights) or "last" (the end of meta-training).

    The instance's `__doc__` and `repr` say what it runs: the family it was trained on, its
    horizon (steps per training run), the preprocessing and output scale, and which weights.
    It warns once when a parameter has taken more than 5× the horizon steps: the plain LSTM
    optimizer tends to diverge far past the horizon it was trained for.
    """

    def __init__(self, params, checkpoint: str | Path = "mnist", which: str = "best"):
        path = resolve(checkpoint)
        ck = load_checkpoint(path)
        config = TrainConfig.from_dict(ck["config"])
        net = optimizer_from(ck, "cpu", which)
        if isinstance(net, GroupedLSTM):
            nets = list(net.nets)
        elif isinstance(net, LSTMOptimizer):
            nets = [net]
        else:
            raise UserError(f"{path.name} holds a {type(net).__name__}, which shares information "
                             "across all coordinates of one problem (LSTM+GAC, NTM-BFGS); "
                             "LearnedOptimizer runs only coordinatewise LSTM optimizers")
        self.config, self.path, self.which = config, path, which
        self.epoch = ck["best"]["epoch"] if which == "best" else ck["epoch"]
        self.epochs = ck["epoch"]
        self._nets = {torch.device("cpu"): nets}  # a copy of the LSTMs per device in use
        self._bound: dict[torch.device, list] = {}
        self._warned = False
        super().__init__(params, {"lstm": None})
        for k, group in enumerate(self.param_groups):
            self._lstm_of(k, group)  # fail now on a group the LSTMs cannot map to
        self._checked = True
        self.__doc__ = f"{self.describe()}\n\n{type(self).__doc__}"

    # -- what it is

    @property
    def horizon(self) -> int:
        """Steps per run the optimizer was meta-trained on."""
        return self.config.steps

    @property
    def lstms(self) -> int:
        return len(self._nets[torch.device("cpu")])

    def describe(self) -> str:
        opt = self.config.optimizer
        p = "raw gradients" if opt.preprocess is None else f"log/sign preprocessing p={opt.preprocess:g}"
        lstms = "one LSTM" if self.lstms == 1 else f"{self.lstms} LSTMs (one per parameter group)"
        return (f"{self.path.stem}: {lstms} trained on {self.config.problem!r} for {self.horizon}-step "
                f"runs; {p}, output × {'/'.join(f'{x:g}' for x in opt.scales)}; {self.which} weights "
                f"(epoch {self.epoch} of {self.epochs})")

    def __repr__(self) -> str:
        groups = ", ".join(f"group {k}: {sum(p.numel() for p in g['params'])} coordinates → LSTM "
                           f"{self._lstm_of(k, g)}" for k, g in enumerate(self.param_groups))
        return f"LearnedOptimizer({self.describe()}; {groups})"

    # -- groups and devices

    def _lstm_of(self, k: int, group: dict) -> int:
        """The index of the LSTM that updates parameter group k."""
        n = self.lstms
        index = group.get("lstm")
        if index is None:
            if n == 1:
                return 0
            if len(self.param_groups) != n:
                raise UserError(
                    f"{self.path.name} has {n} LSTMs, one per parameter group, but the optimizer got "
                    f"{len(self.param_groups)} group(s): pass {n} groups, e.g. "
                    "[{'params': conv_params}, {'params': fc_params}] (group k uses LSTM k), "
                    "or give each group its LSTM as {'params': ..., 'lstm': k}")
            return k
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise UserError(f"group {k} asks for LSTM {index!r}; {self.path.name} has LSTMs 0..{n - 1}")
        return index

    def add_param_group(self, param_group: dict):
        super().add_param_group(param_group)
        if getattr(self, "_checked", False):  # after __init__: a group added later is checked as it comes
            last = len(self.param_groups) - 1
            try:  # the new group's own LSTM first, then whether the others still map
                for k in (last, *range(last)):
                    self._lstm_of(k, self.param_groups[k])
            except UserError:
                self.param_groups.pop()
                raise

    def _steps_on(self, device: torch.device) -> list:
        """The LSTMs' bound step functions with their weights on `device`."""
        if device not in self._bound:
            if device not in self._nets:
                self._nets[device] = [copy.deepcopy(net).to(device) for net in self._nets[torch.device("cpu")]]
            self._bound[device] = [net.bind() for net in self._nets[device]]
        return self._bound[device]

    # -- stepping

    @torch.no_grad()
    def step(self, closure=None):
        """θ ← θ + g for every parameter with a gradient; the others, and their states, stay."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for k, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            device = params[0].device
            if any(p.device != device for p in params):
                raise UserError(f"parameter group {k} spans devices; put each device's parameters "
                                 "in a group of its own")
            if any(p.grad.is_sparse for p in params) or any(p.is_complex() for p in params):
                raise UserError("LearnedOptimizer takes dense real parameters and gradients only")
            net = self._nets[torch.device("cpu")][self._lstm_of(k, group)]
            bound = self._steps_on(device)[self._lstm_of(k, group)]
            for p in params:
                if not self.state[p]:
                    self.state[p]["step"] = 0
                    self.state[p]["lstm"] = torch.stack(net.init(p.detach().reshape(1, -1).float()))
            grad = torch.cat([p.grad.reshape(-1).float() for p in params])
            state = torch.cat([self.state[p]["lstm"] for p in params], dim=2)  # [2·layers, H, N]
            update, new = bound(grad, tuple(state.unbind(0)))
            sizes = [p.numel() for p in params]
            for p, u, s in zip(params, update.split(sizes), torch.stack(new).split(sizes, dim=2)):
                p.add_(u.view_as(p).to(p.dtype))
                self.state[p]["lstm"] = s
                self.state[p]["step"] += 1
                if not self._warned and self.state[p]["step"] > FAR_PAST * self.horizon:
                    self._warned = True
                    warnings.warn(f"LearnedOptimizer: a parameter has taken {self.state[p]['step']} steps, "
                                  f"more than {FAR_PAST}× the {self.horizon} steps this optimizer was "
                                  "trained for; plain LSTM optimizers often diverge far past their "
                                  "horizon (the book's MNIST chapter measures it)", stacklevel=2)
        return loss

    # -- state

    def load_state_dict(self, state_dict: dict) -> None:
        """As `torch.optim.Optimizer.load_state_dict`, with the LSTM states kept in float32 (the
        base class casts floating-point state to each parameter's dtype)."""
        saved = {i: s["lstm"] for i, s in state_dict["state"].items() if "lstm" in s}
        super().load_state_dict(state_dict)
        ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(ids, params):
            if i in saved:
                self.state[p]["lstm"] = saved[i].to(device=p.device, dtype=torch.float32)
