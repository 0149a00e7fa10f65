"""Smoothing of foreground probabilities over the time axis of a time-lapse.

:func:`smooth_over_time` combines every frame with its neighbours in time (mean or median over an
odd window). The T axis may be anywhere. Frames are read one at a time and kept only while a
window needs them, so a large array-like (zarr, dask, a memory map) is never loaded whole when an
``out=`` array-like is given. ``reach`` makes the smoothing tolerate motion of a few pixels.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Values of ``how``.
HOWS = ("mean", "median")


def check_window(window) -> int:
    """``window`` as an int; ValueError unless it is a positive odd whole number."""
    try:
        ok = int(window) == window and not isinstance(window, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok or int(window) < 1 or int(window) % 2 == 0:
        raise ValueError(f"window must be an odd whole number of frames >= 1 (1 = off, 3, 5...), got {window!r}")
    return int(window)


def _check_axis(t_axis, ndim: int, shape: tuple) -> int:
    if isinstance(t_axis, bool) or not isinstance(t_axis, (int, np.integer)):
        raise ValueError(f"t_axis must be an integer axis index, got {t_axis!r}")
    if not -ndim <= t_axis < ndim:
        raise ValueError(f"t_axis {t_axis} is out of range for an array of {ndim} dimensions (shape {shape})")
    return int(t_axis) % ndim


def _spread(frame: np.ndarray, reach: int) -> np.ndarray:
    """Max over a (2 reach + 1)-pixel square on the last two axes (the image plane)."""
    size = (1,) * (frame.ndim - 2) + (2 * reach + 1,) * min(frame.ndim, 2)
    return ndi.maximum_filter(frame, size=size, mode="nearest")


def smooth_over_time(prob, t_axis: int = 0, window: int = 3, how: str = "mean", *, reach: int = 0,
                     out=None):
    """Smooth foreground probabilities along the time axis.

    Parameters
    ----------
    prob : array-like
        Probabilities (any real dtype), one axis of which is time. numpy, zarr, dask or any object
        with ``shape``, ``ndim`` and basic slicing.
    t_axis : int
        The time axis (negative counts from the end), e.g. ``axes.index("T")``.
    window : int
        Odd number of frames combined, centred on each frame; 1 returns an unchanged float32 copy.
        Near the first and last frames the window holds the frames that exist (no padding), so
        the output has the input's shape.
    how : {"mean", "median"}
        How the frames of a window are combined.
    reach : int
        Motion tolerance in pixels (0: off). Each neighbour frame is first replaced by its maximum
        over a (2 reach + 1)-pixel square in the image plane (the last two axes, T excluded), so
        that structure that moved up to ``reach`` pixels still counts; the result is then capped
        at the frame's own value, so the smoothing only removes what its neighbours do not see
        nearby (flicker) and never thickens.
    out : array-like, optional
        Written frame by frame (``out[..., t, ...] = ...``) and returned; same shape as ``prob``.
        With ``out`` given, memory stays near ``window`` frames (twice that with ``reach``).

    Returns
    -------
    ndarray or array-like
        ``out``, or a new float32 ndarray of ``prob``'s shape. ``prob`` is never modified.

    Raises
    ------
    ValueError
        For an even, zero or non-integer window, an axis out of range, an unknown ``how``, a
        negative ``reach``, or an ``out`` of another shape.
    """
    shape = tuple(int(n) for n in np.shape(prob)) if not hasattr(prob, "shape") else tuple(prob.shape)
    ndim = len(shape)
    if ndim < 1:
        raise ValueError("prob must have at least one axis (time)")
    axis = _check_axis(t_axis, ndim, shape)
    window = check_window(window)
    if how not in HOWS:
        raise ValueError(f"how must be one of {', '.join(HOWS)}, got {how!r}")
    if isinstance(reach, bool) or int(reach) != reach or reach < 0:
        raise ValueError(f"reach must be a whole number of pixels >= 0, got {reach!r}")
    reach = int(reach)
    if reach and ndim - 1 < 2:
        raise ValueError(f"reach needs frames with two image axes; shape {shape} has T and {ndim - 1} other(s)")
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, prob has {shape}")
    n, half = shape[axis], window // 2

    def at(t: int) -> tuple:
        index = [slice(None)] * ndim
        index[axis] = t
        return tuple(index)

    raw, spread = {}, {}  # frames in the current window (and their spread copies)
    for t in range(n):
        lo, hi = max(0, t - half), min(n - 1, t + half)
        for s in list(raw):  # forget frames no window needs any more
            if s < lo:
                del raw[s]
                spread.pop(s, None)
        for s in range(lo, hi + 1):
            if s not in raw:
                raw[s] = np.array(prob[at(s)], dtype=np.float32)  # a copy: the input stays untouched
                if reach:
                    spread[s] = _spread(raw[s], reach)
        frames = [raw[s] if s == t or not reach else spread[s] for s in range(lo, hi + 1)]
        if len(frames) == 1:
            value = frames[0].copy()
        elif how == "mean":
            value = np.mean(frames, axis=0, dtype=np.float32)
        else:
            value = np.median(np.stack(frames), axis=0).astype(np.float32)
        if reach:
            value = np.minimum(value, raw[t])
        out[at(t)] = value
    return out
