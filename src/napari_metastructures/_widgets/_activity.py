"""The panel's runs in napari's activity dock (``napari.utils.progress``), with its Cancel button.

napari's ``cancelable_progress`` only acts on Cancel while it is iterated; our runs are driven
from worker signals instead, so :class:`_Cancelable` calls the panel's Stop at once. Everything
here runs on the GUI thread.
"""
from __future__ import annotations

from collections.abc import Callable


def _bar_class():
    from napari.utils.progress import cancelable_progress

    class _Cancelable(cancelable_progress):
        def cancel(self) -> None:
            super().cancel()
            if self.cancel_callback is not None:
                self.cancel_callback()

    return _Cancelable


class Activity:
    """One progress bar in the activity dock for the panel's current run, or none."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, desc: str, total: int | None, on_cancel: Callable[[], None]) -> None:
        """Show a new bar (closing an earlier one); Cancel in the dock calls ``on_cancel``."""
        self.close()
        self.bar = _bar_class()(desc=desc, total=total, cancel_callback=on_cancel)

    def update(self, n: int, total: int | None = None) -> None:
        """Set the bar to ``n`` of ``total`` (the total is kept when None)."""
        if self.bar is None:
            return
        if total is not None and total != self.bar.total:
            self.bar.total = total
        if n != self.bar.n:
            self.bar.update(n - self.bar.n)  # emits the event the dock's bar listens to

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
