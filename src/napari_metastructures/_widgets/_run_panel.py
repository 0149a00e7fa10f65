"""The run panel shared by the training widgets (iGTT, rough labels): one implementation of both.

Device choice, Run/Stop, progress with elapsed and remaining time, a live plot, streaming of previews
into output layers, input checks, and Save/Load/Predict/Export (a :class:`~._model_actions.ModelActions`
the panel owns). The widget hands the panel a :class:`~._workers.RunRequest` built from inputs frozen
at launch; training and prediction run in a napari ``thread_worker`` (see :mod:`._workers`).
Layer changes reach the panel through ``reset_choices``, which napari calls on the docked widget.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np
from magicgui.widgets import CheckBox, Container, Label, ProgressBar, PushButton
from psygnal import Signal
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy

from .. import __version__
from .._tooltips import COMMON
from ..core.device import DeviceError, resolve_device
from ..core.validate import InputError
from ._activity import Activity
from ._closing import CloseWatch
from ._devices import DeviceRow
from ._forms import button_row, fmt_seconds, user_message
from ._large import empty_outputs
from ._layers import FrozenLayer, move_view_to_selection
from ._model_actions import ModelActions
from ._outputs import OutputLayers
from ._plot import EpochPlot
from ._workers import PolledStop, RunRequest, _train_stream, avoid_triton_llvm_clash

log = logging.getLogger(__name__)


class RunPanel(Container):
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
    fg_label : str
        Right-axis label of the plot.

    Attributes
    ----------
    footer : Container
        Run/Stop, the warning line, progress and status; the widget pins it below its scrolled form.
    models : ModelActions
        The model with Save, Load, Predict, Export; its widgets are also here (``predict_on``...).
    mask_layers : list
        Mask layers of the latest run or prediction (Export writes these).
    """

    started = Signal()
    epoch_done = Signal(object)  # the EpochResult, after the output layers were updated
    run_finished = Signal(str)  # "finished", "stopped" or "failed"
    predicted = Signal(object)  # the mask layer written by Predict

    def __init__(self, viewer, method: str, suffix: str, prepare: Callable, validate: Callable[[], str],
                 fg_label: str = "foreground %", training_size: Callable[[], tuple] | None = None) -> None:
        self.viewer, self.method, self.suffix = viewer, method, suffix
        self._prepare, self._validate, self._training_size = prepare, validate, training_size
        self.worker = None
        self.status = "idle"
        self.mask_layers: list = []
        self.outputs = OutputLayers(viewer, suffix)
        self._stop, self._done, self._shown_event = threading.Event(), threading.Event(), threading.Event()
        self._done.set()
        self._closed = self._running = self._predicting = False
        self._request: RunRequest | None = None
        self._output_names: list = []  # (mask name, prob name) per input of the current run
        self._t0, self._last, self._epoch_seconds, self._shown = 0.0, None, [], False
        self._placeholders: list = []
        self._device = None
        self._polled = PolledStop(self._stop)
        self._epoch_t0 = 0.0  # when the current epoch began

        self.devices = DeviceRow(on_ready=self.refresh)  # torch imports in the background; Run waits for it
        self.device, self.device_info = self.devices.device, self.devices.info
        self.clear_previous = CheckBox(text="clear previous results", value=True,
                                       tooltip=COMMON["clear_previous"])
        self.problem = Label(value="")
        self.run_button = PushButton(text="Run", tooltip=COMMON["run"])
        self.stop_button = PushButton(text="Stop", enabled=False, tooltip=COMMON["stop"])
        self.progress = ProgressBar(min=0, max=1, value=0, label="progress", tooltip=COMMON["progress"])
        self.progress.native.setFormat("not started")  # "epoch %v / %m" from the first Run
        self.timing = Label(value="")
        self.plot = EpochPlot(fg_label, getattr(viewer, "theme", None))
        self.plot.follow_theme(viewer, busy=lambda: self._running or self._closed)
        self.activity = Activity()  # the run's bar in napari's activity dock
        self.models = m = ModelActions(self)
        # the model actions, also reachable from the panel (save_model(path), load_model(path), ...)
        self.save_model, self.load_model, self.predict, self.export_masks = (
            m.save_model, m.load_model, m.predict, m.export_masks)
        self.predict_on, self.save_button, self.load_button, self.predict_button, self.export_button = (
            m.predict_on, m.save_button, m.load_button, m.predict_button, m.export_button)
        #: Run/Stop, the warning line, progress and status: pinned below the scrolled form by the widget
        self.footer = Container(widgets=[self.problem, button_row(self.run_button, self.stop_button), self.progress,
                                         self.timing], labels=False)
        super().__init__(widgets=[self.device, self.device_info, self.clear_previous, self.plot, *m.widgets()])
        for label in (self.problem, self.timing):  # often two lines long: room for them, never cut
            label.native.setWordWrap(True)
            label.native.setMinimumHeight(2 * label.native.fontMetrics().lineSpacing() + 4)
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.problem.native.setStyleSheet("color: #f5a442")

        self._clock = QTimer()
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self.device.changed.connect(self.refresh)
        self.run_button.changed.connect(self.run)
        self.stop_button.changed.connect(self.stop)
        self._close_watch = CloseWatch(self.native, self.shutdown)
        self.refresh()

    # ---------------------------------------------------------------- state
    @property
    def ready(self) -> bool:
        """True once PyTorch is imported (in the background, when the first panel opens)."""
        return self.devices.ready

    @property
    def running(self) -> bool:
        """True while a training run or a prediction is in progress."""
        return self._running

    @property
    def closed(self) -> bool:
        """True once the viewer or the widget is closing; late signals are then dropped."""
        return self._closed

    @property
    def model(self):
        """The current model (trained or loaded), or None."""
        return self.models.model

    @model.setter
    def model(self, model) -> None:
        self.models.model = model

    def reset_choices(self, *_) -> None:
        """Layers changed (napari calls this on the docked widget): new choices, then re-validate."""
        if self._closed:
            return
        super().reset_choices()
        self.refresh()

    def refresh(self, *_) -> str:
        """Re-validate the inputs; enable Run, or disable it and say why (tooltip and warning line)."""
        if self._closed:
            return ""
        choice, problem = self.devices.resolve()
        if choice is not None:
            problem = self._validate() or self._memory_problem(choice)
        self._show_problem(problem)
        return problem

    def _memory_problem(self, choice) -> str:
        """On the CPU, a crop and batch that would not fit in memory disable Run, as the engine
        would refuse them (on a GPU running out of memory is caught and explained)."""
        if self._training_size is None or choice.device != "cpu":
            return ""
        from ..core.training.loop import check_training_memory

        try:
            check_training_memory(*self._training_size())
        except InputError as err:
            return f"{err} Lower 'crop' or 'batch' under Advanced."
        return ""

    def _show_problem(self, problem: str) -> None:
        if not self._running:
            self.run_button.enabled = not problem
            self.run_button.tooltip = f"Cannot run: {problem}" if problem else COMMON["run"]
            self.problem.value = f"⚠ {problem}" if problem else ""
            self.problem.visible = bool(problem)
        self.models.update_buttons()

    def _set_running(self, running: bool) -> None:
        self._running = running
        self.stop_button.enabled = running
        self.device.enabled = not running
        if running:
            self.run_button.enabled = False
            self.models.update_buttons()
            self._clock.start()
        else:
            self._clock.stop()
            self.refresh()

    # ---------------------------------------------------------------- training
    def run(self, *_) -> None:
        """Freeze the inputs (the widget's ``prepare``) and start training in a worker thread."""
        from napari.qt.threading import create_worker

        self.devices.wait()  # called from code before PyTorch loaded
        if self._running or self.refresh():
            return
        self._close_watch.watch_window()
        avoid_triton_llvm_clash()
        try:
            request = self._prepare()
            choice = resolve_device(self.device.value)
        except (InputError, DeviceError) as err:
            self.notify_error(str(err))
            return
        self._request, self._device = request, choice
        self._output_names = self.outputs.names(request.inputs, reuse=bool(self.clear_previous.value))
        self._last, self.status, self._epoch_seconds, self._shown = None, "running", [], False
        self._t0 = time.perf_counter()
        # empty output layers now: adding layers is the slow part (~0.5 s), better at the click than mid-run
        # (an earlier result in a reused layer stays until this run has something to show)
        self._placeholders = [names for names in self._output_names if not self.outputs.is_ours(names[0])]
        self.mask_layers = [self.outputs.write(*names, *empty_outputs(f), f, self._metadata(f, i))
                            if names in self._placeholders else self.viewer.layers[names[0]]
                            for i, (names, f) in enumerate(zip(self._output_names, request.inputs))]
        self._show_selected_slice(request)
        self.plot.reset()
        self.progress.max, self.progress.value = max(1, int(request.params.get("epochs", 1))), 0
        self.progress.native.setFormat("epoch %v / %m")
        names = ", ".join(f.name for f in request.inputs[:2]) + ("…" if len(request.inputs) > 2 else "")
        self.activity.start(f"{self.method}: {names}", self.progress.max, self.stop)
        self.timing.value = f"starting on {choice.name}…{request.note}"
        log.info("%s: training on %s (%s)", self.method, choice.name, choice.reason)
        self._shown_event.clear()
        self._polled = PolledStop(self._stop)
        self._epoch_t0 = time.perf_counter()
        self.worker = create_worker(_train_stream, request, choice.device, self._polled, self._done,
                                    self._shown_event, self.plot, _start_thread=False, _ignore_errors=True)
        self.worker.yielded.connect(self._on_epoch)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._t0 = time.perf_counter()
        self._begin(predicting=False)
        self.started.emit()
        self.worker.start()

    def _show_selected_slice(self, request: RunRequest) -> None:
        """When only some slices train, show one of them: the previews stream there."""
        if request.inputs:
            move_view_to_selection(self.viewer.dims, request.inputs[0], request.selection(0))

    def start_prediction(self, function: Callable, *args, returned: Callable, errored: Callable,
                         yielded: Callable | None = None, desc: str = "predicting", total: int | None = None) -> None:
        """Run ``function(*args, stop_requested, done)`` in a worker thread as the panel's job (Stop
        makes ``stop_requested()`` True; it sets ``done`` when it leaves); its outcome goes to
        ``returned(value)`` or ``errored(error)`` on the GUI thread, and what a generator
        ``function`` yields to ``yielded(value)``. The activity dock shows ``desc`` (``total``
        steps, or busy when None)."""
        from napari.qt.threading import create_worker

        self.activity.start(desc, total, self.stop)

        self.worker = create_worker(function, *args, self._stop.is_set, self._done,
                                    _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(returned)
        if yielded is not None:
            self.worker.yielded.connect(yielded)
        self.worker.errored.connect(errored)
        self.worker.finished.connect(self._prediction_finished)
        self._begin(predicting=True)
        self.worker.start()

    def _begin(self, predicting: bool) -> None:
        self._stop.clear()
        self._done.clear()
        self._predicting = predicting
        self._set_running(True)

    def _prediction_finished(self) -> None:
        self._predicting = False
        self.activity.close()
        if not self._closed:
            self._set_running(False)

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
        self._epoch_t0 = time.perf_counter()
        self._polled.mark_epoch()
        self._epoch_seconds = [*self._epoch_seconds[: result.epoch - 1], result.seconds]
        self.progress.max, self.progress.value = result.n_epochs, result.epoch
        self.activity.update(result.epoch, result.n_epochs)
        if plot[0] is not None:
            self.plot.show(*plot)
        self._tick()
        if outputs is not None:
            self._shown = True
            self.mask_layers = [self.outputs.write(*names, *pair, self._request.inputs[i],
                                                   self._metadata(self._request.inputs[i], i))
                                for i, (names, pair) in enumerate(zip(self._output_names, outputs))]
        self.epoch_done.emit(result)

    def _tick(self) -> None:
        """Once a second while training: elapsed, progress inside the epoch, time left, loss."""
        if self._closed or not self._running or self._predicting or self._request is None:
            return
        now, last = time.perf_counter(), self._last
        text = f"{fmt_seconds(now - self._t0)} elapsed{self._request.note}"
        done = last.epoch if last is not None else 0
        n_epochs = last.n_epochs if last is not None else self.progress.max
        if done < n_epochs:  # inside epoch done + 1: the batches and tiles the engine has polled for
            text += " · " + self._polled.step_text(done + 1, int(self._request.params.get("steps_per_epoch") or 0))
        if last is not None:
            left = np.mean(self._epoch_seconds or [last.seconds]) * (last.n_epochs - last.epoch)
            left = max(0.0, left - (now - self._epoch_t0))
            text += f" · about {fmt_seconds(left)} left · loss {last.loss:.4g}"
            text += f" · structure: {last.extra['structure']}" if last.extra.get("structure") else ""
            text += f" · {last.message}" if last.message else ""
        self.timing.value = ("stopping after this batch… " if self._stop.is_set() else "") + text

    def _on_returned(self, result) -> None:
        """``result`` is the engine's TrainResult. A run stopped before its first epoch trained
        nothing worth keeping: the previous model (trained or loaded) stays."""
        self.status = "stopped" if self._stop.is_set() else "finished"
        if self._closed or result is None:
            return
        if result.stopped is not None and not result.history:
            log.info("%s: stopped before the first epoch; the previous model is kept", self.method)
            return
        self.models.set_model(result.model)

    def _on_error(self, err: BaseException) -> None:
        err = getattr(err, "error", err)
        log.error("%s run failed", self.method, exc_info=(type(err), err, err.__traceback__))
        self.status = "failed"
        if not self._closed:
            self.notify_error(user_message(err, f"{self.method} run"))

    def _on_finished(self) -> None:
        if self._closed:
            return
        if self.status == "running":  # ended without a return value (aborted)
            self.status = "stopped"
        if not self._shown:  # no prediction yet: drop the empty placeholders, earlier results stay as they were
            self.outputs.drop(self._placeholders)
            self.mask_layers = []
        else:
            for i, frozen in enumerate(self._request.inputs):
                self.outputs.set_metadata(*self._output_names[i], self._metadata(frozen, i))
        self.activity.close()
        epochs = f"{self._last.epoch}/{self._last.n_epochs} epochs" if self._last else (
            "no epoch, the previous model is kept" if self.model is not None else "no epoch")
        self._set_running(False)
        if self.status != "failed":
            text = f"{self.status}: {epochs} in {fmt_seconds(time.perf_counter() - self._t0)}{self._request.note}"
            if self._last is not None and self._last.extra.get("structure"):
                text += f" · structure: {self._last.extra['structure']}"
            early = self._last is not None and self._last.epoch < self._last.n_epochs and self._last.message
            self.timing.value = text + (f" ({self._last.message})" if early and self.status == "finished" else "")
        self.run_finished.emit(self.status)

    def clear_results(self, keep: frozenset = frozenset()) -> None:
        """Remove every output layer this panel made (masks and probabilities), except ``keep``."""
        self.outputs.clear(keep)
        self.mask_layers = []
        self.models.update_buttons()

    def notify_error(self, message: str) -> None:
        """Show ``message`` as an error notification and on the status line."""
        from napari.utils.notifications import show_error

        show_error(message)
        if not self._closed:
            self.timing.value = f"⚠ {message}"

    # ---------------------------------------------------------------- closing
    def shutdown(self, *_, timeout: float = 30.0) -> None:
        """The viewer or widget is closing: stop the run, wait for its thread, drop late signals."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._shown_event.set()
        try:
            self._clock.stop()
            self.devices.stop()
            self.activity.close()
        except RuntimeError:  # the Qt objects are already gone
            pass
        if self.worker is not None:
            self.worker.quit()
        if not self._done.wait(timeout):
            log.warning("%s: the training thread did not stop within %.0f s", self.method, timeout)
