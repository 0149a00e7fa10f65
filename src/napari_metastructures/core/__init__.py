"""Core library: numpy/torch only. Never imports napari, qtpy or magicgui."""
from __future__ import annotations


def load_model(path, device: str = "cpu"):
    """Open a model file written by ``TrainedModel.save``, as the class that made it.

    iGTT models come back as :class:`~.igtt.model.IgttModel` (calibrated output), all others as
    :class:`~.training.model.TrainedModel`. Raises ``InputError`` naming the file when it is missing,
    corrupt or not ours.
    """
    import json

    from .igtt.model import RULE, IgttModel
    from .training.model import TrainedModel, read_payload

    payload = read_payload(path)
    rule = (json.loads(payload["config"]).get("calibration") or {}).get("rule")
    cls = IgttModel if rule == RULE else TrainedModel
    return cls.from_payload(payload, path, device)
