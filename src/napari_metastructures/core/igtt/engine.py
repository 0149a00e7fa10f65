"""The iGTT training loop as a generator: one :class:`EpochResult` per epoch, returns the model.

Each epoch (paper, with our documented choices):

1. Choose a threshold candidate of the current prediction P for every image
   (:mod:`.candidates`), with polarity from the image.
2. Refine it with EMS (:mod:`.ems`) into the pseudo-labels Y* (skipped when ``use_ems=False``);
   a volume (``scope="volume"``) is refined as one: 3D skeleton, shifts in z, y and x. For a thin
   network (once the structure is known: epoch 2 on with ``structure="auto"``), with
   ``leave_out_unsure`` (default) the pixels that the candidate judged on the image's square root
   adds to the chosen one are left out of the loss (:func:`leave_out_unsure`): dim tubules the split
   cut are not taught as background, and the network decides them from their shape.
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

import time
from collections.abc import Callable, Generator
from dataclasses import replace

import numpy as np

from ... import __version__
from ..progress import EpochResult, StopFn, oom_advice
from ..training.data import CropSampler, as_slices, blocks, preprocess
from ..training.loop import Schedule, TorchRandom, TrainResult, finish, open_device, run_epochs
from ..training.model import build_model
from ..training.tiling import predict_tiled
from ..training.warm_start import start_from
from ..validate import InputError, check_image
from .candidates import calibrate, select, select_batch
from .config import IgttConfig, volume_scope
from .ems import ems
from .model import IgttModel
from .structure import EMS_REGION, STRUCTURES, StructureChoice, choose_structure, mean_width

__all__ = ["IgttConfig", "STRUCTURES", "IgttTask", "first_candidates", "prepare", "train", "run"]


def _as_image_list(images) -> list:
    if isinstance(images, np.ndarray):
        return [images]
    return list(images)


def _split(items: list, groups: list) -> list:
    """``items`` (one per 2D slice) as one list per volume; ``groups`` holds the slice counts."""
    out, i = [], 0
    for n in groups:
        out.append(items[i:i + n])
        i += n
    return out


def _choose(probs: list, pres: list, cfg: IgttConfig, groups: list | None = None, judge: str = "linear") -> list:
    """One candidate per 2D slice; the slices of one volume share the candidate of the volume."""
    if cfg.selection == "batch":
        return select_batch(probs, pres, cfg.n_thresholds, cfg.criterion, judge)
    if cfg.selection != "image":
        raise ValueError(f"selection must be 'image' or 'batch', got {cfg.selection!r}")
    groups = groups or [1] * len(probs)
    out = []
    for ps, xs in zip(_split(probs, groups), _split(pres, groups)):
        out += [select(np.stack(ps), np.stack(xs), cfg.n_thresholds, cfg.criterion, judge)] * len(ps)
    return out


def _calibrate(probs: list, choices: list, groups: list) -> list:
    """Calibrated maps per slice, each volume mapped as one (the same scale on every plane)."""
    out = []
    for ps, cs in zip(_split(probs, groups), _split(choices, groups)):
        out += list(calibrate(np.stack(ps), cs[0]))
    return out


def _change(prev: list | None, cur: list) -> float:
    """1 - Dice between two sets of candidate masks (1.0 when there is no previous set)."""
    if prev is None:
        return 1.0
    inter = sum(int(np.count_nonzero(a & b)) for a, b in zip(prev, cur))
    total = sum(int(np.count_nonzero(a)) + int(np.count_nonzero(b)) for a, b in zip(prev, cur))
    return 0.0 if total == 0 else 1.0 - 2.0 * inter / total


def start_probs(pres: list, cfg: IgttConfig) -> list | None:
    """P0: the preprocessed images, lightly smoothed and clipped to [0, 1] (None for a black start)."""
    if cfg.start == "black":
        return None  # Y* all black in epoch 1, as in the paper
    if cfg.start != "image":
        raise ValueError(f"start must be 'image' or 'black', got {cfg.start!r}")
    from scipy import ndimage as ndi

    return [np.clip(ndi.gaussian_filter(x, cfg.start_smooth) if cfg.start_smooth else x, 0.0, 1.0)
            for x in pres]


def _units(masks: list, groups: list | None) -> list:
    """Per volume its slices stacked (Z, Y, X); a volume of one slice stays 2D."""
    if not groups:
        return list(masks)
    return [np.stack(ms) if len(ms) > 1 else ms[0] for ms in _split(masks, groups)]


def pseudo_labels(masks: list, cfg: IgttConfig, rng: np.random.Generator, structure: str = "network",
                  groups: list | None = None, anisotropy: list | None = None) -> list:
    """Y* from candidate masks (one per 2D slice): EMS-refined for the resolved ``structure``
    ("network" or "objects"), or the masks themselves when ``use_ems`` is off. With ``groups``
    (slices per volume) each volume is refined as one 3D mask, its z shifts set by its
    ``anisotropy`` (z step / pixel size, None: unknown; see :func:`.ems.z_radius`)."""
    if not cfg.use_ems:
        return [np.asarray(m, np.float32) for m in masks]
    units = _units(masks, groups)
    anis = anisotropy if anisotropy is not None else [None] * len(units)
    out = []
    for m, a in zip(units, anis):
        y = ems(m, rng, cfg.ems_radius, cfg.ems_keep, EMS_REGION[structure], anisotropy=a).astype(np.float32)
        out += list(y) if y.ndim == 3 else [y]
    return out


def first_structure(cfg: IgttConfig) -> str:
    """EMS variant of epoch 1: the user's choice, or the paper's EMS while "auto" is undecided."""
    return "network" if cfg.structure == "auto" else cfg.structure


def epoch_targets(choices: list | None, probs: list | None, pres: list, cfg: IgttConfig,
                  rng: np.random.Generator, structure: str, groups: list | None = None,
                  anisotropy: list | None = None) -> tuple:
    """``(candidate masks or None, pseudo-labels)`` of an epoch: all zeros before any candidate
    (a black start), else the chosen candidates refined for ``structure`` (volumes as one)."""
    if choices is None:
        return None, [np.zeros(x.shape, np.float32) for x in pres]
    masks = [c.mask(p).astype(bool) for c, p in zip(choices, probs)]
    return masks, pseudo_labels(masks, cfg, rng, structure, groups, anisotropy)


def first_targets(pres: list, cfg: IgttConfig, rng: np.random.Generator, groups: list | None = None,
                  anisotropy: list | None = None) -> list:
    """The first epoch's pseudo-labels for preprocessed images, as :class:`IgttTask` makes them."""
    probs = start_probs(pres, cfg)
    choices = None if probs is None else _choose(probs, pres, cfg, groups)
    return epoch_targets(choices, probs, pres, cfg, rng, first_structure(cfg), groups, anisotropy)[1]


