"""The training widgets' background-thread side: what runs in a napari ``thread_worker``.

A :class:`RunRequest` (inputs frozen at launch) is trained by :func:`_train_stream`, which drives the
core generator (one ``EpochResult`` per epoch, returns a ``TrainResult``) and prepares full-size
previews off the GUI thread; :func:`_predict` segments one layer with a trained model.
Also the guards a run needs: the triton/LLVM clash, preloading the network libraries, and a lower
thread priority.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.training.supervised import labels_from_probability
from ._layers import FrozenLayer

if TYPE_CHECKING:
    from ._plot import EpochPlot

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """Everything a run needs, frozen at launch by the widget.

    Attributes
    ----------
    inputs : list of FrozenLayer
        Copies of the input layers; each gets one mask and one probability output layer.
    start : callable
        ``start(device, stop)`` returns the core training generator (called in the worker thread).
    params : dict
        JSON-friendly parameters, recorded in the outputs' metadata; ``params["epochs"]`` sizes the
        progress bar.
    seed : int
    to_mask : callable or None
        ``to_mask(prob) -> labels`` for previews (default: 0.5 threshold, or argmax for multi-class).
    selections : list
        Per input, the leading-axis indices trained (None = the whole layer). Previews fill only
        these slices; the others stay 0 until "Predict".
    blocks : list
        Per input, the :class:`~._large.Block` list it trains on when it is read in blocks (a lazy
        or large layer), else None; the engine then yields one preview per block, in order.
    note : str
        Added to the status line while the run goes on (e.g. which blocks train).
    """

    inputs: list
    start: Callable
    params: dict
    seed: int
    to_mask: Callable | None = None
    selections: list = field(default_factory=list)
    blocks: list = field(default_factory=list)
    note: str = ""

    def selection(self, i: int):
        return self.selections[i] if i < len(self.selections) else None

    def plan(self, i: int):
        return self.blocks[i] if i < len(self.blocks) else None

    def place(self, previews: list) -> list:
        """(mask, probability) per input from the engine's previews (one per image it was given)."""
        from ._large import place_previews

        out, k = [], 0
        for i, frozen in enumerate(self.inputs):
            plan = self.plan(i)
            if plan is None:
                out.append(_full_size(frozen, self.selection(i), previews[k], self.to_mask))
                k += 1
                continue
            split = partial(_split_block, to_mask=self.to_mask)
            out.append(place_previews(np.shape(frozen.data), plan, previews[k:k + len(plan)], split))
            k += len(plan)
        return out


def avoid_triton_llvm_clash() -> bool:
    """Stop torch from importing triton when a system LLVM is already loaded; True if blocked.

    Mesa's OpenGL (the viewer's canvas on most Linux desktops and under Xvfb) maps libLLVM into the
    process; importing triton afterwards (torchvision and timm import it through torch._dynamo when
    segmentation-models-pytorch loads) then crashes the process with a segfault, because libtriton's
    own LLVM symbols bind to the system copy (the same clash as tensorflow/tensorflow#124205).
    Training here never uses triton (no torch.compile), so marking it missing is safe; torch treats
    a missing triton as "not installed".
    """
    if "triton" in sys.modules or not sys.platform.startswith("linux"):
        return False
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    if "libLLVM" not in maps:
        return False
    sys.modules["triton"] = None  # import triton -> ImportError; find_spec("triton") -> None
    log.info("libLLVM is loaded (Mesa OpenGL): triton disabled in this process to avoid a crash")
    return True


#: Set once torch and segmentation-models-pytorch are imported (see :func:`start_loading`).
LOADED = threading.Event()
_loader: list = []


def loading_started() -> bool:
    """True once :func:`start_loading` has been called in this process."""
    return bool(_loader)


