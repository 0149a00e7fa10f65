"""The trained iGTT model: a :class:`~..training.model.TrainedModel` whose output is calibrated.

The threshold candidate of each 2D slice, or of each volume when the model was trained with volumes
(``config["preprocess"]["scope"]``), is chosen again at prediction time (the rule saved in
``config["calibration"]``) and the probability is mapped so that the candidate is exactly ``> 0.5``.
"""
from __future__ import annotations

import numpy as np

from ..training.model import TrainedModel
from .candidates import calibrate, select

RULE = "igtt-candidate"


class IgttModel(TrainedModel):
    """A network trained by iGTT; :meth:`predict` returns calibrated maps."""

    calibration_rule = RULE

    def _postprocess(self, prob: np.ndarray, image: np.ndarray) -> np.ndarray:
        if self.classes != 1:
            return prob
        rule = self.config["calibration"]
        choice = select(prob, image, int(rule.get("n_thresholds", 30)), rule.get("criterion", "image-otsu"))
        return calibrate(prob, choice)
