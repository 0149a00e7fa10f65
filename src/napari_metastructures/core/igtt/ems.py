"""EMS: turn a threshold candidate into a sparse, jittered pseudo-label.

As in the paper: skeletonize the candidate mask; shift every skeleton pixel by an independent
integer offset drawn uniformly from [-r, r] on each axis (r = 1); keep ``ceil(keep * n)``
(keep = 0.1) of the shifted pixels at random, where n is the number of skeleton pixels; every
other pixel is background.

"Shifted pixels" are counted as distinct positions (two skeleton pixels shifted onto the same
position are one pixel), so the mask holds exactly ``ceil(keep * n)`` pixels whenever enough
distinct positions exist; with r = 1 they always do, because at most 9 skeleton pixels can land on
one position. Shifts that leave the image are clipped to its border.

Every random step takes the ``rng`` passed in (a numpy Generator or a seed).
"""
from __future__ import annotations

import math

import numpy as np
from skimage.morphology import skeletonize


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Boolean skeleton of a 2D binary mask."""
    m = np.asarray(mask).astype(bool)
    if not m.any():
        return np.zeros(m.shape, bool)
    return skeletonize(m)


def ems_points(points: np.ndarray, shape: tuple, rng, radius: int = 1,
               keep: float = 0.1) -> np.ndarray:
    """Shift ``points`` (n x 2 row/col) by independent offsets in [-radius, radius], keep a fraction.

    Returns the kept positions, ``(m, 2)`` int64, distinct, with ``m = min(ceil(keep n), distinct)``.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pts = np.asarray(points, np.int64).reshape(-1, 2)
    n = len(pts)
    if n == 0:
        return np.zeros((0, 2), np.int64)
    shifts = rng.integers(-int(radius), int(radius) + 1, size=(n, 2))
    moved = pts + shifts
    moved[:, 0] = np.clip(moved[:, 0], 0, shape[0] - 1)
    moved[:, 1] = np.clip(moved[:, 1], 0, shape[1] - 1)
    distinct = np.unique(moved, axis=0)
    m = min(math.ceil(keep * n), len(distinct))
    pick = rng.choice(len(distinct), size=m, replace=False)
    return distinct[np.sort(pick)]


def interior_count(mask: np.ndarray, n_skeleton: int, radius: int, keep: float) -> int:
    """Foreground pixels to add so that thick objects are sampled at the skeleton's rate.

    The shifted skeleton covers a band about ``2 radius + 1`` pixels wide; the area outside that
    band, ``area - (2 radius + 1) n_skeleton``, gets ``keep`` of its pixels. Thin tubules add
    (almost) nothing, blobs add about ``keep * area``.
    """
    area = int(np.count_nonzero(mask))
    return math.ceil(keep * max(0, area - (2 * int(radius) + 1) * int(n_skeleton)))


def ems(mask: np.ndarray, rng, radius: int = 1, keep: float = 0.1, region=0.0) -> np.ndarray:
    """EMS pseudo-label of one 2D candidate mask: a uint8 image with the kept shifted skeleton pixels.

    Parameters
    ----------
    mask : ndarray
        2D binary candidate (foreground = 1).
    rng : numpy Generator or int
        Randomness for the shifts and the kept subset.
    radius : int
        Largest shift per axis (r).
    keep : float
        Fraction of skeleton pixels kept.
    region : float or "auto"
        Also keep ``ceil(region * kept)`` pixels drawn uniformly from the candidate's foreground
        (0 = the paper's EMS), or with ``"auto"`` the :func:`interior_count` of them. Thick objects
        (nuclei, puncta) then teach their whole area, not only a band around their medial axis.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"ems needs a 2D mask, got shape {mask.shape}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pts = np.argwhere(skeleton(mask))
    kept = ems_points(pts, mask.shape, rng, radius, keep)
    out = np.zeros(mask.shape, np.uint8)
    out[kept[:, 0], kept[:, 1]] = 1
    if region == "auto":
        extra = interior_count(mask, len(pts), radius, keep) if len(kept) else 0
    elif isinstance(region, str):
        raise ValueError(f"ems region must be a fraction or 'auto', got {region!r}")
    else:
        extra = math.ceil(float(region) * len(kept)) if region > 0 else 0
    if extra > 0:
        fg = np.flatnonzero(mask.astype(bool).ravel())
        out.ravel()[rng.choice(fg, size=min(extra, fg.size), replace=False)] = 1
    return out
