"""Images larger than memory: read one block at a time, write outputs to zarr when they are big.

A *block* is what prediction preprocesses as one: the last two axes (a 2D plane) or the last three
(a ZYX volume). :func:`block_indices` lists the index tuples over the leading axes and
:func:`read_block` reads one of them, so a dask array, a zarr array or a TIFF opened through
tifffile's zarr store is never read whole. :func:`output_array` gives a numpy array for outputs up
to :data:`OUTPUT_LIMIT` and a zarr array on disk above it; :func:`finish_store` moves a finished
store from its ``.partial`` name to its final one, so a failed run leaves no half store behind.

Memory for a prediction is then one block of input, one block of output and the output array
itself when it is in memory (a zarr output costs one chunk).
"""
from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

#: Outputs (bytes) above this go to a zarr store instead of memory (1 GiB).
OUTPUT_LIMIT = 1 << 30
#: Suffix of a store that is still being written; renamed away by :func:`finish_store`.
PARTIAL = ".partial"
_TEMP_PREFIX = "metastructures-"
_temp_dirs: list[Path] = []  # temporary stores made by this process, removed at exit


def is_lazy(a) -> bool:
    """True for an array-like that is not a numpy array (dask, zarr, a tifffile zarr store...)."""
    if isinstance(a, np.ndarray):
        return False
    return all(hasattr(a, k) for k in ("shape", "dtype", "__getitem__"))


def block_indices(shape, block_ndim: int) -> list[tuple]:
    """Index tuples over the leading axes of ``shape``; each selects one block of the last
    ``block_ndim`` axes (2: planes, 3: ZYX volumes). A 2D shape gives ``[()]``, the whole image."""
    shape = tuple(int(n) for n in shape)
    lead = shape[: max(len(shape) - int(block_ndim), 0)]
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*lead)]


def read_block(data, index: tuple) -> np.ndarray:
    """One block of ``data`` as a numpy array; for dask, only that slice is computed.

    A numpy input gives a view (no copy), so in-memory results are exactly those of slicing.
    """
    block = data[tuple(index)]
    if hasattr(block, "compute"):  # dask
        block = block.compute(**_scheduler())
    return np.asarray(block)


def _scheduler() -> dict:
    """Inside a dask.distributed worker, compute a block in that worker (the client's graph
    cannot carry our zarr-backed arrays); elsewhere, dask's default scheduler."""
    if "distributed" not in sys.modules:
        return {}
    try:
        sys.modules["distributed"].get_worker()
    except (ValueError, AttributeError):
        return {}
    return {"scheduler": "synchronous"}


