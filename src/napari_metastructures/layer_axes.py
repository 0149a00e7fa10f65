"""napari layer axes for a file's axes: ``axis_labels`` (t, z, y, x) and ``units`` (µm where known)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def layers_take_axes() -> bool:
    """True when the installed napari's layers take ``axis_labels`` and ``units`` (napari >= 0.6).

    napari 0.5's layers have the arguments, but its ``add_image`` refuses a sequence
    ``axis_labels`` without ``channel_axis`` (found with the lowest declared versions), so a
    reader that passed them would fail there: the version is checked too.
    """
    import inspect
    import re

    import napari
    from napari.layers import Image

    major_minor = tuple(int(p) for p in re.findall(r"\d+", napari.__version__)[:2])
    return major_minor >= (0, 6) and {"axis_labels", "units"} <= set(inspect.signature(Image.__init__).parameters)


#: Unit names from file metadata -> names napari (pint) reads.
_UNITS = {"µm": "um", "um": "um", "micron": "um", "microns": "um", "micrometer": "um", "nm": "nm", "mm": "mm"}


def layer_axes(axes: str, unit: str | None) -> tuple[tuple, tuple]:
    """napari ``axis_labels`` (``t``, ``z``, ``y``, ``x``...) and ``units`` for a file's axes.

    Spatial axes get the file's length unit when it has one; the others (T, C) keep napari's
    default, as the time unit of a file is not always known.
    """
    length = _UNITS.get(str(unit).strip().lower()) if unit else None
    units = tuple(length if a in "ZYX" and length else "pixel" for a in axes)
    return tuple(a.lower() for a in axes), units
