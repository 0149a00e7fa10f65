"""Masked losses: values on hand-made tensors, ignored pixels, gradients, bootstrap formulas."""
from __future__ import annotations

import math

import pytest
import torch

from napari_metastructures.core.losses import LOSSES, get_loss, valid_mask

BINARY = ["bce", "weighted-bce", "exponential-unlabelled", "bootstrap-hard", "bootstrap-soft", "dmi", "ce"]


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _batch(seed: int = 0, classes: int = 1):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, 6, 5, generator=g)
    target = torch.randint(0, max(classes, 2), (2, 6, 5), generator=g)
    valid = torch.rand(2, 6, 5, generator=g) > 0.3
    return logits, target, valid


def test_factory_names_and_errors():
    assert set(BINARY) == set(LOSSES)
    for name in BINARY:
        assert get_loss(name).name == name
    assert get_loss("weighted_bce").name == "weighted-bce"
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("focal")
    with pytest.raises(ValueError, match="bce"):
        get_loss("bce", beta=0.3)


def test_valid_mask():
    t = torch.tensor([[0, 1, 255]])
    assert valid_mask(t).tolist() == [[True, True, False]]
    assert valid_mask(t, None).all()


def test_bce_value_by_hand():
    z = torch.tensor([[[[0.0, 2.0, -1.0, 5.0]]]])  # (1, 1, 1, 4)
    y = torch.tensor([[[1, 0, 0, 255]]])
    v = valid_mask(y)
    expected = -(math.log(0.5) + math.log(1 - _sig(2.0)) + math.log(1 - _sig(-1.0))) / 3
    assert float(get_loss("bce")(z, y, v)) == pytest.approx(expected, rel=1e-6)


def test_weighted_bce_balanced_and_fixed():
    z = torch.tensor([[[[1.0, -1.0, 0.5, 0.0]]]])
    y = torch.tensor([[[1, 0, 0, 0]]])
    l1 = -math.log(_sig(1.0))
    l0 = [-math.log(1 - _sig(v)) for v in (-1.0, 0.5, 0.0)]
    # balanced: w1 = 4 / (2 * 1) = 2, w0 = 4 / (2 * 3) = 2/3
    expected = (2 * l1 + (2 / 3) * sum(l0)) / 4
    assert float(get_loss("weighted-bce")(z, y)) == pytest.approx(expected, rel=1e-6)
    expected_fixed = (5 * l1 + sum(l0)) / 4
    assert float(get_loss("weighted-bce", pos_weight=5.0)(z, y)) == pytest.approx(expected_fixed, rel=1e-6)


def test_exponential_unlabelled_value_and_bound():
    z = torch.tensor([[[[2.0, 3.0, -1.0]]]])
    y = torch.tensor([[[1, 0, 0]]])
    p = [_sig(v) for v in (2.0, 3.0, -1.0)]
    # gamma = 1: unlabelled term is p itself
    expected = (-math.log(p[0]) + p[1] + p[2]) / 3
    assert float(get_loss("exponential-unlabelled")(z, y)) == pytest.approx(expected, rel=1e-6)
    g = 2.0
    expected_g = (-math.log(p[0]) + (1 - (1 - p[1]) ** g) / g + (1 - (1 - p[2]) ** g) / g) / 3
    assert float(get_loss("exponential-unlabelled", gamma=g)(z, y)) == pytest.approx(expected_g, rel=1e-6)
    # bounded on unlabelled pixels, unlike BCE: a confident "missed object" costs at most 1/gamma
    big = torch.tensor([[[[30.0]]]])
    zero = torch.tensor([[[0]]])
    assert float(get_loss("exponential-unlabelled", gamma=g)(big, zero)) <= 1 / g + 1e-6
    assert float(get_loss("bce")(big, zero)) > 29
    with pytest.raises(ValueError):
        get_loss("exponential-unlabelled", gamma=0)


def test_soft_bootstrap_formula():
    z = torch.tensor([[[[1.5, -0.5]]]])
    y = torch.tensor([[[0, 1]]])
    beta = 0.95
    total = 0.0
    for zi, yi in zip((1.5, -0.5), (0, 1)):
        p = _sig(zi)
        q = [1 - p, p]
        t = [1 - yi, yi]
        total += -sum((beta * t[k] + (1 - beta) * q[k]) * math.log(q[k]) for k in range(2))
    assert get_loss("bootstrap-soft").beta == 0.95
    assert float(get_loss("bootstrap-soft")(z, y)) == pytest.approx(total / 2, rel=1e-6)


