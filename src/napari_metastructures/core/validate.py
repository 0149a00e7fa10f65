"""Input checks shared by the core, the widgets and the command line.

Every check raises :class:`InputError` with a message that names the input
(layer or file) and says what is wrong, so callers can show it as-is.
"""
from __future__ import annotations

import numpy as np

#: Largest array we accept without asking (bytes of the float32 working copy).
MAX_BYTES = 4 * 1024**3
#: Label value meaning "not annotated / not sampled": written by the noise families, left out of
#: training, density maps and transition matrices.
IGNORE_VALUE = 255
#: More distinct label values than this look like instance or intensity labels, not classes.
MAX_CLASSES = 32


class InputError(ValueError):
    """Bad user input: the message is meant for the user, not a traceback."""


#: Environment variable that sets the memory limit in GiB (default: 80 % of the memory available).
MEMORY_ENV = "METASTRUCTURES_MEMORY_GB"


def memory_limit() -> int:
    """Bytes one call may plan to allocate: ``$METASTRUCTURES_MEMORY_GB``, else 80 % of the memory
    available now (``MemAvailable`` on Linux, else the physical memory), at least 1 GiB."""
    import os

    env = os.environ.get(MEMORY_ENV)
    if env:
        try:
            return int(float(env) * 1024**3)
        except ValueError:
            raise InputError(f"{MEMORY_ENV}={env!r}: give a number of GiB.") from None
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 * 1024**3
    return max(int(0.8 * avail), 1024**3)


def check_memory(nbytes: float, what: str) -> None:
    """Refuse, before allocating, a plan that needs more than :func:`memory_limit`."""
    limit = memory_limit()
    if nbytes > limit:
        raise InputError(f"{what} needs about {nbytes / 1024**3:.1f} GiB, more than the {limit / 1024**3:.1f} GiB "
                         f"limit (80 % of the free memory; set {MEMORY_ENV} to change it).")


def _size_check(arr: np.ndarray, name: str, max_bytes: int) -> None:
    need = int(np.prod(arr.shape, dtype=np.int64)) * 4
    if need > max_bytes:
        raise InputError(
            f"{name}: {arr.shape} needs {need / 1024**3:.1f} GiB as float32, more than the "
            f"{max_bytes / 1024**3:.1f} GiB limit; crop it or pick fewer frames."
        )


def check_image(
    data, name: str = "image", min_ndim: int = 2, max_ndim: int = 5, max_bytes: int = MAX_BYTES
) -> np.ndarray:
    """Check a greyscale intensity image and return it as an ndarray (not copied).

    Raises
    ------
    InputError
        If it is RGB(A), empty, non-numeric, has NaN/inf, or the wrong dimensionality.
    """
    arr = np.asarray(data)
    check_image_layout(arr, name, min_ndim, max_ndim, max_bytes)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(f"{name}: contains NaN or infinite values; fill or crop them first.")
    return arr


def check_image_layout(
    arr, name: str = "image", min_ndim: int = 2, max_ndim: int = 5, max_bytes: int = MAX_BYTES
) -> None:
    """The checks of :func:`check_image` that need only ``shape``, ``ndim`` and ``dtype``: safe on a
    lazy (dask, zarr) array, whose pixels it never reads."""
    if int(np.prod(arr.shape, dtype=np.int64)) == 0:
        raise InputError(f"{name}: the image is empty (shape {arr.shape}).")
    dtype = np.dtype(arr.dtype)
    if dtype.kind == "b" or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{name}: needs a real-valued greyscale image, got dtype {dtype}.")
    if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and arr.ndim == min_ndim + 1 and min(arr.shape[:-1]) > 4:
        raise InputError(
            f"{name}: looks like an RGB(A) image (last axis has {arr.shape[-1]} channels); "
            "pick a single greyscale channel first."
        )
    if not (min_ndim <= arr.ndim <= max_ndim):
        raise InputError(
            f"{name}: needs {min_ndim}D to {max_ndim}D data, got {arr.ndim}D with shape {arr.shape}."
        )
    _size_check(arr, name, max_bytes)


def check_labels_layout(data, name: str = "labels", min_ndim: int = 2, max_ndim: int = 5,
                        max_bytes: int = MAX_BYTES) -> None:
    """The checks of :func:`check_labels` that need no pixels: size, dtype, dimensionality.

    For lazy arrays (dask, zarr), so that validation on the GUI thread reads nothing.
    """
    shape, dtype = tuple(np.shape(data)), np.dtype(data.dtype)
    if int(np.prod(shape)) == 0:
        raise InputError(f"{name}: the labels are empty (shape {shape}).")
    if dtype == np.bool_:
        return
    if np.issubdtype(dtype, np.floating):
        raise InputError(
            f"{name}: labels must be integers, got {dtype}; is this an Image layer? "
            "Convert it to Labels (or threshold it) first."
        )
    if not np.issubdtype(dtype, np.integer):
        raise InputError(f"{name}: labels must be integers, got dtype {dtype}.")
    if not (min_ndim <= len(shape) <= max_ndim):
        raise InputError(f"{name}: needs {min_ndim}D to {max_ndim}D labels, got {len(shape)}D with shape {shape}.")
    _size_check(data, name, max_bytes)


def check_labels(
    data, name: str = "labels", min_ndim: int = 2, max_ndim: int = 5, allow_empty: bool = True,
    max_bytes: int = MAX_BYTES,
) -> np.ndarray:
    """Check an integer label array (0 = background) and return it (not copied).

    Raises
    ------
    InputError
        If it is float, negative, empty, or the wrong dimensionality.
    """
    arr = np.asarray(data)
    check_labels_layout(arr, name, min_ndim, max_ndim, max_bytes)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise InputError(f"{name}: labels hold negative values (min {arr.min()}); use 0 for background.")
    if not allow_empty and not arr.any():
        raise InputError(f"{name}: the labels are all background (0); draw or load some foreground.")
    return arr


#: Axis letters a greyscale image may have (time, depth, rows, columns).
AXIS_LETTERS = "TZYX"


def check_axes(axes: str, shape: tuple, name: str = "image") -> str:
    """``axes`` upper-cased (``"TZYX"``...) when it fits an image of ``shape``; else :class:`InputError`.

    One letter per axis, no repeats, ending in ``YX``; letters from :data:`AXIS_LETTERS`. A channel
    axis (C) is refused: segment one channel at a time.
    """
    text = str(axes).strip().upper()
    if "C" in text:
        raise InputError(f"{name}: axes {axes!r} have a channel axis (C); segment one channel at a time.")
    if len(text) != len(shape):
        raise InputError(f"{name}: axes {axes!r} name {len(text)} axes, but the image has {len(shape)} "
                         f"(shape {tuple(shape)}).")
    bad = sorted(set(text) - set(AXIS_LETTERS))
    if bad or len(set(text)) != len(text) or not text.endswith("YX"):
        raise InputError(f"{name}: axes {axes!r}: use each of {', '.join(AXIS_LETTERS)} at most once, "
                         "ending in YX (for example TZYX).")
    return text
