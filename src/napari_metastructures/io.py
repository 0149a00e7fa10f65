"""TIFF / OME-TIFF reading and writing, pixel size <-> layer scale, and the npe2 hooks.

Scale is in micrometres per pixel for X, Y and Z and in the file's time unit for T;
axes without a physical size (C, S, ...) get 1.

Pixel sizes are read by :mod:`.tiff_metadata`. Writing is atomic (:func:`.core.atomic.atomic_write`):
data go to a temporary file beside the target, which then replaces the target with ``os.replace``;
a failed write leaves no file behind.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from napari_metastructures import __version__
from napari_metastructures.core import jsonsafe
from napari_metastructures.core.atomic import atomic_write, atomic_write_text
from napari_metastructures.core.validate import MAX_BYTES, InputError
from napari_metastructures.layer_axes import layer_axes, layers_take_axes  # noqa: F401 (re-exported)
from napari_metastructures.tiff_metadata import _ome_sizes, _pixel_sizes, _rational  # noqa: F401 (re-exported)

TIFF_SUFFIXES = (".tif", ".tiff")
#: Axis orders used when writing N-D data (ImageJ hyperstack order).
AXES_BY_NDIM = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TZCYX"}
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


@dataclass
class ImageFile:
    """An image read from disk, with what napari needs to place it."""

    data: np.ndarray
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    axes: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    layer_type: str = "image"

    @property
    def pixel_size_um(self) -> float | None:
        """µm per pixel in y and x, or None when the file gives no pixel size."""
        from .core.units import pixel_size_um

        return pixel_size_um(self.scale, [self.metadata.get("unit")] * len(self.scale))

    @property
    def anisotropy(self) -> float:
        """z step / pixel size (1.0 without a Z axis or without sizes): how ortho planes resample z."""
        if "Z" not in (self.axes or "") or self.pixel_size_um is None:
            return 1.0
        return float(self.scale[self.axes.index("Z")]) / self.pixel_size_um


def with_axes(image: ImageFile, axes: str | None) -> ImageFile:
    """``image`` with the axes the user gave (``--axes``) instead of the file's; None keeps them."""
    from dataclasses import replace

    from .core.validate import check_axes

    if not axes:
        return image
    text = check_axes(axes, image.data.shape, name=Path(str(image.metadata.get("source", image.name))).name)
    return replace(image, axes=text, metadata={**image.metadata, "axes": text, "axes_from": "--axes"})


# ---------------------------------------------------------------- reading

#: ``read_image(lazy="auto")`` reads files with more pixel bytes than this lazily (1 GiB).
LAZY_ABOVE = 1 << 30