def leave_out_unsure(targets: list, masks: list, wide: list) -> list:
    """Pseudo-labels with -1 (left out of the loss) where the wider candidate ``wide`` (judged on the
    image's square root) adds pixels to the chosen one ``masks``: structure too dim for the chosen
    split is neither taught as foreground nor as background. EMS's positives stay."""
    return [np.where(w & ~m & (t <= 0), np.float32(-1), t).astype(np.float32)
            for t, m, w in zip(targets, masks, wide)]


def pseudo_label_loss(p, y, cfg: IgttConfig):
    """``dmi_weight L_DMI + iou_weight L_IoU`` of probabilities ``p`` against ``y`` over the pixels
    where ``y >= 0`` (-1: left out, :func:`leave_out_unsure`)."""
    from ..training.losses import dmi_loss, soft_iou_loss

    valid = y >= 0
    if bool(valid.all()):
        return (cfg.dmi_weight * dmi_loss(p, y, signed=cfg.signed_dmi)
                + cfg.iou_weight * soft_iou_loss(p, y, squared_union=cfg.squared_union))
    return (cfg.dmi_weight * dmi_loss(p[valid], y[valid], signed=cfg.signed_dmi)
            + cfg.iou_weight * soft_iou_loss(p, y.clamp(min=0), weight=valid.to(p.dtype),
                                             squared_union=cfg.squared_union))


def local_window(vols: list, pres: list, spec: dict, cfg: IgttConfig, groups: list | None = None) -> tuple:
    """Set the local-contrast window, and the haze-removal sigma, from the structures' mean width.

    The width (foreground area / skeleton length, pooled) comes from the first threshold candidate of
    the images preprocessed with the smallest window, ``local_sigma``, and ``background_sigma``. The
    window is ``local_per_width`` x the width, at least ``local_sigma``: tubules (about 4-6 px wide)
    keep about that window; nuclei (10-30 px) get one wide enough not to hollow them out. With
    ``background_per_window`` the haze is then removed with a Gaussian of that many windows (at
    least ``local_sigma``): a fixed wide one spreads the haze of a bright perinuclear zone onto the
    dim tubules beside it and removes them with it. ``vols`` are the units preprocessed as one
    (:func:`~..training.data.blocks`). Returns the spec and the preprocessed slices to train on.
    """
    probs = start_probs(pres, replace(cfg, start="image"))
    masks = [c.mask(p).astype(bool) for c, p in zip(_choose(probs, pres, cfg, groups), probs)]
    width = mean_width(masks)
    window = max(float(cfg.local_sigma), cfg.local_per_width * width) if np.isfinite(width) else cfg.local_sigma
    new = dict(spec, local_sigma=round(float(window), 1))
    if cfg.background_per_window and spec.get("background_sigma"):
        new["background_sigma"] = round(max(float(cfg.local_sigma), cfg.background_per_window * window), 1)
    if new == dict(spec, local_sigma=cfg.local_sigma):
        return spec, pres
    return new, _preprocessed(vols, new, "score")


