"""Noisy-label families of the meta-structure papers: the public entry point.

Labels are nD integer arrays: 0 = background, 1..M-1 = classes. Pixels equal to
``ignore_value`` (default 255) are "not labelled": they are never a class. Every random
step takes an int seed or a ``numpy.random.Generator``; pixel-wise families draw one
float32 per pixel and use branch-free integer arithmetic instead of boolean indexing.
The instance families (:mod:`.instance_noise`) and the transition matrices
(:mod:`.transition`) are re-exported here.
"""
from __future__ import annotations

import inspect

import numpy as np

from ._noise_common import (
    MAX_AUTO_CLASSES, _axes, _check_p, _n_classes, _out_dtype, _present_classes, _replace, _rng,
)
from .instance_noise import drop_instances, label_instances, misannotate_instances, misclassify_instances
from .transition import empirical_transition_matrix, matrix_rank, noise_summary, transition_matrix
from .validate import InputError, check_labels

__all__ = [
    "KINDS", "MAX_AUTO_CLASSES", "sample_labels", "sample_labels_to_background", "flip_labels",
    "random_labels", "dilate_labels", "erode_labels", "morph_labels", "skeleton_labels",
    "label_instances", "drop_instances", "misannotate_instances", "misclassify_instances",
    "transition_matrix", "empirical_transition_matrix", "matrix_rank", "noise_summary",
    "kind_parameters", "make_noisy",
]

#: Noise kinds understood by :func:`make_noisy` (the CLI's ``--kind``).
KINDS = (
    "sample", "sample-to-background", "flip", "dilate", "erode", "morph", "skeleton",
    "random", "misannotate", "misclassify", "drop-instances",
)