def read_image(path: str | os.PathLike, max_bytes: int = MAX_BYTES, lazy: bool | str | None = None) -> ImageFile:
    """Read a TIFF or OME-TIFF (2D to 5D), or a zarr array / OME-Zarr image, with its pixel size as scale.

    Parameters
    ----------
    path : str or PathLike
        A ``.tif`` / ``.tiff`` / ``.ome.tif`` file, or a ``.zarr`` directory (see :mod:`.zarr_io`).
    max_bytes : int
        Refuse files whose pixel data would take more memory than this (not applied when lazy).
    lazy : bool, "auto" or None
        True: ``data`` is a dask array and no pixels are read until a slice of it is computed
        (TIFF through tifffile's zarr store). "auto": lazy for files above :data:`LAZY_ABOVE`
        bytes of pixels. False: read into memory. None (default): TIFFs into memory, zarr
        stores lazily. Lazy TIFFs are not checked for truncation until read.

    Returns
    -------
    ImageFile

    Raises
    ------
    InputError
        If the file is missing, empty, not a TIFF, corrupt, too large, or not 2D to 5D.
    """
    path = Path(path)
    label = path.name
    from .zarr_io import is_zarr_path, read_zarr_image

    if is_zarr_path(path):
        return read_zarr_image(path, max_bytes, lazy)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"{label}: unsupported file type '{path.suffix}'; this reader opens .tif/.tiff files.")
    if not path.is_file():
        raise InputError(f"{label}: no such file ({path}).")
    if path.stat().st_size == 0:
        raise InputError(f"{label}: the file is empty (0 bytes).")
    try:
        with _tifffile_warnings() as warned, tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise InputError(f"{label}: the TIFF holds no images.")
            series = tif.series[0]
            axes = series.axes
            need = int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize
            lazily = lazy is True or (lazy == "auto" and need > LAZY_ABOVE)
            if need > max_bytes and not lazily:
                raise InputError(
                    f"{label}: {series.shape} {series.dtype} needs {need / 1024**3:.1f} GiB, more than the "
                    f"{max_bytes / 1024**3:.1f} GiB limit; crop it or split it first."
                )
            data = None if lazily else series.asarray()
            info = _pixel_sizes(tif, series)
            n_series = len(tif.series)
        bad = [w for w in warned if any(k in w.lower() for k in _CORRUPT_HINTS)]
        if bad:
            raise InputError(f"{label}: the file looks truncated or corrupt ({bad[0]}).")
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{label}: not enough memory to load it; crop it or split it first.") from None
    except Exception as err:  # tifffile raises many types for broken files
        raise InputError(f"{label}: not a readable TIFF file (corrupt or truncated?): {err}") from None

    if data is None:  # lazy: pixels through tifffile's zarr store, read when a slice is computed
        from .zarr_io import lazy_tiff

        try:
            data = lazy_tiff(path)
        except Exception as err:  # noqa: BLE001 - tifffile/zarr versions that cannot pair, broken files
            raise InputError(f"{label}: cannot open it lazily ({type(err).__name__}: {err}).") from None
    raw_axes = axes
    data, axes = _drop_singletons(data, axes)
    if data.size == 0:
        raise InputError(f"{label}: the image is empty (shape {data.shape}).")
    spatial = axes.replace("S", "") if axes.endswith("S") else axes
    if not 2 <= len(spatial) <= 5:
        raise InputError(f"{label}: needs 2D to 5D data, got axes '{axes}' with shape {data.shape}.")
    sizes = dict(info["sizes"])
    offsets: dict[str, float] = {}
    n_written = len(info.get("scale") or ())  # the file's own axes name its stored scale
    written = raw_axes if len(raw_axes) == n_written else AXES_BY_NDIM.get(n_written)
    if written:  # our own file: exact scale/translate, matched by axis letter
        sizes.update(zip(written, info["scale"]))
        if len(info.get("translate") or ()) == len(written):
            offsets.update(zip(written, info["translate"]))
    scale = tuple(float(sizes.get(a, 1.0)) for a in axes)
    translate = tuple(float(offsets.get(a, 0.0)) for a in axes)
    metadata = {"source": str(path), "axes": axes, "unit": info.get("unit"), "format": info["format"]}
    if not isinstance(data, np.ndarray):
        metadata["lazy"] = True
    if "C" in axes:
        n = data.shape[axes.index("C")]
        names = [str(c) for c in (info.get("channels") or [])]
        metadata["channels"] = [names[i] if i < len(names) and names[i] else f"c{i}" for i in range(n)]
    if warned:
        metadata["warnings"] = list(warned)
    if n_series > 1:
        metadata["note"] = f"file holds {n_series} series; only the first was read"
    sidecar = _read_sidecar(path)
    if sidecar is not None:
        metadata["params"] = sidecar.get("params", sidecar)
    layer_type = info.get("layer_type", "image")
    if layer_type == "labels" and not np.issubdtype(data.dtype, np.integer):
        layer_type = "image"
    return ImageFile(data=data, scale=scale, translate=translate, axes=axes, name=_stem(path),
                     metadata=metadata, layer_type=layer_type)


_CORRUPT_HINTS = ("corrupt", "invalid page offset", "invalid offset", "truncated", "unexpected end")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _tifffile_warnings():
    """Collect what tifffile logs while reading (it logs, rather than raises, on many broken files)."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _drop_singletons(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Drop length-1 axes other than Y and X, so a 1xZxYX file reads as ZYX."""
    if not isinstance(data, np.ndarray):
        from .zarr_io import drop_singletons_lazy

        return drop_singletons_lazy(data, axes)
    keep = [i for i, (a, n) in enumerate(zip(axes, data.shape)) if n > 1 or a in "YX"]
    if len(keep) == data.ndim:
        return data, axes
    return data.reshape([data.shape[i] for i in keep]), "".join(axes[i] for i in keep)


def _read_sidecar(path: Path) -> dict | None:
    side = path.with_name(_stem(path) + ".json")
    if not side.is_file():
        return None
    try:
        value = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------- writing

