"""Input checks shared by :mod:`.metrics` and :mod:`.topology`: masks to booleans, lists of images."""
from __future__ import annotations

import numpy as np

from .validate import InputError


def _as_bool(arr, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.size == 0:
        raise InputError(f"{name}: the array is empty (shape {a.shape}).")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise InputError(f"{name}: contains NaN or infinite values.")
    return a != 0


def _flat(pred, gt, valid=None, pred_name: str = "prediction", gt_name: str = "ground truth"):
    """Check shapes and return flat boolean ``pred``, ``gt`` restricted to valid pixels."""
    p = np.asarray(pred)
    g = np.asarray(gt)
    if p.shape != g.shape:
        raise InputError(f"{pred_name} has shape {p.shape} but {gt_name} has shape {g.shape}; they must match.")
    keep = None
    if valid is not None:
        v = np.asarray(valid)
        if v.shape != g.shape:
            raise InputError(f"valid mask has shape {v.shape} but {gt_name} has shape {g.shape}; they must match.")
        keep = _as_bool(v, "valid mask").ravel()
    return p, _as_bool(g, gt_name).ravel(), keep


def _seq(items, n: int | None, name: str) -> list:
    if items is None:
        return [None] * (n or 0)
    if isinstance(items, np.ndarray) and items.ndim >= 2 and n is None:
        items = list(items)
    items = list(items)
    if n is not None and len(items) != n:
        raise InputError(f"{name}: got {len(items)} arrays for {n} images.")
    return items


def _per_image(gts, *others: tuple) -> tuple[list, ...]:
    """``gts`` as a list of at least one image, then each ``(items, name)`` of ``others`` as a list
    of as many (``None`` gives ``None`` entries); checked in that order."""
    gts = _seq(gts, None, "ground truth")
    if not gts:
        raise InputError("no images to score.")
    return (gts, *(_seq(items, len(gts), name) for items, name in others))
