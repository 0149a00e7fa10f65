"""EMS: turn a threshold candidate into a sparse, jittered pseudo-label.

As in the paper: skeletonize the candidate mask; shift every skeleton pixel by an independent
integer offset drawn uniformly from [-r, r] on each axis (r = 1); keep ``ceil(keep * n)``
(keep = 0.1) of the shifted pixels at random, where n is the number of skeleton pixels; every
other pixel is background.

"Shifted pixels" are counted as distinct positions (two skeleton pixels shifted onto the same
position are one pixel), so the mask holds exactly ``ceil(keep * n)`` pixels whenever enough
distinct positions exist; with r = 1 they always do, because at most 9 skeleton pixels can land on
one position. Shifts that leave the image are clipped to its border.

Volumes (a ZYX candidate, ``scope="volume"``): the skeleton is the 3D skeleton of the volume
(:func:`skimage.morphology.skeletonize`, Lee's method) and each skeleton voxel is shifted in z, y and
x. The z radius keeps the shift's physical length: ``rz = floor(r / anisotropy + 1/2)`` planes, where
anisotropy is the z step over the pixel size (:func:`z_radius`). On the usual stacks (z step 2-5 x
the pixel size; the yeast stack 3.8) that is 0: a one-plane jump would be 4 times the in-plane
shift. With rz = 0 at most 9 skeleton voxels land on one position, as in 2D, so the
``ceil(keep * n)`` count holds; with z shifts (anisotropy below 2) it holds unless more than
``1 / keep`` voxels of the one-voxel-thin skeleton crowd into one 3 x 3 x 3 box.

Every random step takes the ``rng`` passed in (a numpy Generator or a seed).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Boolean skeleton of a 2D or 3D binary mask (3D: one skeleton of the whole volume)."""
    m = np.asarray(mask).astype(bool)
    if not m.any():
        return np.zeros(m.shape, bool)
    return skeletonize(m).astype(bool)


def z_radius(radius: int, anisotropy: float | None) -> int:
    """Shift radius in z (planes) with the physical length of ``radius`` px in xy.

    ``floor(radius / anisotropy + 1/2)``, at least 0; anisotropy = z step / pixel size. Unknown
    anisotropy (None) gives 0: z steps are nearly always coarser than the pixels, so a guessed
    one-plane shift would usually be the longest jitter of all.
    """
    if anisotropy is None:
        return 0
    a = float(anisotropy)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"anisotropy (z step / pixel size) must be a number > 0, got {anisotropy!r}")
    return max(0, int(math.floor(int(radius) / a + 0.5)))


def shift_radii(radius: int, ndim: int, anisotropy: float | None = None) -> tuple:
    """Per-axis shift radii: ``(r, r)`` for 2D, ``(rz, r, r)`` for a ZYX volume."""
    r = int(radius)
    return (r, r) if ndim == 2 else (z_radius(r, anisotropy), r, r)


