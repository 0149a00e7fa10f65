"""Everything that trains a network: data (crops, normalisation), tiling, the model factory, losses,
the one loop (:mod:`.loop`) and supervised training from rough labels (:mod:`.supervised`).

The iGTT engine (:mod:`..igtt.engine`) plugs its own task into the same loop.
"""
import importlib

#: name -> submodule; imported on first use, so that ``core.training.data`` (and the widgets) can be
#: imported without torch.
_LAZY = {"TrainResult": "loop", "TrainedModel": "model", "build_model": "model",
         "SupervisedConfig": "supervised", "train_supervised": "supervised"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
