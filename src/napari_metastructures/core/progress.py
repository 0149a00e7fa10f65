"""Progress records and errors shared by every training generator (iGTT and supervised).

Training in the core is a generator: it yields one :class:`EpochResult` per epoch and returns a
``TrainResult`` (``StopIteration.value``; see :func:`drain`). Widgets wrap it in a napari ``thread_worker``, the command
line prints it and tests iterate it. Stop requests arrive as a plain callable ``stop() -> bool``.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

#: A stop request: a plain callable polled once per batch.
StopFn = Optional[Callable[[], bool]]  # noqa: UP045 (a runtime alias; keeps Optional readable)


@dataclass
class EpochResult:
    """One epoch of training, small enough to send to a GUI thread.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    n_epochs : int
        Planned number of epochs.
    loss : float
        Mean training loss over the epoch's batches.
    foreground_fraction : float
        Pseudo-label foreground fraction (iGTT) or predicted foreground fraction (supervised).
    seconds : float
        Wall time of this epoch.
    preview : list of ndarray or None
        Probability maps, one per input image (same shape as the input), every ``preview_every``
        epochs and on the last epoch; else None.
    message : str
        Free text, e.g. ``"early stop: pseudo-labels stopped changing"``.
    extra : dict
        Optional numbers (e.g. pseudo-label change, chosen thresholds).
    """

    epoch: int
    n_epochs: int
    loss: float
    foreground_fraction: float
    seconds: float
    preview: list | None = None
    message: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-friendly record without the preview arrays."""
        out = {
            "epoch": int(self.epoch),
            "n_epochs": int(self.n_epochs),
            "loss": float(self.loss),
            "foreground_fraction": float(self.foreground_fraction),
            "seconds": float(self.seconds),
        }
        if self.message:
            out["message"] = self.message
        for key, value in self.extra.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    def line(self) -> str:
        """One progress line for a terminal."""
        text = (
            f"epoch {self.epoch}/{self.n_epochs}  loss {self.loss:.4f}  "
            f"fg {100 * self.foreground_fraction:.1f}%  {self.seconds:.1f}s"
        )
        return f"{text}  {self.message}" if self.message else text


def drain(gen: Generator, on_item: Callable[[Any], None] | None = None) -> Any:
    """Run a generator to its end, passing each item to ``on_item``; return its return value."""
    while True:
        try:
            item = next(gen)
        except StopIteration as done:
            return done.value
        if on_item is not None:
            on_item(item)


class OutOfMemoryAdvice(RuntimeError):
    """The device ran out of memory; the message suggests what to change."""


class StopRequested(Exception):
    """Raised inside a training loop when ``stop()`` returns True (caught by the generator)."""


def check_stop(stop: StopFn) -> None:
    """Raise :class:`StopRequested` if ``stop`` is given and returns True."""
    if stop is not None and stop():
        raise StopRequested()


def oom_message(device: str, batch_size: int | None = None, tile: int | None = None) -> str:
    """A user-facing message for an out-of-memory error on ``device``."""
    hints = []
    if batch_size:
        hints.append(f"a smaller batch size (now {batch_size})")
    if tile:
        hints.append(f"a smaller crop or tile (now {tile} px)")
    hints.append("a smaller encoder, or the CPU")
    return f"{device} ran out of memory; try " + ", or ".join(hints) + "."


def _is_oom(err: BaseException) -> bool:
    try:
        import torch

        if isinstance(err, torch.cuda.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


@contextmanager
def oom_advice(device: str, batch_size: int | None = None, tile: int | None = None) -> Iterator[None]:
    """Turn a CUDA/MPS out-of-memory error inside the block into :class:`OutOfMemoryAdvice`."""
    try:
        yield
    except OutOfMemoryAdvice:
        raise
    except RuntimeError as err:
        if not _is_oom(err):
            raise
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
        raise OutOfMemoryAdvice(oom_message(device, batch_size, tile)) from err
