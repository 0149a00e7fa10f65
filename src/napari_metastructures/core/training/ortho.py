"""Ortho-plane prediction: a z-stack segmented as a volume by a 2D model seen from three sides.

A 2D network only ever sees xy planes of a z-stack, so structure that runs along z (a tubule
crossing planes) looks like a dot in each of them. :func:`predict_planes` also cuts the stack
into xz and yz planes, after resampling z to (about) the xy pixel size so that those planes have
the proportions the network was trained on, and averages the three views.

Resampling is linear along z with the first and last planes kept in place: a stack of ``Z`` planes
becomes ``n = round((Z - 1) * anisotropy) + 1`` rows (at least 2), and each xz/yz prediction is
sampled back at the original planes the same way, so an integer anisotropy round-trips exactly. The
resampled volume is never built: each xz (yz) plane is interpolated from one row (column) of the
stack on the fly, and its prediction is added to the running sum at once. Extra memory is therefore
one float32 array of the volume's size (the sum, which becomes the result) plus one plane at a time.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..progress import check_stop

#: xz/yz views are used only when the resampled stack has at least this many rows; shallower
#: stacks would give planes that are mostly reflection padding (tiles are at least 32 px), so
#: they are predicted from their xy planes alone.
MIN_DEPTH = 8


def check_anisotropy(anisotropy) -> float:
    """``anisotropy`` as a float, or ValueError unless it is a finite number > 0."""
    try:
        a = float(anisotropy)
    except (TypeError, ValueError):
        a = float("nan")
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"anisotropy (z step / xy pixel size) must be a positive number, got {anisotropy!r}")
    return a


def resampled_depth(planes: int, anisotropy: float) -> int:
    """Rows of a stack of ``planes`` planes resampled along z to the xy pixel size (at least 2)."""
    return max(2, int(round((int(planes) - 1) * float(anisotropy))) + 1)


def _lerp_rows(rows: np.ndarray, n_out: int) -> np.ndarray:
    """Linear interpolation of the first axis of ``rows`` to ``n_out`` rows, end rows kept in place."""
    n_in = rows.shape[0]
    if n_out == n_in:
        return rows
    pos = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / max(n_out - 1, 1))
    near = np.rint(pos)
    pos = np.where(np.abs(pos - near) < 1e-6, near, pos)  # exact where a grid point falls on a row
    lo = np.minimum(np.floor(pos).astype(np.intp), n_in - 2)
    w = (pos - lo).astype(np.float32)[:, None]
    return rows[lo] * (1.0 - w) + rows[lo + 1] * w


def predict_planes(predict_plane: Callable[[np.ndarray], np.ndarray], volume: np.ndarray,
                   anisotropy: float = 1.0, stop=None) -> np.ndarray:
    """Predict a ZYX volume from its xy, xz and yz planes with one 2D predictor, and average them.

    Parameters
    ----------
    predict_plane : callable
        Maps one 2D plane ``(H, W)`` (float32) to a probability ``(H, W)``.
    volume : ndarray
        Preprocessed ZYX volume (float).
    anisotropy : float
        z step / xy pixel size (e.g. 0.25 / 0.0655 = 3.8; 1 = isotropic). Must be > 0.
    stop : callable, optional
        Polled before every plane; :class:`~..progress.StopRequested` is raised when it returns True.

    Returns
    -------
    ndarray
        float32, the volume's shape: the mean of the three views' probabilities. Stacks shallower
        than :data:`MIN_DEPTH` rows once resampled (see :func:`resampled_depth`) get the xy view only.

    Notes
    -----
    The mean (soft voting) is bounded in [0, 1], keeps each view's calibration, and lets a structure
    that only one or two views recognise (a rod along z is a dot in xy) still raise the probability;
    a calibrated model (iGTT) then chooses its threshold on the combined map.
    """
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3:
        raise ValueError(f"predict_planes needs a ZYX volume, got shape {vol.shape}")
    a = check_anisotropy(anisotropy)
    z, h, w = vol.shape
    total = np.empty(vol.shape, np.float32)

    def plane(p: np.ndarray, shape: tuple) -> np.ndarray:
        check_stop(stop)
        out = np.asarray(predict_plane(np.ascontiguousarray(p)), np.float32)
        if out.shape != shape:
            raise ValueError(f"the plane predictor returned shape {out.shape} for a plane of shape {shape}")
        return out

    for i in range(z):
        total[i] = plane(vol[i], (h, w))
    n = resampled_depth(z, a)
    if z < 2 or n < MIN_DEPTH:
        return total
    for y in range(h):  # xz planes: rows are z, columns x
        total[:, y, :] += _lerp_rows(plane(_lerp_rows(vol[:, y, :], n), (n, w)), z)
    for x in range(w):  # yz planes: rows are z, columns y
        total[:, :, x] += _lerp_rows(plane(_lerp_rows(vol[:, :, x], n), (n, h)), z)
    total /= np.float32(3.0)
    return total
