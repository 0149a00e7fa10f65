"""Moved to :mod:`.training.model`; this name keeps old imports working."""
from .training.model import (  # noqa: F401
    FORMAT,
    ARCHS,
    DEFAULT_DECODER,
    build_model,
    model_kwargs,
    TrainedModel,
    read_payload,
)
