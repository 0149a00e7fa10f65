"""Pixel-wise random class-level noise (RCL): sampling, flipping and random labels.

Each pixel draws one float32 and the families use branch-free integer arithmetic instead of
boolean indexing; ``exact`` variants pick exactly ``round(rate * n_c)`` pixels per class.
"""
from __future__ import annotations

import numpy as np

from ..validate import IGNORE_VALUE, InputError
from .common import _check_p, _n_classes, _out_dtype, _present_classes, _replace, _rng, checked


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


@checked
def sample_labels(
    labels: np.ndarray, p: float, seed=None, ignore_value: int = IGNORE_VALUE, mode: str = "ignore",
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


@checked
def sample_labels_to_background(labels: np.ndarray, p: float, seed=None, exact: bool = True) -> np.ndarray:
    """:func:`sample_labels` with ``mode="to_background"``; exact counts by default (official code)."""
    return sample_labels(labels, p, seed=seed, mode="to_background", exact=exact)


@checked
def flip_labels(
    labels: np.ndarray, p: float | None = None, seed=None, p_fg_to_bg: float | None = None,
    p_bg_to_fg: float | None = None, n_classes: int | None = None, exact: bool = False,
    ignore_value: int = IGNORE_VALUE,
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
        # the factor is capped at float32's largest value: a tiny rate must not turn r = 0 into NaN
        factor = np.float32(min((m - 1) / rates[0], np.finfo(np.float32).max)) if rates[0] > 0 else 0
        u = np.minimum(r * factor, m - 1.5)
        shift = 1 + u.astype(np.int64)
    new = (labels.astype(np.int64) + shift) % m
    return _replace(labels, sel, new, dtype)


@checked
def random_labels(labels: np.ndarray, p: float, seed=None) -> np.ndarray:
    """Random labels (RL): each pixel is foreground (1) with probability ``p``, independent of ``labels``.

    Returns a uint8 array of the same shape.
    """
    p = _check_p(p)
    return (_rng(seed).random(np.shape(labels), dtype=np.float32) < p).view(np.uint8)
