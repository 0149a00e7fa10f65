"""The rules every training setting obeys, in one place: the configs' ``check()`` call these.

The widgets, the CLI and ``study`` build a config and call its ``check()``; none of them repeats a
rule, so one set of settings builds one network everywhere.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from ..validate import InputError

ARCHS = ("unet", "deeplabv3plus")
#: Encoders offered in the widgets (any segmentation-models-pytorch encoder works).
#: Floor of the DMI determinant (the iGTT loss and its closed-form candidate scores).
DMI_EPS = 1e-3
ENCODERS = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet-b0")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "step", "constant")
DEPTHS = (3, 4, 5)


def decoder_for(depth: int, channels: Sequence[int] | None = None) -> tuple | None:
    """U-Net decoder widths for an encoder ``depth``.

    ``channels`` are kept when they have one width per stage (None stays None: smp's defaults).
    Otherwise the widths halve down to 16, e.g. ``(128, 64, 32, 16)`` at depth 4.
    """
    if channels is None or len(channels) == int(depth):
        return None if channels is None else tuple(int(c) for c in channels)
    return tuple(16 * 2**i for i in reversed(range(int(depth))))


def _whole(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < low:
        raise InputError(f"{name} must be a whole number of at least {low}, got {value!r}.")
    return int(value)


def known_encoders() -> frozenset:
    """Encoder names segmentation-models-pytorch offers (empty when it cannot say)."""
    try:
        from segmentation_models_pytorch.encoders import get_encoder_names
    except ImportError:
        return frozenset()
    return frozenset(get_encoder_names())


def check_network(arch: str, encoder: str, depth: int, decoder: Sequence[int] | None, crop: int,
                  batch: int) -> None:
    """Architecture, encoder depth, decoder widths, crop and batch fit together."""
    if arch not in ARCHS:
        raise InputError(f"architecture {arch!r}: use {' or '.join(ARCHS)}.")
    if not isinstance(encoder, str) or not encoder:
        raise InputError(f"encoder {encoder!r}: give a segmentation-models-pytorch encoder name.")
    if encoder not in ENCODERS and encoder not in (known := known_encoders()) and known:  # ours: no smp import
        raise InputError(f"encoder {encoder!r} is not one segmentation-models-pytorch knows; "
                         f"for example {', '.join(ENCODERS)}.")
    if depth not in DEPTHS:
        raise InputError(f"encoder depth {depth}: use 3, 4 or 5.")
    multiple = 2 ** int(depth)
    crop = _whole("crop", crop)
    if crop % multiple:
        raise InputError(f"crop {crop} px must be a multiple of {multiple} for encoder depth {depth}.")
    if decoder is not None:
        if len(decoder) != int(depth) or any(_whole("decoder width", c) < 1 for c in decoder):
            raise InputError(f"decoder channels {tuple(decoder)}: give one width per encoder stage ({depth}).")
    if _whole("batch", batch) < 2 and arch == "deeplabv3plus":
        raise InputError("DeepLabV3+ needs a batch of at least 2 (its pooling branch uses batch statistics).")


def check_schedule(epochs: int, lr: float, optimizer: str, schedule: str = "constant") -> None:
    """Epochs, learning rate, optimizer and learning-rate schedule are usable."""
    _whole("epochs", epochs)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"learning rate must be a number > 0, got {lr!r}.")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer {optimizer!r}: use {' or '.join(OPTIMIZERS)}.")
    if schedule not in LR_SCHEDULES:
        raise InputError(f"learning-rate schedule {schedule!r}: use {', '.join(LR_SCHEDULES)}.")


def check_choice(name: str, value, choices: Sequence) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} {value!r}: use one of {', '.join(map(str, choices))}.")
