"""Noise transition matrices ``Q[i, j] = P(noisy = j | clean = i)``: theoretical and empirical."""
from __future__ import annotations

import numpy as np

from ..validate import IGNORE_VALUE, InputError, check_memory
from .common import MAX_AUTO_CLASSES, _check_p, _n_classes, _replace, _top


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
    clean: np.ndarray, noisy: np.ndarray, n_classes: int | None = None, ignore_value: int | None = IGNORE_VALUE,
    return_counts: bool = False,
):
    """Row-normalised counts of (clean, noisy) pairs; pixels where either is ``ignore_value``
    are left out. Rows of classes absent from ``clean`` are NaN."""
    clean, noisy = np.asarray(clean), np.asarray(noisy)
    if clean.shape != noisy.shape:
        raise InputError(f"clean {clean.shape} and noisy {noisy.shape} labels differ in shape.")
    m = max(_n_classes(clean, ignore_value, n_classes), _n_classes(noisy, ignore_value, n_classes))
    check_memory(16.0 * m * m, f"a {m} x {m} transition matrix")
    code = clean.astype(np.intp) * m + noisy.astype(np.intp)  # uint64 + intp would be float64
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


def noise_summary(clean, noisy, n_classes: int | None = None, ignore_value: int | None = IGNORE_VALUE,
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
