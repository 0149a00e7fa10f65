"""Topology scores: skeleton precision and recall, and clDice (Shit et al., CVPR 2021).

Networks such as the ER and mitochondria are judged by connectivity: a prediction that cuts a tubule
in two loses little Dice but breaks the network. These scores compare centrelines instead of areas:

- ``skeleton_precision`` (topology precision, Tprec) = |S(pred) ∩ gt| / |S(pred)|: how much of the
  predicted centreline lies inside the ground truth (spurs and false branches lower it).
- ``skeleton_recall`` (topology sensitivity, Trec) = |S(gt) ∩ pred| / |S(gt)|: how much of the true
  centreline the prediction covers (gaps and missing branches lower it).
- ``cldice`` = 2 Tprec Trec / (Tprec + Trec), their harmonic mean.

Conventions (as in :mod:`.metrics`)
-----------------------------------
- Nonzero is foreground; ``valid`` is an optional mask of trusted pixels.
- Skeletons are :func:`skimage.morphology.skeletonize` of each **2D plane**: an nD array is treated as
  a stack of images over its last two axes (a 3D ``(z, y, x)`` stack is skeletonized slice by slice,
  not as a volume), so its counts are the sum of its planes' counts.
- The skeletons are taken of the *whole* masks and only then restricted to valid pixels, so a valid
  mask never cuts a skeleton or creates new ends; it only decides which skeleton pixels are counted.
- Empty cases: when neither skeleton has a pixel inside ``valid``, all three scores are 1.0 (the
  prediction is exactly right). When only one of them is empty, its own ratio is 0.0 (like Dice
  against an empty mask), and so is clDice; clDice is also 0.0 when both ratios are 0. When no pixel
  is scored at all (``valid`` all zero), every score is NaN.
- Pooled scores sum the counts over all images before dividing, so long networks weigh more.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.morphology import skeletonize

from .score_inputs import _as_bool, _flat, _per_image
from .validate import InputError

COUNT_KEYS = ("skel_pred", "skel_pred_in_gt", "skel_gt", "skel_gt_in_pred", "n_scored")


def skeleton(mask) -> np.ndarray:
    """Boolean skeleton of a mask, plane by plane over the last two axes (nonzero = foreground)."""
    m = _as_bool(mask, "mask")
    if m.ndim < 2:
        raise InputError(f"topology scores need 2D images (or stacks of them); got shape {m.shape}.")
    planes = m.reshape((-1,) + m.shape[-2:])
    out = np.zeros(planes.shape, dtype=bool)
    for i, plane in enumerate(planes):
        if plane.any():
            out[i] = skeletonize(plane)
    return out.reshape(m.shape)


def skeleton_counts(pred, gt, valid=None) -> dict:
    """Skeleton pixel counts of one image (or stack of 2D planes).

    Parameters
    ----------
    pred, gt : array-like
        Same shape, at least 2D; nonzero is foreground.
    valid : array-like, optional
        Same shape; only skeleton pixels where it is nonzero are counted.

    Returns
    -------
    dict of int
        ``skel_pred`` (skeleton pixels of ``pred`` inside valid), ``skel_pred_in_gt`` (of those, inside
        ``gt``), ``skel_gt``, ``skel_gt_in_pred``, and ``n_scored`` (valid pixels, all of them when no
        mask is given).
    """
    p, g, keep = _flat(pred, gt, valid)
    shape = p.shape
    p = _as_bool(p, "prediction")
    g = g.reshape(shape)
    sp, sg = skeleton(p), skeleton(g)
    if keep is not None:
        keep = keep.reshape(shape)
        sp &= keep
        sg &= keep
    return {
        "skel_pred": int(np.count_nonzero(sp)),
        "skel_pred_in_gt": int(np.count_nonzero(sp & g)),
        "skel_gt": int(np.count_nonzero(sg)),
        "skel_gt_in_pred": int(np.count_nonzero(sg & p)),
        "n_scored": int(p.size if keep is None else np.count_nonzero(keep)),
    }


def topology_from_counts(counts: dict) -> dict:
    """``cldice``, ``skeleton_precision`` and ``skeleton_recall`` from :func:`skeleton_counts` output."""
    if counts["n_scored"] == 0:
        nan = float("nan")
        return {"cldice": nan, "skeleton_precision": nan, "skeleton_recall": nan}
    sp, sg = counts["skel_pred"], counts["skel_gt"]
    if sp == 0 and sg == 0:
        return {"cldice": 1.0, "skeleton_precision": 1.0, "skeleton_recall": 1.0}
    prec = counts["skel_pred_in_gt"] / sp if sp else 0.0
    rec = counts["skel_gt_in_pred"] / sg if sg else 0.0
    cl = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"cldice": float(cl), "skeleton_precision": float(prec), "skeleton_recall": float(rec)}


def skeleton_precision(pred, gt, valid=None) -> float:
    """Topology precision |S(pred) ∩ gt| / |S(pred)|; see the module notes for empty cases."""
    return topology_from_counts(skeleton_counts(pred, gt, valid))["skeleton_precision"]


def skeleton_recall(pred, gt, valid=None) -> float:
    """Topology sensitivity |S(gt) ∩ pred| / |S(gt)|; see the module notes for empty cases."""
    return topology_from_counts(skeleton_counts(pred, gt, valid))["skeleton_recall"]


def cldice(pred, gt, valid=None) -> float:
    """clDice, the harmonic mean of skeleton precision and recall; see the module notes for empty cases."""
    return topology_from_counts(skeleton_counts(pred, gt, valid))["cldice"]


def pooled_topology(preds: Sequence, gts: Sequence, valids: Sequence | None = None) -> dict:
    """Topology scores pooled over images: the skeleton counts are summed, then divided.

    Parameters
    ----------
    preds, gts : sequence of arrays
        Binary masks and their ground truth, one per image.
    valids : sequence of arrays, optional
        Trusted-pixel masks (``None`` entries mean every pixel).

    Returns
    -------
    dict
        ``cldice``, ``skeleton_precision``, ``skeleton_recall``, the summed counts of
        :func:`skeleton_counts` and ``n_images``.
    """
    gts, preds, valids = _per_image(gts, (preds, "predictions"), (valids, "valid masks"))
    n = len(gts)
    total = dict.fromkeys(COUNT_KEYS, 0)
    for pred, gt, valid in zip(preds, gts, valids):
        if pred is None:
            raise InputError("each image needs a mask to score its topology.")
        for key, value in skeleton_counts(pred, gt, valid).items():
            total[key] += value
    return {**topology_from_counts(total), **total, "n_images": n}