def test_hard_bootstrap_formula():
    z = torch.tensor([[[[1.5, -0.5]]]])
    y = torch.tensor([[[0, 1]]])
    beta = 0.8
    total = 0.0
    for zi, yi in zip((1.5, -0.5), (0, 1)):
        p = _sig(zi)
        q = [1 - p, p]
        t = [1 - yi, yi]
        zk = [0, 1] if p > 0.5 else [1, 0]
        total += -sum((beta * t[k] + (1 - beta) * zk[k]) * math.log(q[k]) for k in range(2))
    assert get_loss("bootstrap-hard").beta == 0.8
    assert float(get_loss("bootstrap-hard")(z, y)) == pytest.approx(total / 2, rel=1e-6)


def test_bootstrap_beta_one_is_cross_entropy():
    logits, target, valid = _batch(3, classes=3)
    ce = float(get_loss("ce")(logits, target, valid))
    assert float(get_loss("bootstrap-soft", beta=1.0)(logits, target, valid)) == pytest.approx(ce, rel=1e-6)
    assert float(get_loss("bootstrap-hard", beta=1.0)(logits, target, valid)) == pytest.approx(ce, rel=1e-6)


def test_ce_value_by_hand():
    logits = torch.tensor([[[[2.0, 0.0]], [[1.0, 0.0]], [[0.0, 3.0]]]])  # (1, 3, 1, 2)
    target = torch.tensor([[[1, 255]]])
    v = valid_mask(target)
    expected = -math.log(math.exp(1.0) / (math.exp(2.0) + math.exp(1.0) + 1.0))
    assert float(get_loss("ce")(logits, target, v)) == pytest.approx(expected, rel=1e-6)


def test_dmi_uses_only_valid_pixels():
    p = torch.tensor([0.9, 0.8, 0.2, 0.1, 0.6])
    y = torch.tensor([1, 1, 0, 0, 255])
    z = torch.logit(p).reshape(1, 1, 1, 5)
    pv, yv = p[:4].double(), torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    det = 4 * (pv * yv).sum() - pv.sum() * yv.sum()
    expected = -math.log(abs(float(det)) + 1e-3)
    got = float(get_loss("dmi")(z, y.reshape(1, 1, 5), valid_mask(y.reshape(1, 1, 5))))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", BINARY)
def test_ignored_pixels_do_not_change_the_loss(name):
    classes = 3 if name == "ce" else 1
    logits, target, valid = _batch(1, classes)
    base = float(get_loss(name)(logits, target, valid))
    target2 = target.clone()
    target2[~valid] = 255 if classes == 1 else 2
    logits2 = torch.where(valid[:, None], logits, torch.full_like(logits, 7.0))
    assert float(get_loss(name)(logits2, target2, valid)) == pytest.approx(base, rel=1e-5)
    # and the valid pixels do matter (flip every other one: DMI is blind to flipping all)
    every_other = torch.arange(target.numel()).reshape(target.shape) % 2 == 0
    target3 = torch.where(valid & every_other, 1 - target.clamp(max=1), target)
    assert float(get_loss(name)(logits, target3, valid)) != pytest.approx(base, rel=1e-3)


@pytest.mark.parametrize("name", BINARY)
def test_gradients_finite_and_zero_on_ignored(name):
    classes = 3 if name in ("ce", "bootstrap-soft") else 1
    logits, target, valid = _batch(2, classes)
    logits = (logits * 20).requires_grad_(True)  # saturated logits
    target = torch.where(valid, target, torch.full_like(target, 255))
    loss = get_loss(name)(logits, target, valid)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()
    ignored = (~valid)[:, None].expand_as(logits)
    assert float(logits.grad[ignored].abs().max()) == 0.0
    assert float(logits.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", BINARY)
def test_no_valid_pixels_gives_zero_with_grad(name):
    logits, target, _ = _batch(4)
    logits.requires_grad_(True)
    valid = torch.zeros_like(target, dtype=torch.bool)
    loss = get_loss(name)(logits, target, valid)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_binary_losses_refuse_many_channels():
    logits, target, valid = _batch(5, classes=3)
    with pytest.raises(ValueError, match="one output channel"):
        get_loss("bce")(logits, target, valid)
