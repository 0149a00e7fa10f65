"""Dock widget "iGTT segmentation": unsupervised segmentation of one or more images, live.

The engine is :func:`core.igtt.engine.train` (a generator); running, streaming into
``<image>_igtt`` / ``<image>_igtt_prob``, stopping and saving are the shared
:class:`~._run_panel.RunPanel`. This module only turns the form into an ``IgttConfig`` and a
:class:`~._workers.RunRequest`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, LineEdit, Select, SpinBox

from .._tooltips import IGTT as TIPS
from ..core.igtt.candidates import CRITERIA
from ..core.igtt.config import SIZE_FIELDS, IgttConfig
from ..core.igtt.engine import train
from ..core.igtt.structure import STRUCTURES
from ..core.training.data import volume_scope
from ..core.training.settings import ENCODERS
from ..core.units import UnitChoice, choose_unit
from ..core.validate import InputError, check_axes
from ._forms import ScrollingForm, collapsible, image_layers, image_problem, parse_slices
from ._init_row import InitRow
from ._large import TRAIN_BUDGET_MPX, describe, reads_in_blocks, training_blocks, training_images
from ._layers import FrozenLayer, guess_axes, layer_pixel_size
from ._run_panel import RunPanel
from ._workers import RunRequest

if TYPE_CHECKING:
    import napari

STRUCTURE_NAMES = {"auto": "auto (decide from the image)", "network": "thin network (ER)",
                   "objects": "thick objects (mitochondria, nuclei)"}
#: Widget name -> IgttConfig field, for the settings a preset sets.
FIELDS = {
    "epochs": "epochs", "preview_every": "preview_every", "encoder": "encoder", "encoder_depth": "encoder_depth",
    "crop": "crop", "batch": "batch_size", "lr": "lr", "steps": "steps_per_epoch", "use_ems": "use_ems",
    "leave_out_unsure": "leave_out_unsure",
    "selection": "selection", "criterion": "criterion", "early_stop": "early_stop", "local_sigma": "local_sigma",
    "scope": "scope",
}
#: The FIELDS rows shown above the fold; every other one sits under "Advanced", in FIELDS order.
MAIN_FIELDS = ("epochs", "preview_every")


class IgttWidget(ScrollingForm):
    """Segment ER / mitochondria networks without labels (iGTT), watching predictions appear.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:  # npe2 injects the viewer
        self.viewer = viewer
        self._cache: dict = {}
        self.unit = UnitChoice("px", None, "no image")
        self._sizes: dict = {}  # local contrast value per unit, kept when the images change unit
        d = IgttConfig.preset("fast")
        self.images = Select(label="images", choices=self._image_choices, tooltip=TIPS["images"])
        self.images.native.setMaximumHeight(80)
        self.axes = LineEdit(label="axes", value="", tooltip=(
            "The images' axes, e.g. TZYX, ZYX or TYX (T time, Z depth), as guessed from the file or napari's "
            "axis labels; correct them here (empty: unknown). A stack is a volume, and Predict uses ortho "
            "planes, only where there is a Z axis."))
        self.slices = LineEdit(label="slices", value="all", tooltip=TIPS["slices"])
        self.zstacks = ComboBox(label="z-stacks (Predict)", value="auto", choices=[
            ("auto (ortho planes with a Z axis)", "auto"), ("xy slices", "slices"), ("ortho planes", "ortho")],
            tooltip="How Predict segments z-stacks: xy slices, or ortho planes (xy, xz and yz planes of the same "
                    "network, z resampled by the z step / pixel size, averaged); ortho needs a Z axis. auto: "
                    "ortho where the axes have a Z, as metastructures predict --volume auto.")
        self.level = ComboBox(label="resolution level", choices=self._level_choices, visible=False,
                              tooltip="Multiscale images: the level to train on and predict (0 = full "
                                      "resolution). Outputs get that level's pixel size.")
        self.budget = SpinBox(label="large images: train on (Mpx)", value=TRAIN_BUDGET_MPX, min=1, max=4096,
                              tooltip="Lazy or very large images train on a seeded, evenly spread sample of "
                                      "planes (or volumes) holding at most this many megapixels, read one at a "
                                      "time. In-memory images train whole.")
        self.preset = ComboBox(label="preset", choices=[("fast (CPU-friendly)", "fast"), ("paper", "paper")],
                               value="fast", tooltip=TIPS["preset"])
        self.epochs = SpinBox(label="epochs", value=d.epochs, min=1, max=10000, tooltip=TIPS["epochs"])
        self.preview_every = SpinBox(label="preview every", value=d.preview_every, min=1, max=1000,
                                     tooltip=TIPS["preview_every"])
        self.structure = ComboBox(label="structure", value=d.structure, tooltip=TIPS["structure"],
                                  choices=[(STRUCTURE_NAMES[s], s) for s in STRUCTURES])
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1, tooltip=TIPS["seed"])
        self.encoder = ComboBox(label="encoder", choices=ENCODERS, value=d.encoder, tooltip=TIPS["encoder"])
        self.encoder_depth = SpinBox(label="encoder depth", value=d.encoder_depth, min=3, max=5,
                                     tooltip=TIPS["encoder_depth"])
        self.crop = SpinBox(label="crop (px)", value=d.crop, min=32, max=2048, step=32, tooltip=TIPS["crop"])
        self.batch = SpinBox(label="batch", value=d.batch_size, min=1, max=256, tooltip=TIPS["batch"])
        self.lr = FloatSpinBox(label="learning rate", value=d.lr, min=1e-5, max=1.0, step=0.0005,
                               tooltip=TIPS["lr"])
        self.lr.native.setDecimals(5)
        self.steps = SpinBox(label="steps per epoch", value=d.steps_per_epoch, min=0, max=100000,
                             tooltip=TIPS["steps"])
        self.use_ems = CheckBox(text="EMS (refine pseudo-labels)", value=d.use_ems, tooltip=TIPS["use_ems"])
        self.leave_out_unsure = CheckBox(text="leave dim, unsure pixels out of training", value=d.leave_out_unsure,
                                         tooltip=TIPS["leave_out_unsure"])
        self.selection = ComboBox(label="threshold per", value=d.selection, tooltip=TIPS["selection"],
                                  choices=[("image", "image"), ("batch (official code)", "batch")])
        self.criterion = ComboBox(label="criterion", choices=CRITERIA, value=d.criterion, tooltip=TIPS["criterion"])
        self.early_stop = CheckBox(text="stop early when pseudo-labels settle", value=d.early_stop,
                                   tooltip=TIPS["early_stop"])
        self.local_sigma = FloatSpinBox(label="local contrast (px)", value=d.local_sigma, min=0.0, max=500.0,
                                        step=1.0, tooltip=TIPS["local_sigma"])
        self.scope = ComboBox(label="stacks as", value=d.scope, tooltip=TIPS["scope"],
                              choices=[("auto (z-stacks as volumes)", "auto"), ("volumes", "volume"),
                                       ("2D slices", "slice")])
        self.init = InitRow()
        self.advanced = collapsible("Advanced", Container(widgets=[
            *(getattr(self, name) for name in FIELDS if name not in MAIN_FIELDS), self.budget, self.init]))
        self.panel = RunPanel(viewer, "igtt", "_igtt", prepare=self.prepare, validate=self.problem,
                              fg_label="pseudo-label fg %", training_size=lambda: (self.crop.value, self.batch.value))
        super().__init__(widgets=[self.images, self.level, self.axes, self.slices, self.structure, self.preset,
                                  self.epochs, self.preview_every, self.seed, self.advanced, self.zstacks, self.panel],
                         footer=self.panel.footer)
        self.preset.changed.connect(self.apply_preset)
        self.images.changed.connect(self.update_unit)
        self.images.changed.connect(self.update_levels)
        self.images.changed.connect(self.update_axes)
        self.panel.models.on_loaded = self.show_settings_of
        self.panel.models.freeze, self.panel.models.predict_options = self.freeze, self.predict_options
        for w in (self.images, self.level, self.axes, self.slices, self.structure, self.init,
                  *(getattr(self, name) for name in FIELDS)):
            w.changed.connect(self.panel.refresh)
        self._pick_image()
        self.update_unit()
        self.update_levels()
        self.update_axes()

    # ------------------------------------------------------------------ inputs
    def _image_choices(self, _widget=None) -> list:
        return image_layers(self.viewer)

    def reset_choices(self, *_) -> None:
        """Layers changed (napari calls this once docked): new choices, and an image if none is picked."""
        super().reset_choices()
        self._pick_image()
        self.update_levels()

    def _level_choices(self, _widget=None) -> list:
        """``(text, level)`` of the first chosen multiscale image: ``0: 8192×512×512`` ..."""
        layer = next((la for la in self.images.value or [] if getattr(la, "multiscale", False)), None)
        if layer is None:
            return [("0 (full resolution)", 0)]
        return [(f"{k}: {'×'.join(str(n) for n in level.shape)}" + (" (full)" if k == 0 else ""), k)
                for k, level in enumerate(layer.data)]

    def update_levels(self, *_) -> None:
        """Show the level row only when a chosen image is multiscale (reads shapes only)."""
        self.level.reset_choices()
        self.level.visible = any(getattr(la, "multiscale", False) for la in self.images.value or [])

    def _level_of(self, layer) -> int:
        return int(self.level.value or 0) if getattr(layer, "multiscale", False) else 0

    def update_axes(self, *_) -> None:
        """Show the first chosen image's axes, as guessed (the user may correct them)."""
        layers = list(self.images.value or [])
        self.axes.value = (guess_axes(layers[0]) or "") if layers else ""

    def freeze(self, layer) -> FrozenLayer:
        """The layer as a run or Predict reads it: at the chosen level, with the axes of the axes row
        where they fit its dimensions (raises InputError when they cannot be axes of it)."""
        frozen = FrozenLayer.from_layer(layer, level=self._level_of(layer))
        text = self.axes.value.strip()
        if not text or frozen.axes == text.upper():
            return frozen
        axes = check_axes(text, frozen.data.shape, name=f"axes of '{layer.name}'")
        return replace(frozen, metadata={**frozen.metadata, "axes": axes})

    def predict_options(self, frozen: FrozenLayer) -> dict:
        """``TrainedModel.predict`` arguments for the "z-stacks" row: ortho planes where the axes
        have Z third-last ("auto" and "ortho"), z resampled by z step / pixel size; else xy slices."""
        axes = frozen.axes or ""
        if self.zstacks.value != "slices" and len(axes) >= 3 and axes[-3] == "Z":
            return {"volume_mode": "ortho", "anisotropy": float(frozen.scale[-3]) / float(frozen.scale[-1])}
        return {"volume_mode": "slices"}

    def _pick_image(self) -> None:
        """Choose the selected (or first) image when none is chosen."""
        if not self.images.value and self.images.choices:
            active = self.viewer.layers.selection.active
            self.images.value = [active if active in self.images.choices else self.images.choices[0]]

    def _unit_settings(self) -> dict:
        return {"size_unit": "um", "pixel_size_um": self.unit.pixel_size} if self.unit.unit == "um" else {}

    def update_unit(self, *_) -> None:
        """Sizes in µm when the chosen images have one pixel size (their scale), else px: the label
        says which, and each unit keeps its own value. Reads scale and units only."""
        layers = list(self.images.value or [])
        new = (choose_unit("auto", [layer_pixel_size(la) for la in layers], [la.name for la in layers])
               if layers else UnitChoice("px", None, "no image"))
        if new.unit != self.unit.unit:
            self._sizes[self.unit.unit] = self.local_sigma.value
        self.unit = new
        self.local_sigma.label = f"local contrast ({new.label()})"
        self.local_sigma.native.setDecimals(3 if new.unit == "um" else 1)
        self.local_sigma.step = 0.05 if new.unit == "um" else 1.0
        default = IgttConfig.preset(self.preset.value, **self._unit_settings()).local_sigma
        self.local_sigma.value = self._sizes.get(new.unit, default)
        self.local_sigma.tooltip = f"{TIPS['local_sigma']} Now: {new.label()} ({new.reason})."

    def apply_preset(self, name: str) -> None:
        """Set the form to the preset's values (the fields stay editable)."""
        cfg = IgttConfig.preset(name, **self._unit_settings())
        self._sizes.clear()
        for widget, key in FIELDS.items():
            getattr(self, widget).value = getattr(cfg, key)
        self.panel.refresh()

    def show_settings_of(self, model) -> None:
        """Fill the form with the settings a loaded model was trained with (a Run then continues
        from the same settings); settings the model does not record stay as they are."""
        saved = (getattr(model, "config", {}) or {}).get("training") or {}
        if saved.get("preset") in ("fast", "paper"):
            self.preset.value = saved["preset"]  # first: it fills the fields with the preset's values
        if saved.get("structure") in STRUCTURE_NAMES:
            self.structure.value = saved["structure"]
        same_unit = saved.get("size_unit", "px") == self.unit.unit
        for widget, key in FIELDS.items():
            value = saved.get(key)
            if value is None or (key in SIZE_FIELDS and not same_unit):  # a size in another unit
                continue
            try:
                getattr(self, widget).value = value
            except (ValueError, TypeError):  # a value this form cannot show (a foreign or older file)
                continue
        self.panel.refresh()

    def config(self) -> IgttConfig:
        """The IgttConfig the form describes: the preset plus the values in the form.

        Raises InputError when the settings cannot work (see :meth:`IgttConfig.check`).
        """
        values = {key: getattr(self, widget).value for widget, key in FIELDS.items()}
        return IgttConfig.preset(self.preset.value, structure=self.structure.value, **values,
                                 **self._unit_settings())

    def problem(self) -> str:
        """Why Run is disabled ("" when it can run). Cheap checks only."""
        layers = list(self.images.value or [])
        if not layers:
            return "pick one or more image layers."
        try:
            crop = self.config().crop
        except InputError as err:
            return str(err)
        if problem := self.init.problem():
            return problem
        for layer in layers:
            level = self._level_of(layer)
            problem = image_problem(layer, crop, self._cache.setdefault(id(layer), {}), level=level)
            if problem:
                return problem
            data = layer.data[min(level, len(layer.data) - 1)] if getattr(layer, "multiscale", False) else layer.data
            if self.axes.value.strip():
                try:
                    check_axes(self.axes.value, data.shape, name=f"axes of '{layer.name}'")
                except InputError as err:
                    return str(err)
            if data.ndim > 2:
                try:
                    parse_slices(self.slices.value, data.shape[0], name=f"slices of '{layer.name}'")
                except InputError as err:
                    return str(err)
        return ""

    def prepare(self) -> RunRequest:
        """Freeze the chosen layers and build the run (raises InputError for the user).

        Pixels are read in the worker: in-memory images whole, lazy or large ones as a sample of
        blocks within the "train on (Mpx)" budget (:func:`~._large.training_blocks`), recorded in
        ``params["trained_blocks"]``."""
        config = self.config()
        frozen = [self.freeze(layer) for layer in self.images.value]
        selections = [parse_slices(self.slices.value, f.data.shape[0], name=f"slices of '{f.name}'")
                      if f.data.ndim > 2 else None for f in frozen]
        seed = int(self.seed.value)
        params = config.to_dict()
        params["images"] = [f.name for f in frozen]
        params["sizes"] = {**config.sizes(), "reason": self.unit.reason}
        budget = int(self.budget.value) << 20  # Mpx of 2**20 px
        plans = [training_blocks(f.data.shape, volume_scope(config.scope, f.data.ndim, f.axes), sel, budget, seed)
                 if reads_in_blocks(f.data) else None for f, sel in zip(frozen, selections)]
        note = ""
        if any(plan is not None for plan in plans):
            params["train_budget_px"] = budget
            params["trained_blocks"] = {f.name: [b.record() for b in plan] for f, plan in zip(frozen, plans) if plan}
            note = " · sample of " + "; ".join(f"'{f.name}': {describe(plan, f.data.shape)}"
                                                 for f, plan in zip(frozen, plans) if plan)
        params["axes"] = {f.name: f.axes for f in frozen}
        init = self.init.value
        params["init"] = self.init.record()
        levels = {f.name: {"level": f.level, "scale": list(f.scale)} for f in frozen if f.level is not None}
        if levels:
            params["levels"] = levels

        def start(device, stop):
            images, axes = training_images(frozen, selections, plans)  # reads the pixels: in the worker
            return train(images, config, seed=seed, device=device, stop=stop, axes=axes, init=init)

        return RunRequest(inputs=frozen, params=params, seed=seed, selections=selections, blocks=plans,
                          note=note, start=start)
