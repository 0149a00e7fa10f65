"""The iGTT training loop as a generator: one :class:`EpochResult` per epoch, returns the model.

Each epoch (paper, with our documented choices):

1. Choose a threshold candidate of the current prediction P for every image
   (:mod:`.candidates`), with polarity from the image.
2. Refine it with EMS (:mod:`.ems`) into the pseudo-labels Y* (skipped when ``use_ems=False``).
3. Train on random crops against Y* with ``L = L_DMI + L_IoU`` (:mod:`.dmi`).
4. Predict P on the whole images (tiled) for the next epoch and for the preview.

Start (the zero-gradient trap): with Y* all black, ``det(P S^T) = 0`` and the soft IoU is constant,
so the paper's first epoch learns nothing and its first pseudo-labels are thresholds of a random
network. We start from ``P0 =`` the preprocessed image itself (clipped to [0, 1]): the first
pseudo-labels are an EMS-refined threshold candidate of the image, and the first gradient is
non-zero. Preprocessing (percentile normalisation, haze removal, local contrast with a window set
from the structures' width, :func:`local_window`) is the same for the network input and P0 and is
saved with the model. What is segmented (thin network or thick objects) is decided after epoch 1
(:mod:`.structure`).

Outputs are "calibrated": P is mapped monotonically so that the chosen candidate is exactly
``output > 0.5`` (see :func:`.candidates.calibrate`); a saved model repeats the selection per image.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Generator, Optional

import numpy as np

from ... import __version__
from ..device import resolve_device, set_cpu_threads
from ..model import TrainedModel, build_model
from ..progress import EpochResult, StopRequested, check_stop, oom_advice
from ..tiling import predict_tiled
from ..training_data import CropSampler, as_slices, preprocess
from ..validate import InputError, check_image
from .candidates import calibrate, select, select_batch
from .dmi import dmi_loss, soft_iou_loss
from .ems import ems
from .structure import EMS_REGION, STRUCTURES, StructureChoice, choose_structure, mean_width


@dataclass
class IgttConfig:
    """Every iGTT setting. Use :meth:`preset` for the ``fast`` (default) and ``paper`` settings."""

    preset: str = "fast"
    # model
    arch: str = "unet"
    encoder: str = "resnet18"
    encoder_depth: int = 3
    decoder_channels: Optional[tuple] = (64, 32, 16)
    # data
    crop: int = 128
    batch_size: int = 8
    norm_low: float = 1.0
    norm_high: float = 99.8
    background_sigma: Optional[float] = 30.0
    background_exclude: bool = True
    local_sigma: Optional[float] = 8.0  # smallest local contrast window (px); None: off (see local_window)
    local_per_width: float = 2.0  # the window is this many times the first candidate's mean width
    local_floor: float = 3.0  # in units of the noise level
    # schedule
    epochs: int = 8
    steps_per_epoch: int = 0  # 0: from coverage
    coverage: float = 0.25  # crops per epoch cover this many times the pixels
    min_steps: int = 32
    max_steps: Optional[int] = None  # cap on batches per epoch (tests, quick runs)
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
    use_ems: bool = True
    ems_radius: int = 1
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
    preview_every: int = 1
    threads: Optional[int] = None

    @classmethod
    def preset(cls, name: str = "fast", **overrides) -> "IgttConfig":
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
                       early_stop=False, background_sigma=None, start_smooth=0.0, preview_every=5)
        else:
            raise ValueError(f"unknown preset {name!r}; use 'fast' or 'paper'")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown iGTT setting(s): {', '.join(sorted(unknown))}")
        if overrides.get("structure", "auto") not in STRUCTURES:
            raise ValueError(f"structure must be one of {', '.join(STRUCTURES)}, got {overrides['structure']!r}")
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["decoder_channels"] is not None:
            d["decoder_channels"] = list(d["decoder_channels"])
        return d

    def model_dict(self) -> dict:
        return {"arch": self.arch, "encoder": self.encoder, "encoder_depth": self.encoder_depth,
                "decoder_channels": list(self.decoder_channels) if self.decoder_channels else None,
                "in_channels": 1, "classes": 1}

    def preprocess_dict(self) -> dict:
        return {"low": self.norm_low, "high": self.norm_high, "background_sigma": self.background_sigma,
                "background_exclude": self.background_exclude, "local_sigma": self.local_sigma,
                "local_floor": self.local_floor}

    def calibration_dict(self) -> dict:
        return {"rule": "igtt-candidate", "criterion": self.criterion, "n_thresholds": self.n_thresholds}


def _as_image_list(images) -> list:
    if isinstance(images, np.ndarray):
        return [images]
    return list(images)


def _choose(probs: list, pres: list, cfg: IgttConfig) -> list:
    if cfg.selection == "batch":
        return select_batch(probs, pres, cfg.n_thresholds, cfg.criterion)
    if cfg.selection != "image":
        raise ValueError(f"selection must be 'image' or 'batch', got {cfg.selection!r}")
    return [select(p, x, cfg.n_thresholds, cfg.criterion) for p, x in zip(probs, pres)]


def _change(prev: Optional[list], cur: list) -> float:
    """1 - Dice between two sets of candidate masks (1.0 when there is no previous set)."""
    if prev is None:
        return 1.0
    inter = sum(int(np.count_nonzero(a & b)) for a, b in zip(prev, cur))
    total = sum(int(np.count_nonzero(a)) + int(np.count_nonzero(b)) for a, b in zip(prev, cur))
    return 0.0 if total == 0 else 1.0 - 2.0 * inter / total


def start_probs(pres: list, cfg: IgttConfig) -> Optional[list]:
    """P0: the preprocessed images, lightly smoothed and clipped to [0, 1] (None for a black start)."""
    if cfg.start == "black":
        return None  # Y* all black in epoch 1, as in the paper
    if cfg.start != "image":
        raise ValueError(f"start must be 'image' or 'black', got {cfg.start!r}")
    from scipy import ndimage as ndi

    return [np.clip(ndi.gaussian_filter(x, cfg.start_smooth) if cfg.start_smooth else x, 0.0, 1.0)
            for x in pres]


def pseudo_labels(masks: list, cfg: IgttConfig, rng: np.random.Generator, structure: str = "network") -> list:
    """Y* from candidate masks: EMS-refined for the resolved ``structure`` ("network" or "objects"),
    or the masks themselves when ``use_ems`` is off."""
    if cfg.use_ems:
        return [ems(m, rng, cfg.ems_radius, cfg.ems_keep, EMS_REGION[structure]).astype(np.float32)
                for m in masks]
    return [np.asarray(m, np.float32) for m in masks]


def first_structure(cfg: IgttConfig) -> str:
    """EMS variant of epoch 1: the user's choice, or the paper's EMS while "auto" is undecided."""
    return "network" if cfg.structure == "auto" else cfg.structure


def first_targets(pres: list, cfg: IgttConfig, rng: np.random.Generator) -> list:
    """The first epoch's pseudo-labels for preprocessed images (all zeros for a black start)."""
    probs = start_probs(pres, cfg)
    if probs is None:
        return [np.zeros(x.shape, np.float32) for x in pres]
    masks = [c.mask(p).astype(bool) for c, p in zip(_choose(probs, pres, cfg), probs)]
    return pseudo_labels(masks, cfg, rng, first_structure(cfg))


