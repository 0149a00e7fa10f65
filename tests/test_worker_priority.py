"""The training thread runs just below the viewer (niceness 2), or as $METASTRUCTURES_WORKER_NICE says."""
import os
import sys
import threading

import pytest

from napari_metastructures._widgets import _workers


def _niceness_in_a_thread() -> int:
    seen = []

    def body():
        _workers.lower_thread_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux only")
def test_worker_thread_niceness_default_and_environment(monkeypatch):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.delenv(_workers.NICE_ENV, raising=False)
    assert _niceness_in_a_thread() == min(19, base + 2) or base >= 2  # 10 stalled training under load
    monkeypatch.setenv(_workers.NICE_ENV, "0")
    assert _niceness_in_a_thread() == base
    for bad, want in (("abc", 2), ("-5", 0), ("99", 19)):
        monkeypatch.setenv(_workers.NICE_ENV, bad)
        assert _workers.worker_niceness() == want