def _pick(rng, labels, sel, c: int, add: bool, k: int, pool_size: int) -> np.ndarray:
    """``k`` distinct uniform flat indices of class ``c`` where ``sel != add`` (``pool_size`` exist)."""
    lab, flat = labels.reshape(-1), sel.reshape(-1)
    n = lab.size
    if pool_size < 0.02 * n or 2 * k > pool_size:  # sparse pool or large k: list the pool
        pool = np.flatnonzero((labels == c) & (sel != add))
        return pool[rng.choice(pool.size, k, replace=False)]
    chosen = np.empty(0, dtype=np.intp)
    while chosen.size < k:  # rejection: the first k distinct hits of a uniform stream are uniform
        draw = rng.integers(0, n, size=2 * (k - chosen.size) * n // pool_size + 16)
        draw = np.concatenate([chosen, draw[(lab[draw] == c) & (flat[draw] != add)]])
        _, first = np.unique(draw, return_index=True)
        chosen = draw[np.sort(first)][:k]
    return chosen


def _exact_select(rng, labels, rates: dict[int, float], r=None) -> np.ndarray:
    """Mask selecting exactly ``round(rate * n_c)`` pixels of each class ``c`` in ``rates``.

    A Bernoulli draw is corrected by adding or removing a uniformly chosen handful of
    pixels per class; both steps are exchangeable, so the chosen subset is uniform.
    """
    if r is None:
        r = rng.random(labels.shape, dtype=np.float32)
    uniform = len(set(rates.values())) == 1
    sel = r < next(iter(rates.values())) if uniform else np.zeros(labels.shape, dtype=bool)
    flat, covered = sel.reshape(-1), 0
    listed = np.zeros(labels.shape, dtype=bool) if uniform else None
    for c, rate in rates.items():
        in_c = labels == c
        n_c = np.count_nonzero(in_c)
        covered += n_c
        if uniform:
            listed |= in_c
        else:
            sel |= in_c & (r < rate)
        have = np.count_nonzero(sel & in_c)
        need = int(round(rate * n_c)) - have
        if need:
            pool = n_c - have if need > 0 else have
            flat[_pick(rng, labels, sel, c, need > 0, abs(need), pool)] = need > 0
    if uniform and covered < labels.size:  # values not in ``rates`` stay unselected
        sel &= listed
    return sel


# ----------------------------------------------------------------- random class-level noise (RCL)
def sample_labels(
    labels: np.ndarray, p: float, seed=None, ignore_value: int = 255, mode: str = "ignore",
    exact: bool = False,
) -> np.ndarray:
    """Keep each labelled pixel with probability ``p`` (random sampling, RCL).

    Parameters
    ----------
    labels : ndarray of int
        Clean labels.
    p : float
        Probability (or, with ``exact``, the fraction per class) of keeping a pixel.
    seed : int or Generator, optional
    ignore_value : int
        Value given to unsampled pixels in ``mode="ignore"`` (the paper: excluded from training).
    mode : {"ignore", "to_background"}
        "to_background" turns unsampled foreground into background (the official code);
        background is then untouched.
    exact : bool
        Keep exactly ``round(p * n_c)`` pixels of each class instead of a Bernoulli draw.

    Returns
    -------
    ndarray, same shape; dtype widened only if needed to hold ``ignore_value``.
    """
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    if mode not in ("ignore", "to_background"):
        raise InputError(f"mode must be 'ignore' or 'to_background', got {mode!r}.")
    if mode == "to_background":
        if exact:
            fg = [c for c in _present_classes(labels, ignore_value) if c]
            keep = _exact_select(rng, labels, {c: p for c in fg})
        else:
            keep = rng.random(labels.shape, dtype=np.float32) < p
        if ignore_value is not None and int(labels.max()) >= ignore_value:
            keep |= labels == ignore_value
        return labels * keep
    if ignore_value is None or ignore_value < 0:
        raise InputError(f"ignore_value must be a non-negative integer, got {ignore_value}.")
    if exact:
        classes = _present_classes(labels, ignore_value)
        drop = _exact_select(rng, labels, {c: 1.0 - p for c in classes})
    else:
        drop = rng.random(labels.shape, dtype=np.float32) >= p
    return _replace(labels, drop, ignore_value, _out_dtype(labels, ignore_value))


def sample_labels_to_background(labels: np.ndarray, p: float, seed=None, exact: bool = True) -> np.ndarray:
    """:func:`sample_labels` with ``mode="to_background"``; exact counts by default (official code)."""
    return sample_labels(labels, p, seed=seed, mode="to_background", exact=exact)


def flip_labels(
    labels: np.ndarray, p: float | None = None, seed=None, p_fg_to_bg: float | None = None,
    p_bg_to_fg: float | None = None, n_classes: int | None = None, exact: bool = False,
    ignore_value: int = 255,
) -> np.ndarray:
    """Swap a fraction of labels to a uniformly chosen *other* class (random flipping, RCL).

    Parameters
    ----------
    labels : ndarray of int
        Clean labels 0..M-1; pixels equal to ``ignore_value`` are left alone.
    p : float
        Flip probability of every class.
    seed : int or Generator, optional
    p_fg_to_bg, p_bg_to_fg : float, optional
        Binary labels only: separate rates for 1 -> 0 and 0 -> 1 (default ``p``).
    n_classes : int, optional
        M; default ``max(labels) + 1`` (at least 2).
    exact : bool
        Flip exactly ``round(rate * n_c)`` pixels of each class.
    ignore_value : int

    Returns
    -------
    ndarray, same shape and dtype (widened only if M does not fit).
    """
    rng, labels = _rng(seed), np.asarray(labels)
    m = _n_classes(labels, ignore_value, n_classes)
    if p is None and (p_fg_to_bg is None or p_bg_to_fg is None):
        raise InputError("flip needs p, or both p_fg_to_bg and p_bg_to_fg.")
    rates = np.full(m, _check_p(p) if p is not None else 0.0, dtype=np.float32)
    if p_fg_to_bg is not None or p_bg_to_fg is not None:
        if m != 2:
            raise InputError(f"separate fg/bg flip rates need binary labels, got {m} classes.")
        rates[0] = _check_p(p_bg_to_fg, "p_bg_to_fg") if p_bg_to_fg is not None else rates[0]
        rates[1] = _check_p(p_fg_to_bg, "p_fg_to_bg") if p_fg_to_bg is not None else rates[1]
    has_ignore = int(labels.max()) >= m
    r = rng.random(labels.shape, dtype=np.float32)
    if exact:
        sel = _exact_select(rng, labels, dict(enumerate(rates.tolist())), r)
    elif np.all(rates == rates[0]):
        sel = r < rates[0]
        if has_ignore:
            sel &= labels != ignore_value
    else:  # two classes, two rates: nested thresholds instead of a per-pixel lookup
        sel = r < rates.min()
        if has_ignore:
            sel &= labels != ignore_value
        sel |= (r < rates.max()) & (labels == int(np.argmax(rates)))
    dtype = _out_dtype(labels, m - 1)
    if m == 2:  # binary: a flip is an xor
        return np.bitwise_xor(labels.astype(dtype, copy=False), sel, dtype=dtype)
    if exact:  # the uniforms of added pixels are not below the rate: draw the shift anew
        shift = np.zeros(labels.shape, dtype=np.int64)
        shift[sel] = rng.integers(1, m, size=np.count_nonzero(sel))
    else:  # given r < rate, r / rate is uniform: reuse it for the shift 1..M-1
        u = np.minimum(r * np.float32((m - 1) / rates[0]), m - 1.5) if rates[0] > 0 else 0 * r
        shift = 1 + u.astype(np.int64)
    new = (labels.astype(np.int64) + shift) % m
    return _replace(labels, sel, new, dtype)


def random_labels(labels: np.ndarray, p: float, seed=None) -> np.ndarray:
    """Random labels (RL): each pixel is foreground (1) with probability ``p``, independent of ``labels``.

    Returns a uint8 array of the same shape.
    """
    p = _check_p(p)
    return (_rng(seed).random(np.shape(labels), dtype=np.float32) < p).view(np.uint8)


# ------------------------------------------------------------- pixel-wise class-level noise (PCL)
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


def dilate_labels(labels: np.ndarray, iterations: int = 1, spatial_ndim: int | None = None) -> np.ndarray:
    """Grow every class into the background with a 3x3 (3x3x3...) element, ``iterations`` times.

    Classes never overwrite each other: where two grow into the same pixel the larger label wins.
    ``spatial_ndim=2`` on a (T, Y, X) stack works frame by frame.
    """
    labels, axes = np.asarray(labels), _axes(np.ndim(labels), spatial_ndim)
    out = labels
    for _ in range(int(iterations)):
        out = _replace(out, out == 0, _box(out, axes, np.maximum))
    return out.copy() if out is labels else out


def erode_labels(labels: np.ndarray, iterations: int = 1, spatial_ndim: int | None = None) -> np.ndarray:
    """Set to background every labelled pixel within ``iterations`` steps of another value.

    Uses a 3x3 (3x3x3...) element; the image border does not erode.
    """
    labels, axes = np.asarray(labels), _axes(np.ndim(labels), spatial_ndim)
    hi, lo = labels, labels
    for _ in range(int(iterations)):
        hi, lo = _box(hi, axes, np.maximum), _box(lo, axes, np.minimum)
    return labels * ((hi == labels) & (lo == labels))


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
                out[idx][skeletonize(frame == c)] = c
    return out


# ------------------------------------------------------------------------------- dispatcher
_FUNCS = {
    "sample": sample_labels, "sample-to-background": sample_labels_to_background, "flip": flip_labels,
    "dilate": dilate_labels, "erode": erode_labels, "morph": morph_labels, "skeleton": skeleton_labels,
    "random": random_labels, "misannotate": misannotate_instances,
    "misclassify": misclassify_instances, "drop-instances": drop_instances,
}


def kind_parameters(kind: str) -> list[str]:
    """Names of the parameters a kind takes (besides the labels)."""
    if kind not in _FUNCS:
        raise InputError(f"unknown noise kind {kind!r}; choose one of {', '.join(KINDS)}.")
    return list(inspect.signature(_FUNCS[kind]).parameters)[1:]


def make_noisy(labels: np.ndarray, kind: str, seed=None, **params) -> tuple[np.ndarray, dict]:
    """Apply noise ``kind`` (one of :data:`KINDS`) to ``labels``.

    Parameters whose value is None take the function's default. A missing seed is drawn
    fresh and recorded, so every result can be reproduced.

    Returns
    -------
    noisy : ndarray, same shape as ``labels``
    params : dict
        ``kind``, ``seed`` and every effective parameter (arrays are recorded as "given").
    """
    names = kind_parameters(kind)
    labels = check_labels(labels)
    params = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise InputError(f"{kind} does not take {', '.join(unknown)}; it takes {', '.join(names)}.")
    if "seed" in names:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**32)
        params["seed"] = seed
    try:
        bound = inspect.signature(_FUNCS[kind]).bind(labels, **params)
    except TypeError as err:  # e.g. a missing p
        raise InputError(f"{kind}: {err}") from None
    bound.apply_defaults()
    noisy = _FUNCS[kind](*bound.args, **bound.kwargs)
    record = {"kind": kind}
    for k, v in list(bound.arguments.items())[1:]:
        if isinstance(v, np.random.Generator):
            v = "generator"
        elif isinstance(v, np.ndarray):
            v = "given"
        record[k] = v.item() if isinstance(v, np.generic) else v
    return noisy, record
