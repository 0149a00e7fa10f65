"""One input of a batch: read it, check it, segment it with a trained model, write its outputs.

:func:`segment_file` never raises for a bad file: it returns a record whose ``status`` is
``"failed"`` with the reason, so the batch goes on. The serial loop, the Dask workers and the
viewer's Predict panel all call it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .plan import Job, is_complete, output_path


@dataclass(frozen=True)
class PredictSettings:
    """Tiled prediction settings (pixels) and the device to run on."""

    device: str = "cpu"
    tile: int = 256
    overlap: int = 32
    batch_size: int = 4
    axes: str | None = None  # the user's axes for every input (--axes), instead of each file's
    volume: str = "auto"  # "auto" (ortho for files with Z), "slices" or "ortho" (xy, xz and yz planes)


def volume_args(image, volume: str) -> dict:
    """``predict`` keywords for ``volume`` on ``image`` (an ImageFile): ortho only where it has a Z axis.

    ``"auto"`` is ortho there too: on the 3D synthetic cells ortho planes gave a higher Dice than xy
    slices in every set (docs/igtt.md, "Z-stacks: slices, volume, ortho").
    """
    if volume in ("auto", "ortho") and "Z" in (image.axes or ""):
        return {"volume_mode": "ortho", "anisotropy": image.anisotropy}
    return {}


def write_pair(out: Path, stem: str, image, prob, params: dict) -> list[str]:
    """Write ``<stem>_prob.tif`` then ``<stem>_mask.tif`` (each with its sidecar) for one input.

    ``image`` is the input's :class:`~..io.ImageFile` (its scale, translate and axes are kept).
    Returns the TIFF paths written.
    """
    import numpy as np

    from ..io import write_tiff

    prob = np.clip(np.asarray(prob, np.float32), 0.0, 1.0)
    mask = (prob > 0.5).astype(np.uint8)
    meta = dict(params, source=str(image.metadata.get("source", image.name)))
    geometry = dict(scale=image.scale, axes=image.axes, translate=image.translate)
    return [
        str(write_tiff(output_path(out, stem, "prob"), prob, params=dict(meta, output="foreground probability"),
                       **geometry)),
        str(write_tiff(output_path(out, stem, "mask"), mask, params=dict(meta, output="mask = probability > 0.5"),
                       layer_type="labels", **geometry)),
    ]


def failed(job: Job, reason: str, seconds: float = 0.0) -> dict:
    """The record of an input that could not be segmented."""
    return {**job.as_dict(), "status": "failed", "reason": reason, "seconds": seconds}


def skipped(job: Job) -> dict:
    """The record of an input whose outputs were already complete (``--skip-existing``)."""
    return {**job.as_dict(), "status": "skipped", "reason": "outputs already complete"}


def segment_file(job: Job, model, out: Path, settings: PredictSettings, params: dict,
                 skip_existing: bool = False, stop=None) -> dict:
    """Segment one input and write its outputs; returns its record for ``run.json``.

    Parameters
    ----------
    job : Job
    model : TrainedModel
        A one-class model (``predict`` returns a probability map).
    out : Path
        The output folder.
    settings : PredictSettings
    params : dict
        Recorded in every output's sidecar (method, model, version...).
    skip_existing : bool
        Leave an input whose outputs are all present untouched (record ``"skipped"``).
    stop : callable, optional
        Polled between batches of tiles (see ``TrainedModel.predict``); a stop request propagates.

    Returns
    -------
    dict
        ``path``, ``stem``, ``status`` (``done``, ``skipped`` or ``failed``), ``seconds``, and
        ``outputs``, ``shape`` and ``foreground`` when done, ``reason`` otherwise.
    """
    from ..core.progress import OutOfMemoryAdvice, StopRequested
    from ..core.validate import InputError, check_image
    from ..io import read_image, with_axes

    if skip_existing and is_complete(out, job.stem):
        return skipped(job)
    if job.problem:
        return failed(job, job.problem)
    t0 = time.perf_counter()
    try:
        image = with_axes(read_image(job.source), settings.axes)
        check_image(image.data, name=job.source.name)
        prob = model.predict(image.data, settings.device, settings.tile, settings.overlap, settings.batch_size,
                             stop=stop, axes=image.axes, **volume_args(image, settings.volume))
        written = write_pair(out, job.stem, image, prob, params)
    except (StopRequested, KeyboardInterrupt):
        raise
    except (InputError, OutOfMemoryAdvice) as err:
        return failed(job, str(err), time.perf_counter() - t0)
    except MemoryError:
        return failed(job, f"{job.source.name}: not enough memory to segment it", time.perf_counter() - t0)
    except OSError as err:
        where = err.filename or job.source
        return failed(job, f"{Path(where).name}: {err.strerror or err}", time.perf_counter() - t0)
    except Exception as err:  # a bug or a file no check foresaw: report it, keep the batch going
        return failed(job, f"{job.source.name}: internal error ({type(err).__name__}: {err})",
                      time.perf_counter() - t0)
    return {**job.as_dict(), "status": "done", "seconds": time.perf_counter() - t0, "outputs": written,
            "shape": list(image.data.shape), "foreground": float((prob > 0.5).mean()),
            "volume": "ortho" if volume_args(image, settings.volume) else "slices"}