def write_tiff(
    path: str | os.PathLike,
    data: np.ndarray,
    scale: tuple[float, ...] | None = None,
    params: dict | None = None,
    layer_type: str = "image",
    translate: tuple[float, ...] | None = None,
    axes: str | None = None,
) -> Path:
    """Write an image or labels array (2D to 5D) to TIFF, atomically, keeping its scale.

    X/Y scale goes into XResolution/YResolution (pixels per micrometre), Z scale into the
    ImageJ ``spacing``, T into ``finterval``; the full scale, translate and layer type also
    go into the description so our reader restores them exactly. uint8, uint16 and float32
    data are written as ImageJ hyperstacks (axes ``YX``, ``ZYX``, ``TZYX``, ``TZCYX``);
    other dtypes (e.g. int32/uint32 labels) as plain TIFF with resolution in pixels per cm.

    Parameters
    ----------
    path : str or PathLike
        Target file; ``.tif`` is added if it has no TIFF suffix.
    data : ndarray
        2D to 5D array; bool is stored as uint8.
    scale : tuple of float, optional
        Pixel size per axis (default 1).
    params : dict, optional
        Parameters that made the data; written with the scale to a JSON sidecar
        ``<stem>.json`` beside the TIFF (atomically too).
    layer_type : {"image", "labels"}
        Stored in the description; our reader opens labels files as Labels layers.
    translate : tuple of float, optional
        Layer offset per axis, stored in the description.
    axes : str, optional
        The data's axes (e.g. ``"CZYX"`` from the input); default by dimension (``YX``, ``ZYX``,
        ``TZYX``, ``TZCYX``). Axes out of ImageJ's ``TZCYX`` order are written as plain TIFF, so
        they are kept as given.

    Returns
    -------
    Path
        The written TIFF.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        path = path.with_name(path.name + ".tif")
    arr = np.asarray(data)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim not in AXES_BY_NDIM:
        raise InputError(f"{path.name}: can write 2D to 5D data, got shape {arr.shape}.")
    if arr.size == 0:
        raise InputError(f"{path.name}: nothing to write, the data are empty (shape {arr.shape}).")
    scale = tuple(float(s) for s in (scale if scale is not None else (1.0,) * arr.ndim))
    translate = tuple(float(t) for t in (translate if translate is not None else (0.0,) * arr.ndim))
    if len(scale) != arr.ndim or len(translate) != arr.ndim:
        raise InputError(f"{path.name}: scale {scale} / translate {translate} do not match {arr.ndim}D data.")
    if not all(np.isfinite(s) and s > 0 for s in scale):
        raise InputError(f"{path.name}: scale must be positive numbers, got {scale}.")
    axes = _axes_for(axes, arr.ndim)
    sy, sx = scale[-2], scale[-1]
    extra = {"scale": list(scale), "translate": list(translate), "layer_type": layer_type}
    if arr.dtype in _IMAGEJ_DTYPES and _imagej_order(axes):
        meta: dict[str, Any] = {"axes": axes, "unit": "micron", **extra}
        if "Z" in axes:
            meta["spacing"] = scale[axes.index("Z")]
        if "T" in axes:
            meta["finterval"] = scale[axes.index("T")]
        meta["scale"], meta["translate"] = json.dumps(meta["scale"]), json.dumps(meta["translate"])
        kwargs: dict[str, Any] = dict(imagej=True, resolution=(1 / sx, 1 / sy), metadata=meta)
    else:
        kwargs = dict(photometric="minisblack", resolution=(1e4 / sx, 1e4 / sy), resolutionunit="CENTIMETER",
                      metadata={"axes": axes, "unit": "micrometer", **extra})
    atomic_write(path, lambda tmp: tifffile.imwrite(tmp, arr, software="napari-metastructures", **kwargs))
    if params is not None:
        side = {"image": path.name, "layer_type": layer_type, "shape": list(arr.shape), "dtype": str(arr.dtype),
                "scale": list(scale), "translate": list(translate), "params": _jsonable(params),
                "written_by": f"napari-metastructures {__version__}"}
        text = jsonsafe.dumps(side, indent=2, ensure_ascii=False)
        atomic_write_text(path.with_name(_stem(path) + ".json"), text)
    return path


def _axes_for(axes: str | None, ndim: int) -> str:
    """``axes`` when they name each dimension once from T, Z, C, Y, X and end in YX; else the default."""
    if (isinstance(axes, str) and len(axes) == ndim and axes.endswith("YX") and set(axes) <= set("TZCYX")
            and len(set(axes)) == ndim):
        return axes
    return AXES_BY_NDIM[ndim]


def _imagej_order(axes: str) -> bool:
    order = "TZCYX"
    return [order.index(a) for a in axes] == sorted(order.index(a) for a in axes)


def _jsonable(value: Any, max_items: int = 1000) -> Any:
    """A JSON-safe copy: numpy scalars to Python, small arrays to lists, big ones described."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, max_items) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, max_items) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= max_items:
            return _jsonable(value.tolist(), max_items)
        return f"<array shape={list(value.shape)} dtype={value.dtype}>"
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# ---------------------------------------------------------------- npe2 hooks

