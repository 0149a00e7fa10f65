"""Physical units for structure sizes: the pixel size of an image, and µm <-> px.

Structure sizes (haze-removal sigma, local contrast window, EMS radius, ridge sigmas, density
bandwidth) are set in µm when the image has a pixel size and in px when it has none. Crop and tile
sizes always stay in px. Our pixel defaults were made for about 65 nm pixels (a 100x objective on a
6.5 µm camera pixel); :data:`REFERENCE_UM` turns one into the other.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .validate import InputError

#: µm per pixel that the pixel defaults were made for.
REFERENCE_UM = 0.065
UNITS = ("auto", "um", "px")
#: Length units napari, OME and ImageJ write, in µm.
_UM_PER = {"µm": 1.0, "um": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
           "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "mm": 1e3,
           "millimeter": 1e3, "millimetre": 1e3}


def um_per_unit(unit) -> float | None:
    """µm in one ``unit`` (a name such as ``"µm"``, ``"nanometer"``, or a pint unit); None when it is
    not a length (``"pixel"``, ``None``, ``"s"``)."""
    if unit is None:
        return None
    return _UM_PER.get(str(unit).strip().lower())


def pixel_size_um(scale: Sequence[float], units: Sequence | None = None) -> float | None:
    """µm per pixel in the last two axes (y, x), or None when the image has no pixel size.

    ``units`` are per axis (napari ``layer.units``, or the file's unit for every axis). A length unit
    converts the scale to µm. Without one, a y/x scale other than 1 is taken as µm (what readers
    without units write). A scale of exactly 1 means no pixel size, whatever the unit: it is what
    napari and most writers give when they know none. Unequal y and x give their geometric mean.
    """
    sy, sx = (float(v) for v in tuple(scale)[-2:])
    if not (sy > 0 and sx > 0 and math.isfinite(sy) and math.isfinite(sx)):
        return None
    if abs(sy - 1.0) < 1e-9 and abs(sx - 1.0) < 1e-9:
        return None  # what napari and TIFF writers give when they know no pixel size
    factors = [um_per_unit(u) for u in tuple(units)[-2:]] if units is not None and len(units) >= 2 else [None, None]
    if all(f is not None for f in factors):
        return math.sqrt(sy * factors[0] * sx * factors[1])
    return math.sqrt(sy * sx)


@dataclass(frozen=True)
class UnitChoice:
    """The unit structure sizes are read in, and why: ``unit`` is ``"um"`` or ``"px"``."""

    unit: str
    pixel_size: float | None
    reason: str

    def label(self) -> str:
        return "µm" if self.unit == "um" else "px"

    def as_dict(self) -> dict:
        return {"unit": self.unit, "pixel_size_um": self.pixel_size, "reason": self.reason}


def choose_unit(requested: str, sizes: Sequence[float | None], names: Sequence[str]) -> UnitChoice:
    """The unit for a run on images with pixel sizes ``sizes`` (µm, None when unknown), named ``names``.

    ``auto``: µm when every image has the same pixel size (within 2 %), px otherwise, with the reason.
    ``um`` needs that, and says which image breaks it.
    """
    if requested not in UNITS:
        raise InputError(f"unit {requested!r}: use one of {', '.join(UNITS)}.")
    if requested == "px":
        return UnitChoice("px", None, "sizes in px, as asked")
    missing = [n for n, s in zip(names, sizes) if s is None]
    if missing:
        if requested == "um":
            raise InputError(f"{missing[0]}: has no pixel size, so sizes cannot be in µm; use px.")
        return UnitChoice("px", None, f"{missing[0]} has no pixel size")
    low, high = min(sizes), max(sizes)
    if high > 1.02 * low:
        a, b = names[list(sizes).index(low)], names[list(sizes).index(high)]
        why = f"{a} ({low:.4g} µm) and {b} ({high:.4g} µm) have different pixel sizes"
        if requested == "um":
            raise InputError(f"{why}; one size in µm cannot fit both: segment them in separate runs, or use px.")
        return UnitChoice("px", None, why)
    return UnitChoice("um", float(low), f"pixel size {low:.4g} µm from the image")


def to_pixels(value: float, pixel_size: float | None) -> float:
    """A size in µm as px (``pixel_size`` µm per px); with no pixel size the value is px already."""
    return float(value) if pixel_size is None else float(value) / float(pixel_size)
