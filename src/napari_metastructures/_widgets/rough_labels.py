"""Dock widget "Train from rough labels": a U-Net or DeepLabV3+ trained on sparse or noisy labels.

The paper's finding in practice: a network trained on 10% sampled, skeletonised or flipped labels
still recovers the structure. Labels: 0 = background, 1..M = classes; pixels equal to the ignore
value (``core.validate.IGNORE_VALUE``, as written by the "Noisy labels" widget) are left out of the
loss, and in scribble mode 0 means "not annotated". Training is
:func:`core.training.supervised.train_supervised`; running, streaming, stopping and saving are the
shared :class:`~._run_panel.RunPanel`.
"""
from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, LineEdit, SpinBox

from .._tooltips import ROUGH_LABELS as TIPS
from ..core.training.settings import ARCHS, ENCODERS
from ..core.training.supervised import (
    SupervisedConfig,
    class_values,
    labels_from_probability,
    prepare_labels,
    train_supervised,
)
from ..core.validate import InputError, check_labels_layout
from ._forms import ScrollingForm, collapsible, image_layers, image_problem, parse_slices
from ._init_row import InitRow
from ._layers import FrozenLayer
from ._run_panel import RunPanel
from ._workers import RunRequest

if TYPE_CHECKING:
    import napari

ARCH_NAMES = {"unet": "U-Net", "deeplabv3plus": "DeepLabV3+"}
LOSSES = (
    ("auto: BCE (binary) / cross-entropy (classes)", "auto"),
    ("BCE", "bce"),
    ("weighted BCE", "weighted-bce"),
    ("cross-entropy", "ce"),
    ("bootstrapping, soft", "bootstrap-soft"),
    ("bootstrapping, hard", "bootstrap-hard"),
    ("exponential on unlabelled", "exponential-unlabelled"),
    ("DMI", "dmi"),
)


