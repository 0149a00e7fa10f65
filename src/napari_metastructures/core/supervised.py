"""Moved to :mod:`.training.supervised`; this name keeps old imports working."""
from .training.supervised import (  # noqa: F401
    BINARY_ONLY,
    PreparedLabels,
    SupervisedConfig,
    SupervisedTask,
    TrainResult,
    labels_from_probability,
    prepare_labels,
    train_supervised,
)