def _preprocessed(vols: list, spec: dict, part: str = "input") -> list:
    return [sl for v in vols for sl in as_slices(preprocess(v, spec, part))]


def prepare(imgs: list, cfg: IgttConfig, axes: list | None = None) -> tuple:
    """``(spec, network inputs, scoring images, slices per volume)`` of checked images, as 2D slices:
    each image split into the volumes (or slices) that are normalised and thresholded as one,
    preprocessed, with the local contrast window set from the structures (:func:`local_window`). The
    scoring images (gated local contrast) judge threshold candidates and make P0."""
    axes = list(axes) if axes is not None else [None] * len(imgs)
    if len(axes) != len(imgs):
        raise InputError(f"{len(axes)} axes strings for {len(imgs)} images.")
    vols = [b for im, ax in zip(imgs, axes) for b in blocks(im, volume_scope(cfg.scope, im.ndim, ax))]
    groups = [len(as_slices(v)) for v in vols]
    spec = cfg.preprocess_dict()
    pres = _preprocessed(vols, spec, "score")
    if cfg.local_sigma:
        spec, pres = local_window(vols, pres, spec, cfg, groups)
    inputs = pres if spec.get("gate_input", True) or not spec.get("gate") else _preprocessed(vols, spec, "input")
    return spec, inputs, pres, groups


def first_candidates(images, config: IgttConfig | None = None, axes: list | None = None) -> list:
    """The masks iGTT starts from (epoch 1's candidates, before EMS), one per image, its shape:
    what the engine sees in the data before any training. For checks and benchmarks."""
    cfg = replace((config or IgttConfig.preset("fast")).check().in_pixels(), start="image")
    imgs = [check_image(im, name=f"image {i}") for i, im in enumerate(_as_image_list(images))]
    _, _, pres, groups = prepare(imgs, cfg, axes)
    probs = start_probs(pres, cfg)
    masks = [c.mask(p) for c, p in zip(_choose(probs, pres, cfg, groups), probs)]
    return _regroup(masks, [im.shape for im in imgs])


def volume_anisotropy(imgs: list, axes: list | None, cfg: IgttConfig, anisotropy) -> list:
    """Per volume (in :func:`prepare`'s order) its z step / pixel size: ``anisotropy`` is one value
    for every image, one per image, or None (unknown)."""
    axes = list(axes) if axes is not None else [None] * len(imgs)
    per_image = list(anisotropy) if isinstance(anisotropy, (list, tuple)) else [anisotropy] * len(imgs)
    if len(per_image) != len(imgs):
        raise InputError(f"{len(per_image)} anisotropy values for {len(imgs)} images.")
    return [a for im, ax, a in zip(imgs, axes, per_image)
            for _ in blocks(im, volume_scope(cfg.scope, im.ndim, ax))]


def _regroup(slices: list, shapes: list) -> list:
    out, i = [], 0
    for shape in shapes:
        n = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
        out.append(np.stack(slices[i:i + n]).reshape(shape) if len(shape) > 2 else slices[i])
        i += n
    return out


