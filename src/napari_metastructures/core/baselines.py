"""Classical and unsupervised baselines: Otsu, local Gaussian threshold, Sato ridges + Otsu, and DFC.

Each baseline is a plain function ``image -> uint8 mask`` (1 = foreground, 0 = background) that works
in a notebook as well as behind the widget and the command line. Inputs are checked with
:func:`core.validate.check_image` and never modified. Images with more than two dimensions are treated
as a stack of 2D planes (the last two axes), each segmented on its own.

Intensities are rescaled to [0, 1] per plane before thresholding, so parameters such as ``offset`` are
fractions of the plane's intensity range and mean the same for 8-bit, 16-bit and float images.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from skimage.filters import sato, threshold_local, threshold_otsu

from .validate import InputError, check_image


def _unit_range(plane: np.ndarray) -> np.ndarray:
    """Float32 copy of ``plane`` rescaled to [0, 1]; a constant plane becomes all zeros."""
    p = plane.astype(np.float32, copy=True)
    lo, hi = float(p.min()), float(p.max())
    if hi > lo:
        p -= lo
        p /= hi - lo
    else:
        p[...] = 0.0
    return p


def _per_plane(image, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Check ``image``, apply ``fn`` to each 2D plane (rescaled to [0, 1]) and stack uint8 masks."""
    arr = check_image(image, name=name)
    planes = arr.reshape((-1,) + arr.shape[-2:])
    out = np.zeros(planes.shape, dtype=np.uint8)
    for i, plane in enumerate(planes):
        unit = _unit_range(plane)
        if unit.max() > 0:  # a constant plane has no foreground
            out[i] = fn(unit)
    return out.reshape(arr.shape)


def _otsu_mask(values: np.ndarray) -> np.ndarray:
    """``values > otsu(values)``; an all-equal map gives no foreground."""
    if float(values.max()) <= float(values.min()):
        return np.zeros(values.shape, dtype=np.uint8)
    return (values > threshold_otsu(values)).astype(np.uint8)


def otsu_threshold(image: np.ndarray) -> np.ndarray:
    """Global Otsu threshold per 2D plane: bright pixels above the threshold are foreground.

    Parameters
    ----------
    image : ndarray
        Greyscale image, 2D or a stack of 2D planes.

    Returns
    -------
    ndarray of uint8
        Mask with the image's shape, 1 = foreground.
    """
    return _per_plane(image, "image", _otsu_mask)


def local_threshold(image: np.ndarray, block_size: int = 51, offset: float = 0.0) -> np.ndarray:
    """Local Gaussian threshold, like OpenCV's adaptive Gaussian threshold.

    A pixel is foreground when it is brighter than the Gaussian-weighted mean of its neighbourhood
    minus ``offset``. The Gaussian has sigma ``(block_size - 1) / 6``, so ``block_size`` is about the
    width (+-3 sigma) of the neighbourhood.

    Parameters
    ----------
    image : ndarray
        Greyscale image, 2D or a stack of 2D planes.
    block_size : int
        Odd neighbourhood width in pixels. The default, 51, spans a few ER tubules and the sheets
        between them at typical confocal pixel sizes (~50-100 nm), so the local mean follows uneven
        illumination but not single tubules.
    offset : float
        Subtracted from the local mean, as a fraction of the plane's intensity range (images are
        rescaled to [0, 1]). Positive values grow the foreground, negative values shrink it. The
        default 0.0 is the plain rule "brighter than the neighbourhood".

    Returns
    -------
    ndarray of uint8
        Mask with the image's shape, 1 = foreground.
    """
    block_size = int(block_size)
    if block_size < 3 or block_size % 2 == 0:
        raise InputError(f"local threshold: block_size must be an odd number >= 3, got {block_size}.")
    if not np.isfinite(offset):
        raise InputError(f"local threshold: offset must be a finite number, got {offset}.")

    def one(unit: np.ndarray) -> np.ndarray:
        thr = threshold_local(unit, block_size=block_size, method="gaussian", offset=float(offset),
                              mode="reflect")
        return (unit > thr).astype(np.uint8)

    return _per_plane(image, "image", one)


