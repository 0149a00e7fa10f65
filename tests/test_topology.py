"""Topology scores (clDice, skeleton precision and recall) on small shapes worked out by hand.

Shapes (9 rows x 24 columns unless noted), chosen so that skeletonize's answer is unambiguous:
- ``line(c0, c1)``: a 1-px horizontal line on row 4, columns c0..c1-1. Its skeleton is itself.
- ``bar(c0, c1)``: a 3-px tall bar, rows 3-5, columns c0..c1-1, with its four corner pixels cut off.
  Its skeleton is the middle row without its two end pixels: row 4, columns c0+1..c1-2 (c1-c0-2 px).
  (A bar with square corners gets a skeleton bent into one corner, so those are avoided.)
``test_shapes_have_the_skeletons_assumed_below`` pins both facts down.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from napari_metastructures.core import metrics
from napari_metastructures.core import topology as t
from napari_metastructures.core.validate import InputError

SHAPE = (9, 24)


def line(c0, c1, shape=SHAPE, row=4):
    a = np.zeros(shape, np.uint8)
    a[row, c0:c1] = 1
    return a


def bar(c0, c1, shape=SHAPE):
    a = np.zeros(shape, np.uint8)
    a[3:6, c0:c1] = 1
    a[3, c0] = a[5, c0] = a[3, c1 - 1] = a[5, c1 - 1] = 0
    return a


def with_spur(col, shape=SHAPE):
    """line(2, 22) plus a 1-px vertical spur on rows 1-3 at ``col``, touching the line at (4, col)."""
    a = line(2, 22, shape)
    a[1:4, col] = 1
    return a


def counts(sp, sp_in_gt, sg, sg_in_pred, n):
    return {"skel_pred": sp, "skel_pred_in_gt": sp_in_gt, "skel_gt": sg, "skel_gt_in_pred": sg_in_pred,
            "n_scored": n}


def test_shapes_have_the_skeletons_assumed_below():
    expected = np.zeros(SHAPE, bool)
    expected[4, 3:21] = True  # bar(2, 22): 18 px, columns 3..20
    np.testing.assert_array_equal(t.skeleton(bar(2, 22)), expected)
    np.testing.assert_array_equal(t.skeleton(line(2, 22)), line(2, 22).astype(bool))
    np.testing.assert_array_equal(t.skeleton(with_spur(10)), with_spur(10).astype(bool))  # 20 + 3 px


def test_identical_masks_score_one():
    assert t.skeleton_counts(bar(2, 22), bar(2, 22)) == counts(18, 18, 18, 18, 9 * 24)
    assert t.cldice(bar(2, 22), bar(2, 22)) == 1.0


def test_prediction_cut_in_half():
    # gt bar(2, 22): skeleton row 4, columns 3..20 = 18 px.
    # pred bar(2, 12): skeleton row 4, columns 3..10 = 8 px, all inside gt -> Tprec = 8/8 = 1.
    # pred covers row 4 on columns 2..11, so the gt skeleton columns 3..11 = 9 px -> Trec = 9/18 = 1/2.
    # clDice = 2 * 1 * 1/2 / (1 + 1/2) = 2/3.
    pred, gt = bar(2, 12), bar(2, 22)
    assert t.skeleton_counts(pred, gt) == counts(8, 8, 18, 9, 9 * 24)
    assert t.skeleton_precision(pred, gt) == 1.0
    assert t.skeleton_recall(pred, gt) == pytest.approx(1 / 2)
    assert t.cldice(pred, gt) == pytest.approx(2 / 3)


def test_prediction_shifted_right():
    # 9 x 30 image. gt bar(2, 22): skeleton columns 3..20 (18 px); its row 4 spans columns 2..21.
    # pred bar(7, 27): skeleton columns 8..25 (18 px); its row 4 spans columns 7..26.
    # S(pred) in gt: columns 8..21 = 14 -> Tprec = 14/18 = 7/9.
    # S(gt) in pred: columns 7..20 = 14 -> Trec = 7/9, so clDice = 7/9.
    shape = (9, 30)
    pred, gt = bar(7, 27, shape), bar(2, 22, shape)
    assert t.skeleton_counts(pred, gt) == counts(18, 14, 18, 14, 9 * 30)
    assert t.skeleton_precision(pred, gt) == pytest.approx(7 / 9)
    assert t.skeleton_recall(pred, gt) == pytest.approx(7 / 9)
    assert t.cldice(pred, gt) == pytest.approx(7 / 9)


def test_extra_spur_lowers_precision_only():
    # gt line(2, 22): 20 px. pred = that line plus a 3-px spur: skeleton 23 px, 20 of them in gt.
    # Tprec = 20/23, Trec = 20/20 = 1, clDice = 2 (20/23) / (20/23 + 1) = 40/43.
    pred, gt = with_spur(10), line(2, 22)
    assert t.skeleton_counts(pred, gt) == counts(23, 20, 20, 20, 9 * 24)
    assert t.skeleton_precision(pred, gt) == pytest.approx(20 / 23)
    assert t.skeleton_recall(pred, gt) == 1.0
    assert t.cldice(pred, gt) == pytest.approx(40 / 43)


def test_broken_line_lowers_recall_only():
    # gt line(2, 22): 20 px. pred: the same line with columns 10 and 11 removed, two pieces of 8 + 10 px.
    # Tprec = 18/18 = 1, Trec = 18/20 = 9/10, clDice = 2 (9/10) / (19/10) = 18/19.
    gt = line(2, 22)
    pred = gt.copy()
    pred[4, 10:12] = 0
    assert t.skeleton_counts(pred, gt) == counts(18, 18, 20, 18, 9 * 24)
    assert t.skeleton_precision(pred, gt) == 1.0
    assert t.skeleton_recall(pred, gt) == pytest.approx(9 / 10)
    assert t.cldice(pred, gt) == pytest.approx(18 / 19)


def test_thick_prediction_of_a_thin_line_keeps_full_topology():
    # gt line(2, 22) (20 px); pred bar(2, 22) (3 * 20 - 4 = 56 px) covers it.
    # S(pred) = row 4, columns 3..20, all on the gt line -> Tprec 1; the gt line lies in pred -> Trec 1.
    # Dice punishes the thickness: 2 * 20 / (56 + 20) = 10/19; clDice does not: 1.
    pred, gt = bar(2, 22), line(2, 22)
    assert metrics.dice(pred, gt) == pytest.approx(10 / 19)
    assert t.skeleton_counts(pred, gt) == counts(18, 18, 20, 20, 9 * 24)
    assert t.cldice(pred, gt) == 1.0


def test_instance_labels_count_as_foreground():
    gt = bar(2, 22) * 7  # one instance labelled 7
    assert t.skeleton_recall(bar(2, 12), gt) == pytest.approx(1 / 2)


def test_valid_mask_excluding_the_right_half():
    # valid: columns 0..11 only (12 of 24 columns, 9 * 12 = 108 pixels).
    valid = np.zeros(SHAPE, np.uint8)
    valid[:, :12] = 1
    # gt bar(2, 22), pred bar(2, 12). The gt skeleton is taken on the whole bar (columns 3..20) and
    # then cut: columns 3..11 = 9 px, all inside pred (row 4, columns 2..11) -> Trec = 9/9 = 1.
    # (Skeletonizing gt * valid first would give 8 px, bent at the cut end.)
    # S(pred) = columns 3..10 = 8 px, all valid and in gt -> Tprec = 1, clDice = 1 (2/3 without valid).
    pred, gt = bar(2, 12), bar(2, 22)
    assert t.skeleton_counts(pred, gt, valid) == counts(8, 8, 9, 9, 108)
    assert t.cldice(pred, gt, valid) == 1.0
    # A spur at column 15 falls outside valid: pred skeleton in valid = line columns 2..11 = 10 px, all in
    # gt line(2, 22) -> Tprec = 10/10 = 1 (20/23 without valid).
    assert t.skeleton_counts(with_spur(15), line(2, 22), valid) == counts(10, 10, 10, 10, 108)
    assert t.skeleton_precision(with_spur(15), line(2, 22), valid) == 1.0
    assert t.skeleton_precision(with_spur(15), line(2, 22)) == pytest.approx(20 / 23)


def test_pooled_sums_counts_and_differs_from_the_mean():
    # Image A (9 x 24): pred = gt = line(2, 22): counts 20, 20, 20, 20 -> clDice 1.
    # Image B (5 x 12): gt line columns 2..9 (8 px), pred line columns 2..5 (4 px):
    #   Tprec 4/4 = 1, Trec 4/8 = 1/2, clDice 2/3.
    # Mean of per-image clDice = (1 + 2/3) / 2 = 5/6; mean recall = (1 + 1/2) / 2 = 3/4.
    # Pooled: Tprec = 24/24 = 1, Trec = 24/28 = 6/7, clDice = 2 (6/7) / (13/7) = 12/13.
    gt_b = line(2, 10, (5, 12), row=2)
    pred_b = line(2, 6, (5, 12), row=2)
    assert t.cldice(pred_b, gt_b) == pytest.approx(2 / 3)
    out = t.pooled_topology([line(2, 22), pred_b], [line(2, 22), gt_b])
    assert out["cldice"] == pytest.approx(12 / 13) and out["cldice"] != pytest.approx(5 / 6)
    assert out["skeleton_precision"] == 1.0
    assert out["skeleton_recall"] == pytest.approx(6 / 7) and out["skeleton_recall"] != pytest.approx(3 / 4)
    assert {k: out[k] for k in t.COUNT_KEYS} == counts(24, 24, 28, 24, 9 * 24 + 5 * 12)
    assert out["n_images"] == 2


def test_empty_cases():
    zero = np.zeros(SHAPE, np.uint8)
    # both empty: exactly right
    assert t.skeleton_counts(zero, zero) == counts(0, 0, 0, 0, 9 * 24)
    assert (t.cldice(zero, zero), t.skeleton_precision(zero, zero), t.skeleton_recall(zero, zero)) == (1, 1, 1)
    # empty prediction of a real network, and a network predicted where there is none: 0
    assert (t.cldice(zero, line(2, 22)), t.skeleton_precision(zero, line(2, 22)),
            t.skeleton_recall(zero, line(2, 22))) == (0, 0, 0)
    assert (t.cldice(line(2, 22), zero), t.skeleton_precision(line(2, 22), zero)) == (0, 0)
    # both skeletons present but disjoint: Tprec = Trec = 0, clDice's denominator is 0 -> 0.0
    assert t.cldice(line(2, 22, row=1), line(2, 22, row=7)) == 0.0
    # nothing scored: NaN, per image and pooled
    scores = (t.cldice(bar(2, 12), bar(2, 22), zero), t.skeleton_precision(bar(2, 12), bar(2, 22), zero),
              t.skeleton_recall(bar(2, 12), bar(2, 22), zero))
    assert all(math.isnan(s) for s in scores)
    assert math.isnan(t.pooled_topology([bar(2, 12)], [bar(2, 22)], [zero])["cldice"])
    # a valid mask that excludes every skeleton pixel but not every pixel: both empty inside it -> 1.0
    top = np.zeros(SHAPE, np.uint8)
    top[:3] = 1
    assert t.cldice(bar(2, 12), bar(2, 22), top) == 1.0


def test_stack_of_two_planes_sums_its_planes():
    # plane 0: pred bar(2, 12) vs gt bar(2, 22) -> counts 8, 8, 18, 9 (see the cut-in-half test)
    # plane 1: pred with_spur(10) vs gt line(2, 22) -> counts 23, 20, 20, 20 (see the spur test)
    # stack: 31, 28, 38, 29 over 2 * 9 * 24 pixels; Tprec = 28/31, Trec = 29/38.
    pred = np.stack([bar(2, 12), with_spur(10)])
    gt = np.stack([bar(2, 22), line(2, 22)])
    c = t.skeleton_counts(pred, gt)
    assert c == counts(31, 28, 38, 29, 2 * 9 * 24)
    per_plane = [t.skeleton_counts(pred[i], gt[i]) for i in range(2)]
    assert c == {k: per_plane[0][k] + per_plane[1][k] for k in t.COUNT_KEYS}
    assert t.skeleton_precision(pred, gt) == pytest.approx(28 / 31)
    assert t.skeleton_recall(pred, gt) == pytest.approx(29 / 38)
    p, r = 28 / 31, 29 / 38
    assert t.cldice(pred, gt) == pytest.approx(2 * p * r / (p + r))


def test_errors_name_the_problem():
    with pytest.raises(InputError) as err:
        t.cldice(np.zeros((9, 24)), np.zeros((9, 20)))
    assert "(9, 24)" in str(err.value) and "(9, 20)" in str(err.value)
    with pytest.raises(InputError, match="valid mask"):
        t.skeleton_counts(line(2, 22), line(2, 22), np.ones((3, 3)))
    with pytest.raises(InputError, match="2D"):
        t.cldice(np.ones(5), np.ones(5))
    with pytest.raises(InputError, match="NaN"):
        t.cldice(np.full(SHAPE, np.nan), line(2, 22))
    with pytest.raises(InputError, match="no images"):
        t.pooled_topology([], [])
    with pytest.raises(InputError, match="2 arrays for 1 images"):
        t.pooled_topology([line(2, 22), line(2, 22)], [line(2, 22)])


def test_reexported_from_metrics():
    from napari_metastructures.core.metrics import cldice, pooled_topology, skeleton_precision  # noqa: F401

    assert cldice is t.cldice and metrics.skeleton_recall is t.skeleton_recall
    assert metrics.skeleton_counts is t.skeleton_counts and pooled_topology is t.pooled_topology