def sample_blocks(shape, block_ndim: int, budget_px: int, seed: int, only=None) -> list[tuple]:
    """An evenly spread, seeded sample of block indices holding at most ``budget_px`` pixels
    (always at least one block), in order. ``only`` restricts the choice to those indices.

    The blocks are one every ``len / n`` with a seeded random start, so a time-lapse is sampled
    over its whole length rather than at its beginning. Same arguments, same sample.
    """
    shape = tuple(int(n) for n in shape)
    pool = [tuple(i) for i in only] if only is not None else block_indices(shape, block_ndim)
    if not pool:
        return []
    per_block = int(np.prod(shape[-int(block_ndim):], dtype=np.int64))
    n = int(min(len(pool), max(1, int(budget_px) // max(per_block, 1))))
    step = len(pool) / n
    start = np.random.default_rng(seed).uniform(0.0, step)
    picks = np.minimum(np.floor(start + step * np.arange(n)).astype(np.int64), len(pool) - 1)
    return [pool[i] for i in picks]


def nbytes(shape, dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype``."""
    return int(np.prod(tuple(shape), dtype=np.int64)) * np.dtype(dtype).itemsize


def plane_chunks(shape) -> tuple:
    """Chunks of one 2D plane each: the smallest block, so slice and volume writes both fill whole chunks."""
    shape = tuple(int(n) for n in shape)
    return (1,) * (len(shape) - 2) + shape[-2:]


def output_array(shape, dtype, limit: int = OUTPUT_LIMIT, store=None, chunks=None):
    """An array to write results into: numpy when it takes at most ``limit`` bytes, else zarr.

    Parameters
    ----------
    shape, dtype
        Of the output.
    limit : int
        Bytes up to which the output stays in memory (default :data:`OUTPUT_LIMIT`, 1 GiB).
    store : path, optional
        Where a zarr output goes: a path ending ``.zarr``. It is written under ``<store>.partial``
        and only gets its final name from :func:`finish_store`. None: a new temporary directory,
        removed when the process exits (or by :func:`remove_store`).
    chunks : tuple, optional
        zarr chunks (default: one 2D plane per chunk, :func:`plane_chunks`).

    Returns
    -------
    numpy.ndarray (uninitialised) or zarr.Array (filled with 0)
    """
    shape = tuple(int(n) for n in shape)
    if nbytes(shape, dtype) <= int(limit):
        return np.empty(shape, dtype)
    if store is None:
        tmp = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
        _temp_dirs.append(tmp)
        path = tmp / "output.zarr"
    else:
        final = Path(store)
        if final.suffix.lower() != ".zarr":
            raise ValueError(f"{final.name}: a zarr store's name must end in .zarr")
        path = final.with_name(final.name + PARTIAL)
        _remove(path)  # left by a run that was killed
    return _create(path, shape, dtype, chunks or plane_chunks(shape))


def _zarr_major() -> int:
    import zarr

    return int(str(zarr.__version__).split(".")[0])


def _create(path: Path, shape: tuple, dtype, chunks: tuple):
    import zarr

    # format 2: readable by zarr 2 and 3 alike (and by dask.array.from_zarr)
    extra = {"zarr_format": 2} if _zarr_major() >= 3 else {}
    return zarr.create(shape=shape, chunks=tuple(int(c) for c in chunks), dtype=np.dtype(dtype), fill_value=0,
                       store=str(path), overwrite=True, **extra)


def store_path(arr) -> Path | None:
    """The directory of a zarr array on local disk (zarr 2 or 3); None for anything else."""
    store = getattr(arr, "store", None)
    for key in ("root", "path", "dir_path"):  # zarr 3 LocalStore, zarr 2 DirectoryStore
        value = getattr(store, key, None)
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
    return None


def is_temporary(path) -> bool:
    """True for a store that :func:`output_array` made in a temporary directory."""
    return path is not None and Path(path).parent in _temp_dirs


def finish_store(arr) -> Path | None:
    """Give a finished zarr output (``arr`` or its path) its final name; returns that path.

    ``<name>.zarr.partial`` becomes ``<name>.zarr``, replacing an older store of that name (moved
    aside first, then removed). A temporary store, or a numpy array (None returned), needs nothing.
    ``arr`` still points at the old name afterwards: read the result with :func:`open_store`.
    """
    path = arr if isinstance(arr, (str, Path)) else store_path(arr)
    if path is None:
        return None
    path = Path(path)
    if not path.name.endswith(PARTIAL):
        return path
    final = path.with_name(path.name[: -len(PARTIAL)])
    old = final.with_name(f".{final.name}.old")
    _remove(old)
    if final.exists():
        final.rename(old)
    path.rename(final)
    _remove(old)
    return final


def open_store(path, mode: str = "r"):
    """A zarr array on disk (``mode="r"``: read-only), e.g. one :func:`finish_store` returned."""
    import zarr

    return zarr.open_array(str(path), mode=mode)


def remove_store(arr) -> None:
    """Delete a zarr output (``arr`` or its path) that will not be finished: a ``.partial`` store or a
    temporary one (with its temporary directory). Never touches a finished store or a numpy array."""
    path = arr if isinstance(arr, (str, Path)) else store_path(arr)
    if path is None:
        return
    path = Path(path)
    if is_temporary(path):
        _remove(path.parent)
        _temp_dirs.remove(path.parent)
    elif path.name.endswith(PARTIAL):
        _remove(path)


def cleanup_temp_stores() -> None:
    """Remove every temporary store this process made (also run at exit)."""
    while _temp_dirs:
        _remove(_temp_dirs.pop())


atexit.register(cleanup_temp_stores)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def threshold_into(prob, out, threshold: float = 0.5, block_ndim: int = 2):
    """``out[...] = prob > threshold`` as uint8, one block at a time (either may be numpy or zarr)."""
    for idx in block_indices(prob.shape, block_ndim):
        out[idx] = (read_block(prob, idx) > threshold).astype(np.uint8)
    return out


def mean_above(prob, threshold: float = 0.5, block_ndim: int = 2) -> float:
    """Fraction of pixels above ``threshold``, read one block at a time."""
    total = 0
    for idx in block_indices(prob.shape, block_ndim):
        total += int(np.count_nonzero(read_block(prob, idx) > threshold))
    return total / max(int(np.prod(prob.shape, dtype=np.int64)), 1)


#: Pixels :func:`check_image_lazy` reads to look for NaN / inf (16 Mpx: a few planes).
CHECK_PX = 1 << 24


def check_image_lazy(data, name: str = "image", budget_px: int = CHECK_PX, seed: int = 0):
    """:func:`..validate.check_image` for an image that may not fit in memory.

    A numpy array gets the full check. Otherwise the layout (shape, dtype, dimensionality) is
    checked without reading pixels, with no size limit, and a seeded sample of planes of at most
    ``budget_px`` pixels (:func:`sample_blocks`) is read to look for NaN or infinite values.
    Returns ``data`` unchanged.
    """
    from .validate import InputError, check_image, check_image_layout

    if not is_lazy(data):
        return check_image(data, name=name)
    check_image_layout(data, name, max_bytes=np.iinfo(np.int64).max)
    if np.issubdtype(np.dtype(data.dtype), np.floating):
        for idx in sample_blocks(data.shape, 2, budget_px, seed):
            if not np.isfinite(read_block(data, idx)).all():
                where = f" (plane {idx})" if idx else ""
                raise InputError(f"{name}: contains NaN or infinite values{where}; fill or crop them first.")
    return data
