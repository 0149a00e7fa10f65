"""Shared test setup: the `gpu` marker skips without CUDA."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _training_libraries_loaded():
    """Widgets import PyTorch in the background and enable Run when it is there
    (``_workers.start_loading``); tests start with it loaded, except the one that checks that wait."""
    from napari_metastructures._widgets import _workers

    assert _workers.start_loading().wait(300), "PyTorch did not import within 5 minutes"


@pytest.fixture
def thread_spy(monkeypatch):
    """``thread_spy(module, name)``: wraps ``module.name``; returns the list of threads it ran on."""
    import threading

    def spy(module, name):
        threads, real = [], getattr(module, name)

        def wrapped(*args, **kwargs):
            threads.append(threading.current_thread())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)
        return threads

    return spy
