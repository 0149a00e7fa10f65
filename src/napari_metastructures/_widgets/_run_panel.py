"""The run panel shared by the training widgets (iGTT, rough labels): one implementation of both.

Device choice, Run/Stop, progress with elapsed and remaining time, a live plot, streaming of previews
into output layers, Save/Load/Predict/Export (:mod:`._model_actions`), and input checks. The widget
hands the panel a :class:`~._workers.RunRequest` built from inputs frozen at launch; training and
prediction run in a napari ``thread_worker`` (see :mod:`._workers`).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton
from psygnal import Signal
from qtpy.QtCore import QEvent, QObject, QTimer

from .. import __version__
from .._tooltips import COMMON
from ..core.device import DeviceError, available_devices, resolve_device
from ..core.validate import InputError
from ._forms import fmt_seconds, image_layers, user_message
from ._layers import FrozenLayer, unique_name, upsert_layer
from ._model_actions import ModelActions
from ._plot import EpochPlot
from ._workers import RunRequest, _train_stream, avoid_triton_llvm_clash, preload_training_modules

log = logging.getLogger(__name__)
LAYER_EVENTS = ("inserted", "removed", "reordered", "renamed")


class _CloseWatcher(QObject):
    """Calls ``callback`` when the watched window gets a programmatic (non-spontaneous) close."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close and not event.spontaneous():
            self._callback()
        return False


