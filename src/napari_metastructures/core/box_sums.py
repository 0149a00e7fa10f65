"""Window sums for density maps: exact box counts with running sums, and the part of each
pixel's window (or Gaussian kernel mass) that lies inside the image."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .validate import InputError


def _count_dtype(max_count: int) -> np.dtype:
    """Smallest unsigned dtype that holds ``max_count``: wrap-around in between is harmless,
    because modular sums and differences of counts below 2**bits are exact."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_count < np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _window_sum_axis(a: np.ndarray, h: int, axis: int, dtype: np.dtype) -> np.ndarray:
    """Sum of ``a`` over ``[i-h, i+h]`` along ``axis``, zeros outside; returns ``dtype``.

    A cumulative sum ``c`` padded with ``h + 1`` leading zeros and ``h`` trailing copies of
    the total gives every window as ``c[i + 2h + 1] - c[i]``: one pass whatever ``h``. The
    last axis uses ``np.cumsum``; other axes add whole slabs in a loop along the axis, which
    is far faster than numpy's strided accumulate.
    """
    n = a.shape[axis]
    h = min(int(h), n - 1)  # a window wider than the axis covers all of it anyway
    if h <= 0:
        return a.astype(dtype, copy=False)
    shape = list(a.shape)
    shape[axis] = n + 2 * h + 1
    c = np.empty(shape, dtype=dtype)
    cv, av = np.moveaxis(c, axis, 0), np.moveaxis(a, axis, 0)  # views, the axis first
    cv[: h + 1] = 0
    if axis == a.ndim - 1:
        np.cumsum(a, axis=axis, dtype=dtype, out=np.moveaxis(cv[h + 1 : h + 1 + n], 0, axis))
    else:
        for i in range(n):
            np.add(cv[h + i], av[i], out=cv[h + i + 1], casting="unsafe")
    cv[h + 1 + n :] = cv[h + n]
    return np.moveaxis(np.subtract(cv[2 * h + 1 :], cv[:n]), 0, axis)


def box_count(mask: np.ndarray, bandwidth: int) -> np.ndarray:
    """Number of true pixels of ``mask`` in the ``(2h+1)^ndim`` window around each pixel.

    Zero padding outside the array. Exact integer counts in an unsigned dtype that holds
    them; O(pixels) whatever ``bandwidth``.
    """
    mask = np.asarray(mask)
    h = int(bandwidth)
    if h < 0:
        raise InputError(f"bandwidth must be a non-negative integer, got {bandwidth}.")
    out = mask.view(np.uint8) if mask.dtype == bool else mask
    # the last axis last: numpy's cumsum along it is fastest in 32 bits; the slab loops of
    # the other axes are fastest in the narrowest dtype that holds their partial counts
    partial = 1
    for axis in range(mask.ndim):
        partial *= min(2 * h + 1, mask.shape[axis])
        dtype = _count_dtype(partial)
        if axis == mask.ndim - 1:
            dtype = max(dtype, np.dtype(np.uint32), key=lambda d: d.itemsize)
        out = _window_sum_axis(out, h, axis, dtype)
    return out


def inside_mass(shape: tuple, h: int, kernel: str) -> np.ndarray:
    """The fraction of each pixel's window (box) or kernel mass (Gaussian) inside the image.

    Separable: the product over axes of the 1D fractions, so it costs O(sum of the sizes)."""
    out = np.ones(shape, np.float32)
    for axis, n in enumerate(shape):
        line = np.ones(n, np.float32)
        if kernel == "box":
            c = np.concatenate([[0.0], np.cumsum(line)])
            i = np.arange(n)
            frac = (c[np.minimum(i + h + 1, n)] - c[np.maximum(i - h, 0)]) / (2 * h + 1)
        else:
            frac = ndi.gaussian_filter1d(line, sigma=h, mode="constant", cval=0.0)
        view = [1] * len(shape)
        view[axis] = n
        out *= np.asarray(frac, np.float32).reshape(view)
    return out


