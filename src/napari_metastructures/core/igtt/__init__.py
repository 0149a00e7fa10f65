"""iGTT: unsupervised segmentation by iterative training on EMS-refined threshold candidates.

- :mod:`.dmi`: L_DMI and soft-IoU losses, closed-form candidate scores.
- :mod:`.candidates`: threshold candidates, polarity from the image, per-image/per-batch choice.
- :mod:`.ems`: the skeleton-shift-subsample refinement of pseudo-labels.
- :mod:`.engine`: :class:`IgttConfig` and the :func:`train` generator.

See docs/igtt.md for the design choices and their measurements.
"""
from .engine import IgttConfig, run, train

__all__ = ["IgttConfig", "run", "train"]