def ems_points(points: np.ndarray, shape: tuple, rng, radius=1, keep: float = 0.1) -> np.ndarray:
    """Shift ``points`` (n x d, d = len(shape)) by independent offsets in [-radius, radius] per
    axis, keep a fraction. ``radius`` is one int for every axis or one per axis.

    Returns the kept positions, ``(m, d)`` int64, distinct, with ``m = min(ceil(keep n), distinct)``.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    d = len(shape)
    pts = np.asarray(points, np.int64).reshape(-1, d)
    n = len(pts)
    if n == 0:
        return np.zeros((0, d), np.int64)
    if np.ndim(radius) == 0:  # one radius (the 2D path: the same draws as before volumes)
        shifts = rng.integers(-int(radius), int(radius) + 1, size=(n, d))
    else:
        r = np.asarray(radius, np.int64)
        shifts = rng.integers(-r, r + 1, size=(n, d))
    moved = pts + shifts
    for axis in range(d):
        moved[:, axis] = np.clip(moved[:, axis], 0, shape[axis] - 1)
    distinct = np.unique(moved, axis=0)
    m = min(math.ceil(keep * n), len(distinct))
    pick = rng.choice(len(distinct), size=m, replace=False)
    return distinct[np.sort(pick)]


def band(skel: np.ndarray, radii: tuple) -> np.ndarray:
    """Where shifted skeleton points can land: the skeleton dilated by a box of ``2 r + 1`` per axis."""
    box = np.ones(tuple(2 * int(r) + 1 for r in radii), bool)
    return ndi.binary_dilation(skel, structure=box)


def interior_count(mask: np.ndarray, n_skeleton: int, radius: int, keep: float) -> int:
    """Foreground pixels to add so that thick objects are sampled at the skeleton's rate (2D).

    The shifted skeleton covers a band about ``2 radius + 1`` pixels wide; the area outside that
    band, ``area - (2 radius + 1) n_skeleton``, gets ``keep`` of its pixels. Thin tubules add
    (almost) nothing, blobs add about ``keep * area``.
    """
    area = int(np.count_nonzero(mask))
    return math.ceil(keep * max(0, area - (2 * int(radius) + 1) * int(n_skeleton)))


def outside_band(mask: np.ndarray, skel: np.ndarray, radii: tuple) -> int:
    """Voxels of a 3D ``mask`` that no shifted skeleton point can reach (outside :func:`band`).

    In 3D a band-width count would depend on the tube's direction (a tube along x is covered
    ``2 r + 1`` by ``2 rz + 1`` voxels per skeleton voxel, one along z ``(2 r + 1)^2``), so the
    voxels outside the band are counted.
    """
    m = np.asarray(mask).astype(bool)
    if not skel.any():
        return int(np.count_nonzero(m))
    return int(np.count_nonzero(m & ~band(skel, radii)))


def ems(mask: np.ndarray, rng, radius: int = 1, keep: float = 0.1, region=0.0,
        anisotropy: float | None = None) -> np.ndarray:
    """EMS pseudo-label of one 2D candidate or one ZYX volume: uint8, the kept shifted skeleton points.

    Parameters
    ----------
    mask : ndarray
        2D binary candidate (foreground = 1), or a 3D (Z, Y, X) one: then the skeleton is 3D and the
        shifts are in z, y and x (see the module docstring).
    rng : numpy Generator or int
        Randomness for the shifts and the kept subset.
    radius : int
        Largest shift per axis in xy (r).
    keep : float
        Fraction of skeleton points kept.
    region : float or "auto"
        Also keep ``ceil(region * kept)`` points drawn uniformly from the candidate's foreground
        (0 = the paper's EMS), or with ``"auto"`` ``ceil(keep * outside)``, where outside is the
        foreground the shifted skeleton cannot reach (:func:`interior_count` in 2D,
        :func:`outside_band` in 3D). Thick objects (nuclei, puncta) then teach their whole area,
        not only a band around their medial axis.
    anisotropy : float, optional
        3D only: z step / pixel size, which sets the z shift radius (:func:`z_radius`).
    """
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"ems needs a 2D or 3D mask, got shape {mask.shape}")
    if isinstance(region, str) and region != "auto":
        raise ValueError(f"ems region must be a fraction or 'auto', got {region!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    skel = skeleton(mask)
    pts = np.argwhere(skel)
    radii = int(radius) if mask.ndim == 2 else shift_radii(radius, 3, anisotropy)
    kept = ems_points(pts, mask.shape, rng, radii, keep)
    out = np.zeros(mask.shape, np.uint8)
    out[tuple(kept.T)] = 1
    if region == "auto":
        if not len(kept):
            extra = 0
        elif mask.ndim == 2:
            extra = interior_count(mask, len(pts), radius, keep)
        else:
            extra = math.ceil(keep * outside_band(mask, skel, radii))
    else:
        extra = math.ceil(float(region) * len(kept)) if region > 0 else 0
    if extra > 0:
        fg = np.flatnonzero(mask.astype(bool).ravel())
        out.ravel()[rng.choice(fg, size=min(extra, fg.size), replace=False)] = 1
    return out
