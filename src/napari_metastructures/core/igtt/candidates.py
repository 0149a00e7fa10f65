"""Threshold candidates: scoring, polarity and selection per image or per batch.

Each epoch iGTT thresholds the prediction P at K levels evenly spaced from min(P) to max(P) and
keeps the best of the inner K - 2 candidates ``S_k = [P > t_k]``. All K candidates are scored
from one ``searchsorted`` + ``bincount`` pass (:func:`_split_stats`; the closed form is in ``dmi.py``).

Criteria (higher is better; ``criterion`` in the config):

- ``"dmi"``: the paper's L_DMI of ``S_k`` against P, i.e. ``|q (1-q) (mu1 - mu0)|``.
- ``"otsu"``: between-class variance of P, ``q (1-q) (mu1 - mu0)^2``.
- ``"image-otsu"`` (default): P orders the pixels, the image judges the split: between-class
  variance of the preprocessed *image* intensities over the partition ``[P > t_k]``. The network
  contributes a denoised ranking of pixels, the image says where the edge between bright structure
  and background lies. DMI's ``q (1-q) (mu1 - mu0)`` weights balance more than Otsu's squared
  contrast does, and on sparse foreground (10 %) it settles near a 50 % split (issue 5); this
  criterion is measured in docs/igtt.md.

Judge scale (``judge``): the ``image-*`` criteria read the image as it is (``"linear"``) or its
square root (``"sqrt"``, negatives as 0). The square root compresses bright structure, so a dense
network of dim tubules beside bright ones pulls the split down towards them; on thick objects it
moves the split into their dim rims. The engine selects with it only to find the pixels it leaves
out of the loss (``leave_out_unsure``); its own candidates are judged linearly.

Polarity: DMI cannot tell ``S`` from ``1 - S``. The foreground is the side whose mean *image*
intensity is higher (bright objects, as in fluorescence); never decided from ground truth.

Selection: per image (default; the paper's formulation) or per batch (the official code: one
threshold index for all images, from the pooled statistics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CRITERIA = ("dmi", "otsu", "image-otsu", "image-dmi")
#: Scales an ``image-*`` criterion reads the image on (see the module docstring).
JUDGES = ("linear", "sqrt")


@dataclass
class Choice:
    """The chosen candidate of one image."""

    threshold: float
    polarity: int  # +1: foreground = P > t; -1: foreground = P <= t
    index: int
    fraction: float  # foreground fraction of the candidate after polarity

    def mask(self, prob: np.ndarray) -> np.ndarray:
        fg = np.asarray(prob) > self.threshold
        return (fg if self.polarity > 0 else ~fg).astype(np.uint8)


def thresholds(prob: np.ndarray, k: int = 30) -> np.ndarray:
    """K thresholds evenly spaced from min to max of ``prob`` (float64)."""
    prob = np.asarray(prob)
    return np.linspace(float(prob.min()), float(prob.max()), int(k))


def _split_stats(order: np.ndarray, values: np.ndarray, thresh: np.ndarray) -> tuple:
    """Pixel count and sums of ``values`` above each threshold of ``order`` (float64 arrays)."""
    bins = np.searchsorted(thresh, np.asarray(order, np.float64).ravel(), side="left")
    v = np.asarray(values, np.float64).ravel()
    k = thresh.size + 1
    counts = np.bincount(bins, minlength=k).astype(np.float64)
    sums = np.bincount(bins, weights=v, minlength=k)
    c_above = v.size - np.cumsum(counts)[:-1]
    s_above = sums.sum() - np.cumsum(sums)[:-1]
    return c_above, s_above, v.size, float(sums.sum())


def _score(c1: np.ndarray, s1: np.ndarray, n: float, total: float, squared: bool) -> np.ndarray:
    c0 = n - c1
    with np.errstate(invalid="ignore", divide="ignore"):
        mu1 = np.where(c1 > 0, s1 / np.maximum(c1, 1), 0.0)
        mu0 = np.where(c0 > 0, (total - s1) / np.maximum(c0, 1), 0.0)
    q = c1 / n
    diff = mu1 - mu0
    return q * (1 - q) * (diff * diff if squared else np.abs(diff))


def candidate_scores(prob: np.ndarray, image: np.ndarray | None, thresh: np.ndarray,
                     criterion: str = "image-otsu") -> np.ndarray:
    """Score every candidate ``[prob > t]`` (higher is better), in one pass over the pixels."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    values = prob if not criterion.startswith("image") or image is None else image
    c1, s1, n, total = _split_stats(prob, values, np.asarray(thresh, np.float64))
    return _score(c1, s1, n, total, squared=criterion.endswith("otsu"))


