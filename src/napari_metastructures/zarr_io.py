"""Lazy reading: TIFF files through tifffile's zarr store, and zarr arrays / OME-Zarr images.

Both give a dask array whose pixels are read only when a slice of it is computed (one block at a
time in :meth:`~.core.training.model.TrainedModel.predict`, one plane at a time in napari).
:func:`read_zarr` opens a plain zarr array directory or the first (full-resolution) level of an
OME-Zarr multiscale group, with axes, scale and translate from its metadata when they are simple:
OME ``multiscales`` axes and ``scale`` / ``translation`` transforms, or the ``axes`` / ``scale`` /
``translate`` attributes (and JSON sidecar) that our own zarr outputs carry.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .core.validate import InputError

ZARR_SUFFIX = ".zarr"


def is_zarr_path(path) -> bool:
    """True for a path named ``*.zarr`` (a directory store; it need not exist yet)."""
    return str(path).rstrip("/\\").lower().endswith(ZARR_SUFFIX)


def lazy_tiff(path: Path):
    """The first series of a TIFF as a dask array read through tifffile's zarr store (no pixels read)."""
    import dask.array as da
    import tifffile
    import zarr

    store = tifffile.imread(path, aszarr=True, series=0)
    z = zarr.open(store, mode="r")
    if not hasattr(z, "shape"):  # a pyramid: its first level
        z = z[sorted(z.array_keys())[0]] if hasattr(z, "array_keys") else z["0"]
    return da.from_zarr(z)


def drop_singletons_lazy(data, axes: str):
    """Drop length-1 axes other than Y and X by indexing (lazy for dask): 1xZxYX reads as ZYX."""
    keep = [n > 1 or a in "YX" for a, n in zip(axes, data.shape)]
    if all(keep):
        return data, axes
    index = tuple(slice(None) if k else 0 for k in keep)
    return data[index], "".join(a for a, k in zip(axes, keep) if k)


def _attrs(node) -> dict:
    a = dict(node.attrs)
    return dict(a.get("ome", a)) if "ome" in a and isinstance(a["ome"], dict) else a


def _ome_geometry(attrs: dict):
    """(dataset path, axes, scale, translate) of the first level of an OME-Zarr multiscale, or None."""
    ms = attrs.get("multiscales")
    if not isinstance(ms, list) or not ms or not isinstance(ms[0], dict):
        return None
    first = ms[0]
    datasets = first.get("datasets") or []
    if not datasets:
        return None
    level = datasets[0]
    names, unit = [], None
    for ax in first.get("axes") or []:
        names.append(str(ax.get("name", "?") if isinstance(ax, dict) else ax).upper()[:1])
        if isinstance(ax, dict) and ax.get("type") == "space" and ax.get("unit"):
            unit = str(ax["unit"])
    scale = translate = None
    for tr in level.get("coordinateTransformations") or []:
        if tr.get("type") == "scale" and "scale" in tr:
            scale = [float(s) for s in tr["scale"]]
        elif tr.get("type") == "translation" and "translation" in tr:
            translate = [float(t) for t in tr["translation"]]
    return str(level.get("path", "0")), "".join(names) or None, scale, translate, unit


