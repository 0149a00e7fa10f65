"""The run panel's device row: a dropdown that lists the GPUs once PyTorch has loaded in the background."""
from __future__ import annotations

from collections.abc import Callable

from magicgui.widgets import ComboBox, Label
from qtpy.QtCore import QTimer

from .._tooltips import COMMON
from ..core.device import DeviceError, available_devices, resolve_device
from . import _workers

#: PyTorch starts loading this long after the panel is made: its import thread holds Python's lock
#: for long stretches, and made the dock's own first layout and paint 5x slower (1.3 s, not 0.25 s).
START_DELAY_MS = 300

LOADING = "PyTorch is loading (a few seconds, once per session); Run turns on by itself."


class DeviceRow:
    """``device`` (the dropdown) and ``info`` (what runs where), and whether PyTorch is there yet.

    Parameters
    ----------
    on_ready : callable
        Called on the GUI thread once PyTorch has loaded (the panel re-validates).
    """

    def __init__(self, on_ready: Callable[[], object]) -> None:
        self._on_ready = on_ready
        self.loaded = _workers.LOADED  # torch imports in the background, once the dock is drawn
        if not _workers.loading_started():
            QTimer.singleShot(START_DELAY_MS, _workers.start_loading)
        self.device = ComboBox(label="device", choices=self._choices(), value="auto", tooltip=COMMON["device"])
        self.info = Label(value="")
        self.info.native.setWordWrap(True)
        self._timer = QTimer()
        self._timer.setInterval(100)
        self._timer.timeout.connect(self.check)
        if not self.loaded.is_set():
            self._timer.start()

    @property
    def ready(self) -> bool:
        return self.loaded.is_set()

    def _choices(self) -> list:
        if not self.loaded.is_set():  # the GPU list needs torch: "auto" and "cpu" until it is there
            return [("auto", "auto"), ("cpu", "cpu")]
        return [(lab, val) for val, lab in available_devices()]

    def check(self) -> None:
        """Once PyTorch is there: the full device list, then ``on_ready``."""
        if not self.loaded.is_set():
            return
        self._timer.stop()
        value = self.device.value
        self.device.choices = self._choices()
        self.device.value = value
        self._on_ready()

    def wait(self, timeout: float = 300) -> None:
        """For a run started from code before the import finished."""
        if not self.loaded.is_set():
            _workers.start_loading().wait(timeout)
            self.check()

    def resolve(self) -> tuple:
        """``(DeviceChoice or None, problem)``; the info line says what runs where, or why not."""
        if not self.loaded.is_set():
            self.info.value = "loading PyTorch…"
            return None, LOADING
        try:
            choice = resolve_device(self.device.value)
        except DeviceError as err:
            self.info.value = ""
            return None, str(err)
        self.info.value = f"runs on {choice.name} ({choice.reason})"
        return choice, ""

    def stop(self) -> None:
        self._timer.stop()
