"""The one training loop, shared by iGTT and supervised training.

The loop owns what every run needs: the device, a private torch random state, the optimizer and
its schedule, mixed precision with a GradScaler on CUDA, stop polling, a guard against a
non-finite loss and the epoch records. An engine supplies a :class:`Task`: what to train on in an
epoch, the loss of a batch, and what to report (and predict) at the end of an epoch.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Protocol

from ..device import resolve_device, set_cpu_threads
from ..progress import EpochResult, StopFn, StopRequested, check_stop, oom_advice
from ..validate import check_memory
from .model import TrainedModel


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class Schedule:
    """How long and how fast the loop trains.

    ``optimizer`` holds the keyword arguments of :func:`make_optimizer` (``name``, ``lr``, ...).
    """

    epochs: int
    steps: int  # batches per epoch
    batch_size: int
    crop: int
    optimizer: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """What a run returns.

    Attributes
    ----------
    model : TrainedModel
        The network after the last completed batch, with its config and history (saved together).
    outputs : list or None
        The last epoch's predictions of the training images (engine-specific maps); None when the
        run stopped after the weights moved on from them.
    masks : list or None
        uint8 masks of ``outputs`` (iGTT; None for supervised runs).
    stopped : dict or None
        ``{"epoch": e, "completed_steps": n}`` when a stop request ended the run, else None.
    """

    model: TrainedModel
    outputs: list | None = None
    masks: list | None = None
    stopped: dict | None = None

    @property
    def history(self) -> list:
        return self.model.history


class Task(Protocol):
    """What an engine plugs into :func:`run_epochs`."""

    def start_epoch(self, epoch: int) -> None:
        """Prepare the epoch's targets (iGTT: pseudo-labels)."""

    def batch(self) -> tuple:
        """One ``(x, y)`` pair of torch tensors on the device."""

    def loss(self, logits, y, epoch: int):
        """The scalar loss of a batch (``logits`` are float32)."""

    def finish_epoch(self, epoch: int, losses: list, started: float, stop: StopFn) -> tuple:
        """``(EpochResult, last)`` after the epoch's batches; may raise StopRequested."""


def open_device(device: str, threads: int | None = None):
    """``(DeviceChoice, torch.device)`` for a device name; sets the CPU thread count on CPU."""
    import torch

    choice = resolve_device(device)
    dev = torch.device(choice.device)
    if dev.type == "cpu":
        set_cpu_threads(threads)
    return choice, dev


class TorchRandom:
    """A private torch random state: seeded once, used inside :meth:`active`, the global one untouched."""

    def __init__(self, seed: int, device) -> None:
        import torch

        self._cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else []
        with torch.random.fork_rng(devices=self._cuda):
            torch.manual_seed(int(seed))
            self._save()

    def _save(self) -> None:
        import torch

        self._state = torch.get_rng_state()
        self._cuda_state = [torch.cuda.get_rng_state(i) for i in self._cuda]

    @contextlib.contextmanager
    def active(self):
        """Draw from this state (weight init, dropout) and keep where it got to."""
        import torch

        with torch.random.fork_rng(devices=self._cuda):
            torch.set_rng_state(self._state)
            for i, state in zip(self._cuda, self._cuda_state):
                torch.cuda.set_rng_state(state, i)
            try:
                yield
            finally:
                self._save()


def make_optimizer(net, epochs: int, name: str = "adam", lr: float = 1e-3, momentum: float = 0.9,
                   weight_decay: float = 0.0, schedule: str = "constant", lr_floor: float = 0.05,
                   lr_step: int = 20, lr_gamma: float = 0.1):
    """The optimizer (``sgd`` with momentum, or ``adam``) and its learning-rate scheduler or None.

    ``schedule``: ``cosine`` (down to ``lr_floor * lr`` over ``epochs``), ``step`` (times ``lr_gamma``
    every ``lr_step`` epochs) or ``constant``.
    """
    import torch

    if name == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    if schedule == "step":
        return opt, torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma)
    if schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs), lr * lr_floor)
    return opt, None


#: Host memory a training step takes per crop pixel (activations, gradients, optimizer state): 1.4-2.2 KB
#: measured for smp U-Nets (resnet18, depth 3 and 5, crops 128-512, batch 4-8, CPU, channels-last).
BYTES_PER_CROP_PIXEL = 2048


def training_bytes(crop: int, batch_size: int) -> float:
    """About how much memory one training step on ``batch_size`` crops of ``crop`` px needs."""
    return float(BYTES_PER_CROP_PIXEL) * int(batch_size) * int(crop) ** 2


def check_training_memory(crop: int, batch_size: int) -> None:
    """Refuse (:class:`InputError`) a crop and batch whose training step would not fit in memory."""
    check_memory(training_bytes(crop, batch_size), f"training on batches of {batch_size} crops of {crop} px")


def run_epochs(net, task: Task, schedule: Schedule, device, random: TorchRandom,
               stop: StopFn = None) -> Generator[EpochResult, None, dict | None]:
    """Train ``net`` epoch by epoch; yield each epoch's record, return the stop record or None.

    ``stop`` is polled before every batch (and by the task while it predicts); a stop request ends
    the loop with ``{"epoch": e, "completed_steps": n}``.
    """
    import torch

    if device.type == "cpu":  # on a GPU, running out of memory is caught and explained (oom_advice)
        check_training_memory(schedule.crop, schedule.batch_size)
    opt, sched = make_optimizer(net, schedule.epochs, **schedule.optimizer)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    for epoch in range(1, schedule.epochs + 1):
        started = time.perf_counter()
        task.start_epoch(epoch)
        net.train()
        losses: list = []
        try:
            with oom_advice(str(device), schedule.batch_size, schedule.crop), random.active():
                for step in range(schedule.steps):
                    check_stop(stop)
                    x, y = task.batch()
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
                        logits = net(x)
                    loss = task.loss(logits.float(), y, epoch)
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"training diverged at epoch {epoch}, step {step + 1} (loss is {value}); "
                            f"lower the learning rate (now {opt.param_groups[0]['lr']:.3g}).")
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        opt.step()
                    losses.append(value)
            if sched is not None:
                sched.step()
            net.eval()
            record, last = task.finish_epoch(epoch, losses, started, stop)
        except StopRequested:
            net.eval()
            return {"epoch": epoch, "completed_steps": len(losses)}
        yield record
        if last:
            break
    net.eval()
    return None


def finish(model: TrainedModel, stopped: dict | None, outputs=None, masks=None) -> TrainResult:
    """The run's result; a stop is also recorded in the model's config (and so in a saved file)."""
    if stopped is not None:
        model.config["stopped"] = dict(stopped)
    return TrainResult(model, outputs, masks, stopped)