class IgttTask:
    """iGTT's part of the loop: pseudo-labels from the current prediction, the DMI + IoU loss, and
    the prediction of every image after each epoch (which gives the next pseudo-labels)."""

    def __init__(self, net, pres: list, shapes: list, cfg: IgttConfig, rng: np.random.Generator, device,
                 model: IgttModel, groups: list | None = None, scores: list | None = None,
                 anisotropy: list | None = None) -> None:
        self.net, self.pres, self.shapes, self.cfg, self.dev, self.model = net, pres, shapes, cfg, device, model
        self.scores = pres if scores is None else scores  # images that judge candidates (and make P0)
        self.groups = groups or [1] * len(pres)  # 2D slices per volume (one candidate, one EMS each)
        self.anisotropy = anisotropy  # per volume: z step / pixel size (None: unknown)
        self.sampler = CropSampler(pres, None, crop=cfg.crop, seed=rng.spawn(1)[0])
        self.ems_rng = rng.spawn(1)[0]
        self.probs = start_probs(self.scores, cfg)
        self.choices = None if self.probs is None else _choose(self.probs, self.scores, cfg, self.groups)
        self.decided: StructureChoice | None = None
        self.calm = 0
        self.masks: list | None = None
        self.fraction = 0.0
        self.outputs: list | None = None

    def steps(self) -> int:
        cfg = self.cfg
        steps = cfg.steps_per_epoch or self.sampler.steps_per_epoch(cfg.batch_size, cfg.coverage, cfg.min_steps)
        return min(steps, int(cfg.max_steps)) if cfg.max_steps else steps

    def start_epoch(self, epoch: int) -> None:
        self.outputs = None  # the weights move on from the last prediction
        structure = first_structure(self.cfg) if self.decided is None else self.decided.structure
        self.masks, targets = epoch_targets(self.choices, self.probs, self.pres, self.cfg, self.ems_rng, structure,
                                            self.groups, self.anisotropy)
        known = self.decided is not None or self.cfg.structure == "network"  # auto: from epoch 2
        if self.cfg.leave_out_unsure and structure == "network" and known and self.masks is not None:
            targets = self._unsure_left_out(targets)
        self.fraction = 0.0 if self.masks is None else float(
            sum(m.sum() for m in self.masks) / sum(m.size for m in self.masks))
        self.sampler.set_targets(targets)

    def _unsure_left_out(self, targets: list) -> list:
        wide = [c.mask(p).astype(bool) for c, p in
                zip(_choose(self.probs, self.scores, self.cfg, self.groups, "sqrt"), self.probs)]
        return leave_out_unsure(targets, self.masks, wide)

    def batch(self) -> tuple:
        import torch

        x, y = self.sampler.sample(self.cfg.batch_size)
        return torch.from_numpy(x).to(self.dev), torch.from_numpy(y[:, None]).to(self.dev)

    def loss(self, logits, y, epoch: int):
        import torch

        return pseudo_label_loss(torch.sigmoid(logits), y, self.cfg)

    def _pooled_anisotropy(self) -> float | None:
        """The volumes' anisotropy for the structure choice: their common value, else None (unknown)."""
        values = set(self.anisotropy or [None])
        return values.pop() if len(values) == 1 else None

    def finish_epoch(self, epoch: int, losses: list, started: float, stop: StopFn) -> tuple:
        cfg = self.cfg
        with oom_advice(str(self.dev), cfg.predict_batch, cfg.tile):  # polls stop between tile batches
            self.probs = [predict_tiled(self.net, x, cfg.tile, cfg.overlap, cfg.predict_batch, self.dev, stop)
                          for x in self.pres]
        notes = []
        new_choices = _choose(self.probs, self.scores, cfg, self.groups)
        new_masks = [c.mask(p).astype(bool) for c, p in zip(new_choices, self.probs)]
        if self.decided is None and (self.masks is not None or epoch > 1):  # once, from a trained prediction
            self.decided = choose_structure(cfg.structure, _units(new_masks, self.groups), cfg.ems_radius,
                                            self._pooled_anisotropy())
            self.model.config["structure"] = self.decided.as_dict()
            notes.append(f"structure: {self.decided.structure} ({self.decided.reason})")
        self.choices = new_choices
        change = _change(self.masks, new_masks)
        self.calm = self.calm + 1 if change < cfg.early_stop_change else 0
        last = epoch == cfg.epochs or (cfg.early_stop and self.calm >= cfg.early_stop_patience)
        outputs = _calibrate(self.probs, new_choices, self.groups)
        if last and epoch < cfg.epochs:
            notes.append("early stop: pseudo-labels stopped changing")
        self.outputs = _regroup(outputs, self.shapes)
        extra = {"change": round(change, 5), "steps": len(losses),
                 "thresholds": [round(c.threshold, 5) for c in new_choices[:16]]}
        if self.decided is not None:
            extra.update(structure=self.decided.structure, uncovered=self.decided.as_dict()["uncovered"])
        record = EpochResult(
            epoch=epoch, n_epochs=cfg.epochs, loss=float(np.mean(losses)) if losses else float("nan"),
            foreground_fraction=self.fraction, seconds=time.perf_counter() - started,
            preview=self.outputs if (last or (cfg.preview_every and epoch % cfg.preview_every == 0)) else None,
            message="; ".join(notes), extra=extra)
        self.model.history.append(record.as_dict())
        return record, last


