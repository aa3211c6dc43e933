"""CIFAR-10: the data, the functional network against torch.nn, parameter groups, two LSTMs."""

import contextlib
import io
import math
import pickle
import tarfile

import pytest
import torch
from torch import nn

from conftest import needs_cifar
from l2l.optimizers import GroupedLSTM, LSTMConfig, LSTMOptimizer, make_optimizer
from l2l.errors import UserError
from l2l.problems import CIFAR, Task, make_problem


def test_parameter_count_and_groups_by_hand():
    p = make_problem("cifar")
    conv = 3 * 16 * 25 + 16 + 2 * (16 * 16 * 25 + 16)  # three 5×5 kernels, three offsets: 14,048
    fc = 256 * 32 + 32 + 32 * 10 + 10  # 16·4·4 → 32 (+ offset) → 10 logits (+ bias): 8,554
    assert p.size == conv + fc == 22_602
    groups = p.groups()
    assert groups.shape == (p.size,)
    assert (groups == 0).sum() == conv and (groups[:conv] == 0).all() and (groups[conv:] == 1).all()
    assert make_problem("cifar:classes=2").size == conv + 256 * 32 + 32 + 32 * 2 + 2


def test_the_official_assignment_sends_only_the_kernels_to_the_conv_lstm():
    """[code] cifar-multi: the "conv" LSTM gets the three kernels; the conv blocks' batch-norm
    offsets go with the fully connected parameters to the other."""
    official = make_problem("cifar:assign=kernels")
    groups = official.groups()
    kernels = [(1200, 16), (6400, 16), (6400, 16)]  # each block: its kernel's coordinates, then its offsets
    expected, offset = torch.ones(official.size, dtype=groups.dtype), 0
    for k, b in kernels:
        expected[offset: offset + k] = 0
        offset += k + b
    assert torch.equal(groups, expected) and (groups == 0).sum() == 14_000
    assert official.size == make_problem("cifar").size and official.spec == "cifar:assign=kernels"
    with pytest.raises(UserError, match="assign"):
        make_problem("cifar:assign=biases")


def test_label_subsets_and_bad_options():
    assert make_problem("cifar:classes=5").label_set == (0, 1, 2, 3, 4)
    assert make_problem("cifar:classes=5,labels=last").label_set == (5, 6, 7, 8, 9)
    assert set(make_problem("cifar:classes=2").label_set).isdisjoint(
        make_problem("cifar:classes=5,labels=last").label_set)  # LSTM-sub never sees CIFAR-2's labels
    assert make_problem("cifar").held_out().split == "test"
    with pytest.raises(ValueError, match="2, 5, 10"):
        make_problem("cifar:classes=3")


def reference_network(problem: CIFAR, params: dict) -> nn.Module:
    """The same network from torch.nn layers (batch norm in training mode, scale fixed at 1)."""
    def bn(cls, size, offset):
        layer = cls(size, momentum=None)
        layer.weight.data.fill_(1.0)
        layer.bias.data.copy_(offset)
        return layer

    layers = []
    for k in (1, 2, 3):
        conv = nn.Conv2d(params[f"conv{k}"].shape[1], 16, 5, padding=2, bias=False)
        conv.weight.data.copy_(params[f"conv{k}"])
        layers += [conv, bn(nn.BatchNorm2d, 16, params[f"bn{k}"]), nn.ReLU(), nn.MaxPool2d(2)]
    fc = nn.Linear(256, 32, bias=False)
    fc.weight.data.copy_(params["fc"].T)
    out = nn.Linear(32, problem.classes)
    out.weight.data.copy_(params["logits"].T)
    out.bias.data.copy_(params["bias"])
    return nn.Sequential(*layers, nn.Flatten(), fc, bn(nn.BatchNorm1d, 32, params["bn_fc"]), nn.ReLU(), out).train()


def test_network_matches_torch_nn_for_every_run():
    problem = make_problem("cifar:classes=5")
    theta = torch.randn(2, problem.size) * 0.1
    x = torch.randn(2, 8, 3, 32, 32)
    logits = problem.logits(theta, x)
    assert logits.shape == (2, 8, 5)
    for r in range(2):
        params = {k: v[r] for k, v in problem.unflatten(theta).items()}
        torch.testing.assert_close(logits[r], reference_network(problem, params)(x[r]), rtol=1e-4, atol=1e-4)


def test_grouped_lstm_sends_each_group_to_its_own_lstm():
    config = LSTMConfig(output_scale=0.1, groups=2)
    opt = make_optimizer(config, seed=3)
    assert isinstance(opt, GroupedLSTM) and len(opt.nets) == 2
    groups = torch.tensor([1, 0, 0, 1, 0, 1, 1])  # interleaved on purpose
    grad = torch.randn(3, 7)
    update, _ = opt.step(grad, opt.init(torch.zeros(3, 7), groups))
    for k, net in enumerate(opt.nets):
        cols = (groups == k).nonzero().squeeze(1)
        alone, _ = net.step(grad[:, cols], net.init(grad[:, cols]))
        torch.testing.assert_close(update[:, cols], alone)
    # the two LSTMs have different weights, so the same gradient gets different updates
    same = torch.full((1, 2), 0.3)
    u, _ = opt.step(same, opt.init(same, torch.tensor([0, 1])))
    assert u[0, 0] != u[0, 1]