def sato_otsu(image: np.ndarray, sigmas: tuple[float, ...] = (1, 2)) -> np.ndarray:
    """Sato tubeness filter for bright ridges, then Otsu on the ridge response.

    Parameters
    ----------
    image : ndarray
        Greyscale image, 2D or a stack of 2D planes.
    sigmas : tuple of float
        Gaussian scales of the ridge filter in pixels; (1, 2) suits tubules 2-6 px wide.

    Returns
    -------
    ndarray of uint8
        Mask with the image's shape, 1 = foreground (ridge pixels).
    """
    sig = tuple(float(s) for s in np.atleast_1d(sigmas))
    if not sig or min(sig) <= 0:
        raise InputError(f"sato: sigmas must be positive numbers, got {sigmas!r}.")

    def one(unit: np.ndarray) -> np.ndarray:
        ridges = sato(unit, sigmas=sig, black_ridges=False, mode="reflect")
        return _otsu_mask(ridges)

    return _per_plane(image, "image", one)


def clusters_to_mask(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Binary mask from a cluster map: the brighter clusters are foreground.

    With two clusters the one of higher mean image intensity is foreground. With more, each pixel takes
    its cluster's mean intensity and Otsu splits those means (the same rule, generalised). One cluster
    gives an empty mask.
    """
    labels = np.asarray(labels)
    img = np.asarray(image, dtype=np.float64)
    ids, inverse = np.unique(labels.ravel(), return_inverse=True)
    if ids.size < 2:
        return np.zeros(labels.shape, dtype=np.uint8)
    sums = np.bincount(inverse, weights=img.ravel())
    means = sums / np.bincount(inverse)
    if ids.size == 2:
        fg = np.argmax(means)
        return (inverse == fg).reshape(labels.shape).astype(np.uint8)
    return _otsu_mask(means[inverse].reshape(labels.shape))


def dfc_segment(image: np.ndarray, n_channels: int = 100, lr: float = 0.1, momentum: float = 0.9,
                max_iter: int = 1000, min_labels: int = 2, seed: int = 0, device: str = "auto",
                stop: Callable[[], bool] | None = None, **kwargs) -> np.ndarray:
    """Unsupervised segmentation by differentiable feature clustering (Kim, Kanezaki, Tanaka 2020).

    A small CNN is trained on the image alone until it uses at most ``min_labels`` clusters; the
    brighter cluster is foreground (see :func:`clusters_to_mask`). See :mod:`core.dfc` for the
    method and extra keywords (``n_conv``, ``continuity_weight``, ``similarity_weight``, ``progress``).

    Parameters
    ----------
    image : ndarray
        Greyscale image, 2D or a stack of 2D planes (each plane gets a fresh network).
    n_channels : int
        Feature channels and the initial number of clusters (paper: 100).
    lr, momentum : float
        SGD settings (paper: 0.1, 0.9).
    max_iter : int
        Most training iterations per plane (paper: 1000). On CPU, lower it to bound the time.
    min_labels : int
        Stop once the number of distinct cluster labels is at most this; 2 for a binary mask.
    seed : int
        Seeds the weights; the same seed on the same device gives the same mask.
    device : str
        ``auto``, ``cpu``, ``cuda[:i]`` or ``mps``.
    stop : callable, optional
        Called each iteration; returning True ends training early with the current clusters.

    Returns
    -------
    ndarray of uint8
        Mask with the image's shape, 1 = foreground.
    """
    from .dfc import run_dfc  # torch is imported only when DFC runs

    arr = check_image(image, name="image")
    planes = arr.reshape((-1,) + arr.shape[-2:])
    out = np.zeros(planes.shape, dtype=np.uint8)
    for i, plane in enumerate(planes):
        result = run_dfc(plane, n_channels=n_channels, lr=lr, momentum=momentum, max_iter=max_iter,
                         min_labels=min_labels, seed=seed, device=device, stop=stop, **kwargs)
        if result.n_labels < 2:
            warnings.warn("DFC merged the image into a single cluster; the mask is empty.", stacklevel=2)
        out[i] = clusters_to_mask(result.labels, plane)
        if result.stopped:
            break
    return out.reshape(arr.shape)


#: Name -> function, for the command line and widgets.
METHODS: dict[str, Callable[..., np.ndarray]] = {
    "otsu": otsu_threshold,
    "local": local_threshold,
    "sato": sato_otsu,
    "dfc": dfc_segment,
}
