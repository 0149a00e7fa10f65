"""Everything that trains a network: data (crops, normalisation), tiling, the model factory, losses,
the one loop (:mod:`.loop`) and supervised training from rough labels (:mod:`.supervised`).

The iGTT engine (:mod:`..igtt.engine`) plugs its own task into the same loop.
"""
from .loop import TrainResult
from .model import TrainedModel, build_model
from .supervised import SupervisedConfig, train_supervised

__all__ = ["TrainResult", "TrainedModel", "SupervisedConfig", "build_model", "train_supervised"]
