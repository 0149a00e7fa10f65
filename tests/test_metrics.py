"""Metrics on small arrays with values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from napari_metastructures.core import metrics as m
from napari_metastructures.core.validate import InputError

# 2x3: pred  1 1 0 / 1 0 0   gt 1 0 0 / 1 1 0  -> tp=2 (0,0),(1,0); fp=1 (0,1); fn=1 (1,1); tn=2
PRED = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.uint8)
GT = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.uint8)


def test_confusion_and_scores_by_hand():
    assert m.confusion_counts(PRED, GT) == (2, 1, 1, 2)
    assert m.dice(PRED, GT) == pytest.approx(4 / 6)
    assert m.iou(PRED, GT) == pytest.approx(2 / 4)
    assert m.accuracy(PRED, GT) == pytest.approx(4 / 6)


def test_instance_labels_and_bool_count_as_foreground():
    gt_instances = GT * np.array([[3, 3, 3], [7, 7, 7]])
    assert m.confusion_counts(PRED.astype(bool), gt_instances) == (2, 1, 1, 2)


def test_valid_mask_drops_pixels():
    valid = np.array([[1, 0, 1], [1, 1, 0]])  # drop the fp at (0,1) and a tn at (1,2)
    assert m.confusion_counts(PRED, GT, valid) == (2, 0, 1, 1)
    assert m.dice(PRED, GT, valid) == pytest.approx(4 / 5)
    assert m.iou(PRED, GT, valid) == pytest.approx(2 / 3)
    assert m.accuracy(PRED, GT, valid) == pytest.approx(3 / 4)


def test_empty_cases():
    zero = np.zeros((2, 2), np.uint8)
    assert m.dice(zero, zero) == 1.0 and m.iou(zero, zero) == 1.0 and m.accuracy(zero, zero) == 1.0
    one = np.ones((2, 2), np.uint8)
    assert m.dice(one, zero) == 0.0
    assert math.isnan(m.dice(one, one, valid=zero))
    assert math.isnan(m.accuracy(one, one, valid=zero))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(InputError, match="shape"):
        m.dice(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(InputError, match="valid mask"):
        m.dice(np.zeros((2, 2)), np.zeros((2, 2)), valid=np.ones((3, 3)))


def test_auc_by_hand_with_ties():
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3/4
    assert m.auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    # positives 0.5, 0.8; negatives 0.5, 0.5: 0.8 wins twice, 0.5 ties twice (1/2 each) -> 3/4
    assert m.auc(np.array([0.5, 0.5, 0.5, 0.8]), np.array([0, 1, 0, 1])) == pytest.approx(0.75)
    assert m.auc(np.full(6, 0.3), np.array([0, 1, 0, 1, 1, 0])) == pytest.approx(0.5)
    assert m.auc(np.array([0.9, 0.1]), np.array([0, 1])) == pytest.approx(0.0)
    assert math.isnan(m.auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_auc_valid_mask_and_brute_force():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 200) / 4.0  # many ties
    g = rng.random(200) < 0.3
    v = rng.random(200) < 0.7
    pos, neg = s[g & v], s[~g & v]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert m.auc(s, g, v) == pytest.approx(brute)


def test_pooled_sums_counts_not_means():
    # image A: tp=1 fp=0 fn=0 tn=3 (Dice 1); image B: tp=0 fp=1 fn=3 tn=0 (Dice 0)
    a_pred, a_gt = np.array([[1, 0], [0, 0]]), np.array([[1, 0], [0, 0]])
    b_pred, b_gt = np.array([[1, 0], [0, 0]]), np.array([[0, 1], [1, 1]])
    pooled = m.pooled_scores([a_pred, b_pred], [a_gt, b_gt])
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == (1, 1, 3, 3)
    assert pooled["dice"] == pytest.approx(2 / 6)  # the mean of per-image Dice would be 0.5
    assert pooled["accuracy"] == pytest.approx(4 / 8)
    assert pooled["protocol"] == "honest" and math.isnan(pooled["auc"])
    per_image = [m.image_scores(p, g)["dice"] for p, g in [(a_pred, a_gt), (b_pred, b_gt)]]
    assert per_image == [1.0, 0.0]


def test_pooled_from_probabilities_is_prob_over_half_and_pools_auc():
    prob = np.array([[0.9, 0.6], [0.4, 0.1]])
    gt = np.array([[1, 0], [1, 0]])
    out = m.pooled_scores([None], [gt], probs=[prob])
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (1, 1, 1, 1)
    assert out["auc"] == pytest.approx(0.75)  # pos 0.9, 0.4 vs neg 0.6, 0.1: 3 of 4 pairs
    prob2 = np.array([[0.2, 0.7]])
    gt2 = np.array([[1, 0]])
    both = m.pooled_scores([None, None], [gt, gt2], probs=[prob, prob2])
    # positives 0.9 0.4 0.2, negatives 0.6 0.1 0.7 -> wins 0.9:3, 0.4:1, 0.2:1 = 5 of 9
    assert both["auc"] == pytest.approx(5 / 9)


def test_oracle_finds_threshold_and_polarity():
    prob = np.array([0.9, 0.8, 0.2, 0.1, 0.15])
    gt = np.array([0, 0, 1, 1, 1])  # foreground is the LOW scores
    honest = m.pooled_scores([None], [gt], probs=[prob])
    oracle = m.oracle_scores([prob], [gt])
    assert honest["dice"] == 0.0
    assert oracle["protocol"] == "oracle" and oracle["upper_bound"] is True
    assert oracle["polarity"] == "low" and oracle["threshold"] == pytest.approx(0.2)
    assert oracle["dice"] == 1.0 and oracle["auc"] == 1.0


def test_oracle_threshold_by_hand():
    prob = np.array([0.9, 0.7, 0.6, 0.3, 0.2])
    gt = np.array([1, 0, 1, 1, 0])
    # cuts (high): >=0.9 d=2/4; >=0.7 d=2/5; >=0.6 d=4/6; >=0.3 d=6/7; >=0.2 d=6/8 -> best 0.3
    out = m.oracle_scores([prob], [gt])
    assert out["threshold"] == pytest.approx(0.3) and out["polarity"] == "high"
    assert out["dice"] == pytest.approx(6 / 7)
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (3, 1, 0, 1)


def test_oracle_is_at_least_honest_and_per_image_at_least_shared():
    rng = np.random.default_rng(3)
    gts = [rng.random((16, 16)) < 0.3 for _ in range(3)]
    probs = [np.clip(g * 0.3 + rng.random((16, 16)) * 0.8, 0, 1) for g in gts]
    honest = m.pooled_scores([None] * 3, gts, probs=probs)
    shared = m.oracle_scores(probs, gts)
    own = m.oracle_scores(probs, gts, per_image=True)
    assert shared["dice"] >= honest["dice"]
    assert own["dice"] >= shared["dice"]
    assert len(own["threshold"]) == 3
    acc = m.oracle_scores(probs, gts, criterion="accuracy")
    assert acc["accuracy"] >= honest["accuracy"]


def test_oracle_on_binary_mask_only_picks_polarity():
    mask = np.array([[0, 0, 1, 1]])
    gt = np.array([[1, 1, 0, 0]])
    out = m.oracle_scores([mask], [gt])
    assert out["polarity"] == "low" and out["dice"] == 1.0


def test_honest_is_the_default_protocol():
    import inspect

    assert m.pooled_scores([PRED], [GT])["protocol"] == "honest"
    assert "upper_bound" not in m.pooled_scores([PRED], [GT])
    assert "protocol" not in inspect.signature(m.pooled_scores).parameters
