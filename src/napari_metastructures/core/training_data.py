"""Moved to :mod:`.training.data`; this name keeps old imports working."""
from .training.data import (  # noqa: F401
    normalize,
    subtract_background,
    noise_level,
    local_contrast,
    preprocess,
    as_slices,
    pad_to,
    dihedral,
    CropSampler,
)
