"""Moved to :mod:`.training.tiling`; this name keeps old imports working."""
from .training.tiling import (  # noqa: F401
    TILE_MULTIPLE,
    predict_tiled,
    tile_size,
)
