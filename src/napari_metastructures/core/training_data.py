"""Moved to :mod:`.training.data`; this name keeps old imports working."""
from .training.data import (  # noqa: F401
    CropSampler,
    as_slices,
    dihedral,
    local_contrast,
    noise_level,
    normalize,
    pad_to,
    preprocess,
    subtract_background,
)
