"""iGTT: unsupervised segmentation by iterative training on EMS-refined threshold candidates.

- :mod:`.dmi`: L_DMI and soft-IoU losses, closed-form candidate scores.
- :mod:`.candidates`: threshold candidates, polarity from the image, per-image/per-batch choice.
- :mod:`.ems`: the skeleton-shift-subsample refinement of pseudo-labels.
- :mod:`.config`: :class:`IgttConfig`, its presets and :meth:`IgttConfig.check`.
- :mod:`.engine`: the :func:`train` generator (iGTT's task in the shared training loop).
- :mod:`.model`: :class:`IgttModel`, whose predictions are calibrated.

See docs/igtt.md for the design choices and their measurements.
"""
from .config import IgttConfig
from .engine import run, train
from .model import IgttModel

__all__ = ["IgttConfig", "IgttModel", "run", "train"]
