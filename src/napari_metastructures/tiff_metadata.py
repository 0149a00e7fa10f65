"""Pixel sizes from TIFF metadata: our own description, ImageJ, OME-XML, resolution tags.

Sizes are in micrometres per pixel for X, Y and Z and in the file's time unit for T.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import tifffile

_UM_PER = {"m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0,
           "micrometer": 1.0, "nm": 1e-3, "nanometer": 1e-3, "pm": 1e-6, "Å": 1e-4}


def _pixel_sizes(tif: tifffile.TiffFile, series: Any) -> dict[str, Any]:
    """Pixel sizes per axis letter from (in order) our own description, OME, ImageJ, TIFF tags."""
    page = series.pages[0] if series.pages else tif.pages[0]
    out: dict[str, Any] = {"sizes": {}, "unit": None, "format": "tiff"}
    ours: dict[str, Any] = {}
    if tif.is_shaped and tif.shaped_metadata:
        ours = dict(tif.shaped_metadata[0])
    if tif.is_imagej and tif.imagej_metadata:
        ij = tif.imagej_metadata
        out["format"] = "imagej"
        ours = {k: ij[k] for k in ("scale", "translate", "layer_type") if k in ij}
        res = _resolution_um(page, unit_factor=_UM_PER.get(str(ij.get("unit", "")).strip(), 1.0))
        out["sizes"].update(res)
        if "spacing" in ij:
            out["sizes"]["Z"] = float(ij["spacing"]) * _UM_PER.get(str(ij.get("unit", "")).strip(), 1.0)
        if "finterval" in ij:
            out["sizes"]["T"] = float(ij["finterval"])
        labels = ij.get("Labels")
        if isinstance(labels, (list, tuple)) and all(isinstance(v, str) for v in labels):
            out["channels"] = list(labels)
        out["unit"] = "µm" if ij.get("unit") else None
    elif tif.is_ome and tif.ome_metadata:
        out["format"] = "ome-tiff"
        out["sizes"].update(_ome_sizes(tif.ome_metadata))
        out["unit"] = "µm"
        out["channels"] = _ome_channel_names(tif.ome_metadata)
    else:
        res = _resolution_um(page)
        out["sizes"].update(res)
        if res:
            out["unit"] = "µm"
    for key in ("scale", "translate"):
        value = ours.get(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            out[key] = [float(v) for v in value]
    if ours.get("layer_type") in ("image", "labels"):
        out["layer_type"] = ours["layer_type"]
    return out


def _resolution_um(page: Any, unit_factor: float | None = None) -> dict[str, float]:
    """X/Y pixel size in micrometres from XResolution/YResolution, or {} if absent or a screen default."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return {}
    xres, yres = (_rational(tags[k].value) for k in ("XResolution", "YResolution"))
    if not (xres > 0 and yres > 0):
        return {}
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    if unit_factor is None:
        if unit == 2:  # inch; 72/96/300 dpi are screen or print defaults, not a pixel size
            if round(xres) in (72, 96, 150, 300) and xres == yres:
                return {}
            unit_factor = 25400.0
        elif unit == 3:
            unit_factor = 1e4
        else:
            if xres == 1 and yres == 1:
                return {}
            unit_factor = 1.0
    return {"X": unit_factor / xres, "Y": unit_factor / yres}


def _rational(value: Any) -> float:
    if isinstance(value, tuple):
        return value[0] / value[1] if value[1] else 0.0
    return float(value)


def _ome_sizes(xml: str) -> dict[str, float]:
    """PhysicalSizeX/Y/Z (to micrometres) and TimeIncrement from OME-XML."""
    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.split("}")[-1] == "Pixels"), None)
    if pixels is None:
        return {}
    sizes: dict[str, float] = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
            sizes[axis] = float(value) * _UM_PER.get(unit, 1.0)
    if pixels.get("TimeIncrement") is not None:
        sizes["T"] = float(pixels.get("TimeIncrement"))
    return sizes


def _ome_channel_names(xml: str) -> list:
    """The ``Name`` of each OME ``Channel`` of the first image, in order ("" where unnamed)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return []
    pixels = next((e for e in root.iter() if e.tag.split("}")[-1] == "Pixels"), None)
    if pixels is None:
        return []
    return [c.get("Name", "") for c in pixels if c.tag.split("}")[-1] == "Channel"]

