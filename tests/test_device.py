"""Device choice: auto falls back to cpu here, explicit devices are checked, env var forces cpu."""
from __future__ import annotations

import pytest
import torch

from napari_metastructures.core.device import (
    FORCE_CPU_ENV,
    DeviceError,
    available_devices,
    resolve_device,
    set_cpu_threads,
)


def test_auto_picks_an_existing_device_and_says_why(monkeypatch):
    monkeypatch.delenv(FORCE_CPU_ENV, raising=False)
    choice = resolve_device("auto")
    if torch.cuda.is_available():
        expected = ("cuda:0", "auto: CUDA GPU found")
    elif torch.backends.mps.is_available():
        expected = ("mps", "auto: no CUDA, Apple GPU found")
    else:
        expected = ("cpu", "auto: no CUDA or Apple GPU found")
    assert (choice.device, choice.reason) == expected
    assert choice.torch() == torch.device(expected[0])
    assert choice.name  # the label the widgets show
    torch.zeros(1, device=choice.torch())


def test_cuda_without_cuda_raises_device_error(monkeypatch):
    monkeypatch.delenv(FORCE_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for request in ("cuda", "cuda:0", "CUDA:1"):
        with pytest.raises(DeviceError, match="0 CUDA device"):
            resolve_device(request)
    with pytest.raises(DeviceError, match="cuda:<index>"):
        resolve_device("cuda:x")
    assert resolve_device("cpu").device == "cpu" and resolve_device("").device in {"cpu", "mps"}


def test_auto_without_gpu_is_cpu(monkeypatch):
    monkeypatch.delenv(FORCE_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    choice = resolve_device("auto")
    assert choice.device == "cpu"
    assert "no CUDA" in choice.reason


def test_env_var_forces_cpu(monkeypatch):
    monkeypatch.setenv(FORCE_CPU_ENV, "1")
    choice = resolve_device("cuda:0")
    assert choice.device == "cpu"
    assert FORCE_CPU_ENV in choice.reason
    assert available_devices() == [("auto", "auto"), ("cpu", "cpu")]


def test_unavailable_explicit_device_raises_clear_error(monkeypatch):
    monkeypatch.delenv(FORCE_CPU_ENV, raising=False)
    count = torch.cuda.device_count()
    with pytest.raises(DeviceError, match=f"cuda:{count}.*not available"):
        resolve_device(f"cuda:{count}")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")


def test_dropdown_lists_auto_first_and_cpu_last(monkeypatch):
    monkeypatch.delenv(FORCE_CPU_ENV, raising=False)
    items = available_devices()
    assert items[0][0] == "auto" and items[-1][0] == "cpu"
    assert len(items) == 2 + torch.cuda.device_count() + int(torch.backends.mps.is_available())


def test_set_cpu_threads():
    before = torch.get_num_threads()
    try:
        assert set_cpu_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.gpu
def test_cuda_device_runs_a_tensor():
    choice = resolve_device("cuda")
    x = torch.ones(4, device=choice.torch())
    assert float(x.sum().cpu()) == 4.0
