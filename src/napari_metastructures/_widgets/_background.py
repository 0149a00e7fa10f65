"""Live previews computed off the GUI thread: one job at a time, the newest request wins.

A slider sweep asks for many previews. :class:`LatestJob` runs one in a napari worker thread; requests
made meanwhile replace each other, and only the newest runs next. A result is shown when it is newer
than the one on screen, so a sweep still gives feedback and the last setting always lands last.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class LatestJob:
    """Run ``fn(*args)`` in a worker thread; hand the newest outcome to the GUI thread.

    Parameters
    ----------
    on_result : callable
        ``on_result(value, tag)`` on the GUI thread, for a result newer than the last one shown.
    on_error : callable
        ``on_error(error, tag)`` on the GUI thread, likewise.
    """

    def __init__(self, on_result: Callable, on_error: Callable) -> None:
        self._on_result, self._on_error = on_result, on_error
        self._worker = None
        self._waiting = None  # (serial, fn, args, tag): the newest request not yet started
        self._serial = self._shown = 0
        self.closed = False

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        return self._worker is not None or self._waiting is not None

    def submit(self, fn: Callable, *args, tag=None) -> None:
        """Ask for ``fn(*args)``; a request still waiting is dropped for this one."""
        if self.closed:
            return
        self._serial += 1
        job = (self._serial, fn, args, tag)
        if self._worker is None:
            self._start(job)
        else:
            self._waiting = job

    def close(self) -> None:
        """Drop waiting requests and every late outcome (the widget is going away)."""
        self.closed = True
        self._waiting = None

    def _start(self, job) -> None:
        from napari.qt.threading import create_worker

        serial, fn, args, tag = job
        worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda value: self._deliver(serial, self._on_result, value, tag))
        worker.errored.connect(lambda err: self._deliver(serial, self._on_error, err, tag))
        worker.finished.connect(self._next)
        self._worker = worker
        worker.start()

    def _deliver(self, serial: int, callback: Callable, value, tag) -> None:
        if self.closed or serial < self._shown:
            return
        self._shown = serial
        try:
            callback(value, tag)
        except RuntimeError as err:  # the widget's Qt objects are gone
            log.debug("preview dropped: %s", err)

    def _next(self) -> None:
        self._worker = None
        job, self._waiting = self._waiting, None
        if job is not None and not self.closed:
            self._start(job)