def napari_get_reader(path: str | list[str]) -> Callable | None:
    """npe2 reader hook: a reader for TIFF paths, ``None`` for anything else."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(str(p).lower().endswith(TIFF_SUFFIXES) for p in paths):
        return None
    if not all(_worth_reading(Path(p)) for p in paths):
        return None  # napari's own or napari-tiff's reader does as well, or lazily
    return read_layers


def _worth_reading(path: Path) -> bool:
    """True when this reader adds something for ``path``: pixel sizes, axes or channel names (OME,
    ImageJ, resolution tags, our own files and sidecars), in memory. False for a plain TIFF without
    any of them, and for one larger than :data:`MAX_BYTES` (a lazy reader serves it better). Reads
    the header only. A missing or broken file is ours, so the user gets our message."""
    if not path.is_file() or path.stat().st_size == 0:
        return True
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize > MAX_BYTES:
                return False
            if tif.is_ome or tif.is_imagej or _read_sidecar(path) is not None:
                return True
            if tif.is_shaped and set(tif.shaped_metadata[0] or {}) - {"shape"}:
                return True
            unit = tif.pages[0].tags.get("ResolutionUnit")
            return unit is not None and int(unit.value) != 1  # 1: no unit
    except Exception:  # noqa: BLE001 - anything tifffile cannot parse: read_layers says why
        return True


def read_layers(path: str | list[str]) -> list[tuple]:
    """Read one or more TIFF files as napari LayerData tuples.

    Raises
    ------
    InputError
        With the file name and the problem, for a corrupt, empty or unsupported file
        (napari shows the message as a notification).
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers = []
    for p in paths:
        img = read_image(p)
        meta = {"name": img.name, "metadata": img.metadata}
        scale, translate = img.scale, img.translate
        if img.axes.endswith("S") and img.data.shape[-1] in (3, 4):
            meta["rgb"] = True
            scale, translate = scale[:-1], translate[:-1]
        axes = img.axes.replace("S", "") if meta.get("rgb") else img.axes
        if "C" in axes and img.layer_type == "image":  # one layer per channel, named by the file
            c = axes.index("C")
            meta["channel_axis"] = c
            meta["name"] = [f"{img.name} {n}" for n in img.metadata["channels"]]
            scale, translate = scale[:c] + scale[c + 1:], translate[:c] + translate[c + 1:]
            axes = axes.replace("C", "")
            meta["metadata"] = {**img.metadata, "axes": axes}  # each layer's own axes
        meta["scale"], meta["translate"] = scale, translate
        if layers_take_axes():  # napari >= 0.6: sliders read "t", "z" and sizes in µm
            meta["axis_labels"], meta["units"] = layer_axes(axes, img.metadata.get("unit"))
        layers.append((img.data, meta, img.layer_type))
    return layers


def napari_write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 single-layer writer for Labels: TIFF keeping scale (and metadata as a JSON sidecar)."""
    return [str(_write_layer(path, data, meta, "labels"))]


def napari_write_image(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 single-layer writer for Images: TIFF keeping scale (and metadata as a JSON sidecar)."""
    return [str(_write_layer(path, data, meta, "image"))]


def _write_layer(path: str, data: Any, meta: dict, layer_type: str) -> Path:
    if isinstance(data, (list, tuple)):  # multiscale: write the full-resolution level
        data = data[0]
    arr = np.asarray(data)
    if meta.get("rgb"):
        raise InputError(
            f"{meta.get('name', path)}: RGB images are not written by napari-metastructures; "
            "save with napari's own TIFF writer, or split the channels first."
        )
    layer_meta = meta.get("metadata") or {}
    params = _jsonable(layer_meta) if layer_meta else None
    return write_tiff(path, arr, scale=meta.get("scale"), translate=meta.get("translate"),
                      params=params, layer_type=layer_type)


# ---------------------------------------------------------------- bundled nuclei

NUCLEI_DIR = Path(__file__).parent / "sample_data" / "nuclei"
#: Stems of the bundled DSB2018 nuclei images (see sample_data/nuclei/SOURCE.md).
NUCLEI_STEMS = ("10328b822b836e67", "1c681dfa5cf7e413", "4c465a54e329ec7b")


def load_nuclei_sample(index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One bundled nuclei image: (image uint8, mask uint8 0/1, instance labels uint16)."""
    stem = NUCLEI_STEMS[index]
    return tuple(tifffile.imread(NUCLEI_DIR / sub / f"{stem}.tif") for sub in ("images", "masks", "labels"))