def test_grouped_lstm_needs_matching_groups():
    opt = make_optimizer(LSTMConfig(groups=2))
    with pytest.raises(ValueError, match="2 LSTMs but the problem labels none"):
        opt.init(torch.zeros(1, 4), None)
    with pytest.raises(ValueError, match="labels 3"):
        opt.init(torch.zeros(1, 4), torch.tensor([0, 1, 2, 2]))
    assert isinstance(make_optimizer(LSTMConfig()), LSTMOptimizer)


def test_an_archive_is_unpacked_once_into_its_own_folder(tmp_path, monkeypatch):
    from l2l import data

    def archive(pickles):
        with tarfile.open(tmp_path / "mirror" / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, blob in pickles.items():
                member = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                member.size = len(blob)
                tar.addfile(member, io.BytesIO(blob))

    (tmp_path / "mirror").mkdir()
    pickles = {name: pickle.dumps({"data": name}) for names in data.CIFAR_FILES.values() for name in names}
    archive(pickles)
    monkeypatch.setenv("L2L_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("L2L_DATA", str(tmp_path / "data"))
    datasets = tmp_path / "data" / "datasets"
    (datasets / "cifar-10-batches-py").mkdir(parents=True)  # torchvision's download: the mirror comes first
    folder = data.cifar_pickles()
    assert folder == datasets / "cifar-10-unpacked"
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != data.STAMP} == pickles
    assert sorted(p.name for p in datasets.iterdir() if p.suffix != ".lock") == ["cifar-10-batches-py", "cifar-10-unpacked"]  # no scratch
    (folder / "test_batch").write_bytes(b"kept")  # unpacked once: later calls read the folder as it is
    assert data.cifar_pickles() == folder and (folder / "test_batch").read_bytes() == b"kept"

    archive({**pickles, "test_batch": b"another archive"})  # a changed archive is unpacked again
    assert data.cifar_pickles() == folder and (folder / "test_batch").read_bytes() == b"another archive"
    assert sorted(p.name for p in datasets.iterdir() if p.suffix != ".lock") == ["cifar-10-batches-py", "cifar-10-unpacked"]

    @contextlib.contextmanager
    def beaten(path):  # another process unpacks it while this one waits for the lock
        (path / data.STAMP).write_text(stamp)
        yield path
    stamp = (folder / data.STAMP).read_text()
    (folder / data.STAMP).unlink()
    (datasets / ".unpacking-killed").mkdir()  # a killed process's scratch: the next unpack removes it
    monkeypatch.setattr(data, "locked", beaten)
    monkeypatch.setattr(data, "_unpack", lambda *_: pytest.fail("unpacked a second time"))
    assert data.cifar_pickles() == folder
    monkeypatch.undo()
    monkeypatch.setenv("L2L_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("L2L_DATA", str(tmp_path / "data"))
    archive({**pickles, "test_batch": b"a third, longer archive"})
    assert data.cifar_pickles() == folder and (folder / "test_batch").read_bytes() == b"a third, longer archive"
    assert not (datasets / ".unpacking-killed").exists()

    (folder / data.STAMP).unlink()  # a data folder that cannot be written: the archive is read as it is
    monkeypatch.setattr(data.tempfile, "mkdtemp", lambda **_: (_ for _ in ()).throw(PermissionError("read-only")))
    assert data.cifar_pickles() == tmp_path / "mirror" / "cifar-10-python.tar.gz"


def test_channel_statistics_are_those_computed_in_float64():
    from l2l.data import byte_stats

    g = torch.Generator().manual_seed(0)
    for shape in [(64, 3, 8, 8), (5, 2, 3, 1), (2, 1, 1, 1)]:
        images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
        x = images.double() / 255.0
        mean, std = byte_stats(images)
        assert mean.dtype == std.dtype == torch.float32 and mean.shape == (1, shape[1], 1, 1)
        assert torch.equal(mean, x.mean((0, 2, 3), keepdim=True).float())
        assert torch.equal(std, x.std((0, 2, 3), keepdim=True).float())


@needs_cifar
def test_cifar_data_and_minibatches():
    from l2l.data import cifar10

    x, y = cifar10("test")
    assert x.shape == (10_000, 3, 32, 32) and y.shape == (10_000,)
    assert torch.bincount(y).tolist() == [1000] * 10
    assert x.mean().abs() < 0.1 and 0.9 < x.std() < 1.1  # standardized with the training statistics
    task = make_problem("cifar:classes=2,split=test,batch=16").sample(3, seed=0)
    images, labels = task.batch()
    assert images.shape == (3, 16, 3, 32, 32) and set(labels.unique().tolist()) <= {0, 1}
    f, grad = task.loss_and_grad(task.theta)
    assert torch.allclose(f, torch.full((3,), math.log(2)), atol=0.05)  # near-uniform at θ_0
    assert grad.shape == task.theta.shape and task.groups.shape == (task.theta.shape[1],)


@needs_cifar
def test_both_assignments_draw_the_same_test_functions():
    """Chapter 4 pairs an optimizer trained with the official assignment against the book's on the
    same test runs: the assignment changes only which LSTM steps each coordinate, never θ_0, the
    minibatches or the loss."""
    tasks = [make_problem(f"cifar:assign={a},split=test,batch=8").sample(2, seed=3) for a in ("layers", "kernels")]
    assert torch.equal(tasks[0].theta, tasks[1].theta)
    for _ in range(2):
        (x0, y0), (x1, y1) = tasks[0].batch(), tasks[1].batch()
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
        assert torch.equal(tasks[0].loss(tasks[0].theta, (x0, y0)), tasks[1].loss(tasks[1].theta, (x1, y1)))
    assert (tasks[0].groups != tasks[1].groups).sum() == 3 * 16  # the conv blocks' offsets change sides


def test_silencing_one_lstm_freezes_its_group_only():
    opt = make_optimizer(LSTMConfig(output_scale=0.1, groups=2), seed=0)
    groups = torch.tensor([0, 0, 1, 1, 1])
    grad = torch.randn(2, 5)
    full, _ = opt.step(grad, opt.init(grad, groups))
    quiet = opt.silenced(0)
    part, _ = quiet.step(grad, quiet.init(grad, groups))
    assert (part[:, :2] == 0).all() and torch.equal(part[:, 2:], full[:, 2:])
    assert opt.nets[0].config.output_scale == 0.1  # the original is untouched


def test_group_trace_follows_each_group():
    from l2l.optimizers import make_baseline
    from l2l.analysis import group_trace

    theta = torch.tensor([[1.0, -2.0, 4.0]])
    task = Task(theta, lambda th, batch=None: 0.5 * (th**2).sum(1), groups=torch.tensor([0, 0, 1]))
    trace = group_trace(task, make_baseline("sgd", 0.5), steps=1)  # ∇ = θ, θ ← θ/2
    assert trace[0]["theta"] == [1.5, 0.75] and trace[1]["theta"] == [4.0, 2.0]
    assert trace[1]["grad"] == [4.0, 2.0]


def test_a_silenced_optimizer_has_its_own_fingerprint():
    from l2l.evaluation import fingerprint

    opt = make_optimizer(LSTMConfig(groups=2), seed=0)
    names = {fingerprint(opt), fingerprint(opt.silenced(0)), fingerprint(opt.silenced(1))}
    assert len(names) == 3  # cached test curves can never be mixed up


def test_each_lstm_can_have_its_own_output_scale():
    """(0.01, 0.1): group k's updates are the same LSTM's outputs times its own scale; the recipe
    survives a checkpoint's table (a list) and names its file; bad scales are refused."""
    from l2l.book.presets import train_config, variant
    from l2l.cli import _scales
    from l2l.errors import UserError
    from l2l.training import TrainConfig

    groups = torch.tensor([0, 0, 1, 1, 1])
    grad = torch.randn(2, 5)
    one = make_optimizer(LSTMConfig(output_scale=1.0, groups=2), seed=0)
    two = make_optimizer(LSTMConfig(output_scale=(0.01, 0.1), groups=2), seed=0)
    assert [net.config.output_scale for net in two.nets] == [0.01, 0.1]
    full, _ = one.step(grad, one.init(grad, groups))
    scaled, _ = two.step(grad, two.init(grad, groups))
    assert torch.allclose(scaled, full * torch.tensor([0.01, 0.01, 0.1, 0.1, 0.1]), rtol=1e-5, atol=1e-9)
    config = train_config("cifar", "smoke", optimizer=LSTMConfig(preprocess=10.0, output_scale=(0.01, 0.1), groups=2))
    stored = config.to_dict()
    stored["optimizer"]["output_scale"] = list(stored["optimizer"]["output_scale"])  # as JSON has it
    assert TrainConfig.from_dict(stored) == config
    assert "outputscale0.01x0.1" in variant(config, train_config("cifar", "smoke"))
    assert _scales("0.01,0.1") == (0.01, 0.1) and _scales("0.1") == 0.1
    for bad in (dict(output_scale=(0.01, 0.1)), dict(output_scale=(0.1, 0.1, 0.1), groups=2),
                dict(output_scale=(0.1, -1.0), groups=2), dict(output_scale=0.0)):
        with pytest.raises(UserError):
            LSTMConfig(**bad)
