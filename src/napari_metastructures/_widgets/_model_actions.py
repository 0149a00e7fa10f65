"""Save, Load, Predict and Export: the model half of the run panel, owned by :class:`~._run_panel.RunPanel`.

:class:`ModelActions` holds the current model and its widgets. It acts on the panel's latest mask
layers; Predict runs as the panel's background job and can be stopped like a training run.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from magicgui.widgets import ComboBox, Label, PushButton

from .. import __version__
from .._tooltips import COMMON
from ..core.device import DeviceError, resolve_device
from ..core.validate import InputError
from ._forms import button_row, image_layers, image_problem, user_message
from ._layers import FrozenLayer
from ._workers import _predict, _predict_folder, avoid_triton_llvm_clash

log = logging.getLogger(__name__)
MODEL_FILTER = "napari-metastructures model (*.pt);;All files (*)"


class Owner(Protocol):
    """What :class:`ModelActions` uses of the panel that owns it (``_run_panel.RunPanel``)."""

    viewer: Any
    method: str
    suffix: str
    native: Any
    device: Any
    timing: Any
    running: bool
    closed: bool
    ready: bool  # PyTorch is imported
    outputs: Any  # its _outputs.OutputLayers
    predicted: Any
    mask_layers: list
    activity: Any  # its _activity.Activity

    def notify_error(self, text: str) -> None: ...

    def start_prediction(self, function: Callable, *args, returned: Callable, errored: Callable,
                         yielded: Callable | None = None, desc: str = "", total: int | None = None) -> None: ...


class ModelActions:
    """The current model, and Save, Load, Predict and Export with their buttons.

    Parameters
    ----------
    panel : Owner
        The run panel that owns it, used only through the public members :class:`Owner` lists.

    Attributes
    ----------
    model : TrainedModel or None
        What Save writes and Predict uses: the last trained or loaded model.
    """

    def __init__(self, panel: Owner) -> None:
        self.panel = panel
        self.model = None
        #: Called with a model that Load model opened (the widget shows its settings in the form).
        self.on_loaded: Callable | None = None
        #: ``freeze(layer) -> FrozenLayer`` for Predict (the widget's level and axes; None: as the layer is).
        self.freeze: Callable | None = None
        #: ``predict_options(frozen) -> dict``: extra ``TrainedModel.predict`` arguments (recorded).
        self.predict_options: Callable | None = None
        self._checked: dict = {}  # image_problem's cache for the "predict on" layer
        self._exporting = False  # a bioimage.io export runs in a worker
        self._folder_counts, self._folder_finished = [0, 0], False  # a folder prediction: done, failed; ended
        self.info = Label(value="model: none yet (run, or load one)")
        self.info.native.setWordWrap(True)
        self.save_button = PushButton(text="Save model…", enabled=False, tooltip=COMMON["save_model"])
        self.load_button = PushButton(text="Load model…", tooltip=COMMON["load_model"])
        self.bioimageio_button = PushButton(text="Export for bioimage.io…", enabled=False,
                                            tooltip=COMMON["export_bioimageio"])
        self.predict_on = ComboBox(label="predict on", choices=self._image_choices, tooltip=COMMON["predict_on"])
        self.predict_button = PushButton(text="Predict", enabled=False, tooltip=COMMON["predict"])
        self.folder_button = PushButton(text="Predict folder…", enabled=False, tooltip=COMMON["predict_folder"])
        self.export_button = PushButton(text="Export mask…", enabled=False, tooltip=COMMON["export_mask"])
        self.folder_button.changed.connect(self._ask_predict_folder)
        self.save_button.changed.connect(self._ask_save)
        self.load_button.changed.connect(self._ask_load)
        self.bioimageio_button.changed.connect(self._ask_bioimageio)
        self.predict_button.changed.connect(self.predict)
        self.export_button.changed.connect(self._ask_export)
        self.predict_on.changed.connect(self.update_buttons)

    def widgets(self) -> list:
        """The panel's rows for the model: model line, Save/Load, "predict on", Predict/folder/Export."""
        return [self.info, button_row(self.save_button, self.load_button, self.bioimageio_button), self.predict_on,
                button_row(self.predict_button, self.folder_button, self.export_button)]

    def _image_choices(self, _widget=None) -> list:
        return image_layers(self.panel.viewer)

    def set_model(self, model) -> None:
        """Make ``model`` the current one and describe it."""
        self.model = model
        m = (getattr(model, "config", {}) or {}).get("model", {})
        epochs = len(getattr(model, "history", []) or [])
        self.info.value = (f"model: {m.get('arch', '?')} / {m.get('encoder', '?')}, "
                           f"{m.get('classes', 1)} output(s), {epochs} epoch(s) trained")
        self.update_buttons()

    def update_buttons(self, *_) -> None:
        """Enable what can be done now: nothing while the panel runs, Save/Predict with a model."""
        panel = self.panel
        if panel.closed:
            return
        idle, model, target = not panel.running and panel.ready, self.model is not None, self.predict_on.value
        classes = ((getattr(self.model, "config", None) or {}).get("model") or {}).get("classes", 1)
        self.save_button.enabled = idle and model
        # one-class models only (the package's output is one probability), one export at a time
        self.bioimageio_button.enabled = idle and model and classes == 1 and not self._exporting
        self.load_button.enabled = idle
        problem = image_problem(target, crop=1, cache=self._checked) if target is not None else ""
        self.predict_button.enabled = idle and model and target is not None and not problem
        self.predict_button.tooltip = f"Cannot predict: {problem}" if problem else COMMON["predict"]
        self.folder_button.enabled = idle and model and classes == 1  # the batch writes binary masks
        self.folder_button.tooltip = (COMMON["predict_folder"] if classes == 1 else
                                      f"Cannot predict a folder: a {classes}-class model; the batch writes "
                                      "binary masks (use Predict on a layer)")
        self.export_button.enabled = idle and any(layer in panel.viewer.layers for layer in panel.mask_layers)

    def save_model(self, path) -> Path:
        """Save the current model to ``path`` (one file, written atomically)."""
        if self.model is None:
            raise InputError("no model to save yet: run training or load a model first.")
        return self.model.save(path)

    def load_model(self, path) -> None:
        """Load a model saved by this plugin; Predict then uses it."""
        from ..core import load_model as open_model

        avoid_triton_llvm_clash()
        model = open_model(path)
        self.set_model(model)
        if self.on_loaded is not None:
            self.on_loaded(model)

    def predict(self, *_) -> None:
        """Segment the "predict on" layer with the current model, in a worker thread."""
        panel, layer = self.panel, self.predict_on.value
        if self.model is None or layer is None or panel.running:
            return
        avoid_triton_llvm_clash()
        try:
            problem = image_problem(layer, crop=1)
            if problem:
                raise InputError(problem)
            frozen = self.freeze(layer) if self.freeze is not None else FrozenLayer.from_layer(layer)
            choice = resolve_device(panel.device.value)
            options = self.predict_options(frozen) if self.predict_options is not None else {}
        except (InputError, DeviceError) as err:
            panel.notify_error(str(err))
            return
        panel.start_prediction(partial(_predict, suffix=panel.suffix, options=options), self.model, frozen,
                               choice.device, returned=partial(self._on_predicted, frozen, choice, options),
                               errored=lambda err: panel.notify_error(user_message(err, "Predict")),
                               desc=f"{panel.method}: predicting {frozen.name}")
        panel.timing.value = f"predicting '{frozen.name}' on {choice.name}…"

    def predict_folder(self, source, out) -> bool:
        """Segment every TIFF of folder ``source`` into folder ``out`` in a worker thread, as
        ``metastructures predict`` does; the first mask opens as a layer. False when refused."""
        from ..cli._files import check_writable

        panel = self.panel
        if self.model is None or panel.running:
            return False
        avoid_triton_llvm_clash()
        try:
            if not Path(source).is_dir():
                raise InputError(f"{source}: not a folder.")
            if Path(out).resolve() == Path(source).resolve():
                raise InputError(f"{out}: is the input folder; choose another folder for the results.")
            check_writable(Path(out), "output folder")
            choice = resolve_device(panel.device.value)
        except (InputError, DeviceError) as err:
            panel.notify_error(str(err))
            return False
        self._folder_counts, self._folder_finished = [0, 0], False  # done, failed
        panel.start_prediction(_predict_folder, self.model, Path(source), Path(out), choice.device,
                               yielded=self._on_file, returned=self._on_folder_done,
                               errored=lambda err: panel.notify_error(user_message(err, "Predict folder")),
                               desc=f"{panel.method}: predicting {Path(source).name}/")
        panel.timing.value = f"predicting the files of '{Path(source).name}' on {choice.name}…"
        return True

    def _on_file(self, record: dict) -> None:
        if self.panel.closed or self._folder_finished:  # a late record must not hide the summary
            return
        if "total" in record:  # the worker has listed the folder
            self.panel.activity.update(0, record["total"])
            return
        self._folder_counts[record["status"] == "failed"] += 1
        done, bad = self._folder_counts
        self.panel.activity.update(done + bad)
        self.panel.timing.value = (f"{record['stem']}: {record['status']} ({done} written"
                                   + (f", {bad} failed" if bad else "") + ")")

    def _on_folder_done(self, outcome) -> None:
        panel = self.panel
        if panel.closed:
            return
        summary, first = outcome
        self._folder_finished = True
        text = (f"{summary['done']} file(s) written, {summary['failed']} failed"
                + (", stopped" if summary["stopped"] else "") + f" into {summary['out']} (run.json lists them)")
        if summary["failed_files"]:
            text += "; failed: " + "; ".join(f["reason"] for f in summary["failed_files"][:3])
        panel.timing.value = text
        if first is not None:
            data, kwargs, _kind = first
            panel.viewer.add_labels(data, **kwargs)

    def _on_predicted(self, frozen: FrozenLayer, choice, options: dict, out) -> None:
        panel = self.panel
        if panel.closed:
            return
        if out is None:
            panel.timing.value = f"prediction of '{frozen.name}' stopped; nothing written"
            return
        mask, prob, stores = out
        meta = {"method": panel.method, "source": frozen.name, "slices": "all", "status": "predicted",
                "params": dict(self.model.config), "device": choice.device, "device_name": choice.name,
                "version": __version__, "model_version": self.model.version, **stores}
        if options:
            meta["predict_options"] = dict(options)
        if frozen.level is not None:
            meta["level"] = frozen.level
        name = f"{frozen.name}{panel.suffix}"
        panel.mask_layers = [panel.outputs.write(name, f"{name}_prob", mask, prob, frozen, meta)]
        where = (f" (zarr store {stores['mask_store']}" + (", temporary" if stores["temporary"] else "") + ")"
                 if stores else "")
        panel.timing.value = f"predicted '{frozen.name}' into '{name}'{where}"
        panel.predicted.emit(panel.mask_layers[0])

    def _export_jobs(self, path) -> list:
        """``(target, data, write_tiff keyword arguments)`` per mask to export (no pixels read)."""
        layers = [layer for layer in self.panel.mask_layers if layer in self.panel.viewer.layers]
        if not layers:
            raise InputError("no mask to export yet: run or predict first.")
        path = Path(path)
        single = len(layers) == 1 and path.suffix.lower() in (".tif", ".tiff")
        targets = [path] if single else [path / f"{layer.name}.tif" for layer in layers]
        return [(target, layer.data, {"scale": tuple(layer.scale), "params": dict(layer.metadata),
                                      "layer_type": "labels", "translate": tuple(layer.translate),
                                      "axes": _file_axes(layer)})
                for layer, target in zip(layers, targets)]

    def export_masks(self, path) -> list:
        """Write the latest mask layer(s) as TIFF with scale and axes; into folder ``path`` when several."""
        return _write_all(self._export_jobs(path))

    # ---------------------------------------------------------------- dialogs
    def _ask_save(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _f = QFileDialog.getSaveFileName(self.panel.native, "Save model", f"{self.panel.method}_model.pt",
                                               MODEL_FILTER)
        if path:
            self._guard(lambda: self.save_model(path), f"Saved the model to {path}", "Save model")

    def _ask_load(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _f = QFileDialog.getOpenFileName(self.panel.native, "Load model", "", MODEL_FILTER)
        if path:
            self._guard(lambda: self.load_model(path), f"Loaded the model from {path}", "Load model")

    def _ask_bioimageio(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _f = QFileDialog.getSaveFileName(self.panel.native, "Export for bioimage.io",
                                               f"{self.panel.method}_bioimageio.zip", "bioimage.io package (*.zip)")
        if path:
            self.export_bioimageio(path)

    def export_bioimageio(self, path):
        """Write the current model as a bioimage.io package zip at ``path`` in a worker thread; the
        worker (None when refused). The outcome is notified."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_info

        from ..core.export_bioimageio import export_bioimageio, require_bioimageio

        if self.model is None:
            self.panel.notify_error("no model to export yet: run training or load a model first.")
            return None
        try:
            require_bioimageio()
        except InputError as err:
            self.panel.notify_error(str(err))
            return None
        self._exporting = True
        self.bioimageio_button.enabled = False
        worker = create_worker(export_bioimageio, self.model, path, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda out: show_info(f"Exported the bioimage.io package to {out}"))
        worker.errored.connect(lambda err: self.panel.notify_error(user_message(err, "Export for bioimage.io")))
        worker.finished.connect(self._on_bioimageio_finished)
        self._bioimageio_worker = worker  # kept alive until it ends
        worker.start()
        return worker

    def _on_bioimageio_finished(self) -> None:
        self._exporting = False
        self.update_buttons()

    def _ask_predict_folder(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        parent = self.panel.native
        source = QFileDialog.getExistingDirectory(parent, "Folder of TIFF images to segment")
        if not source:
            return
        out = QFileDialog.getExistingDirectory(parent, "Folder for the results", str(Path(source).parent))
        if out:
            self.predict_folder(source, out)

    def _ask_export(self, *_) -> None:
        from qtpy.QtWidgets import QFileDialog

        masks, parent = self.panel.mask_layers, self.panel.native
        if len(masks) > 1:
            path = QFileDialog.getExistingDirectory(parent, "Export the masks into a folder")
        else:
            name = masks[0].name if masks else "mask"
            path, _f = QFileDialog.getSaveFileName(parent, "Export mask", f"{name}.tif", "TIFF (*.tif *.tiff)")
        if path:
            self._export_in_worker(path)

    def _export_in_worker(self, path) -> None:
        """Export in a worker thread (a large stack takes seconds to write); the outcome is notified."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_info

        try:
            jobs = self._export_jobs(path)
        except InputError as err:
            self.panel.notify_error(str(err))
            return
        worker = create_worker(_write_all, jobs, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda _paths: show_info(f"Exported to {path}"))
        worker.errored.connect(lambda err: self.panel.notify_error(user_message(err, "Export mask")))
        self._export_worker = worker  # kept alive until it ends
        worker.start()

    def _guard(self, action: Callable, done: str, what: str) -> None:
        from napari.utils.notifications import show_info

        try:
            action()
        except Exception as err:  # shown to the user, never a traceback in the viewer
            log.exception(what)
            self.panel.notify_error(user_message(err, what))
        else:
            show_info(done)


def _file_axes(layer) -> str | None:
    """TIFF axes (``TZYX``...) from a layer's napari axis labels, when they name axes we know."""
    labels = "".join(str(a) for a in getattr(layer, "axis_labels", ()) or ()).upper()
    return labels if len(labels) == layer.ndim and set(labels) <= set("TZCYX") and len(set(labels)) == len(labels) \
        else layer.metadata.get("axes")


def _write_all(jobs: list) -> list:
    from ..io import write_tiff

    return [write_tiff(target, np.asarray(data), **kwargs) for target, data, kwargs in jobs]