class RoughLabelsWidget(ScrollingForm):
    """Train a segmentation network from an Image layer and rough labels, watching it learn.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:  # npe2 injects the viewer
        self.viewer = viewer
        self._cache: dict = {}
        d = SupervisedConfig.fast()
        self.image = ComboBox(label="image", choices=self._image_choices, tooltip=TIPS["image"])
        self.label_layer = ComboBox(label="labels", choices=self._label_choices, tooltip=TIPS["labels"])
        self.ignore_value = SpinBox(label="ignore value", value=d.ignore_value, min=1, max=65535,
                                    tooltip=TIPS["ignore_value"])
        self.scribbles = CheckBox(text="unlabelled (0) = ignore (scribbles)", value=False,
                                  tooltip=TIPS["scribbles"])
        self.slices = LineEdit(label="slices", value="all", tooltip=TIPS["slices"])
        self.arch = ComboBox(label="architecture", choices=[(ARCH_NAMES[a], a) for a in ARCHS],
                             value=d.arch, tooltip=TIPS["arch"])
        self.encoder = ComboBox(label="encoder", choices=ENCODERS, value=d.encoder, tooltip=TIPS["encoder"])
        self.loss = ComboBox(label="loss", choices=LOSSES, value=d.loss, tooltip=TIPS["loss"])
        self.epochs = SpinBox(label="epochs", value=d.epochs, min=1, max=10000, tooltip=TIPS["epochs"])
        self.preview_every = SpinBox(label="preview every", value=d.preview_every, min=0, max=1000,
                                     tooltip=TIPS["preview_every"])
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1, tooltip=TIPS["seed"])
        self.encoder_depth = SpinBox(label="encoder depth", value=d.encoder_depth, min=3, max=5,
                                     tooltip=TIPS["encoder_depth"])
        self.crop = SpinBox(label="crop (px)", value=d.crop, min=32, max=2048, step=32, tooltip=TIPS["crop"])
        self.batch = SpinBox(label="batch", value=d.batch, min=1, max=256, tooltip=TIPS["batch"])
        self.lr = FloatSpinBox(label="learning rate", value=d.lr, min=1e-5, max=1.0, step=0.001,
                               tooltip=TIPS["lr"])
        self.lr.native.setDecimals(5)
        self.steps = SpinBox(label="steps per epoch", value=d.steps_per_epoch or 0, min=0, max=100000,
                             tooltip=TIPS["steps"])
        self.warmup = SpinBox(label="warm-up epochs", value=d.warmup_epochs, min=0, max=1000,
                              tooltip=TIPS["warmup"])
        self.augment = CheckBox(text="flips and rotations", value=d.augment, tooltip=TIPS["augment"])
        self.init = InitRow()
        self.advanced = collapsible("Advanced", Container(widgets=[
            self.encoder_depth, self.crop, self.batch, self.lr, self.steps, self.warmup, self.augment, self.init]))
        self.panel = RunPanel(viewer, "rough_labels", "_rough", prepare=self.prepare, validate=self.problem,
                              fg_label="predicted fg %", training_size=lambda: (self.crop.value, self.batch.value))
        super().__init__(widgets=[self.image, self.label_layer, self.ignore_value, self.scribbles, self.slices,
                                  self.arch, self.encoder, self.loss, self.epochs, self.preview_every, self.seed,
                                  self.advanced, self.panel], footer=self.panel.footer)
        for w in (self.image, self.label_layer, self.ignore_value, self.scribbles, self.slices, self.arch,
                  self.encoder, self.loss, self.epochs, self.preview_every, self.encoder_depth, self.crop,
                  self.batch, self.lr, self.steps, self.warmup, self.augment, self.init):
            w.changed.connect(self.panel.refresh)
        self.panel.refresh()

    # ------------------------------------------------------------------ inputs
    def _image_choices(self, _widget=None) -> list:
        return image_layers(self.viewer)

    def _label_choices(self, _widget=None) -> list:
        """Labels layers first, then Image layers (a mask opened as an image is common)."""
        from napari.layers import Labels

        out = [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Labels)]
        return out + [(f"{name} (Image layer)", layer) for name, layer in image_layers(self.viewer)
                      if layer is not self.image.value]

    def config(self) -> SupervisedConfig:
        """The training settings as set in the widget."""
        return SupervisedConfig.fast(
            arch=self.arch.value, encoder=self.encoder.value, encoder_depth=int(self.encoder_depth.value),
            loss=self.loss.value, epochs=int(self.epochs.value), lr=float(self.lr.value),
            batch=int(self.batch.value), crop=int(self.crop.value), steps_per_epoch=int(self.steps.value) or None,
            ignore_value=int(self.ignore_value.value), unlabelled_is_ignore=bool(self.scribbles.value),
            warmup_epochs=int(self.warmup.value), preview_every=int(self.preview_every.value),
            augment=bool(self.augment.value))

    def problem(self) -> str:
        """Why Run is disabled ("" when the inputs can run). Cheap checks only."""
        image, labels = self.image.value, self.label_layer.value
        if image is None:
            return "pick an image layer."
        problem = image_problem(image, int(self.crop.value), self._cache) or self.init.problem()
        if problem:
            return problem
        if labels is None:
            return "pick a labels layer (0 = background, 1..M = classes)."
        name = f"layer '{labels.name}'"
        try:
            if labels.data.shape != image.data.shape:
                raise InputError(f"{name} has shape {labels.data.shape}, but image "
                                 f"'{image.name}' has {image.data.shape}; they must match.")
            if image.data.ndim > 2:
                parse_slices(self.slices.value, image.data.shape[0])
            config = self.config()
            config.check()
            if isinstance(labels.data, np.ndarray):  # in memory: its classes now (~10 ms at 2048^2), not at Run
                class_values([labels.data], config.ignore_value, config.unlabelled_is_ignore, name=name)
            else:  # lazy: no pixel reads on the GUI thread; the worker checks the values
                check_labels_layout(labels.data, name=name)
        except InputError as err:
            return str(err)
        return ""

    def prepare(self) -> RunRequest:
        """Freeze the inputs and build the run (raises InputError with a message for the user)."""
        config = self.config()
        image, labels = FrozenLayer.from_layer(self.image.value), FrozenLayer.from_layer(self.label_layer.value)
        sel = parse_slices(self.slices.value, image.data.shape[0]) if image.data.ndim > 2 else None
        x = image.data if sel is None else image.data[sel]
        y = labels.data if sel is None else labels.data[sel]
        prepared = prepare_labels([y], config.ignore_value, config.unlabelled_is_ignore,
                                  name=f"layer '{labels.name}'")
        to_mask = partial(labels_from_probability, config={
            "class_values": prepared.class_values, "model": {"classes": prepared.n_outputs}})
        seed = int(self.seed.value)
        params = asdict(config)
        init = self.init.value
        params.update(image=image.name, labels=labels.name, class_values=prepared.class_values,
                      init=self.init.record())
        return RunRequest(
            inputs=[image], params=params, seed=seed, to_mask=to_mask, selections=[sel],
            start=lambda device, stop: train_supervised([x], [y], config, seed=seed, device=device, stop=stop,
                                                        init=init))

