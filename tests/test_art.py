"""Neural art: the loss terms by hand, per-run purity, disjoint content pools, ADAM's progress,
and clear errors when the mirror lacks the images or the weights."""

import hashlib

import pytest
import torch

from conftest import needs_art
from l2l import analysis
from l2l.problems import features, neural_art as art
from l2l.optimizers import Adam
from l2l.loop import run
from l2l.problems import make_problem


def test_gram_by_hand():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # [B=1, C=2, h=1, w=2]
    # G_ij = Σ_positions F_i F_j / (h w): (1+4)/2, (3−2)/2, (9+1)/2
    expected = torch.tensor([[[2.5, 0.5], [0.5, 5.0]]])
    torch.testing.assert_close(features.gram(f), expected)


def test_total_variation_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])  # [B=1, C=1, 2, 2]
    # horizontal: (1−0)², (4−2)² → mean 2.5; vertical: (2−0)², (4−1)² → mean 6.5
    torch.testing.assert_close(art.total_variation(x), torch.tensor([9.0]))
    assert art.total_variation(torch.full((2, 3, 5, 5), 0.7)).eq(0).all()  # flat images are free


def test_spec_options_and_held_out():
    p = make_problem("neural_art:size=128,style=great_wave")
    assert (p.size, p.style, p.split, p.n, p.scale) == (128, "great_wave", "train", 3 * 128 * 128, 4.0)
    assert p.held_out().split == "test" and p.held_out().spec == "neural_art:size=128,style=great_wave,split=test"
    assert make_problem("neural_art").optimizer_defaults == {"preprocess": 10.0, "output_scale": 1.0}
    with pytest.raises(ValueError, match="64, 128"):
        make_problem("neural_art:size=96")
    with pytest.raises(ValueError, match="starry_night"):
        make_problem("neural_art:style=mona_lisa")


def test_clear_errors_without_the_mirror(tmp_path, monkeypatch):
    from l2l import data

    monkeypatch.setenv("L2L_DATA_MIRROR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="MobileNetV2 weights.*mobilenet_v2_imagenet_tflite_float.pt"):
        data.mobilenet_v2_state.__wrapped__()  # past the cache, which may hold the real weights
    with pytest.raises(FileNotFoundError, match="content image 'chelsea'.*L2L_DATA_MIRROR"):
        data.art_image.__wrapped__("content", "chelsea")
    monkeypatch.delenv("L2L_DATA_MIRROR")
    with pytest.raises(FileNotFoundError, match="set L2L_DATA_MIRROR"):
        data.art_image.__wrapped__("style", "great_wave")
    with pytest.raises(ValueError, match="starry_night"):
        data.art_image("style", "mona_lisa")


@needs_art
def test_feature_network_is_frozen_imagenet_mobilenet():
    net = features.feature_network()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    feats = features.features(torch.zeros(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        0: (32, 32, 32), 2: (24, 16, 16), 4: (32, 8, 8), 7: (64, 4, 4)}
    grams = art.style_targets("starry_night", 64)
    assert set(grams) == set(features.STYLE_LAYERS) and grams[7].shape == (64, 64)


@needs_art
def test_loss_of_each_run_depends_on_its_row_alone():
    p = make_problem("neural_art:split=test")
    task = p.sample(3, seed=0)
    assert task.theta.shape == (3, 3 * 64 * 64)
    f = task.loss(task.theta, task.batch())
    theta = task.theta.clone()
    theta[1] += 0.3 * torch.randn(theta.shape[1])
    g = task.loss(theta, task.batch())
    assert g[1] != f[1]
    torch.testing.assert_close(g[[0, 2]], f[[0, 2]])
    # and through the gradient: f_0 does not depend on rows 1 and 2
    x = task.theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(task.loss(x, task.batch())[0], x)
    assert grad[0].abs().sum() > 0 and grad[1:].abs().sum() == 0
    # the same run alone gives the same loss (the network treats each image on its own)
    alone_task = p.task(p.contents(3, seed=0)[2:], seed=0)  # the contents `sample` drew
    alone = alone_task.loss(task.theta[2:], alone_task.batch())
    torch.testing.assert_close(alone, f[2:], rtol=1e-4, atol=1e-6)


@needs_art
def test_content_pools_are_disjoint():
    from l2l.data import cifar10_uint8

    assert art.pool_size("test") == 100
    train_hashes = {hashlib.sha1(x.tobytes()).digest() for x in cifar10_uint8("train")[0]}
    test_cifar = cifar10_uint8("test")[0][: art.TEST_CIFAR]
    assert not train_hashes & {hashlib.sha1(x.tobytes()).digest() for x in test_cifar}
    # the photos come first in the test pool and are never CIFAR images
    photos = art.content_pool("test", 64, torch.arange(25))
    torch.testing.assert_close(photos[0], art.photo("astronaut", 64))
    train = art.content_pool("train", 64, torch.arange(8))
    assert train.shape == (8, 3, 64, 64) and train.min() >= -1 and train.max() < 1
    # a test sample of 100 runs uses each test content once
    contents = make_problem("neural_art:split=test").contents(100, seed=1)
    assert len({hashlib.sha1(c.numpy().tobytes()).digest() for c in contents}) == 100


@needs_art
def test_adam_lowers_the_loss_by_a_large_factor():
    # f has a floor (content and style pull apart), so the total falls ~3× in 40 steps, the style term ~10×
    p = make_problem("neural_art:split=test")
    task = p.sample(2, seed=0)
    out = analysis.trajectory(task, Adam(0.03), 40)
    losses = out["losses"]
    assert torch.isfinite(losses).all()
    torch.testing.assert_close(losses, run(task, Adam(0.03), 40))  # the same loop as evaluation
    assert (losses[:, -1] < losses[:, 0] / 2).all(), losses[:, [0, -1]]
    contents = p.contents(2, seed=0)  # the runs' content images
    before, after = p.terms(task.theta, contents), p.terms(out["theta"], contents)
    assert (after["style"] < before["style"] / 4).all(), (before["style"], after["style"])


def test_replay_proposes_what_a_baseline_would_from_a_gradient_history():
    from l2l.optimizers import SGD

    grads = torch.randn(6, 4)
    torch.testing.assert_close(analysis.replay(SGD(0.5), grads), -0.5 * grads)
    adam = Adam(0.1)
    state, expected = adam.init(grads[:1]), []
    for g in grads:
        u, state = adam.step(g[None], state)
        expected.append(u[0])
    torch.testing.assert_close(analysis.replay(adam, grads), torch.stack(expected))
