"""Moved to :mod:`.training.model`; this name keeps old imports working."""
from .training.model import (  # noqa: F401
    ARCHS,
    DEFAULT_DECODER,
    FORMAT,
    TrainedModel,
    build_model,
    model_kwargs,
    read_payload,
)
