"""Layer helpers shared by the dock widgets: frozen inputs and in-place output layers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FrozenLayer:
    """What a run needs from a layer, taken at launch.

    In-memory data is copied, so later edits of the layer cannot reach the run. A lazy array (dask,
    zarr; one level of a multiscale layer, full resolution unless ``level`` says otherwise) is kept
    as a reference: its pixels are read in the worker, never on the GUI thread. A level's scale is
    the layer's times the downsampling (level 0 shape / level shape), its translate the layer's, so
    its outputs sit where napari draws that level.
    """

    name: str
    data: np.ndarray
    scale: tuple
    translate: tuple
    metadata: dict = field(default_factory=dict)
    axis_labels: tuple | None = None
    units: tuple | None = None
    level: int | None = None  # the multiscale level used (None: not multiscale)
    source_path: str | None = None  # the file the layer was read from, when napari knows it

    @classmethod
    def from_layer(cls, layer, level: int = 0) -> FrozenLayer:
        scale = np.asarray(layer.scale, dtype=float)
        level_used = None
        if getattr(layer, "multiscale", False):
            level_used = min(max(int(level), 0), len(layer.data) - 1)
            full, part = np.asarray(layer.data[0].shape, float), np.asarray(layer.data[level_used].shape, float)
            scale = scale * full / part
        path = getattr(getattr(layer, "source", None), "path", None)
        return cls(
            name=layer.name,
            data=_frozen_data(layer, level_used or 0),
            scale=tuple(float(v) for v in scale),
            translate=tuple(np.asarray(layer.translate, dtype=float)),
            metadata=dict(layer.metadata),
            level=level_used,
            source_path=str(path) if path else None,
            **axes_of(layer),
        )

    def geometry(self) -> dict:
        """Layer keyword arguments that place an output like this input: scale, translate, axes."""
        out = {"scale": self.scale, "translate": self.translate}
        if self.axis_labels is not None:
            out.update(axis_labels=self.axis_labels, units=self.units)
        return out

    @property
    def axes(self) -> str | None:
        """The axes our reader recorded (``"TZYX"``...), when they fit the data; else None."""
        axes = self.metadata.get("axes")
        return axes if isinstance(axes, str) and len(axes) == np.ndim(self.data) else None


def guess_axes(layer) -> str | None:
    """The axes of a layer (``"TZYX"``...): our reader's ``metadata["axes"]``, else napari axis
    labels that are single axis letters; None when neither says. Reads no pixels."""
    ndim = len(layer.data[0].shape if getattr(layer, "multiscale", False) else layer.data.shape)
    axes = (layer.metadata or {}).get("axes")
    if isinstance(axes, str) and len(axes) == ndim:
        return axes.upper()
    labels = "".join(str(a) for a in getattr(layer, "axis_labels", ()) or ()).upper()
    if len(labels) == ndim and set(labels) <= set("TZYX") and len(set(labels)) == ndim:
        return labels
    return None


def layer_pixel_size(layer) -> float | None:
    """µm per pixel of a layer from its scale and units (napari's, else our reader's), or None."""
    from ..core.units import pixel_size_um

    units = getattr(layer, "units", None)
    if units is None or all(str(u) == "pixel" for u in units):  # napari's default says nothing
        units = [layer.metadata.get("unit")] * len(layer.scale) if layer.metadata.get("unit") else None
    return pixel_size_um(layer.scale, units)


def axes_of(layer) -> dict:
    """``axis_labels`` and ``units`` of a layer (napari >= 0.6), as layer keyword arguments; else {}."""
    labels, units = getattr(layer, "axis_labels", None), getattr(layer, "units", None)
    if labels is None or units is None:
        return {}
    return {"axis_labels": tuple(str(a) for a in labels), "units": tuple(str(u) for u in units)}


def _frozen_data(layer, level: int = 0):
    data = layer.data[level] if getattr(layer, "multiscale", False) else layer.data
    return np.array(data, copy=True) if isinstance(data, np.ndarray) else data


def move_view_to_selection(dims, frozen: FrozenLayer, selection) -> None:
    """Move the viewer's ``dims`` to the first selected slice (first axis of ``frozen``, in world
    coordinates) unless the slice on screen is one of them."""
    if not selection or np.ndim(frozen.data) < 3 or not isinstance(frozen.data, np.ndarray):
        return  # a lazy layer stays where it is: napari would read the new plane on the GUI thread
    axis = dims.ndim - np.ndim(frozen.data)  # the layer's first axis among the viewer's
    world = frozen.translate[0] + frozen.scale[0] * np.arange(np.shape(frozen.data)[0])
    if int(np.argmin(np.abs(world - dims.point[axis]))) not in selection:
        dims.set_point(axis, float(world[selection[0]]))


def upsert_layer(
    viewer,
    name: str,
    data: np.ndarray,
    kind: str = "labels",
    scale=None,
    translate=None,
    metadata: dict[str, Any] | None = None,
    **kwargs,
):
    """Update layer ``name`` in place when it exists with the same kind, else add it.

    Returns the layer. ``kind`` is "labels" or "image".
    """
    from napari.layers import Image, Labels

    layer_class = Labels if kind == "labels" else Image
    existing = viewer.layers[name] if name in viewer.layers else None
    if existing is not None and isinstance(existing, layer_class) and existing.data.ndim == data.ndim:
        existing.data = data
        if scale is not None:
            existing.scale = scale
        if translate is not None:
            existing.translate = translate
        if metadata is not None:
            existing.metadata = dict(metadata)
        for key, value in kwargs.items():
            setattr(existing, key, value)
        return existing
    if existing is not None:
        viewer.layers.remove(existing)
    add = viewer.add_labels if kind == "labels" else viewer.add_image
    opts = dict(name=name, metadata=dict(metadata or {}), **kwargs)
    if scale is not None:
        opts["scale"] = scale
    if translate is not None:
        opts["translate"] = translate
    return add(data, **opts)


def unique_name(viewer, base: str) -> str:
    """``base`` if free, else ``base [2]``, ``base [3]``..."""
    if base not in viewer.layers:
        return base
    k = 2
    while f"{base} [{k}]" in viewer.layers:
        k += 1
    return f"{base} [{k}]"
