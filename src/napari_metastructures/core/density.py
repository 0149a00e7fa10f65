"""Meta-structure density maps: the spatial density of each class of a label map.

The meta-structure of a label map (Luo et al., AAAI 2022) is the spatial density of each
class, estimated with a kernel of bandwidth ``h``. With the box kernel (the paper's
Equation 8) the density of class ``m`` at pixel ``x`` is the fraction of the
``(2h+1)^ndim`` window centred on ``x`` that holds class ``m``. Outside the image counts
as "no class" (zero padding), so the count is always divided by the full window size and
the map falls off within ``h`` of the border. Pixels equal to ``ignore_value`` (unlabelled,
as left by random sampling) are no class either.

Lemma 1 of the paper: for randomised labels the expected density is the clean density
mixed by the noise transition matrix, ``E[d_m(noisy)] = sum_j Q[j, m] d_j(clean)``
(:func:`expected_density`). It holds exactly for the fraction normalisation.

Box sums (:mod:`.box_sums`) use running sums along each axis in unsigned integer arithmetic, so
their cost is O(pixels) per class whatever the bandwidth, and the counts are exact.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .box_sums import box_count, inside_mass
from .validate import IGNORE_VALUE, MAX_CLASSES, InputError, check_labels, check_memory

KERNELS = ("box", "gaussian")
NORMALIZATIONS = ("fraction", "paper")
#: "zero": outside the image is no class (the paper's; the map falls off near the border);
#: "inside": divide by the part of the window inside the image (no dark border; for display).
EDGES = ("zero", "inside")


# --------------------------------------------------------------------------- density maps
def _check_bandwidth(bandwidth) -> int:
    try:
        h = int(bandwidth)
    except (TypeError, ValueError):
        raise InputError(f"bandwidth must be an integer number of pixels, got {bandwidth!r}.") from None
    if h != bandwidth or h < 0:
        raise InputError(f"bandwidth must be a non-negative integer number of pixels, got {bandwidth!r}.")
    return h


def label_classes(labels: np.ndarray, ignore_value: int | None = IGNORE_VALUE, name: str = "labels",
                  max_classes: int = MAX_CLASSES) -> list[int]:
    """Classes of a label map: ``0 .. max`` with ``ignore_value`` left out (at least ``[0]``).

    Raises :class:`InputError` when the values reach ``max_classes`` (32): such maps are instance or
    intensity images, and a density per value would mean ``range(max)`` maps.
    """
    labels = np.asarray(labels)
    if ignore_value is not None and labels.size:
        top = int(np.max(labels, where=labels != ignore_value, initial=0))
    else:
        top = int(labels.max()) if labels.size else 0
    if top >= max_classes:
        raise InputError(f"{name}: label values reach {top}, more than {max_classes} classes (instance labels, "
                         "or an intensity image?); density maps are per class. Make it semantic (e.g. binary) "
                         "first, or name the classes to map.")
    return [c for c in range(top + 1) if c != ignore_value]


def density_map(
    labels: np.ndarray,
    bandwidth: int,
    kernel: str = "box",
    classes: Sequence[int] | None = None,
    normalize: str = "fraction",
    ignore_value: int | None = IGNORE_VALUE,
    name: str = "labels",
    edges: str = "zero",
) -> np.ndarray:
    """Density of each class of ``labels``: its meta-structure at bandwidth ``h``.

    Parameters
    ----------
    labels : ndarray of int
        nD label map (0 = background, 1..M-1 = classes).
    bandwidth : int
        ``h`` in pixels. Box: half-width of the ``(2h+1)^ndim`` window. Gaussian: sigma.
        ``h = 0`` returns the class indicators.
    kernel : {"box", "gaussian"}
        "box" is the paper's Equation 8; "gaussian" a smoother estimate
        (``scipy.ndimage.gaussian_filter``, sigma = h, truncated at 4 sigma).
    classes : sequence of int, optional
        Classes to map, in order. Default: ``0 .. max(labels)`` without ``ignore_value``.
    normalize : {"fraction", "paper"}
        "fraction": fraction of the window holding the class, zero padding outside the image,
        so always divided by the full window size ``(2h+1)^ndim`` (0..1). "paper": the
        paper's ``1 / (2 N h)`` applied to the window count, with ``N`` the number of pixels
        of that class in the image (a kernel density of the class's pixel positions; a map
        of an absent class is zero). The two differ by a constant per class.
    ignore_value : int or None
        Label value that counts as no class (default 255).
    name : str
        Name of the input, used in error messages.
    edges : {"zero", "inside"}
        "zero" (default, the paper's): outside the image counts as no class, so the map falls
        off within ``h`` of the border. "inside": each pixel's count is divided by the part of
        its window (kernel mass) that lies inside the image instead, so a class that fills the
        image has density 1 up to the border; for display. Lemma 1 holds for both (the
        normalisation is the same for every class at a pixel).

    Returns
    -------
    ndarray of float32, shape ``(len(classes),) + labels.shape``
    """
    labels = check_labels(labels, name=name, min_ndim=1)
    h = _check_bandwidth(bandwidth)
    if kernel not in KERNELS:
        raise InputError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}.")
    if normalize not in NORMALIZATIONS:
        raise InputError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}.")
    if edges not in EDGES:
        raise InputError(f"edges must be one of {', '.join(EDGES)}, got {edges!r}.")
    if normalize == "paper" and h == 0:
        raise InputError("normalize='paper' divides by 2Nh: the bandwidth must be at least 1.")
    classes = label_classes(labels, ignore_value, name) if classes is None else [int(c) for c in classes]
    if ignore_value is not None and ignore_value in classes:
        raise InputError(f"{name}: class {ignore_value} is the ignore value; it has no density.")
    if kernel == "gaussian" and h > 2 * max(labels.shape):
        raise InputError(f"bandwidth {h} px is far beyond the image ({max(labels.shape)} px at most): "
                         "the density would be flat.")
    check_memory(4.0 * (len(classes) + 2) * labels.size, f"density maps of {name} ({len(classes)} classes, "
                 f"shape {labels.shape})")
    window = float((2 * h + 1) ** labels.ndim)
    out = np.empty((len(classes),) + labels.shape, dtype=np.float32)
    inside = inside_mass(labels.shape, h, kernel) if edges == "inside" and h > 0 else None
    for k, c in enumerate(classes):
        mask = labels == c
        if kernel == "box":
            np.multiply(box_count(mask, h), np.float32(1.0 / window), out=out[k], casting="unsafe")
        else:
            ndi.gaussian_filter(mask.astype(np.float32), sigma=h, mode="constant", cval=0.0, output=out[k])
        if inside is not None:
            out[k] /= inside
        if normalize == "paper":
            n_c = int(np.count_nonzero(mask))
            out[k] *= np.float32(window / (2.0 * n_c * h)) if n_c else np.float32(0.0)
    return out


def expected_density(
    clean_labels: np.ndarray, Q: np.ndarray, bandwidth: int, kernel: str = "box",
    ignore_value: int | None = IGNORE_VALUE,
) -> np.ndarray:
    """Lemma 1: the expected density of labels drawn from ``clean_labels`` through ``Q``.

    ``E[d_m(noisy)](x) = sum_j Q[j, m] d_j(clean)(x)``, with ``Q[j, m] = P(noisy = m | clean
    = j)``. Exact for pixel-wise independent noise (flip, sample, random labels) and the
    fraction normalisation.

    Parameters
    ----------
    clean_labels : ndarray of int
        Clean labels with classes ``0 .. Q.shape[0] - 1``.
    Q : ndarray, shape (M, K)
        Noise transition matrix; rows are clean classes, columns noisy classes.
    bandwidth : int
    kernel : {"box", "gaussian"}
    ignore_value : int or None
        Clean pixels with this value count as no class.

    Returns
    -------
    ndarray of float32, shape ``(K,) + clean_labels.shape``
    """
    q = np.asarray(Q, dtype=np.float64)
    if q.ndim != 2 or not np.all(np.isfinite(q)) or np.any(q < 0):
        raise InputError(f"Q must be a 2D matrix of non-negative finite numbers, got shape {q.shape}.")
    clean = check_labels(clean_labels, name="clean labels", min_ndim=1)
    top = label_classes(clean, ignore_value)[-1]
    if top >= q.shape[0]:
        raise InputError(f"clean labels hold class {top} but Q has only {q.shape[0]} rows.")
    d = density_map(clean, bandwidth, kernel, classes=range(q.shape[0]), ignore_value=ignore_value)
    return np.tensordot(q.T.astype(np.float32), d, axes=1)


# ------------------------------------------------------------------ meta-structure similarity
def _kernel_energy(h: int, kernel: str, ndim: int) -> float:
    """Sum of squared kernel weights: the variance of a smoothed unit-variance white noise."""
    if h == 0:
        return 1.0
    if kernel == "box":
        return float((2 * h + 1) ** -ndim)
    delta = np.zeros(8 * h + 1)
    delta[4 * h] = 1.0
    g = ndi.gaussian_filter1d(delta, sigma=h, mode="constant")
    return float(np.sum(g**2) ** ndim)


def _interior(shape: tuple, h: int, kernel: str) -> tuple:
    """Slices away from the border where the kernel sees only the image (all of it if none)."""
    r = h if kernel == "box" else 2 * h
    if all(n > 2 * r for n in shape):
        return tuple(slice(r, n - r) for n in shape)
    return tuple(slice(None) for _ in shape)


def _pair_moments(a, b, h, kernel, classes, ignore_value, z):
    """Per class: (n, sum of centred x*y, x*x, y*y, noise variance * n, flat) for one pair."""
    n_rows = max(label_classes(a, ignore_value)[-1], max(classes)) + 1
    da = density_map(a, h, kernel, classes=range(n_rows), ignore_value=ignore_value, name="reference")
    db = density_map(b, h, kernel, classes=classes, ignore_value=ignore_value, name="labels")
    inner = _interior(a.shape, h, kernel)
    energy = _kernel_energy(h, kernel, a.ndim)
    a = a.astype(np.int64, copy=False)  # numpy < 2 refuses bincount on uint64
    n_clean = np.bincount(a.reshape(-1), minlength=n_rows)[:n_rows].astype(float)
    if ignore_value is not None and ignore_value < n_rows:
        n_clean[ignore_value] = 0
    mean_density = da[(slice(None),) + inner].reshape(n_rows, -1).mean(axis=1)
    out = []
    for k, m in enumerate(classes):
        x = da[m][inner].astype(np.float64).reshape(-1)
        y = db[k][inner].astype(np.float64).reshape(-1)
        x -= x.mean()
        y -= y.mean()
        # channel q[j] = P(b = m | a = j): Lemma 1's expected density is sum_j q[j] d_j(a)
        hits = np.bincount(a[b == m].reshape(-1), minlength=n_rows)[:n_rows].astype(float)
        present = n_clean > 0
        q = np.where(present, hits / np.maximum(n_clean, 1), 0.0)
        se = np.sqrt(q * (1 - q) / np.maximum(n_clean, 1))
        flat = np.ptp(q[present]) <= z * np.sqrt(np.sum(se[present] ** 2)) + 1e-3 if present.any() else True
        noise = energy * float(np.sum(q * (1 - q) * mean_density))
        out.append((x.size, float(x @ y), float(x @ x), float(y @ y), noise * x.size, bool(flat)))
    return out


#: Standard errors by which the channel must vary over clean classes to count as informative.
NOISE_Z = 4.0


def meta_structure_similarity(
    a,
    b,
    bandwidth: int,
    kernel: str = "box",
    classes: Sequence[int] | None = None,
    ignore_value: int | None = IGNORE_VALUE,
    correct_noise: bool = True,
    z: float = NOISE_Z,
) -> float:
    """How much of reference ``a``'s meta-structure label map ``b`` keeps: one number in [-1, 1].

    Definition: the Pearson correlation, over the image interior (at least ``h`` from the
    border), between the density map of each class in ``a`` and in ``b``, averaged over the
    classes present in ``a``. Pearson is invariant to the affine map that Lemma 1 predicts
    for randomised labels (``E[d(b)] = alpha + beta * d(a)``), so flipped or sampled labels
    score like clean ones *in expectation*.

    One noisy label map has a noisy density. With ``correct_noise`` the correlation is
    disattenuated for that noise: the channel ``q_j = P(b = m | a = j)`` is measured from the
    pair, Lemma 1 gives the variance it adds to ``b``'s density as a binomial sum,
    ``sum_x w(x)^2 * sum_j q_j (1 - q_j) d_j(a)``, and that variance is taken out of ``b``'s.
    When ``q`` does not depend on the clean class (within ``z`` standard errors, e.g. random
    labels: a rank-1 channel), Lemma 1 says the expected density is flat: there is no
    meta-structure to find, and the plain correlation (near zero) is returned for that class.
    Deterministic perturbations (dilate, erode, skeleton) are barely touched by the
    correction, so they keep their lower score.

    Parameters
    ----------
    a, b : ndarray of int, or lists of them
        Reference and compared label maps, same shapes. Lists are pooled: covariances
        and noise variances are summed over the pairs before the ratio, which is much less
        noisy than averaging per-image scores.
    bandwidth : int
    kernel : {"box", "gaussian"}
    classes : sequence of int, optional
        Default: the classes of the reference(s).
    ignore_value : int or None
        Unlabelled value; in ``b`` it counts as "not this class" (sampling thins the density).
    correct_noise : bool
        False gives the plain Pearson correlation.
    z : float
        Standard errors by which ``q`` must vary over clean classes to count as informative.

    Returns
    -------
    float
        1 for the same meta-structure, ~0 for none; NaN if no class varies in ``a``.
    """
    corrected, plain = _similarities(a, b, bandwidth, kernel, classes, ignore_value, z)
    return corrected if correct_noise else plain


def _similarities(a, b, bandwidth, kernel, classes, ignore_value, z) -> tuple[float, float]:
    """``(noise-corrected, plain)`` similarity from one pass over the density maps."""
    pairs_a = list(a) if isinstance(a, (list, tuple)) else [a]
    pairs_b = list(b) if isinstance(b, (list, tuple)) else [b]
    if len(pairs_a) != len(pairs_b) or not pairs_a:
        raise InputError(f"need as many compared label maps as references, got {len(pairs_a)} and {len(pairs_b)}.")
    h = _check_bandwidth(bandwidth)
    if kernel not in KERNELS:
        raise InputError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}.")
    refs, others = [], []
    for i, (x, y) in enumerate(zip(pairs_a, pairs_b)):
        x = check_labels(x, name=f"reference {i}" if len(pairs_a) > 1 else "reference", min_ndim=1)
        y = check_labels(y, name=f"labels {i}" if len(pairs_a) > 1 else "labels", min_ndim=1)
        if x.shape != y.shape:
            raise InputError(f"reference {x.shape} and labels {y.shape} differ in shape.")
        refs.append(x)
        others.append(y)
    if classes is None:
        classes = sorted(set().union(*(label_classes(x, ignore_value) for x in refs)))
    classes = [int(c) for c in classes]
    moments = [_pair_moments(x, y, h, kernel, classes, ignore_value, z) for x, y in zip(refs, others)]
    scores: dict = {True: [], False: []}
    for k in range(len(classes)):
        n, xy, xx, yy, noise = (sum(m[k][i] for m in moments) for i in range(5))
        flat = all(m[k][5] for m in moments)
        if xx <= 0:
            continue  # the class does not vary in the reference: no meta-structure to compare
        # corrected: at least the part explained by a, so the result stays within [-1, 1]
        for corrected, signal in ((True, yy if flat else max(yy - noise, xy * xy / xx)), (False, yy)):
            scores[corrected].append(xy / np.sqrt(xx * signal) if signal > 0 else 0.0)
    return tuple(float(np.clip(np.mean(v), -1.0, 1.0)) if v else float("nan") for v in (scores[True], scores[False]))


def compare_to_reference(
    reference: np.ndarray, labels: np.ndarray, bandwidth: int, kernel: str = "box",
    ignore_value: int | None = IGNORE_VALUE, tol: float = 1e-2,
) -> dict:
    """Empirical transition matrix, its rank and the meta-structure similarity of ``labels``
    against ``reference`` (what the density widget shows for each layer).

    Returns
    -------
    dict with ``transition_matrix`` (ndarray, rows = reference classes), ``rank`` (int),
    ``similarity`` (float) and ``plain_correlation`` (the same without the noise correction: the
    maps' correlation as drawn).
    """
    from .noise import empirical_transition_matrix, matrix_rank

    reference = check_labels(reference, name="reference", min_ndim=1)
    labels = check_labels(labels, name="labels", min_ndim=1)
    if reference.shape != labels.shape:
        raise InputError(f"shape {labels.shape} differs from the reference's {reference.shape}.")
    q = empirical_transition_matrix(reference, labels, ignore_value=ignore_value)
    similarity, plain = _similarities(reference, labels, bandwidth, kernel, None, ignore_value, NOISE_Z)
    return {
        "transition_matrix": q,
        "rank": matrix_rank(q, tol=tol),
        "similarity": similarity,
        "plain_correlation": plain,
    }