def polarity(image: np.ndarray, candidate: np.ndarray) -> int:
    """+1 if the candidate's foreground is brighter in ``image`` than its background, else -1."""
    fg = np.asarray(candidate).astype(bool)
    if fg.all() or not fg.any():
        return 1
    img = np.asarray(image, np.float64)
    return 1 if img[fg].mean() >= img[~fg].mean() else -1


def judge_image(image: np.ndarray, judge: str = "linear") -> np.ndarray:
    """The image on the judge's scale: as it is, or its square root (negatives as 0)."""
    if judge not in JUDGES:
        raise ValueError(f"unknown judge {judge!r}; use one of {', '.join(JUDGES)}")
    return np.sqrt(np.clip(image, 0, None)) if judge == "sqrt" else image


def select(prob: np.ndarray, image: np.ndarray, n_thresholds: int = 30,
           criterion: str = "image-otsu", judge: str = "linear") -> Choice:
    """Choose the best inner threshold candidate (indices 1..K-2) of one prediction.

    Parameters
    ----------
    prob : ndarray
        The prediction P (any shape).
    image : ndarray
        The preprocessed image, same shape: it scores ``image-*`` criteria and sets the polarity.
    n_thresholds : int
        K, thresholds evenly spaced from min(P) to max(P).
    criterion : str
        See the module docstring.
    judge : str
        ``"linear"`` or ``"sqrt"``: the scale the image is read on (module docstring).
    """
    image = judge_image(image, judge)
    t = thresholds(prob, n_thresholds)
    if not t[-1] > t[0] or t.size < 3:  # flat prediction: no split exists
        return Choice(float(t[-1]), 1, t.size - 1, 0.0)
    scores = candidate_scores(prob, image, t, criterion)
    k = 1 + int(np.argmax(scores[1:-1]))
    above = np.asarray(prob) > t[k]
    pol = polarity(image, above)
    q = float(above.mean())
    return Choice(float(t[k]), pol, k, q if pol > 0 else 1.0 - q)


def select_batch(probs: list, images: list, n_thresholds: int = 30,
                 criterion: str = "image-otsu", judge: str = "linear") -> list:
    """One threshold for all images (the official code's per-batch choice), from pooled pixels."""
    pooled_p = np.concatenate([np.asarray(p, np.float32).ravel() for p in probs])
    pooled_i = np.concatenate([np.asarray(i, np.float32).ravel() for i in images])
    c = select(pooled_p, pooled_i, n_thresholds, criterion, judge)
    return [Choice(c.threshold, c.polarity, c.index, float(np.mean(c.mask(p)))) for p in probs]


def calibrate(prob: np.ndarray, choice: Choice) -> np.ndarray:
    """Map P monotonically to [0, 1] so that the chosen candidate is exactly ``output > 0.5``.

    Piecewise linear in the polarity-corrected score r (P, or -P when polarity is -1):
    background [min r, t] -> [0, 0.5], foreground (t, max r] -> (0.5, 1]. Pixel ranking (and so
    AUC) is unchanged.
    """
    p = np.asarray(prob, np.float32)
    fg = choice.mask(p).astype(bool)
    r = p if choice.polarity > 0 else -p
    t = np.float32(choice.threshold if choice.polarity > 0 else -choice.threshold)
    lo, hi = min(float(r.min()), float(t)), max(float(r.max()), float(t))
    below = 0.5 * (r - lo) / max(float(t) - lo, 1e-12)
    above = 0.5 + 0.5 * (r - t) / max(hi - float(t), 1e-12)
    out = np.where(fg, np.maximum(above, np.float32(0.5 + 1e-6)), np.minimum(below, np.float32(0.5)))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
