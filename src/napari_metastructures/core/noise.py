"""Noisy-label families of the meta-structure papers, and their noise transition matrices.

Labels are nD integer arrays: 0 = background, 1..M-1 = classes. Pixels equal to
``ignore_value`` (default 255) are "not labelled": they are never a class. Every random
step takes an int seed or a ``numpy.random.Generator``; pixel-wise families draw one
float32 per pixel and use branch-free integer arithmetic instead of boolean indexing.
"""
from __future__ import annotations

import inspect

import numpy as np
from scipy import ndimage as ndi

from .validate import InputError, check_labels

#: Noise kinds understood by :func:`make_noisy` (the CLI's ``--kind``).
KINDS = (
    "sample", "sample-to-background", "flip", "dilate", "erode", "morph", "skeleton",
    "random", "misannotate", "misclassify", "drop-instances",
)
#: Without an explicit ``n_classes``, more distinct values than this are refused as classes.
MAX_AUTO_CLASSES = 64


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_p(p: float, name: str = "p") -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{name} must lie in [0, 1], got {p}.")
    return p


def _replace(labels: np.ndarray, mask: np.ndarray, values, dtype=None) -> np.ndarray:
    """``where(mask, values, labels)`` as ``labels + mask * (values - labels)``: much faster
    than boolean indexing for small integer dtypes (modular wrap-around is exact)."""
    dtype = dtype or labels.dtype
    lab = labels.astype(dtype, copy=False)
    out = np.subtract(values, lab, dtype=dtype, casting="unsafe")
    np.multiply(out, mask, out=out, casting="unsafe")
    np.add(out, lab, out=out)
    return out


def _out_dtype(labels: np.ndarray, value: int) -> np.dtype:
    return np.result_type(labels.dtype, np.min_scalar_type(int(value)))


def _top(labels: np.ndarray, ignore_value: int | None) -> int:
    """Largest value other than ``ignore_value``."""
    top = int(labels.max()) if labels.size else 0
    if ignore_value is not None and top == ignore_value:
        top = int(np.max(labels, where=labels != ignore_value, initial=0))
    return top


def _n_classes(labels: np.ndarray, ignore_value: int | None, n_classes: int | None) -> int:
    """Number of classes (at least 2); values other than 0..M-1 must equal ``ignore_value``."""
    top = _top(labels, ignore_value)
    if n_classes is None and top >= MAX_AUTO_CLASSES:
        raise InputError(
            f"labels hold values up to {top}, more than {MAX_AUTO_CLASSES} classes: is this an intensity "
            "image or an instance map? Class noise expects 0..M-1; give n_classes to go on anyway."
        )
    m = max(2, top + 1) if n_classes is None else int(n_classes)
    if m < 2:
        raise InputError(f"n_classes must be at least 2, got {m}.")
    if top >= m:
        raise InputError(f"labels hold value {top} but n_classes is {m}; raise n_classes.")
    return m


def _present_classes(labels: np.ndarray, ignore_value: int | None) -> list[int]:
    top = int(labels.max()) if labels.size else 0
    if top < 64:  # a few cheap passes beat sorting or bincount's int64 copy
        found = [c for c in range(top + 1) if (labels == c).any()]
    else:
        found = np.unique(labels).tolist()
    return [int(c) for c in found if c != ignore_value]


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
def _axes(ndim: int, spatial_ndim: int | None) -> tuple[int, ...]:
    k = ndim if spatial_ndim is None else max(1, min(int(spatial_ndim), ndim))
    return tuple(range(ndim - k, ndim))


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


# ----------------------------------------------------------------------------- instance noise
def label_instances(labels: np.ndarray, spatial_ndim: int | None = None, return_classes: bool = False):
    """Connected components of each non-zero value (full connectivity), numbered 1..N.

    With ``spatial_ndim`` only the last axes connect, so frames of a stack stay apart.
    ``return_classes`` also returns the class of each id (index 0 = background).
    """
    labels = np.asarray(labels)
    axes = _axes(labels.ndim, spatial_ndim)
    structure = np.zeros((3,) * labels.ndim, dtype=bool)
    structure[tuple(slice(None) if ax in axes else 1 for ax in range(labels.ndim))] = True
    inst, classes = np.zeros(labels.shape, dtype=np.int32), [0]
    for c in _present_classes(labels, None):
        if c:
            comp, n = ndi.label(labels == c, structure=structure)
            if len(classes) == 1:
                inst = comp
            else:
                np.add(inst, comp + (len(classes) - 1), out=inst, where=comp > 0)
            classes += [c] * n
    classes = np.array(classes, dtype=np.int64)
    return (inst, classes) if return_classes else inst


