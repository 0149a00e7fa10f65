"""JSON that every reader accepts: NaN and infinity become ``null``, never the invalid ``NaN`` token."""
from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return finite(value.item())
    if hasattr(value, "tolist"):  # numpy arrays
        return finite(value.tolist())
    return value


def dumps(value: Any, **kwargs) -> str:
    """:func:`json.dumps` of :func:`finite` ``value`` with ``allow_nan=False`` (``default=str``)."""
    kwargs.setdefault("default", str)
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def dump(value: Any, fp, **kwargs) -> None:
    """:func:`dumps` into the open text file ``fp``."""
    fp.write(dumps(value, **kwargs))