def read_zarr(path: Path, lazy: bool = True, max_bytes: int | None = None) -> dict:
    """Open a zarr array directory or OME-Zarr image: a dict of ``data`` (dask, or numpy when not
    ``lazy``), ``axes`` (None when unknown), ``scale``, ``translate``, ``format`` and ``sidecar``."""
    import dask.array as da
    import zarr

    label = path.name
    if not path.is_dir():
        raise InputError(f"{label}: no such zarr directory ({path}).")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # noqa: BLE001 - zarr raises many types for a foreign directory
        raise InputError(f"{label}: not a readable zarr store ({type(err).__name__}: {err}).") from None
    axes = scale = translate = unit = None
    fmt = "zarr"
    if not hasattr(node, "shape"):  # a group: OME-Zarr, or one array in it
        geo = _ome_geometry(_attrs(node))
        if geo is None:
            keys = sorted(node.array_keys()) if hasattr(node, "array_keys") else []
            if not keys:
                raise InputError(f"{label}: a zarr group without an array or OME-Zarr multiscales metadata.")
            node = node[keys[0]]
        else:
            key, axes, scale, translate, unit = geo
            try:
                node = node[key]
            except KeyError:
                raise InputError(f"{label}: OME-Zarr level {key!r} is missing.") from None
            fmt = "ome-zarr"
    own = _attrs(node)
    axes = axes or own.get("axes")
    scale = scale or own.get("scale")
    translate = translate or own.get("translate")
    unit = unit or own.get("unit") or ("micrometer" if scale else None)
    side = path.with_name(path.name[: -len(ZARR_SUFFIX)] + ".json") if is_zarr_path(path) else None
    sidecar = None
    if side is not None and side.is_file():
        try:
            sidecar = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            sidecar = None
    if isinstance(sidecar, dict):
        axes = axes or sidecar.get("axes")
        scale = scale or sidecar.get("scale")
        translate = translate or sidecar.get("translate")
    else:
        sidecar = None
    ndim = len(node.shape)
    if axes is not None and len(axes) != ndim:
        axes = None
    scale = [float(s) for s in scale] if scale is not None and len(scale) == ndim else None
    translate = [float(t) for t in translate] if translate is not None and len(translate) == ndim else None
    if lazy:
        data = da.from_zarr(node)
    else:
        need = int(np.prod(node.shape, dtype=np.int64)) * np.dtype(node.dtype).itemsize
        if max_bytes is not None and need > max_bytes:
            raise InputError(f"{label}: {tuple(node.shape)} {node.dtype} needs {need / 1024**3:.1f} GiB, more "
                             f"than the {max_bytes / 1024**3:.1f} GiB limit; open it lazily.")
        data = np.asarray(node[...])
    return {"data": data, "axes": axes, "scale": scale, "translate": translate, "format": fmt,
            "sidecar": sidecar, "unit": unit}


def read_zarr_image(path: Path, max_bytes: int, lazy) :
    """:func:`~.io.read_image` for a ``.zarr`` directory (lazy unless ``lazy`` is False)."""
    from .io import AXES_BY_NDIM, ImageFile, _drop_singletons

    label = path.name
    got = read_zarr(path, lazy=lazy is not False, max_bytes=max_bytes)
    data = got["data"]
    axes = (got["axes"] or AXES_BY_NDIM.get(data.ndim, "")).upper()
    if not 2 <= data.ndim <= 5 or len(axes) != data.ndim:
        raise InputError(f"{label}: needs 2D to 5D data, got shape {tuple(data.shape)}.")
    scale = tuple(got["scale"] or (1.0,) * data.ndim)
    translate = tuple(got["translate"] or (0.0,) * data.ndim)
    data, kept = _drop_singletons(data, axes)
    if kept != axes:
        idx = [i for i, (a, n) in enumerate(zip(axes, got["data"].shape)) if n > 1 or a in "YX"]
        scale, translate = tuple(scale[i] for i in idx), tuple(translate[i] for i in idx)
    if int(np.prod(data.shape, dtype=np.int64)) == 0:
        raise InputError(f"{label}: the image is empty (shape {tuple(data.shape)}).")
    side = got["sidecar"] or {}
    metadata = {"source": str(path), "axes": kept, "unit": got["unit"],
                "format": got["format"], "lazy": not isinstance(data, np.ndarray)}
    if side:
        metadata["params"] = side.get("params", side)
    layer_type = side.get("layer_type", "image") if side else "image"
    if layer_type == "labels" and not np.issubdtype(data.dtype, np.integer):
        layer_type = "image"
    return ImageFile(data=data, scale=scale, translate=translate, axes=kept, name=path.name[: -len(ZARR_SUFFIX)],
                     metadata=metadata, layer_type=layer_type)


def zarr_attrs(arr, axes: str, scale, translate, layer_type: str) -> None:
    """Record our geometry in a zarr output's attributes (the JSON sidecar has it too)."""
    arr.attrs.update({"axes": axes, "scale": [float(s) for s in scale],
                      "translate": [float(t) for t in translate], "layer_type": layer_type})