def _instance_table(labels, instances, spatial_ndim):
    """(instance ids, class of each id, which ids occur, whether ids come from the labels)."""
    if instances is None:
        inst, cls = label_instances(labels, spatial_ndim, return_classes=True)
        present = np.arange(cls.size) > 0
        return inst, cls, present, True
    inst = check_labels(instances, name="instances", min_ndim=1)
    if inst.shape != labels.shape:
        raise InputError(f"instances: shape {inst.shape} differs from the labels' {labels.shape}.")
    inst = inst.astype(np.intp, copy=False)
    cls = np.zeros(int(inst.max()) + 1, dtype=np.int64)
    cls[inst.reshape(-1)] = labels.reshape(-1)  # an instance's class, read at one of its pixels
    present = np.bincount(inst.reshape(-1), minlength=cls.size) > 0
    present[0] = False
    return inst, cls, present, False


def _apply_instances(labels, table, changed, new_class):
    inst, cls, _, from_labels = table
    dtype = _out_dtype(labels, int(new_class.max(initial=0)))
    if from_labels:  # components cover every labelled pixel: one lookup
        return np.where(changed, new_class, cls).astype(dtype)[inst]
    return _replace(labels, changed[inst], new_class[inst], dtype)


def drop_instances(
    labels: np.ndarray, p: float, seed=None, instances: np.ndarray | None = None,
    exact: bool = False, spatial_ndim: int | None = None,
) -> np.ndarray:
    """Inexhaustive annotation: set each instance to background with probability ``p``.

    Instances are connected components of ``labels``, or the ids of ``instances`` when given.
    ``exact`` drops exactly ``round(p * N)`` of the N instances.
    """
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    table = _instance_table(labels, instances, spatial_ndim)
    cls, present = table[1], table[2]
    ids = np.flatnonzero(present & (cls > 0))
    drop = np.zeros(cls.size, dtype=bool)
    if exact:
        drop[rng.choice(ids, int(round(p * ids.size)), replace=False)] = True
    else:
        drop[ids] = rng.random(ids.size) < p
    return _apply_instances(labels, table, drop, np.zeros_like(cls))


def misannotate_instances(
    labels: np.ndarray, p: float = 1.0, seed=None, target: int = 1,
    instances: np.ndarray | None = None, spatial_ndim: int | None = None,
) -> np.ndarray:
    """Instance misannotation: each non-target instance becomes class ``target`` with probability ``p``.

    Non-target instances are those of other classes, and, when ``instances`` is given,
    instances lying on background (objects that were not meant to be labelled).
    """
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    table = _instance_table(labels, instances, spatial_ndim)
    cls, present = table[1], table[2]
    ids = np.flatnonzero(present & (cls != target))
    change = np.zeros(cls.size, dtype=bool)
    change[ids] = rng.random(ids.size) < p
    return _apply_instances(labels, table, change, np.full_like(cls, int(target)))


def misclassify_instances(
    labels: np.ndarray, p: float = 1.0, seed=None, n_classes: int | None = None,
    instances: np.ndarray | None = None, spatial_ndim: int | None = None, ignore_value: int = 255,
) -> np.ndarray:
    """Instance misclassification: with probability ``p`` an instance gets a class drawn
    uniformly from 1..M-1 (possibly its own). Binary labels need ``n_classes >= 3`` to change."""
    p, rng, labels = _check_p(p), _rng(seed), np.asarray(labels)
    m = _n_classes(labels, ignore_value, n_classes)
    table = _instance_table(labels, instances, spatial_ndim)
    cls, present = table[1], table[2]
    change = present & (cls > 0) & (cls != ignore_value) & (rng.random(cls.size) < p)
    return _apply_instances(labels, table, change, rng.integers(1, m, size=cls.size))


