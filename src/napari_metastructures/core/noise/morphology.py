"""Pixel-wise class-level noise from morphology (PCL): dilation, erosion, their mix, skeletons."""
from __future__ import annotations

import numpy as np

from ..validate import InputError
from .common import _axes, _present_classes, _replace, checked


def _box(a: np.ndarray, axes, op) -> np.ndarray:
    """3-wide max/min filter along ``axes`` (window truncated at the border)."""
    for ax in axes:
        if a.shape[ax] < 2:
            continue
        lo = [slice(None)] * a.ndim
        hi = list(lo)
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        b = a.copy()
        op(b[hi], a[lo], out=b[hi])
        op(b[lo], a[hi], out=b[lo])
        a = b
    return a


def _steps(iterations, shape: tuple, axes) -> int:
    """``iterations`` checked, and capped where more steps change nothing: a 3-wide box reaches
    every pixel of an axis within its length, so larger counts give the same result (and no hang)."""
    try:
        n = int(iterations)
    except (TypeError, ValueError):
        raise InputError(f"iterations must be a whole number, got {iterations!r}.") from None
    if n < 0 or n != iterations:
        raise InputError(f"iterations must be a whole number >= 0, got {iterations!r}.")
    return min(n, max([shape[ax] for ax in axes] + [1]))


@checked
def dilate_labels(labels: np.ndarray, iterations: int = 1, spatial_ndim: int | None = None) -> np.ndarray:
    """Grow every class into the background with a 3x3 (3x3x3...) element, ``iterations`` times.

    Classes never overwrite each other: where two grow into the same pixel the larger label wins.
    ``spatial_ndim=2`` on a (T, Y, X) stack works frame by frame.
    """
    labels, axes = np.asarray(labels), _axes(np.ndim(labels), spatial_ndim)
    out = labels
    for _ in range(_steps(iterations, labels.shape, axes)):
        out = _replace(out, out == 0, _box(out, axes, np.maximum))
    return out.copy() if out is labels else out


@checked
def erode_labels(labels: np.ndarray, iterations: int = 1, spatial_ndim: int | None = None) -> np.ndarray:
    """Set to background every labelled pixel within ``iterations`` steps of another value.

    Uses a 3x3 (3x3x3...) element; the image border does not erode.
    """
    labels, axes = np.asarray(labels), _axes(np.ndim(labels), spatial_ndim)
    hi, lo = labels, labels
    for _ in range(_steps(iterations, labels.shape, axes)):
        hi, lo = _box(hi, axes, np.maximum), _box(lo, axes, np.minimum)
    return labels * ((hi == labels) & (lo == labels))


@checked
def morph_labels(
    labels: np.ndarray, ops: str = "de", iterations: int = 1, spatial_ndim: int | None = None
) -> np.ndarray:
    """Apply dilations ('d') and erosions ('e') in the order of ``ops``, e.g. "de" = closing."""
    if not ops or set(ops) - {"d", "e"}:
        raise InputError(f"ops must be a string of 'd' (dilate) and 'e' (erode), got {ops!r}.")
    out = np.asarray(labels)
    for op in ops:
        fn = dilate_labels if op == "d" else erode_labels
        out = fn(out, iterations=iterations, spatial_ndim=spatial_ndim)
    return out


@checked
def skeleton_labels(labels: np.ndarray, spatial_ndim: int | None = None) -> np.ndarray:
    """One-pixel-wide skeleton of each class (2D or 3D; higher dims go frame by frame)."""
    from skimage.morphology import skeletonize

    labels = np.asarray(labels)
    k = min(3, labels.ndim) if spatial_ndim is None else max(2, min(3, int(spatial_ndim), labels.ndim))
    out = np.zeros_like(labels)
    for idx in np.ndindex(*labels.shape[: labels.ndim - k]):
        frame = labels[idx]
        for c in _present_classes(frame, None):
            if c:
                out[idx][skeletonize(frame == c).astype(bool)] = c  # skimage 0.22 returns uint8 255
    return out
