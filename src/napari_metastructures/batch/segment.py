"""One input of a batch: read it, check it, segment it with a trained model, write its outputs.

:func:`segment_file` never raises for a bad file: it returns a record whose ``status`` is
``"failed"`` with the reason, so the batch goes on. The serial loop, the Dask workers and the
viewer's Predict panel all call it.

Inputs above 1 GiB of pixels are read lazily (one block at a time). Outputs up to
``PredictSettings.zarr_above`` bytes (1 GiB) are computed in memory and written as a TIFF pair;
larger ones are predicted straight into ``<stem>_prob.zarr`` and thresholded block by block into
``<stem>_mask.zarr``, each store written under a ``.partial`` name and renamed when complete.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..core.lazy import OUTPUT_LIMIT
from .plan import OUTPUT_KINDS, Job, is_complete, output_path


@dataclass(frozen=True)
class PredictSettings:
    """Tiled prediction settings (pixels) and the device to run on."""

    device: str = "cpu"
    tile: int = 256
    overlap: int = 32
    batch_size: int = 4
    axes: str | None = None  # the user's axes for every input (--axes), instead of each file's
    volume: str = "auto"  # "auto" (ortho for files with Z), "slices" or "ortho" (xy, xz and yz planes)
    zarr_above: int = OUTPUT_LIMIT  # probability maps with more bytes than this go to zarr stores


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
    A zarr ``prob`` (from :func:`~..core.lazy.output_array`, still ``.partial``) goes to
    :func:`write_zarr_pair` instead. Returns the paths written.
    """
    import numpy as np

    from ..core.lazy import is_lazy
    from ..io import write_tiff

    if is_lazy(prob):
        return write_zarr_pair(out, stem, image, prob, params)
    prob = np.clip(np.asarray(prob, np.float32), 0.0, 1.0)
    mask = (prob > 0.5).astype(np.uint8)
    meta = dict(params, source=str(image.metadata.get("source", image.name)))
    geometry = dict(scale=image.scale, axes=image.axes, translate=image.translate)
    written = [
        str(write_tiff(output_path(out, stem, "prob"), prob, params=dict(meta, output="foreground probability"),
                       **geometry)),
        str(write_tiff(output_path(out, stem, "mask"), mask, params=dict(meta, output="mask = probability > 0.5"),
                       layer_type="labels", **geometry)),
    ]
    _remove_other(out, stem, ".zarr")
    return written


def write_zarr_pair(out: Path, stem: str, image, prob, params: dict) -> list[str]:
    """Finish ``<stem>_prob.zarr`` (a ``.partial`` zarr array that ``predict`` filled), write
    ``<stem>_mask.zarr`` from it one plane at a time, and their sidecars (mask's last).

    Probabilities are clipped to [0, 1] in place, as for TIFFs. On failure the mask's partial
    store is removed; the caller removes ``prob``'s. Returns the store paths.
    """
    import numpy as np

    from ..core.lazy import block_indices, finish_store, output_array, read_block, remove_store
    from ..zarr_io import zarr_attrs

    meta = dict(params, source=str(image.metadata.get("source", image.name)))
    shape = tuple(prob.shape)
    mask = output_array(shape, np.uint8, limit=-1, store=output_path(out, stem, "mask", ".zarr"))
    try:
        for idx in block_indices(shape, 2):
            p = read_block(prob, idx)
            clipped = np.clip(p, 0.0, 1.0)
            if not np.array_equal(clipped, p):
                prob[idx] = clipped
            mask[idx] = (clipped > 0.5).astype(np.uint8)
        geometry = (image.axes, image.scale, image.translate)
        zarr_attrs(prob, *geometry, "image")
        zarr_attrs(mask, *geometry, "labels")
        prob_path = finish_store(prob)
        _zarr_sidecar(prob_path, shape, "float32", "image", image, dict(meta, output="foreground probability"))
        mask_path = finish_store(mask)
    except BaseException:
        remove_store(mask)
        raise
    _zarr_sidecar(mask_path, shape, "uint8", "labels", image, dict(meta, output="mask = probability > 0.5"))
    _remove_other(out, stem, ".tif")
    return [str(prob_path), str(mask_path)]


def _zarr_sidecar(path: Path, shape, dtype: str, layer_type: str, image, params: dict) -> None:
    """``<stem>_<kind>.json`` beside a zarr output: what write_tiff's sidecar holds, plus the axes."""
    from .. import __version__
    from ..core import jsonsafe
    from ..core.atomic import atomic_write_text
    from ..io import _jsonable

    side = {"image": path.name, "layer_type": layer_type, "shape": list(shape), "dtype": dtype,
            "axes": image.axes, "scale": [float(s) for s in image.scale],
            "translate": [float(t) for t in image.translate], "params": _jsonable(params),
            "written_by": f"napari-metastructures {__version__}"}
    atomic_write_text(path.with_suffix(".json"), jsonsafe.dumps(side, indent=2, ensure_ascii=False))


def _remove_other(out: Path, stem: str, suffix: str) -> None:
    """Remove this stem's outputs in the other format (``suffix``), left by an earlier run."""
    import shutil

    for kind in OUTPUT_KINDS:
        old = output_path(out, stem, kind, suffix)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        elif old.exists():
            old.unlink()


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
    import numpy as np

    from ..core.lazy import check_image_lazy, mean_above, output_array, remove_store
    from ..core.progress import StopRequested
    from ..io import read_image, with_axes

    if skip_existing and is_complete(out, job.stem):
        return skipped(job)
    if job.problem:
        return failed(job, job.problem)
    t0 = time.perf_counter()
    prob = None
    try:
        image = with_axes(read_image(job.source, lazy="auto"), settings.axes)
        check_image_lazy(image.data, name=job.source.name)
        prob = output_array(image.data.shape, np.float32, limit=settings.zarr_above,
                            store=output_path(out, job.stem, "prob", ".zarr"))
        model.predict(image.data, settings.device, settings.tile, settings.overlap, settings.batch_size,
                      stop=stop, axes=image.axes, out=prob, **volume_args(image, settings.volume))
        foreground = mean_above(prob)  # before write_pair renames a zarr store away from this array
        written = write_pair(out, job.stem, image, prob, params)
    except BaseException as err:
        if prob is not None:
            remove_store(prob)  # a partial zarr store; never a finished one
        if isinstance(err, (StopRequested, KeyboardInterrupt)) or not isinstance(err, Exception):
            raise
        return _failure(job, err, time.perf_counter() - t0)
    return {**job.as_dict(), "status": "done", "seconds": time.perf_counter() - t0, "outputs": written,
            "shape": list(image.data.shape), "foreground": foreground,
            "volume": "ortho" if volume_args(image, settings.volume) else "slices"}


def _failure(job: Job, err: Exception, seconds: float) -> dict:
    """The failed record for an error :func:`segment_file` caught (the batch goes on)."""
    from ..core.progress import OutOfMemoryAdvice
    from ..core.validate import InputError

    if isinstance(err, (InputError, OutOfMemoryAdvice)):
        return failed(job, str(err), seconds)
    if isinstance(err, MemoryError):
        return failed(job, f"{job.source.name}: not enough memory to segment it", seconds)
    if isinstance(err, OSError):
        where = err.filename or job.source
        return failed(job, f"{Path(where).name}: {err.strerror or err}", seconds)
    # a bug or a file no check foresaw: report it, keep the batch going
    return failed(job, f"{job.source.name}: internal error ({type(err).__name__}: {err})", seconds)
