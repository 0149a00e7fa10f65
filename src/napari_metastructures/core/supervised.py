"""Moved to :mod:`.training.supervised`; this name keeps old imports working."""
from .training.supervised import (  # noqa: F401
    BINARY_ONLY,
    SupervisedConfig,
    PreparedLabels,
    prepare_labels,
    labels_from_probability,
    SupervisedTask,
    train_supervised,
    TrainResult,
)
