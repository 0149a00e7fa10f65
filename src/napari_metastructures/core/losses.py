"""Moved to :mod:`.training.losses`; this name keeps old imports working."""
from .training.losses import (  # noqa: F401
    IGNORE_VALUE,
    LOSSES,
    BCELoss,
    CrossEntropyLoss,
    DMILoss,
    ExponentialUnlabelledLoss,
    HardBootstrapLoss,
    MaskedLoss,
    SoftBootstrapLoss,
    WeightedBCELoss,
    get_loss,
    valid_mask,
)