# ------------------------------------------------------------------------ transition matrices
def transition_matrix(kind: str, p: float | None = None, n_classes: int = 2, **params) -> np.ndarray:
    """Theoretical (expected) noise transition matrix ``Q[i, j] = P(noisy = j | clean = i)``.

    Defined for "flip" (also ``p_fg_to_bg``/``p_bg_to_fg``), "sample" (identity on the
    labelled pixels: the ignore value is not a class), "sample-to-background", "random",
    "drop-instances" and "misclassify" (expectations over instances). Morphological and
    misannotation noise depend on the shapes; use :func:`empirical_transition_matrix`.
    Other keywords are ignored, so the params dict of :func:`make_noisy` can be passed as is.
    """
    m = int(n_classes or 2)
    eye = np.eye(m)
    if kind not in ("flip", "sample", "sample-to-background", "drop-instances", "random", "misclassify"):
        raise InputError(f"no theoretical transition matrix for {kind!r}; use the empirical one.")
    if p is None and kind not in ("flip", "sample"):
        raise InputError(f"the {kind} transition matrix needs p.")
    if p is not None:
        p = _check_p(p)
    if kind == "flip":
        rates = np.full(m, p if p is not None else 0.0)
        if params.get("p_bg_to_fg") is not None:
            rates[0] = params["p_bg_to_fg"]
        if params.get("p_fg_to_bg") is not None:
            rates[1] = params["p_fg_to_bg"]
        return eye * (1 - rates[:, None]) + (1 - eye) * rates[:, None] / (m - 1)
    if kind == "sample":
        return eye
    if kind in ("sample-to-background", "drop-instances"):
        keep = p if kind == "sample-to-background" else 1 - p
        q = eye * keep
        q[:, 0] += 1 - keep
        q[0] = eye[0]
        return q
    if kind == "random":
        q = np.zeros((m, m))
        q[:, 0], q[:, 1] = 1 - p, p
        return q
    q = eye * (1 - p)  # misclassify
    q[1:, 1:] += p / (m - 1)
    q[0] = eye[0]
    return q


def empirical_transition_matrix(
    clean: np.ndarray, noisy: np.ndarray, n_classes: int | None = None, ignore_value: int | None = 255,
    return_counts: bool = False,
):
    """Row-normalised counts of (clean, noisy) pairs; pixels where either is ``ignore_value``
    are left out. Rows of classes absent from ``clean`` are NaN."""
    clean, noisy = np.asarray(clean), np.asarray(noisy)
    if clean.shape != noisy.shape:
        raise InputError(f"clean {clean.shape} and noisy {noisy.shape} labels differ in shape.")
    m = max(_n_classes(clean, ignore_value, n_classes), _n_classes(noisy, ignore_value, n_classes))
    code = clean.astype(np.intp) * m + noisy
    if ignore_value is not None:
        code = _replace(code, (clean == ignore_value) | (noisy == ignore_value), m * m)
    counts = np.bincount(code.reshape(-1), minlength=m * m + 1)[: m * m].reshape(m, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = counts / counts.sum(axis=1, keepdims=True)
    return (q, counts) if return_counts else q


def matrix_rank(q: np.ndarray, tol: float = 1e-2) -> int:
    """Number of singular values of ``q`` above ``tol`` (undefined NaN rows are left out).

    The default suits empirical matrices of a few thousand pixels per class, where sampling
    noise is about ``1 / sqrt(n)``; use ~1e-9 for theoretical matrices.
    """
    q = np.asarray(q, dtype=float)
    q = q[np.all(np.isfinite(q), axis=1)]
    if q.size == 0:
        return 0
    return int(np.count_nonzero(np.linalg.svd(q, compute_uv=False) > tol))


def noise_summary(clean, noisy, n_classes: int | None = None, ignore_value: int | None = 255,
                  tol: float = 1e-2) -> dict:
    """Empirical matrix, its rank, pixel error rate and ignored fraction of a (clean, noisy) pair.

    Labels with more than :data:`MAX_AUTO_CLASSES` values (instance ids) and no ``n_classes``
    get the matrix of foreground vs background (``"binarised": True``).
    """
    clean, noisy = np.asarray(clean), np.asarray(noisy)
    top = max(_top(clean, ignore_value), _top(noisy, ignore_value))
    binarised = n_classes is None and top >= MAX_AUTO_CLASSES
    error = None
    if binarised:
        valid = (clean != ignore_value) & (noisy != ignore_value)
        error = np.count_nonzero(valid & (clean != noisy)) / max(1, np.count_nonzero(valid))
        clean, noisy = (np.where(x == ignore_value, ignore_value, x > 0).astype(np.uint8) for x in (clean, noisy))
    q, counts = empirical_transition_matrix(clean, noisy, n_classes, ignore_value, return_counts=True)
    n = int(counts.sum())
    if not binarised:
        error = (n - np.trace(counts)) / n if n else None
    return {
        "transition_matrix": [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in q],
        "rank": matrix_rank(q, tol),
        "error_rate": None if error is None else float(error),
        "ignored_fraction": 1.0 - n / max(1, np.size(clean)),
        "binarised": binarised,
    }


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