def start_loading() -> threading.Event:
    """Import torch and segmentation-models-pytorch in a background thread, once per process.

    They take seconds to import (torch, timm, torchvision). Done on the GUI thread they froze the
    viewer while the widget docked; done at the first Run they would freeze it then. Here the viewer
    stays live; the run panel shows "loading PyTorch" and enables Run when :data:`LOADED` is set.
    """
    if not _loader:
        avoid_triton_llvm_clash()  # before any import of torch: it reads this process's maps

        def load() -> None:
            try:
                import matplotlib.backends.backend_agg  # noqa: F401 -- the run panel's plot
                import segmentation_models_pytorch  # noqa: F401
                import torch  # noqa: F401

                from ._outputs import MAX_CLASSES, output_colormap

                for dtype in (np.uint8, np.uint16):  # napari compiles the mask colours (numba) once, here
                    output_colormap(MAX_CLASSES).map(np.zeros(2, dtype))
            except Exception:  # shown when a run needs them
                log.exception("could not import the training libraries")
            finally:
                LOADED.set()

        thread = threading.Thread(target=load, name="metastructures-imports", daemon=True)
        _loader.append(thread)
        thread.start()
    return LOADED


#: Environment variable: the training thread's niceness (Linux), 0-19.
NICE_ENV = "METASTRUCTURES_WORKER_NICE"
DEFAULT_NICENESS = 2


def worker_niceness() -> int:
    """The training thread's niceness: ``$METASTRUCTURES_WORKER_NICE`` (0-19), else 2."""
    try:
        return min(19, max(0, int(os.environ.get(NICE_ENV, DEFAULT_NICENESS))))
    except ValueError:
        return DEFAULT_NICENESS


def lower_thread_priority(niceness: int | None = None) -> None:
    """Run the calling thread (and the torch threads it starts) at niceness ``niceness`` (Linux).

    The default, 2, is just below the viewer. With other programs busy on every core, the old
    niceness of 10 slowed training 20x against 0 (16.4 s against 0.83 s per step; torch's threads
    wait for the slowest of them), 2 by 1.35x (``benchmarks/bench_worker_priority.py``); on an
    idle machine the viewer's longest stall was about the same at 0, 4 and 10 (110-285 ms, noisy).
    Elsewhere this does nothing.
    """
    niceness = worker_niceness() if niceness is None else niceness
    if not niceness or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)  # per thread on Linux
    except (OSError, AttributeError):
        pass


def split_probability(prob: np.ndarray, image_shape: tuple, to_mask: Callable | None = None):
    """``(mask, foreground probability)`` from a binary or a multi-class (leading axis) prediction.

    For multi-class output the probability shown is ``1 - p(first class)``.
    """
    prob = np.asarray(prob, dtype=np.float32)
    multi = prob.shape != tuple(image_shape)
    if multi and prob.shape[1:] != tuple(image_shape):
        raise ValueError(f"prediction shape {prob.shape} does not match the image {tuple(image_shape)}")
    if to_mask is None:
        to_mask = partial(labels_from_probability, config={"model": {"classes": prob.shape[0] if multi else 1}})
    return to_mask(prob), (1.0 - prob[0] if multi else prob)


def _split_block(prob, shape, to_mask=None):
    return split_probability(prob, shape, to_mask)


def _full_size(frozen: FrozenLayer, selection, prob: np.ndarray, to_mask: Callable | None):
    """Place the prediction of the trained slices into arrays of the whole layer's shape."""
    shape = frozen.data.shape
    if selection is None:
        return split_probability(prob, shape, to_mask)
    mask_part, prob_part = split_probability(prob, (len(selection),) + tuple(shape[1:]), to_mask)
    mask, fg = np.zeros(shape, mask_part.dtype), np.zeros(shape, np.float32)
    mask[list(selection)], fg[list(selection)] = mask_part, prob_part
    return mask, fg


class RunFailed(Exception):
    """Carries an engine error out of the worker thread.

    superqt's GeneratorWorker treats a RuntimeError raised by the generator as "the worker was
    deleted": it emits neither ``errored`` nor ``finished``, and the widget would stay "running".
    OutOfMemoryAdvice and most torch errors are RuntimeErrors, so every error is wrapped here.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class PolledStop:
    """The Stop flag as the engine polls it (before every training batch and prediction tile).

    Counting the polls gives the GUI progress within an epoch without a callback into the engine.
    """

    def __init__(self, event: threading.Event) -> None:
        self.event, self.polls, self._epoch_start = event, 0, 0

    def __call__(self) -> bool:
        self.polls += 1
        return self.event.is_set()

    def mark_epoch(self) -> None:
        """An epoch ended: count the next one's steps from here."""
        self._epoch_start = self.polls

    def step_text(self, epoch: int, steps: int) -> str:
        """``epoch 3: step 7/20`` (``step 7`` when the steps per epoch are not known)."""
        polled = self.polls - self._epoch_start
        if not steps:
            return f"epoch {epoch}: step {polled}"
        return f"epoch {epoch}: step {min(polled, steps)}/{steps}" + (" (predicting)" if polled > steps else "")

    def is_set(self) -> bool:
        return self.event.is_set()


