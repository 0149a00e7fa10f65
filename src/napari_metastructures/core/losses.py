"""Moved to :mod:`.training.losses`; this name keeps old imports working."""
from .training.losses import (  # noqa: F401
    IGNORE_VALUE,
    valid_mask,
    MaskedLoss,
    BCELoss,
    WeightedBCELoss,
    ExponentialUnlabelledLoss,
    SoftBootstrapLoss,
    HardBootstrapLoss,
    DMILoss,
    CrossEntropyLoss,
    get_loss,
    LOSSES,
)
