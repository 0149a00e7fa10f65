"""Segmentation scores: Dice, IoU, accuracy, ROC AUC, pooled over images, and the oracle protocol.

Conventions
-----------
- Masks and ground truth: any nonzero value is foreground (instance labels are fine).
- ``valid``: optional mask of trusted pixels; pixels where it is zero are left out of every count.
- Empty cases: when ground truth and prediction both hold no foreground (inside ``valid``), Dice and
  IoU are 1.0, since the prediction is exactly right. When no pixel is scored at all (``valid`` all
  zero), every score is NaN. AUC is NaN when the scored pixels hold only one class.
- Pooled scores sum the confusion counts over the pixels of all images before dividing, so large
  images weigh more than small ones; AUC is pooled by ranking all scored pixels together.

Two protocols
-------------
- **honest** (:func:`pooled_scores`): the method's own mask, or ``prob > 0.5``. The default everywhere.
- **oracle** (:func:`oracle_scores`): the threshold and polarity that maximise the score against the
  ground truth, as in the paper's tables for unsupervised baselines. It looks at the answer, so it is an
  **upper bound**, never a result a user could get; its output says so.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from .score_inputs import _as_bool, _flat, _per_image
from .topology import cldice, pooled_topology, skeleton_counts, skeleton_precision, skeleton_recall  # noqa: F401
from .validate import InputError

HONEST = "honest"
ORACLE = "oracle"
HONEST_THRESHOLD = 0.5


def confusion_counts(pred, gt, valid=None) -> tuple[int, int, int, int]:
    """Count true/false positives and negatives of a binary prediction.

    Parameters
    ----------
    pred, gt : array-like
        Same shape; nonzero is foreground.
    valid : array-like, optional
        Same shape; only pixels where it is nonzero are counted.

    Returns
    -------
    tuple of int
        ``(tp, fp, fn, tn)``.
    """
    p, g, keep = _flat(pred, gt, valid)
    p = _as_bool(p, "prediction").ravel()
    if keep is not None:
        p, g = p[keep], g[keep]
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    tn = int(p.size - tp - fp - fn)
    return tp, fp, fn, tn


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num / den) if den else float(empty)


def scores_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict:
    """Dice, IoU and accuracy from confusion counts (see the module notes for empty cases)."""
    n = tp + fp + fn + tn
    if n == 0:
        nan = float("nan")
        return {"dice": nan, "iou": nan, "accuracy": nan}
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, 1.0),
        "iou": _ratio(tp, tp + fp + fn, 1.0),
        "accuracy": (tp + tn) / n,
    }


def dice(pred, gt, valid=None) -> float:
    """Dice coefficient ``2 TP / (2 TP + FP + FN)``; 1.0 when both are empty, NaN if nothing is scored."""
    return scores_from_counts(*confusion_counts(pred, gt, valid))["dice"]


def iou(pred, gt, valid=None) -> float:
    """Intersection over union ``TP / (TP + FP + FN)``; 1.0 when both are empty, NaN if nothing is scored."""
    return scores_from_counts(*confusion_counts(pred, gt, valid))["iou"]


def accuracy(pred, gt, valid=None) -> float:
    """Fraction of scored pixels labelled correctly; NaN if nothing is scored."""
    return scores_from_counts(*confusion_counts(pred, gt, valid))["accuracy"]


def _prob_values(prob, gt, valid, name: str = "probability") -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(prob)
    _, g, keep = _flat(s, gt, valid, pred_name=name)
    if not np.issubdtype(s.dtype, np.number) or s.dtype == bool:
        s = s.astype(np.float64)
    if np.issubdtype(s.dtype, np.floating) and not np.isfinite(s).all():
        raise InputError(f"{name}: contains NaN or infinite values.")
    s = s.ravel()
    if keep is not None:
        s, g = s[keep], g[keep]
    return s.astype(np.float64, copy=False), g


def _auc_flat(scores: np.ndarray, g: np.ndarray) -> float:
    n_pos = int(np.count_nonzero(g))
    n_neg = int(g.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores, method="average")  # ties share their mean rank
    u = ranks[g].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auc(prob, gt, valid=None) -> float:
    """Area under the ROC curve of a score map, by ranks (Mann-Whitney U), O(n log n).

    Tied scores count one half, so a constant map scores 0.5. Returns NaN when the scored pixels
    hold only foreground or only background.
    """
    s, g = _prob_values(prob, gt, valid)
    return _auc_flat(s, g)


def pooled_scores(preds: Sequence, gts: Sequence, valids: Sequence | None = None,
                  probs: Sequence | None = None) -> dict:
    """Honest scores pooled over the pixels of all images (confusion counts are summed).

    Parameters
    ----------
    preds : sequence of arrays
        Binary masks (nonzero = foreground). ``None`` entries are made from ``probs`` as ``prob > 0.5``.
    gts : sequence of arrays
        Ground truth masks, one per prediction.
    valids : sequence of arrays, optional
        Trusted-pixel masks (``None`` entries mean every pixel).
    probs : sequence of arrays, optional
        Foreground scores; when given, AUC is computed over all scored pixels together.

    Returns
    -------
    dict
        ``protocol``, ``dice``, ``iou``, ``accuracy``, ``auc`` (NaN without probabilities),
        ``tp``, ``fp``, ``fn``, ``tn``, ``n_images``.
    """
    gts, preds, valids, probs = _per_image(gts, (preds, "predictions"), (valids, "valid masks"),
                                           (probs, "probabilities"))
    n = len(gts)
    counts = np.zeros(4, dtype=np.int64)
    all_s, all_g = [], []
    for pred, gt, valid, prob in zip(preds, gts, valids, probs):
        if pred is None:
            if prob is None:
                raise InputError("each image needs a mask or a probability map.")
            pred = np.asarray(prob) > HONEST_THRESHOLD
        counts += confusion_counts(pred, gt, valid)
        if prob is not None:
            s, g = _prob_values(prob, gt, valid)
            all_s.append(s)
            all_g.append(g)
    tp, fp, fn, tn = (int(c) for c in counts)
    out = {"protocol": HONEST, **scores_from_counts(tp, fp, fn, tn)}
    has_all_probs = len(all_s) == n
    out["auc"] = _auc_flat(np.concatenate(all_s), np.concatenate(all_g)) if has_all_probs else float("nan")
    out.update(tp=tp, fp=fp, fn=fn, tn=tn, n_images=n)
    return out


def image_scores(pred, gt, valid=None, prob=None) -> dict:
    """Honest scores of one image (same keys as :func:`pooled_scores`)."""
    return pooled_scores([pred], [gt], [valid], None if prob is None else [prob])


def apply_threshold(prob, threshold: float, polarity: str = "high") -> np.ndarray:
    """Binary uint8 mask ``prob >= threshold`` (polarity ``"high"``) or ``prob <= threshold`` (``"low"``)."""
    p = np.asarray(prob)
    if polarity == "high":
        return (p >= threshold).astype(np.uint8)
    if polarity == "low":
        return (p <= threshold).astype(np.uint8)
    raise InputError(f"polarity must be 'high' or 'low', got {polarity!r}.")


def _sweep(scores: np.ndarray, g: np.ndarray, criterion: str):
    """Best cut ``scores >= t`` over every distinct value (plus "nothing"): (value, t, counts)."""
    order = np.argsort(-scores, kind="stable")
    s, gs = scores[order], g[order]
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie group
    tp = np.r_[0, np.cumsum(gs)[ends]].astype(np.float64)
    fp = np.r_[0, (ends + 1)] - tp
    thr = np.r_[np.inf, s[ends]]
    n_pos = float(np.count_nonzero(gs))
    fn = n_pos - tp
    tn = s.size - n_pos - fp
    if criterion == "accuracy":
        value = (tp + tn) / s.size
    else:
        den = 2 * tp + fp + fn
        value = np.divide(2 * tp, den, out=np.ones_like(den), where=den > 0)
    i = int(np.argmax(value))
    return float(value[i]), float(thr[i]), (int(tp[i]), int(fp[i]), int(fn[i]), int(tn[i]))


def oracle_scores(probs: Sequence, gts: Sequence, valids: Sequence | None = None,
                  criterion: str = "dice", per_image: bool = False) -> dict:
    """UPPER BOUND: scores at the threshold and polarity that suit the ground truth best.

    This is the paper's protocol for unsupervised baselines. Every threshold (each distinct score) and
    both polarities (foreground is high, or low) are tried, and the best by ``criterion`` is kept.
    Because it peeks at the ground truth, the result is flagged ``upper_bound=True`` and must not be
    reported as what a method achieves on its own; :func:`pooled_scores` is the honest score.

    Parameters
    ----------
    probs : sequence of arrays
        Score maps or binary masks (a mask only lets the polarity be chosen).
    gts, valids
        As in :func:`pooled_scores`.
    criterion : {"dice", "accuracy"}
        What the threshold maximises (IoU is monotone in Dice, so it picks the same one).
    per_image : bool
        ``False`` (default): one threshold and polarity for the whole set. ``True``: each image gets its
        own, a looser bound.

    Returns
    -------
    dict
        ``protocol="oracle"``, ``upper_bound=True``, ``dice``, ``iou``, ``accuracy``, ``auc``
        (the better polarity), counts, and ``threshold``/``polarity`` (lists when ``per_image``).
        ``polarity="high"`` means foreground is ``score >= threshold``, ``"low"`` means ``score <= threshold``.
    """
    if criterion not in ("dice", "accuracy"):
        raise InputError(f"oracle criterion must be 'dice' or 'accuracy', got {criterion!r}.")
    gts, probs, valids = _per_image(gts, (probs, "probabilities"), (valids, "valid masks"))
    n = len(gts)
    flat = [_prob_values(p, g, v) for p, g, v in zip(probs, gts, valids)]
    groups = [[f] for f in flat] if per_image else [flat]
    counts = np.zeros(4, dtype=np.int64)
    thresholds, polarities = [], []
    for group in groups:
        s = np.concatenate([f[0] for f in group])
        g = np.concatenate([f[1] for f in group])
        if s.size == 0:
            thresholds.append(float("nan"))
            polarities.append("high")
            continue
        hi = _sweep(s, g, criterion)
        lo = _sweep(-s, g, criterion)
        if lo[0] > hi[0]:
            thresholds.append(-lo[1])
            polarities.append("low")
            counts += lo[2]
        else:
            thresholds.append(hi[1])
            polarities.append("high")
            counts += hi[2]
    tp, fp, fn, tn = (int(c) for c in counts)
    raw_auc = _auc_flat(np.concatenate([f[0] for f in flat]), np.concatenate([f[1] for f in flat]))
    out = {"protocol": ORACLE, "upper_bound": True, **scores_from_counts(tp, fp, fn, tn),
           "auc": float(max(raw_auc, 1.0 - raw_auc)) if np.isfinite(raw_auc) else raw_auc,
           "tp": tp, "fp": fp, "fn": fn, "tn": tn, "n_images": n, "criterion": criterion,
           "threshold": thresholds if per_image else thresholds[0],
           "polarity": polarities if per_image else polarities[0]}
    return out
