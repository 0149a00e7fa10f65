"""Pick the torch device: ``auto`` tries cuda, then mps, then cpu, and says why.

Set ``METASTRUCTURES_FORCE_CPU=1`` to force the CPU whatever is asked.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

FORCE_CPU_ENV = "METASTRUCTURES_FORCE_CPU"


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


@dataclass(frozen=True)
class DeviceChoice:
    """The device that will run, its human name and the reason it was chosen."""

    device: str
    name: str
    reason: str

    def torch(self):
        import torch

        return torch.device(self.device)


def _cpu_name() -> str:
    import torch

    return f"CPU ({torch.get_num_threads()} threads)"


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[tuple[str, str]]:
    """``(value, label)`` pairs for a dropdown: auto, each cuda:i with its name, mps, cpu."""
    import torch

    items = [("auto", "auto")]
    if not _forced_cpu():
        for i in range(torch.cuda.device_count()):
            items.append((f"cuda:{i}", f"cuda:{i} ({torch.cuda.get_device_name(i)})"))
        if _mps_available():
            items.append(("mps", "mps (Apple GPU)"))
    items.append(("cpu", "cpu"))
    return items


def _forced_cpu() -> bool:
    return os.environ.get(FORCE_CPU_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_device(requested: str = "auto") -> DeviceChoice:
    """Resolve ``auto``, ``cuda``, ``cuda:i``, ``mps`` or ``cpu`` to a device that exists.

    Raises
    ------
    DeviceError
        If an explicit device is asked for and is not available.
    """
    import torch

    req = (requested or "auto").strip().lower()
    if _forced_cpu():
        return DeviceChoice("cpu", _cpu_name(), f"{FORCE_CPU_ENV} is set, so the CPU runs")
    if req == "auto":
        if torch.cuda.is_available():
            return DeviceChoice("cuda:0", torch.cuda.get_device_name(0), "auto: CUDA GPU found")
        if _mps_available():
            return DeviceChoice("mps", "Apple GPU (mps)", "auto: no CUDA, Apple GPU found")
        return DeviceChoice("cpu", _cpu_name(), "auto: no CUDA or Apple GPU found")
    if req == "cpu":
        return DeviceChoice("cpu", _cpu_name(), "cpu requested")
    if req.startswith("cuda"):
        index = 0 if req == "cuda" else req.partition(":")[2]
        try:
            index = int(index)
        except ValueError:
            raise DeviceError(f"device {requested!r}: write cuda or cuda:<index>") from None
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise DeviceError(
                f"device {requested!r} is not available: this machine has {count} CUDA device(s). "
                "Use 'auto' or 'cpu', or install the torch build for your CUDA version."
            )
        return DeviceChoice(f"cuda:{index}", torch.cuda.get_device_name(index), f"cuda:{index} requested")
    if req == "mps":
        if not _mps_available():
            raise DeviceError("device 'mps' is not available on this machine; use 'auto' or 'cpu'.")
        return DeviceChoice("mps", "Apple GPU (mps)", "mps requested")
    raise DeviceError(f"unknown device {requested!r}; use auto, cuda, cuda:<i>, mps or cpu.")


def set_cpu_threads(n: int | None = None) -> int:
    """Use ``n`` CPU threads for torch (default: all cores the process may use). Returns the number."""
    import torch

    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            n = os.cpu_count() or 1
    n = max(1, int(n))
    torch.set_num_threads(n)
    return n
