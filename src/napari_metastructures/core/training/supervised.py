"""Supervised training from (possibly noisy, sparse or incomplete) labels, as a generator.

:func:`train_supervised` trains a U-Net or DeepLabV3+ on images and labels with a masked loss from
:mod:`.losses`, yields one :class:`~.progress.EpochResult` per epoch and returns a
:class:`~.model.TrainedModel` (``StopIteration.value``). It is shared by the "Train from rough labels"
widget, the ``study`` command and the benchmarks.

Labels
------
- Binary (values 0 and 1): one output channel, sigmoid, a BCE-family loss.
- Multi-class (values 0..M, M >= 2): M + 1 output channels, softmax, cross-entropy.
- ``ignore_value`` (default 255, as written by ``core.noise`` for unsampled pixels): left out of the loss.
- ``unlabelled_is_ignore`` (scribbles): 0 means "not annotated" and is ignored; the classes are 1..M
  (M >= 2), the network has M outputs and predictions map back to the values 1..M
  (``config["class_values"]``; see :func:`labels_from_probability`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..progress import EpochResult, StopFn
from ..validate import IGNORE_VALUE, MAX_CLASSES, InputError, check_image, check_labels
from .data import CropSampler, as_slices, preprocess
from .loop import Schedule, TorchRandom, TrainResult, finish, open_device, run_epochs
from .model import TrainedModel, build_model
from .settings import check_network, check_schedule, decoder_for
from .warm_start import start_from

#: Internal marker for ignored pixels once labels are mapped to class indices.
_IGNORE = -1
#: Losses that need a single sigmoid output.
BINARY_ONLY = ("bce", "weighted-bce", "exponential-unlabelled", "dmi")


@dataclass
class SupervisedConfig:
    """Settings of a supervised run (the paper's study uses BCE and SGD with momentum 0.9).

    Attributes
    ----------
    arch : {"unet", "deeplabv3plus"}
    encoder : str
        segmentation-models-pytorch encoder name (random init, no download).
    encoder_depth : int
        3 to 5; crops must be multiples of ``2**encoder_depth``.
    decoder_channels : tuple of int or None
        U-Net decoder widths, one per encoder stage (None: smp's defaults); e.g. ``(64, 32, 16)``
        makes a small, fast CPU model.
    loss : str
        ``auto`` (BCE for binary labels, cross-entropy for multi-class) or a name from
        :func:`.losses.get_loss`.
    loss_params : dict
        Keyword arguments for the loss (e.g. ``{"beta": 0.9}``).
    optimizer : {"sgd", "adam"}
        SGD with ``momentum`` (the paper's setting, default) or Adam.
    epochs, lr, momentum, weight_decay, batch, crop : training schedule.
    steps_per_epoch : int or None
        Batches per epoch; None draws about as many pixels as the training set holds.
    ignore_value : int or None
        Label value left out of the loss.
    unlabelled_is_ignore : bool
        Scribble mode: 0 is "not annotated", classes are 1..M.
    warmup_epochs : int
        Epochs trained with BCE/CE before switching to ``loss`` (Xu et al. do this for L_DMI).
    preview_every : int
        Predict every input image every this many epochs (and on the last); 0 = only the last.
    augment : bool
        Random flips and 90-degree rotations of the crops.
    preprocess : dict
        Normalisation spec (see :func:`.training_data.preprocess`), stored with the model.
    tile : int
        Tile size for previews and prediction.
    """

    arch: str = "unet"
    encoder: str = "resnet18"
    encoder_depth: int = 4
    decoder_channels: tuple | None = None
    loss: str = "auto"
    loss_params: dict = field(default_factory=dict)
    epochs: int = 30
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch: int = 4
    crop: int = 256
    steps_per_epoch: int | None = None
    ignore_value: int | None = IGNORE_VALUE
    unlabelled_is_ignore: bool = False
    warmup_epochs: int = 0
    preview_every: int = 5
    augment: bool = True
    preprocess: dict = field(default_factory=dict)
    tile: int = 256

    @classmethod
    def fast(cls, **overrides) -> SupervisedConfig:
        """The viewer's defaults ("Train from rough labels"): a shallow U-Net with Adam on 128-px crops,
        10 epochs of 25 steps, about a minute on a 2-core CPU for a 512 x 512 image. On the bundled
        samples a 10 % sample of the truth trains to within 0.01 Dice of the clean labels (ER 0.96 vs
        0.97, mitochondria 0.93 vs 0.94; docs/widgets.md). The class defaults stay the study's.
        """
        base = {"encoder_depth": 3, "optimizer": "adam", "lr": 1e-3, "crop": 128, "batch": 8, "epochs": 10,
                "steps_per_epoch": 25, "preview_every": 2}
        merged = {**base, **overrides}
        # slim decoder widths (64, 32, 16 at depth 3; halving down to 16 at other depths): smp's
        # default (256, 128, 64) ran the same 250 steps more than 6x slower on the CPU
        merged.setdefault("decoder_channels", decoder_for(merged["encoder_depth"], (64, 32, 16)))
        return cls(**merged)

    def check(self) -> SupervisedConfig:
        """Raise :class:`InputError` for settings that cannot work; returns the config."""
        check_network(self.arch, self.encoder, self.encoder_depth, self.decoder_channels, self.crop, self.batch)
        check_schedule(self.epochs, self.lr, self.optimizer)
        if int(self.warmup_epochs) < 0 or int(self.preview_every) < 0:
            raise InputError("warm-up epochs and preview every must be at least 0.")
        if self.steps_per_epoch is not None and int(self.steps_per_epoch) < 0:
            raise InputError(f"steps per epoch must be at least 0 (0 or unset: from the data), "
                             f"got {self.steps_per_epoch}.")
        if self.loss != "auto":
            from .losses import get_loss  # torch: imported only when a named loss is checked

            try:
                get_loss(self.loss, **self.loss_params)
            except ValueError as err:
                raise InputError(str(err)) from None
        return self


@dataclass
class PreparedLabels:
    """Labels mapped to class indices 0..K-1 with ``-1`` for ignored pixels."""

    targets: list
    class_values: list
    n_outputs: int


def _values(lab: np.ndarray) -> set:
    """The distinct values of an integer array (a bincount for 8/16-bit unsigned: ~10x faster)."""
    if lab.dtype.kind == "u" and lab.dtype.itemsize <= 2:
        return {int(v) for v in np.flatnonzero(np.bincount(lab.reshape(-1).astype(np.int64, copy=False)))}
    return {int(v) for v in np.unique(lab)}


def class_values(labels: Sequence[np.ndarray], ignore_value: int | None = IGNORE_VALUE,
                 unlabelled_is_ignore: bool = False, max_classes: int = MAX_CLASSES,
                 name: str = "labels") -> list:
    """The label values that are classes; raises :class:`InputError` (naming ``name``) when the
    labels cannot train: nothing annotated, no foreground, one scribbled class, or instance labels."""
    checked = [check_labels(lab, name=name if len(labels) == 1 else f"{name} {i + 1}")
               for i, lab in enumerate(labels)]
    present: set = set()
    for lab in checked:
        present |= _values(lab)
    if ignore_value is not None:
        present.discard(int(ignore_value))
    if unlabelled_is_ignore:
        present.discard(0)
    if not present:
        raise InputError(f"{name}: no annotated pixels (everything is ignored or unlabelled).")
    top = max(present)
    if unlabelled_is_ignore:
        values = list(range(1, top + 1))
        if len(values) < 2:
            raise InputError(f"{name}: scribble mode needs at least two classes (e.g. 1 = background, "
                             "2 = foreground); only class 1 is painted.")
    else:
        values = list(range(0, max(top, 1) + 1))
        if top == 0:
            raise InputError(f"{name}: no foreground (only 0 and ignored pixels); paint some class 1.")
    if len(values) > max_classes:
        raise InputError(f"{name}: values up to {top} look like instance labels, not classes; "
                         "turn them into a 0/1 mask (or 0..M classes) first.")
    return values


def prepare_labels(labels: Sequence[np.ndarray], ignore_value: int | None = IGNORE_VALUE,
                   unlabelled_is_ignore: bool = False, max_classes: int = MAX_CLASSES,
                   name: str = "labels") -> PreparedLabels:
    """Map label arrays to training targets (int16 class indices, ``-1`` = ignored).

    Parameters
    ----------
    labels : sequence of integer arrays
    ignore_value : int or None
        Value left out of training.
    unlabelled_is_ignore : bool
        0 is "not annotated" (scribbles); classes are the values 1..M.
    max_classes : int
        More distinct values than this look like instance labels and are refused.
    name : str
        What the messages call the labels (a layer or file name).

    Raises
    ------
    InputError
        No annotated pixels, no foreground, too many classes, or fewer than two scribbled classes.
    """
    values = class_values(labels, ignore_value, unlabelled_is_ignore, max_classes, name)
    checked = [check_labels(lab, name=name) for lab in labels]
    offset = 1 if unlabelled_is_ignore else 0
    targets = []
    for lab in checked:
        t = lab.astype(np.int32) - offset
        bad = t < 0
        if ignore_value is not None:
            bad |= lab == ignore_value
        t[bad] = _IGNORE
        targets.append(t.astype(np.int16))
    n_out = 1 if (not unlabelled_is_ignore and len(values) == 2) else len(values)
    return PreparedLabels(targets, values, n_out)


def labels_from_probability(prob: np.ndarray, config: dict) -> np.ndarray:
    """Turn a model's probability output into label values (see ``config["class_values"]``).

    Binary models: ``prob > threshold`` gives 0/1. Multi-class: the argmax over the leading class
    axis, mapped to the class values (1..M in scribble mode).
    """
    values = np.asarray(config.get("class_values", [0, 1]))
    dtype = np.uint8 if values.max() < 256 else np.uint16
    if int(config.get("model", {}).get("classes", 1)) == 1:
        return (np.asarray(prob) > float(config.get("threshold", 0.5))).astype(dtype)
    return values[np.argmax(prob, axis=0)].astype(dtype)


def _as_list(arrays) -> list:
    if isinstance(arrays, np.ndarray):
        return [arrays]
    return list(arrays)


def _select_loss(config: SupervisedConfig, n_out: int):
    name = config.loss
    if name == "auto":
        name = "bce" if n_out == 1 else "ce"
    key = name.strip().lower().replace("_", "-")
    if n_out > 1 and key in BINARY_ONLY:
        raise InputError(f"loss {name!r} works on binary labels only; these labels have {n_out} "
                         "classes. Use ce, bootstrap-soft or bootstrap-hard.")
    from .losses import get_loss

    main = get_loss(key, **config.loss_params)
    warm = get_loss("bce" if n_out == 1 else "ce")
    return key, main, warm


class SupervisedTask:
    """Supervised training's part of the loop: a masked loss (with warm-up) and previews."""

    def __init__(self, images: list, model: TrainedModel, sampler: CropSampler, config: SupervisedConfig,
                 losses: tuple, device, evaluate: Callable[[TrainedModel], dict] | None) -> None:
        self.images, self.model, self.sampler, self.config, self.dev = images, model, sampler, config, device
        self.main_loss, self.warm_loss = losses
        self.evaluate = evaluate
        self.fg, self.seen = 0.0, 0
        self.preview: list | None = None

    def start_epoch(self, epoch: int) -> None:
        self.fg, self.seen = 0.0, 0

    def batch(self) -> tuple:
        import torch

        xb, yb = self.sampler.sample(self.config.batch)
        return torch.from_numpy(xb).to(self.dev), torch.from_numpy(yb.astype(np.int64)).to(self.dev)

    def loss(self, logits, y, epoch: int):
        import torch

        loss_fn = self.warm_loss if epoch <= int(self.config.warmup_epochs) else self.main_loss
        loss = loss_fn(logits, y, y != _IGNORE)
        with torch.no_grad():
            pred_fg = logits[:, 0] > 0 if self.model.classes == 1 else logits.argmax(dim=1) > 0
            self.fg += float(pred_fg.float().mean())
            self.seen += 1
        return loss

    def finish_epoch(self, epoch: int, losses: list, started: float, stop: StopFn) -> tuple:
        config = self.config
        last = epoch == int(config.epochs)
        every = int(config.preview_every)
        preview = None
        if last or (every > 0 and epoch % every == 0):  # a stop in here keeps the caller's last preview
            preview = [self.model.predict(im, device=str(self.dev), tile=config.tile, stop=stop)
                       for im in self.images]
            self.preview = preview
        extra = {"step_losses": losses}
        if self.evaluate is not None:
            extra.update(self.evaluate(self.model))
        result = EpochResult(epoch=epoch, n_epochs=int(config.epochs), loss=float(np.mean(losses)),
                             foreground_fraction=self.fg / max(self.seen, 1), seconds=time.perf_counter() - started,
                             preview=preview, extra=extra)
        record = result.as_dict()
        record.pop("step_losses", None)
        self.model.history.append(record)
        return result, last


def train_supervised(
    images,
    labels,
    config: SupervisedConfig | None = None,
    seed: int = 0,
    device: str = "auto",
    stop: StopFn = None,
    evaluate: Callable[[TrainedModel], dict] | None = None,
    init: tuple | None = None,
) -> Generator[EpochResult, None, TrainResult]:
    """Train a segmentation network on images and (noisy, sparse) labels; yield one record per epoch.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        Greyscale images, 2D or nD (trained as 2D slices over the last two axes), raw intensities.
    labels : ndarray or sequence of ndarray
        Integer labels with the images' shapes (see the module docstring for their meaning).
    config : SupervisedConfig
        Checked with :meth:`SupervisedConfig.check`.
    seed : int
        Seeds the weights and dropout (a private torch state), the crops and augmentations.
    device : str
        ``auto``, ``cuda``, ``cuda:i``, ``mps`` or ``cpu``.
    stop : callable, optional
        Polled before every batch; when it returns True the generator returns the model as it was
        after the last completed batch.
    evaluate : callable, optional
        ``evaluate(model) -> dict`` called after every epoch; its numbers go to ``EpochResult.extra``.
    init : (path, part), optional
        Start from a saved model's weights: ``part`` is ``"all"`` or ``"encoder"`` (the decoder
        starts fresh); see :mod:`.warm_start`. Recorded as ``config["init"]``.

    Yields
    ------
    EpochResult
        ``loss`` is the mean over the epoch's batches, ``foreground_fraction`` the predicted
        foreground fraction of the training crops; ``extra["step_losses"]`` holds the loss of every
        batch. ``preview`` holds probability maps of the input images every ``preview_every`` epochs.

    Returns
    -------
    TrainResult
        ``model.config`` holds the model, preprocessing, training settings and ``class_values``;
        ``outputs`` the last preview (None if none was made).
    """
    config = (config or SupervisedConfig()).check()
    images = _as_list(images)
    labels = _as_list(labels)
    if not images:
        raise InputError("no images to train on.")
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} label arrays; give one per image.")
    for i, (im, lab) in enumerate(zip(images, labels)):
        check_image(im, name=f"image {i + 1}")
        if np.shape(im) != np.shape(lab):
            raise InputError(f"labels {i + 1}: shape {np.shape(lab)} does not match image {np.shape(im)}.")
    prepared = prepare_labels(labels, config.ignore_value, config.unlabelled_is_ignore)
    n_out = prepared.n_outputs
    loss_name, main_loss, warm_loss = _select_loss(config, n_out)

    x_slices, y_slices = [], []
    for im, t in zip(images, prepared.targets):
        x_slices += [preprocess(s, config.preprocess) for s in as_slices(np.asarray(im))]
        y_slices += as_slices(t)

    choice, dev = open_device(device)
    random = TorchRandom(seed, dev)
    rng = np.random.default_rng(int(seed))
    decoder = list(config.decoder_channels) if config.decoder_channels else None
    with random.active():
        net = build_model(config.arch, config.encoder, config.encoder_depth, in_channels=1, classes=n_out,
                          decoder_channels=decoder)
    settings = {"arch": config.arch, "encoder": config.encoder, "encoder_depth": int(config.encoder_depth),
                "decoder_channels": decoder, "in_channels": 1, "classes": n_out}
    started_from = start_from(net, init, settings)
    net.to(dev)
    sampler = CropSampler(x_slices, y_slices, crop=config.crop, seed=rng, augment=config.augment,
                          target_pad=_IGNORE)
    steps = int(config.steps_per_epoch or sampler.steps_per_epoch(config.batch))
    model_config = {
        "kind": "supervised",
        "model": settings,
        "preprocess": dict(config.preprocess),
        "threshold": 0.5,
        "class_values": prepared.class_values,
        "loss": loss_name,
        "training": asdict(config),
        "seed": int(seed),
        "device": choice.device,
        "device_reason": choice.reason,
        "steps_per_epoch": steps,
        "init": started_from,
    }
    model = TrainedModel(net, model_config)
    task = SupervisedTask(images, model, sampler, config, (main_loss, warm_loss), dev, evaluate)
    optimizer = {"name": config.optimizer, "lr": config.lr, "momentum": config.momentum,
                 "weight_decay": config.weight_decay}
    schedule = Schedule(int(config.epochs), steps, config.batch, config.crop, optimizer)
    stopped = yield from run_epochs(net, task, schedule, dev, random, stop)
    return finish(model, stopped, task.preview if stopped is None else None)