class RunPanel(ModelActions, Container):
    """Device, Run/Stop, progress, live plot, and Save/Load/Predict/Export for one widget.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    method : str
        Recorded in output metadata, e.g. ``"igtt"``.
    suffix : str
        Output layer names: ``<image><suffix>`` (mask) and ``<image><suffix>_prob``.
    prepare : callable
        ``prepare() -> RunRequest``; may raise InputError, shown as a notification.
    validate : callable
        ``validate() -> str``: why the inputs cannot run, or "" when they can.
    on_layers_changed : callable, optional
        Called when layers are added, removed, reordered or renamed (before re-validating).
    fg_label : str
        Right-axis label of the plot.
    """

    started = Signal()
    epoch_done = Signal(object)  # the EpochResult, after the output layers were updated
    run_finished = Signal(str)  # "finished", "stopped" or "failed"
    predicted = Signal(object)  # the mask layer written by Predict

    def __init__(self, viewer, method: str, suffix: str, prepare: Callable, validate: Callable[[], str],
                 on_layers_changed: Optional[Callable] = None, fg_label: str = "foreground %") -> None:
        self.viewer, self.method, self.suffix = viewer, method, suffix
        self._prepare, self._validate, self._on_layers = prepare, validate, on_layers_changed
        self.model = None
        self.worker = None
        self.status = "idle"
        self.mask_layers: list = []  # masks of the latest run or prediction (Export writes these)
        self._made: list = []  # every output layer made, for "clear previous results"
        self._stop, self._done, self._shown_event = threading.Event(), threading.Event(), threading.Event()
        self._done.set()
        self._closed = self._running = self._predicting = False
        self._request: Optional[RunRequest] = None
        self._outputs: list = []  # (mask name, prob name) per input of the current run
        self._t0, self._last, self._epoch_seconds, self._shown = 0.0, None, [], False
        self._device = None

        self.device = ComboBox(label="device", choices=[(lab, val) for val, lab in available_devices()],
                               value="auto", tooltip=COMMON["device"])
        self.device_info = Label(value="")
        self.clear_previous = CheckBox(text="clear previous results", value=True,
                                       tooltip=COMMON["clear_previous"])
        self.problem = Label(value="")
        self.run_button = PushButton(text="Run", tooltip=COMMON["run"])
        self.stop_button = PushButton(text="Stop", enabled=False, tooltip=COMMON["stop"])
        self.progress = ProgressBar(min=0, max=1, value=0, label="progress", tooltip=COMMON["progress"])
        self.progress.native.setFormat("not started")  # "epoch %v / %m" from the first Run
        self.timing = Label(value="")
        self.plot = EpochPlot(fg_label, getattr(viewer, "theme", None))
        self.model_info = Label(value="model: none yet (run, or load one)")
        self.save_button = PushButton(text="Save model…", enabled=False, tooltip=COMMON["save_model"])
        self.load_button = PushButton(text="Load model…", tooltip=COMMON["load_model"])
        self.predict_on = ComboBox(label="predict on", choices=self._image_choices,
                                   tooltip=COMMON["predict_on"])
        self.predict_button = PushButton(text="Predict", enabled=False, tooltip=COMMON["predict"])
        self.export_button = PushButton(text="Export mask…", enabled=False, tooltip=COMMON["export_mask"])
        rows = [Container(widgets=pair, layout="horizontal", labels=False) for pair in (
            [self.run_button, self.stop_button], [self.save_button, self.load_button],
            [self.predict_button, self.export_button])]
        for row in rows:
            row.margins = (0, 0, 0, 0)
        super().__init__(widgets=[self.device, self.device_info, self.clear_previous, self.problem, rows[0],
                                  self.progress, self.timing, self.plot, self.model_info, rows[1],
                                  self.predict_on, rows[2]])
        for label in (self.device_info, self.problem, self.timing, self.model_info):
            label.native.setWordWrap(True)
        self.problem.native.setStyleSheet("color: #f5a442")

        self._clock = QTimer()
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self.device.changed.connect(self.refresh)
        self.run_button.changed.connect(self.run)
        self.stop_button.changed.connect(self.stop)
        self.save_button.changed.connect(self._ask_save)
        self.load_button.changed.connect(self._ask_load)
        self.predict_button.changed.connect(self.predict)
        self.export_button.changed.connect(self._ask_export)
        self.predict_on.changed.connect(self._update_buttons)
        for name in LAYER_EVENTS:
            getattr(viewer.layers.events, name).connect(self._layers_changed)
        self._watch_close()
        preload_training_modules()
        self.refresh()

    # ---------------------------------------------------------------- state
    @property
    def running(self) -> bool:
        """True while a training run or a prediction is in progress."""
        return self._running

    def _image_choices(self, _widget=None) -> list:
        return image_layers(self.viewer)

    def _layers_changed(self, *_) -> None:
        if self._closed:
            return
        if self._on_layers is not None:
            self._on_layers()
        self.predict_on.reset_choices()
        self.refresh()

    def refresh(self, *_) -> str:
        """Re-validate the inputs; enable Run, or disable it and say why (tooltip and warning line)."""
        if self._closed:
            return ""
        try:
            choice = resolve_device(self.device.value)
            self.device_info.value = f"runs on {choice.name} ({choice.reason})"
            problem = self._validate()
        except DeviceError as err:
            self.device_info.value, problem = "", str(err)
        if not self._running:
            self.run_button.enabled = not problem
            self.run_button.tooltip = f"Cannot run: {problem}" if problem else COMMON["run"]
            self.problem.value = f"⚠ {problem}" if problem else ""
            self.problem.visible = bool(problem)
        self._update_buttons()
        return problem

    def _update_buttons(self, *_) -> None:
        if self._closed:
            return
        idle, model = not self._running, self.model is not None
        self.save_button.enabled = idle and model
        self.load_button.enabled = idle
        self.predict_button.enabled = idle and model and self.predict_on.value is not None
        self.export_button.enabled = idle and any(layer in self.viewer.layers for layer in self.mask_layers)

    def _set_running(self, running: bool) -> None:
        self._running = running
        self.stop_button.enabled = running
        self.device.enabled = not running
        if running:
            self.run_button.enabled = False
            self._update_buttons()
            self._clock.start()
        else:
            self._clock.stop()
            self.refresh()

    # ---------------------------------------------------------------- training
    def run(self, *_) -> None:
        """Freeze the inputs (the widget's ``prepare``) and start training in a worker thread."""
        from napari.qt.threading import create_worker

        if self._running or self.refresh():
            return
        self._watch_window()
        avoid_triton_llvm_clash()
        try:
            request = self._prepare()
            choice = resolve_device(self.device.value)
        except (InputError, DeviceError) as err:
            self._notify_error(str(err))
            return
        self._request, self._device, self._outputs = request, choice, []
        if self.clear_previous.value:  # our own layers of these names are reused in place (fast)
            base = [(f"{f.name}{self.suffix}", f"{f.name}{self.suffix}_prob") for f in request.inputs]
            self.clear_results(keep={name for pair in base for name in pair})
        for frozen in request.inputs:
            mask = f"{frozen.name}{self.suffix}"
            if not (self.clear_previous.value and self._is_ours(mask)):
                mask = unique_name(self.viewer, mask)
            prob = f"{mask}_prob"
            if not (self.clear_previous.value and self._is_ours(prob)):
                prob = unique_name(self.viewer, prob)
            self._outputs.append((mask, prob))
        self._last, self.status, self._epoch_seconds, self._shown = None, "running", [], False
        self._t0 = time.perf_counter()
        # empty output layers now: adding layers is the slow part (~0.5 s), better at the click than mid-run
        self.mask_layers = [self._write_outputs(*names, np.zeros(f.data.shape, np.uint8),
                                                np.zeros(f.data.shape, np.float32), f, self._metadata(f, i))
                            for i, (names, f) in enumerate(zip(self._outputs, request.inputs))]
        self._stop.clear()
        self._done.clear()
        self.plot.reset()
        self.progress.max, self.progress.value = max(1, int(request.params.get("epochs", 1))), 0
        self.progress.native.setFormat("epoch %v / %m")
        self.timing.value = f"starting on {choice.name}…"
        log.info("%s: training on %s (%s)", self.method, choice.name, choice.reason)
        self._shown_event.clear()
        self.worker = create_worker(_train_stream, request, choice.device, self._stop, self._done,
                                    self._shown_event, self.plot, _start_thread=False, _ignore_errors=True)
        self.worker.yielded.connect(self._on_epoch)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._t0 = time.perf_counter()
        self._set_running(True)
        self.started.emit()
        self.worker.start()

    def stop(self, *_) -> None:
        """Ask the run to end after the current batch; the last preview and the model are kept."""
        if self._running:
            self._stop.set()
            self.stop_button.enabled = False
            if self._predicting:
                self.timing.value = "stopping the prediction…"
            self._tick()

    def _metadata(self, frozen: FrozenLayer, index: int) -> dict:
        last, req, sel = self._last, self._request, self._request.selection(index)
        return {
            "method": self.method, "source": frozen.name, "slices": "all" if sel is None else list(sel),
            "params": dict(req.params), "seed": int(req.seed), "device": self._device.device,
            "device_name": self._device.name, "version": __version__, "status": self.status,
            "epoch": int(last.epoch) if last else 0, "n_epochs": int(last.n_epochs) if last else 0,
            "structure": last.extra.get("structure") if last else None,
            "timings": {"elapsed_s": round(time.perf_counter() - self._t0, 3),
                        "epoch_s": [round(float(s), 4) for s in self._epoch_seconds]},
        }

    def _on_epoch(self, item) -> None:
        try:
            self._show_epoch(*item)
        finally:
            self._shown_event.set()  # the training thread may go on (see _train_stream)

    def _show_epoch(self, result, outputs, plot) -> None:
        if self._closed:
            return
        self._last = result
        self._epoch_seconds = [*self._epoch_seconds[: result.epoch - 1], result.seconds]
        self.progress.max, self.progress.value = result.n_epochs, result.epoch
        if plot[0] is not None:
            self.plot.show(*plot)
        self._tick()
        if outputs is not None:
            self._shown = True
            self.mask_layers = [self._write_outputs(*names, *pair, self._request.inputs[i],
                                                    self._metadata(self._request.inputs[i], i))
                                for i, (names, pair) in enumerate(zip(self._outputs, outputs))]
        self.epoch_done.emit(result)

    def _write_outputs(self, mask_name: str, prob_name: str, mask, prob, frozen: FrozenLayer, meta: dict):
        """Update (or add) the probability and mask layers; returns the mask layer.

        An existing layer only gets new data and metadata (no scale/translate/style writes: they
        cost ~50 ms of napari events per update, and the user's display settings stay).
        """
        from napari.layers import Image, Labels

        def put(name, data, kind, metadata, **style):
            layer = self.viewer.layers[name] if name in self.viewer.layers else None
            if isinstance(layer, kind) and layer.data.shape == data.shape and layer.data.dtype == data.dtype:
                layer.data, layer.metadata = data, metadata
                return layer
            return upsert_layer(self.viewer, name, data, kind="labels" if kind is Labels else "image",
                                scale=frozen.scale, translate=frozen.translate, metadata=metadata, **style)

        layers = [put(prob_name, prob, Image, {**meta, "probability_of": mask_name}, colormap="magma",
                      contrast_limits=(0.0, 1.0), blending="additive", visible=False),
                  put(mask_name, mask, Labels, meta, opacity=0.6)]
        self._made += [layer for layer in layers if all(layer is not m for m in self._made)]
        return layers[1]

    def _drop_outputs(self) -> None:
        for names in self._outputs:
            for name in names:
                if name in self.viewer.layers:
                    layer = self.viewer.layers[name]
                    self._made = [m for m in self._made if m is not layer]
                    self.viewer.layers.remove(layer)
        self.mask_layers = []

    def _update_metadata(self) -> None:
        for i, frozen in enumerate(self._request.inputs):
            for name in self._outputs[i]:
                if name in self.viewer.layers:
                    self.viewer.layers[name].metadata = self._metadata(frozen, i)

    def _tick(self) -> None:
        if self._closed or not self._running or self._predicting or self._request is None:
            return
        text = f"{fmt_seconds(time.perf_counter() - self._t0)} elapsed"
        last = self._last
        if last is not None:
            left = np.mean(self._epoch_seconds or [last.seconds]) * (last.n_epochs - last.epoch)
            text += f" · about {fmt_seconds(left)} left · loss {last.loss:.4g}"
            text += f" · structure: {last.extra['structure']}" if last.extra.get("structure") else ""
            text += f" · {last.message}" if last.message else ""
        self.timing.value = ("stopping after this batch… " if self._stop.is_set() else "") + text

    def _on_returned(self, result) -> None:
        """``result`` is the engine's TrainResult."""
        self.status = "stopped" if self._stop.is_set() else "finished"
        if not self._closed and result is not None:
            self._set_model(result.model)

    def _on_error(self, err: BaseException) -> None:
        err = getattr(err, "error", err)
        log.error("%s run failed", self.method, exc_info=(type(err), err, err.__traceback__))
        self.status = "failed"
        if not self._closed:
            self._notify_error(user_message(err, f"{self.method} run"))

    def _on_finished(self) -> None:
        if self._closed:
            return
        if self.status == "running":  # ended without a return value (aborted)
            self.status = "stopped"
        if not self._shown:  # no prediction yet: drop the empty placeholders
            self._drop_outputs()
        self._update_metadata()
        epochs = f"{self._last.epoch}/{self._last.n_epochs} epochs" if self._last else "no epoch"
        self._set_running(False)
        if self.status != "failed":
            text = f"{self.status}: {epochs} in {fmt_seconds(time.perf_counter() - self._t0)}"
            if self._last is not None and self._last.extra.get("structure"):
                text += f" · structure: {self._last.extra['structure']}"
            early = self._last is not None and self._last.epoch < self._last.n_epochs and self._last.message
            self.timing.value = text + (f" ({self._last.message})" if early and self.status == "finished" else "")
        self.run_finished.emit(self.status)

    def _is_ours(self, name: str) -> bool:
        return name in self.viewer.layers and any(m is self.viewer.layers[name] for m in self._made)

    def clear_results(self, keep: frozenset = frozenset()) -> None:
        """Remove every output layer this panel made (masks and probabilities), except ``keep``."""
        kept = []
        for layer in self._made:
            if layer in self.viewer.layers and layer.name in keep:
                kept.append(layer)
            elif layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self._made, self.mask_layers = kept, []
        self._update_buttons()

    def _notify_error(self, message: str) -> None:
        from napari.utils.notifications import show_error

        show_error(message)
        if not self._closed:
            self.timing.value = f"⚠ {message}"

    # ---------------------------------------------------------------- closing
    def _watch_close(self) -> None:
        from qtpy.QtWidgets import QApplication

        self._window_watched = False
        self.native.destroyed.connect(self.shutdown)
        if QApplication.instance() is not None:
            QApplication.instance().aboutToQuit.connect(self.shutdown)

    def _watch_window(self) -> None:
        """Watch the top-level window this panel is docked in (known once docked, so at Run)."""
        window = self.native.window()
        if window is self.native or self._window_watched:
            return
        self._window_watched = True  # a flag, not the window: a reference would keep the viewer alive
        self._close_watcher = _CloseWatcher(self.shutdown)
        window.installEventFilter(self._close_watcher)
        window.destroyed.connect(self.shutdown)

    def shutdown(self, *_, timeout: float = 30.0) -> None:
        """The viewer or widget is closing: stop the run, wait for its thread, drop late signals."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._shown_event.set()
        for name in LAYER_EVENTS:
            getattr(self.viewer.layers.events, name).disconnect(self._layers_changed)
        try:
            self._clock.stop()
        except RuntimeError:  # the Qt object is already gone
            pass
        if self.worker is not None:
            self.worker.quit()
        if not self._done.wait(timeout):
            log.warning("%s: the training thread did not stop within %.0f s", self.method, timeout)