def _train_stream(request: RunRequest, device: str, stop, done: threading.Event,
                  shown: threading.Event, plot: EpochPlot | None = None):
    """Worker body: run the core generator; turn previews into full-size (mask, prob) here, off the
    GUI thread; return the engine's TrainResult.

    After yielding a preview it waits (up to 2 s) until the GUI thread has put it into the layers:
    the next epoch starts with GIL-holding numpy work, which would otherwise slow that update down.
    """
    points: list = []
    try:
        lower_thread_priority()
        gen = request.start(device, stop if callable(stop) else stop.is_set)
        while True:
            try:
                result = next(gen)
            except StopIteration as fin:
                return fin.value
            except Exception as err:  # see RunFailed
                raise RunFailed(err) from err
            outputs = None
            if result.preview is not None:
                outputs = request.place(result.preview)
            points = [p for p in points if p[0] < result.epoch] + [
                (result.epoch, result.loss, result.foreground_fraction)]
            image = (None, points)
            if plot is not None:
                try:
                    image = (plot.render(points), points)
                except Exception:  # a plot problem must not end the run
                    log.exception("could not draw the progress plot")
            shown.clear()
            yield result, outputs, image
            if outputs is not None:
                shown.wait(2.0)
    finally:
        done.set()


def _predict_folder(model, source, out, device: str, stop: Callable[[], bool] | None = None,
                    done: threading.Event | None = None):
    """Segment every TIFF of folder ``source`` into folder ``out``, as ``metastructures predict`` does.

    A generator: yields ``{"total": n}`` once the folder is listed (here, not on the GUI thread),
    then each file's record as it is written. Returns ``(summary, first)``: the
    batch summary (``stopped`` True when Stop ended it) and the first mask as a layer tuple from
    :func:`~..io.read_layers` (None when nothing was written), read here, not on the GUI thread.
    """
    from .. import __version__
    from ..batch import PredictSettings, RunLog, expand_inputs, iter_serial
    from ..core.progress import StopRequested
    from ..io import read_layers

    try:
        jobs = expand_inputs([source])
        yield {"total": len(jobs)}
        header = {"command": "predict (viewer)", "version": __version__, "model_config": model.config,
                  "device": {"used": device}}
        log = RunLog(Path(out) / "run.json", header, jobs)
        params = {"method": "predict", "model": "from the viewer", "version": __version__}
        stopped, first = False, None
        try:
            yield from iter_serial(jobs, model, Path(out), PredictSettings(device), params, log, stop=stop,
                                   progress=False)
        except StopRequested:
            stopped = True
        log.finish(stopped=stopped)
        done_records = [r for r in log.records.values() if r["status"] == "done"]
        if done_records:
            first = read_layers(done_records[0]["outputs"][-1])[0]
        return {**log.summary(), "stopped": stopped, "out": str(out)}, first
    finally:
        if done is not None:
            done.set()


def _predict(model, frozen: FrozenLayer, device: str, stop: Callable[[], bool] | None = None,
             done: threading.Event | None = None, suffix: str = "", options: dict | None = None):
    """Predict ``frozen`` with ``model``: ``(mask, probability, info)``, or None when ``stop()``
    turned True between tile batches. A lazy or large layer is predicted block by block into
    numpy or zarr outputs (:func:`~._large.predict_large`; ``info`` names its stores)."""
    from ..core.progress import StopRequested
    from ._large import predict_large, reads_in_blocks

    to_mask = partial(labels_from_probability, config=model.config)
    try:
        if reads_in_blocks(frozen.data):
            return predict_large(model, frozen, suffix, device, to_mask, stop, **(options or {}))
        prob = model.predict(frozen.data, device=device, stop=stop, axes=frozen.axes, **(options or {}))
        return (*split_probability(prob, frozen.data.shape, to_mask), {})
    except StopRequested:
        return None
    finally:
        if done is not None:
            done.set()
