"""Save, Load, Predict and Export of the run panel (:class:`~._run_panel.RunPanel` mixes this in).

These act on the panel's current model and latest mask layers; Predict runs in a worker thread and
can be stopped like a training run.
"""
from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..core.device import DeviceError, resolve_device
from ..core.validate import InputError
from ._forms import image_problem, user_message
from ._layers import FrozenLayer
from ._workers import _predict, avoid_triton_llvm_clash

log = logging.getLogger(__name__)
MODEL_FILTER = "napari-metastructures model (*.pt);;All files (*)"


class ModelActions:
    """The model half of the run panel; expects the panel's widgets and run state."""

    def _set_model(self, model) -> None:
        self.model = model
        m = (getattr(model, "config", {}) or {}).get("model", {})
        epochs = len(getattr(model, "history", []) or [])
        self.model_info.value = (f"model: {m.get('arch', '?')} / {m.get('encoder', '?')}, "
                                 f"{m.get('classes', 1)} output(s), {epochs} epoch(s) trained")
        self._update_buttons()

    def save_model(self, path) -> Path:
        """Save the current model to ``path`` (one file, written atomically)."""
        if self.model is None:
            raise InputError("no model to save yet: run training or load a model first.")
        return self.model.save(path)

    def load_model(self, path) -> None:
        """Load a model saved by this plugin; Predict then uses it."""
        from ..core import load_model as open_model

        avoid_triton_llvm_clash()
        self._set_model(open_model(path))

    def predict(self, *_) -> None:
        """Segment the 'predict on' layer with the current model, in a worker thread."""
        from napari.qt.threading import create_worker

        layer = self.predict_on.value
        if self.model is None or layer is None or self._running:
            return
        avoid_triton_llvm_clash()
        try:
            problem = image_problem(layer, crop=1)
            if problem:
                raise InputError(problem)
            frozen, choice = FrozenLayer.from_layer(layer), resolve_device(self.device.value)
        except (InputError, DeviceError) as err:
            self._notify_error(str(err))
            return
        self._stop.clear()
        self._done.clear()
        self._predicting = True
        self._set_running(True)
        self.timing.value = f"predicting '{frozen.name}' on {choice.name}…"
        self.worker = create_worker(_predict, self.model, frozen, choice.device, self._stop.is_set, self._done,
                                    _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(partial(self._on_predicted, frozen, choice))
        self.worker.errored.connect(lambda err: self._notify_error(user_message(err, "Predict")))
        self.worker.finished.connect(self._predict_finished)
        self.worker.start()

    def _predict_finished(self) -> None:
        self._predicting = False
        if not self._closed:
            self._set_running(False)

    def _on_predicted(self, frozen: FrozenLayer, choice, out) -> None:
        if self._closed:
            return
        if out is None:
            self.timing.value = f"prediction of '{frozen.name}' stopped; nothing written"
            return
        meta = {"method": self.method, "source": frozen.name, "slices": "all", "status": "predicted",
                "params": dict(self.model.config), "device": choice.device, "device_name": choice.name,
                "version": __version__, "model_version": self.model.version}
        name = f"{frozen.name}{self.suffix}"
        self.mask_layers = [self._write_outputs(name, f"{name}_prob", *out, frozen, meta)]
        self.timing.value = f"predicted '{frozen.name}' into '{name}'"
        self.predicted.emit(self.mask_layers[0])

    def export_masks(self, path) -> list:
        """Write the latest mask layer(s) as TIFF with scale; into folder ``path`` when several."""
        from ..io import write_tiff

        layers = [layer for layer in self.mask_layers if layer in self.viewer.layers]
        if not layers:
            raise InputError("no mask to export yet: run or predict first.")
        path = Path(path)
        single = len(layers) == 1 and path.suffix.lower() in (".tif", ".tiff")
        targets = [path] if single else [path / f"{layer.name}.tif" for layer in layers]
        return [write_tiff(target, np.asarray(layer.data), scale=tuple(layer.scale), params=dict(layer.metadata),
                           layer_type="labels", translate=tuple(layer.translate))
                for layer, target in zip(layers, targets)]

    # ---------------------------------------------------------------- dialogs
    def _ask_save(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _f = QFileDialog.getSaveFileName(self.native, "Save model", f"{self.method}_model.pt", MODEL_FILTER)
        if path:
            self._guard(lambda: self.save_model(path), f"Saved the model to {path}", "Save model")

    def _ask_load(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _f = QFileDialog.getOpenFileName(self.native, "Load model", "", MODEL_FILTER)
        if path:
            self._guard(lambda: self.load_model(path), f"Loaded the model from {path}", "Load model")

    def _ask_export(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        if len(self.mask_layers) > 1:
            path = QFileDialog.getExistingDirectory(self.native, "Export the masks into a folder")
        else:
            name = self.mask_layers[0].name if self.mask_layers else "mask"
            path, _f = QFileDialog.getSaveFileName(self.native, "Export mask", f"{name}.tif", "TIFF (*.tif *.tiff)")
        if path:
            self._guard(lambda: self.export_masks(path), f"Exported to {path}", "Export mask")

    def _guard(self, action: Callable, done: str, what: str) -> None:
        from napari.utils.notifications import show_info

        try:
            action()
        except Exception as err:  # shown to the user, never a traceback in the viewer
            log.exception(what)
            self._notify_error(user_message(err, what))
        else:
            show_info(done)
