"""Every iGTT setting, its presets and its rules (:meth:`IgttConfig.check`).

The widget, the CLI, ``study`` and the benchmarks build an :class:`IgttConfig` with
:meth:`IgttConfig.preset` and the engine calls :meth:`IgttConfig.check`; no caller repeats a rule.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..training.data import SCOPES, volume_scope
from ..training.settings import check_choice, check_network, check_schedule, decoder_for
from ..units import REFERENCE_UM
from ..validate import InputError
from .candidates import CRITERIA
from .structure import STRUCTURES

SELECTIONS = ("image", "batch")
#: Structure sizes: in ``size_unit`` (px, or µm converted with the pixel size). Crop and tile stay px.
SIZE_FIELDS = ("background_sigma", "local_sigma", "start_smooth", "ems_radius")
STARTS = ("image", "black")
__all__ = ["IgttConfig", "SCOPES", "SELECTIONS", "SIZE_FIELDS", "STARTS", "volume_scope"]


@dataclass
class IgttConfig:
    """Every iGTT setting. Use :meth:`preset` for the ``fast`` (default) and ``paper`` settings."""

    preset: str = "fast"
    # model
    arch: str = "unet"
    encoder: str = "resnet18"
    encoder_depth: int = 3
    decoder_channels: tuple | None = (64, 32, 16)
    # data
    crop: int = 128
    batch_size: int = 8
    norm_low: float = 1.0
    norm_high: float = 99.8
    background_sigma: float | None = 30.0
    background_exclude: bool = True
    local_sigma: float | None = 8.0  # smallest local contrast window (px); None: off (see local_window)
    local_per_width: float = 2.0  # the window is this many times the first candidate's mean width
    background_per_window: float | None = 0.7  # haze sigma = this x the window (>= local_sigma); None: fixed
    local_floor: float = 0.5  # in units of the pixel noise (measured before clipping)
    local_gate: tuple | None = (2.5, 5.0)  # significance (noise SDs, smoothed) where local contrast opens
    gate_input: bool = False  # True: the gate also weights the network input; False: only candidate scoring
    gate_noise: str = "blocks"  # the gate's noise: "blocks" (the quietest blocks') or "mad" (the whole image's)
    scope: str = "auto"  # "auto", "volume" (z-stacks as one) or "slice" (every 2D slice alone)
    # the unit of SIZE_FIELDS: "px", or "um" with pixel_size_um (see :meth:`in_pixels`)
    size_unit: str = "px"
    pixel_size_um: float | None = None
    # schedule
    epochs: int = 8
    steps_per_epoch: int = 0  # 0: from coverage
    coverage: float = 0.25  # crops per epoch cover this many times the pixels
    min_steps: int = 32
    max_steps: int | None = None  # cap on batches per epoch (tests, quick runs)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"  # "cosine" (to lr_floor * lr), "step" (lr_step, lr_gamma), "constant"
    lr_floor: float = 0.05
    lr_step: int = 20
    lr_gamma: float = 0.1
    # iGTT
    start: str = "image"  # "image" (P0 = image) or "black" (paper: Y* all black first)
    start_smooth: float = 1.0  # Gaussian sigma applied to the image to make P0
    n_thresholds: int = 30
    criterion: str = "image-otsu"
    selection: str = "image"  # "image" or "batch"
    leave_out_unsure: bool = True  # thin networks: what the sqrt-judged candidate adds stays out of the loss
    use_ems: bool = True
    ems_radius: float = 1
    ems_keep: float = 0.1
    structure: str = "auto"  # "auto" (decided after epoch 1), "network" (paper's EMS) or "objects"
    iou_weight: float = 1.0
    dmi_weight: float = 1.0
    squared_union: bool = False
    signed_dmi: bool = True
    early_stop: bool = True
    early_stop_change: float = 0.03  # 1 - Dice between consecutive candidates
    early_stop_patience: int = 2
    # prediction and progress
    tile: int = 256
    overlap: int = 32
    predict_batch: int = 4
    preview_every: int = 1  # 0: only the last epoch
    threads: int | None = None

    def check(self) -> IgttConfig:
        """Raise :class:`InputError` for settings that cannot work; returns the config."""
        check_network(self.arch, self.encoder, self.encoder_depth, self.decoder_channels, self.crop,
                      self.batch_size)
        check_schedule(self.epochs, self.lr, self.optimizer, self.lr_schedule)
        check_choice("structure", self.structure, STRUCTURES)
        check_choice("criterion", self.criterion, CRITERIA)
        check_choice("selection", self.selection, SELECTIONS)
        check_choice("start", self.start, STARTS)
        check_choice("scope", self.scope, SCOPES)
        if self.local_gate is not None and not (len(self.local_gate) == 2
                                                and 0 <= self.local_gate[0] < self.local_gate[1]):
            raise InputError(f"local contrast gate {self.local_gate}: needs two significances 0 <= low < high.")
        if self.background_per_window is not None and not self.background_per_window > 0:
            raise InputError(f"background per window {self.background_per_window}: use a number > 0, or None.")
        if not self.local_floor >= 0:
            raise InputError(f"local contrast floor {self.local_floor}: use 0 or more.")
        multiple = 2 ** int(self.encoder_depth)
        if self.tile < multiple or self.tile % multiple:
            raise InputError(f"tile {self.tile} px must be a multiple of {multiple} for encoder depth "
                             f"{self.encoder_depth}.")
        if not 0 <= self.overlap <= self.tile // 2:
            raise InputError(f"overlap {self.overlap} px must be between 0 and half the tile ({self.tile}).")
        for name in ("predict_batch", "n_thresholds", "min_steps"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}.")
        for name in ("steps_per_epoch", "early_stop_patience", "preview_every"):
            if int(getattr(self, name)) < 0:
                raise InputError(f"{name.replace('_', ' ')} must be at least 0, got {getattr(self, name)}.")
        for name in ("max_steps", "threads"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise InputError(f"{name.replace('_', ' ')} must be at least 1 (or unset), got {getattr(self, name)}.")
        if self.local_sigma is not None and not self.local_sigma >= 0:
            raise InputError(f"local contrast window {self.local_sigma} {self.size_unit}: use 0 (off) or more.")
        if not 0 <= self.norm_low < self.norm_high <= 100:
            raise InputError(f"normalisation percentiles {self.norm_low}, {self.norm_high}: "
                             "need 0 <= low < high <= 100.")
        if self.size_unit not in ("px", "um"):
            raise InputError(f"size unit {self.size_unit!r}: use 'px' or 'um'.")
        if self.size_unit == "um" and not (self.pixel_size_um is not None and self.pixel_size_um > 0):
            raise InputError(f"sizes in µm need a pixel size > 0 (µm per pixel), got {self.pixel_size_um}.")
        if not self.ems_radius > 0:
            raise InputError(f"EMS radius {self.ems_radius}: use a size > 0.")
        if not self.coverage > 0 or not 0 < self.ems_keep <= 1:
            raise InputError(f"coverage ({self.coverage}) must be > 0 and EMS keep ({self.ems_keep}) in (0, 1].")
        return self

    def in_pixels(self) -> IgttConfig:
        """This config with every size in px (itself when it is in px already). The EMS radius
        becomes a whole number of px, at least 1; the pixel size stays recorded."""
        if self.size_unit == "px":
            return replace(self, ems_radius=max(1, int(round(self.ems_radius))))
        sizes = {name: None if getattr(self, name) is None else round(getattr(self, name) / self.pixel_size_um, 3)
                 for name in SIZE_FIELDS}
        sizes["ems_radius"] = max(1, int(round(sizes["ems_radius"])))
        return replace(self, size_unit="px", **sizes)

    def sizes(self) -> dict:
        """The structure sizes as set (in ``size_unit``) and in px, for records and messages."""
        px = self.in_pixels()
        return {"unit": self.size_unit, "pixel_size_um": self.pixel_size_um,
                "set": {n: getattr(self, n) for n in SIZE_FIELDS}, "px": {n: getattr(px, n) for n in SIZE_FIELDS}}

    def sizes_line(self) -> str:
        """One line for the progress log: the unit and each size as set and in px."""
        px, unit = self.in_pixels(), "µm" if self.size_unit == "um" else "px"
        names = {"local_sigma": "local contrast from", "background_sigma": "haze", "ems_radius": "EMS radius"}
        parts = []
        for name, label in names.items():
            value = getattr(self, name)
            if value is None or value == 0:
                parts.append(f"{label} off")
            elif unit == "px":
                parts.append(f"{label} {value:g} px")
            else:
                parts.append(f"{label} {value:g} µm ({getattr(px, name):.3g} px)")
        where = f"pixel size {self.pixel_size_um:g} µm" if self.size_unit == "um" else "no pixel size used"
        return f"sizes in {unit} ({where}): " + ", ".join(parts)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("decoder_channels", "local_gate"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    def model_dict(self) -> dict:
        return {"arch": self.arch, "encoder": self.encoder, "encoder_depth": self.encoder_depth,
                "decoder_channels": list(self.decoder_channels) if self.decoder_channels else None,
                "in_channels": 1, "classes": 1}

    def optimizer_dict(self) -> dict:
        """The arguments of :func:`..training.loop.make_optimizer`."""
        return {"name": self.optimizer, "lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "schedule": self.lr_schedule, "lr_floor": self.lr_floor, "lr_step": self.lr_step,
                "lr_gamma": self.lr_gamma}

    def preprocess_dict(self) -> dict:
        """The model's preprocessing, sizes in px; ``pixel_size_um`` is the training images' (or None)."""
        px = self.in_pixels()
        return {"low": px.norm_low, "high": px.norm_high, "background_sigma": px.background_sigma,
                "background_exclude": px.background_exclude, "local_sigma": px.local_sigma,
                "local_floor": px.local_floor, "noise": "raw",
                "gate": list(px.local_gate) if px.local_gate else None, "gate_input": px.gate_input,
                "gate_noise": px.gate_noise, "scope": px.scope, "pixel_size_um": px.pixel_size_um}

    def calibration_dict(self) -> dict:
        return {"rule": "igtt-candidate", "criterion": self.criterion, "n_thresholds": self.n_thresholds}


def _preset(cls, name: str = "fast", **overrides) -> IgttConfig:
    """``fast`` (default; CPU-friendly) or ``paper`` (the official settings), plus overrides."""
    name = (name or "fast").lower()
    if name == "fast":
        base = cls(preset="fast")
    elif name == "paper":
        # official hyper-parameters; the traps stay handled (image start, polarity from the
        # image, float64 scores); start="black" / selection="batch" reproduce the official code
        base = cls(preset="paper", encoder_depth=5, decoder_channels=None, crop=256, batch_size=32,
                   epochs=100, steps_per_epoch=0, coverage=1.0, min_steps=1, optimizer="sgd",
                   lr=0.05, momentum=0.9, weight_decay=1e-3, lr_schedule="step", lr_step=20,
                   lr_gamma=0.1, criterion="dmi", signed_dmi=False, squared_union=True,
                   early_stop=False, background_sigma=None, start_smooth=0.0, preview_every=5,
                   leave_out_unsure=False)
    else:
        raise ValueError(f"unknown preset {name!r}; use 'fast' or 'paper'")
    unknown = set(overrides) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown iGTT setting(s): {', '.join(sorted(unknown))}")
    if overrides.get("size_unit") == "um":  # the preset's px sizes, as µm at the reference pixel size
        base = replace(base, **{n: getattr(base, n) and round(getattr(base, n) * REFERENCE_UM, 4)
                                for n in SIZE_FIELDS})
    if "encoder_depth" in overrides and "decoder_channels" not in overrides:
        overrides["decoder_channels"] = decoder_for(overrides["encoder_depth"], base.decoder_channels)
    cfg = replace(base, **overrides)
    cfg.check()
    return cfg


# Set after the dataclass is made: as a class body member it would become the default of the
# ``preset`` field. Instances keep the field (a name); the class gets the constructor.
IgttConfig.preset = classmethod(_preset)