def train(images, config: IgttConfig | None = None, seed: int = 0, device: str = "auto",
          stop: Callable[[], bool] | None = None,
          axes: list | None = None, anisotropy=None, init: tuple | None = None,
          ) -> Generator[EpochResult, None, TrainResult]:
    """Train iGTT on one or many images (no labels). A generator.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        2D images, 3D stacks or time-lapses (split into 2D slices over the last two axes); any sizes.
    config : IgttConfig
        Defaults to ``IgttConfig.preset("fast")``; checked with :meth:`IgttConfig.check`. Sizes in µm
        (``size_unit="um"``) are turned into px with its pixel size (:meth:`IgttConfig.in_pixels`).
    seed : int
        Seeds the network initialisation (a private torch state), crops, augmentation and EMS (numpy).
    device : str
        ``auto``, ``cuda``, ``cuda:i``, ``mps`` or ``cpu``.
    stop : callable, optional
        Polled before every batch and between tile batches; when it returns True, the generator
        returns at once with the model after the last completed batch.
    axes : list of str or None, optional
        Per image, its axes (``"TZYX"``...) when known. With ``scope="auto"`` a stack is one volume
        (normalised and thresholded as one) unless its third-last axis is known not to be Z.
    anisotropy : float, list of float or None, optional
        z step / pixel size of the volumes (one value, or one per image); it sets EMS's z shift
        radius (:func:`.ems.z_radius`). None: unknown (no z shifts). Unused for 2D data.
    init : (path, part), optional
        Start from a saved model's weights, ``part`` "all" or "encoder" (the decoder starts fresh);
        see :mod:`..training.warm_start`. Recorded as ``config["init"]``.

    Yields
    ------
    EpochResult
        One per epoch; ``preview`` holds calibrated probability maps (one per input image).

    Returns
    -------
    TrainResult
        As ``StopIteration.value``: the :class:`~.model.IgttModel`, and after a completed epoch the
        calibrated probability maps (``outputs``) and uint8 masks (``masks``) of the training images;
        both are None when a stop came after the weights moved on from them.
    """
    given = (config or IgttConfig.preset("fast")).check()
    cfg = given.in_pixels()  # the engine works in px; the record keeps the sizes as given
    imgs = [check_image(im, name=f"image {i}") for i, im in enumerate(_as_image_list(images))]
    if not imgs:
        raise InputError("iGTT needs at least one image.")
    shapes = [im.shape for im in imgs]
    choice, dev = open_device(device, cfg.threads)
    rng = np.random.default_rng(seed)
    random = TorchRandom(seed, dev)

    spec, pres, scores, groups = prepare(imgs, cfg, axes)
    with random.active():
        net = build_model(**{k: v for k, v in cfg.model_dict().items() if k != "in_channels"})
    started_from = start_from(net, init, cfg.model_dict())
    net.to(dev)
    model_config = {"kind": "igtt", "model": cfg.model_dict(), "preprocess": spec,
                    "calibration": cfg.calibration_dict(), "training": given.to_dict(), "sizes": given.sizes(),
                    "seed": int(seed),
                    "device": choice.device, "device_name": choice.name, "init": started_from}
    model = IgttModel(net, model_config, __version__, [])
    anis = volume_anisotropy(imgs, axes, cfg, anisotropy)
    model.config["ems"] = {"volumes": "3d", "anisotropy": anis} if any(n > 1 for n in groups) else {"volumes": None}
    task = IgttTask(net, pres, shapes, cfg, rng, dev, model, groups, scores, anis)
    schedule = Schedule(cfg.epochs, task.steps(), cfg.batch_size, cfg.crop, cfg.optimizer_dict())
    stopped = yield from run_epochs(net, task, schedule, dev, random, stop)
    outputs = task.outputs
    masks = None if outputs is None else [(o > 0.5).astype(np.uint8) for o in outputs]
    return finish(model, stopped, outputs, masks)


def run(images, config: IgttConfig | None = None, seed: int = 0, device: str = "auto",
        stop: Callable[[], bool] | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None, axes: list | None = None,
        anisotropy=None, init: tuple | None = None) -> TrainResult:
    """Run :func:`train` to the end (or the stop request) and return its :class:`TrainResult`."""
    from ..progress import drain

    return drain(train(images, config, seed, device, stop, axes, anisotropy, init), on_epoch)
