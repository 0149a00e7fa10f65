"""Calling a panel's shutdown when its widget, its window or the application closes."""
from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject


class _CloseFilter(QObject):
    """Calls ``callback`` when the watched window gets a programmatic (non-spontaneous) close."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close and not event.spontaneous():
            self._callback()
        return False


class CloseWatch:
    """Watches ``widget`` and the application at once, and its top-level window from :meth:`watch_window`."""

    def __init__(self, widget, callback: Callable) -> None:
        from qtpy.QtWidgets import QApplication

        self._widget, self._callback, self._window_watched = widget, callback, False
        widget.destroyed.connect(callback)
        if QApplication.instance() is not None:
            QApplication.instance().aboutToQuit.connect(callback)

    def watch_window(self) -> None:
        """Watch the top-level window the widget is docked in (known once docked, so at Run)."""
        window = self._widget.window()
        if window is self._widget or self._window_watched:
            return
        self._window_watched = True  # a flag, not the window: a reference would keep the viewer alive
        self._filter = _CloseFilter(self._callback)
        window.installEventFilter(self._filter)
        window.destroyed.connect(self._callback)