def local_window(imgs: list, pres: list, spec: dict, cfg: IgttConfig) -> tuple:
    """Widen the local-contrast window to ``local_per_width`` x the structures' mean width.

    The width (foreground area / skeleton length, pooled) comes from the first threshold candidate of
    the images preprocessed with the smallest window, ``local_sigma``. Tubules (about 4-6 px wide) keep
    about that window; nuclei (10-30 px) get one wide enough not to hollow them out. Returns the spec
    and the preprocessed slices to train on.
    """
    probs = start_probs(pres, replace(cfg, start="image"))
    masks = [c.mask(p).astype(bool) for c, p in zip(_choose(probs, pres, cfg), probs)]
    width = mean_width(masks)
    if not np.isfinite(width) or cfg.local_per_width * width <= cfg.local_sigma:
        return spec, pres
    spec = dict(spec, local_sigma=round(float(cfg.local_per_width * width), 1))
    return spec, [preprocess(sl, spec) for im in imgs for sl in as_slices(im)]


def _regroup(slices: list, shapes: list) -> list:
    out, i = [], 0
    for shape in shapes:
        n = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
        out.append(np.stack(slices[i:i + n]).reshape(shape) if len(shape) > 2 else slices[i])
        i += n
    return out


def train(images, config: Optional[IgttConfig] = None, seed: int = 0, device: str = "auto",
          stop: Optional[Callable[[], bool]] = None) -> Generator[EpochResult, None, TrainedModel]:
    """Train iGTT on one or many images (no labels). A generator.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        2D images, 3D stacks or time-lapses (split into 2D slices over the last two axes); any sizes.
    config : IgttConfig
        Defaults to ``IgttConfig.preset("fast")``.
    seed : int
        Seeds the network initialisation (torch), crops, augmentation and EMS (numpy).
    device : str
        ``auto``, ``cuda``, ``cuda:i``, ``mps`` or ``cpu``.
    stop : callable, optional
        Polled before every batch; when it returns True, the generator returns at once with the
        model after the last completed batch.

    Yields
    ------
    EpochResult
        One per epoch; ``preview`` holds calibrated probability maps (one per input image).

    Returns
    -------
    TrainedModel
        As ``StopIteration.value``. After a full run, ``model.outputs`` holds the final calibrated
        probability maps and ``model.masks`` the uint8 masks of the training images (not saved).
    """
    import torch

    cfg = config or IgttConfig.preset("fast")
    imgs = [check_image(im, name=f"image {i}") for i, im in enumerate(_as_image_list(images))]
    if not imgs:
        raise InputError("iGTT needs at least one image.")
    shapes = [im.shape for im in imgs]
    choice_dev = resolve_device(device)
    dev = torch.device(choice_dev.device)
    if dev.type == "cpu":
        set_cpu_threads(cfg.threads)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)

    spec = cfg.preprocess_dict()
    pres = [preprocess(sl, spec) for im in imgs for sl in as_slices(im)]
    if cfg.local_sigma:
        spec, pres = local_window(imgs, pres, spec, cfg)
    net = build_model(**{k: v for k, v in cfg.model_dict().items() if k != "in_channels"}).to(dev)
    sampler = CropSampler(pres, None, crop=cfg.crop, seed=rng.spawn(1)[0])
    ems_rng = rng.spawn(1)[0]
    steps = cfg.steps_per_epoch or sampler.steps_per_epoch(cfg.batch_size, cfg.coverage, cfg.min_steps)
    if cfg.max_steps:
        steps = min(steps, int(cfg.max_steps))
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    elif cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, cfg.epochs), cfg.lr * cfg.lr_floor)
    else:
        sched = None
    use_amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    model_config = {"kind": "igtt", "model": cfg.model_dict(), "preprocess": spec,
                    "calibration": cfg.calibration_dict(), "training": cfg.to_dict(), "seed": int(seed),
                    "device": choice_dev.device, "device_name": choice_dev.name}
    result = TrainedModel(net, model_config, __version__, [])

    def predict_all() -> list:
        with oom_advice(str(dev), cfg.predict_batch, cfg.tile):
            return [predict_tiled(net, x, cfg.tile, cfg.overlap, cfg.predict_batch, dev, stop) for x in pres]

    probs = start_probs(pres, cfg)
    choices = None if probs is None else _choose(probs, pres, cfg)
    decided: Optional[StructureChoice] = None
    calm = 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        notes = []
        if choices is None:
            targets = [np.zeros(x.shape, np.float32) for x in pres]
            masks, fraction = None, 0.0
        else:
            masks = [c.mask(p).astype(bool) for c, p in zip(choices, probs)]
            fraction = float(sum(m.sum() for m in masks) / sum(m.size for m in masks))
            structure = first_structure(cfg) if decided is None else decided.structure
            targets = pseudo_labels(masks, cfg, ems_rng, structure)
        sampler.set_targets(targets)
        net.train()
        losses = []
        try:
            with oom_advice(str(dev), cfg.batch_size, cfg.crop):
                for _ in range(steps):
                    check_stop(stop)
                    x, y = sampler.sample(cfg.batch_size)
                    xb = torch.from_numpy(x).to(dev)
                    yb = torch.from_numpy(y[:, None]).to(dev)
                    opt.zero_grad(set_to_none=True)
                    amp = (torch.autocast("cuda", dtype=torch.float16) if use_amp
                           else contextlib.nullcontext())
                    with amp:
                        logits = net(xb)
                    p = torch.sigmoid(logits.float())
                    loss = (cfg.dmi_weight * dmi_loss(p, yb, signed=cfg.signed_dmi)
                            + cfg.iou_weight * soft_iou_loss(p, yb, squared_union=cfg.squared_union))
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        opt.step()
                    losses.append(float(loss.detach()))
            if sched is not None:
                sched.step()
            probs = predict_all()  # polls stop between tile batches too
        except StopRequested:
            net.eval()
            result.config["stopped"] = f"stopped in epoch {epoch}"
            result.outputs = result.masks = None  # the model moved on since the last prediction
            return result
        new_choices = _choose(probs, pres, cfg)
        new_masks = [c.mask(p).astype(bool) for c, p in zip(new_choices, probs)]
        if decided is None and (masks is not None or epoch > 1):  # once, from a trained prediction
            decided = choose_structure(cfg.structure, new_masks, cfg.ems_radius)
            result.config["structure"] = decided.as_dict()
            notes.append(f"structure: {decided.structure} ({decided.reason})")
        choices = new_choices
        change = _change(masks, new_masks)
        calm = calm + 1 if change < cfg.early_stop_change else 0
        last = epoch == cfg.epochs or (cfg.early_stop and calm >= cfg.early_stop_patience)
        outputs = [calibrate(p, c) for p, c in zip(probs, new_choices)]
        if last and epoch < cfg.epochs:
            notes.append("early stop: pseudo-labels stopped changing")
        message = "; ".join(notes)
        record = EpochResult(
            epoch=epoch, n_epochs=cfg.epochs, loss=float(np.mean(losses)) if losses else float("nan"),
            foreground_fraction=fraction, seconds=time.perf_counter() - t0,
            preview=_regroup(outputs, shapes) if (last or epoch % max(1, cfg.preview_every) == 0) else None,
            message=message,
            extra={"change": round(change, 5), "steps": len(losses),
                   "thresholds": [round(c.threshold, 5) for c in new_choices[:16]],
                   **({"structure": decided.structure, "uncovered": decided.as_dict()["uncovered"]}
                      if decided is not None else {})},
        )
        result.history.append(record.as_dict())
        result.outputs = _regroup(outputs, shapes)
        result.masks = _regroup([(o > 0.5).astype(np.uint8) for o in outputs], shapes)
        yield record
        if last:
            break
    net.eval()
    return result


def run(images, config: Optional[IgttConfig] = None, seed: int = 0, device: str = "auto",
        stop: Optional[Callable[[], bool]] = None,
        on_epoch: Optional[Callable[[EpochResult], None]] = None) -> TrainedModel:
    """Run :func:`train` to the end (or the stop request) and return the model."""
    gen = train(images, config, seed, device, stop)
    while True:
        try:
            record = next(gen)
        except StopIteration as done:
            return done.value
        if on_epoch is not None:
            on_epoch(record)
