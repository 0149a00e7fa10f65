"""The batch on Dask workers (``distributed``): one task per input file.

The model file's bytes are scattered to every worker once (``broadcast=True``); each worker
process builds the network the first time a task needs it and keeps it. Every task reads,
segments and writes its own input (:func:`~.segment.segment_file`), so the client only ever holds
small records. Dask retries a task whose worker died; a retry that finds this run's complete
outputs (same run id in the mask's sidecar) returns them without writing again.

Needs the optional extra ``[distributed]`` (``dask[distributed]``; ``dask-jobqueue`` for clusters).
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import asdict
from pathlib import Path

from ..core.validate import InputError
from .plan import Job, is_complete, output_files
from .segment import PredictSettings, failed, segment_file

#: Test hook: ``<marker>:<stem>`` makes the worker that first reaches input ``<stem>`` exit at once
#: (as if killed), once per marker file. Only a worker's environment should ever hold it.
FAULT_ENV = "METASTRUCTURES_TEST_KILL_WORKER"
RETRIES = 2
_MODELS: dict = {}  # in each worker process: model digest -> TrainedModel
_THREADS: list = []


def check_available() -> None:
    """Raise InputError with the install line when ``distributed`` is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("--workers and --scheduler need Dask's distributed: "
                         'pip install "napari-metastructures[distributed]"') from None


def run_distributed(jobs: list, model_path, out: Path, settings: PredictSettings, params: dict, log,
                    skip_existing: bool = False, on_record=None, workers: int | None = None,
                    scheduler: str | None = None, threads: int = 1, requested_device: str = "auto") -> list[dict]:
    """Segment ``jobs`` on a local cluster of ``workers`` processes or on ``scheduler``; returns records.

    Records reach ``log`` and ``on_record`` as tasks finish (in any order). ``requested_device``
    is resolved on each worker: with ``auto``, a local worker ``i`` on a machine with ``k`` GPUs
    takes ``cuda:(i mod k)``.
    """
    from concurrent.futures import CancelledError

    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    # workers may run elsewhere (another folder, another node): give them absolute paths
    jobs = [Job(j.source.absolute(), j.stem, j.problem) for j in jobs]
    out = Path(out).absolute()
    blob = Path(model_path).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    run_id = uuid.uuid4().hex
    params = dict(params, run_id=run_id)
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except OSError as err:
                raise InputError(f"--scheduler {scheduler}: cannot connect ({err}).") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        with client:
            if cluster is not None:  # every local worker up before the broadcast: data scattered to
                # one worker only is lost with it, and every task that needs it is cancelled
                client.wait_for_workers(len(cluster.worker_spec), timeout=120)
            model_future = client.scatter(blob, broadcast=True, hash=False)
            opts = dict(settings=asdict(settings), requested=requested_device, threads=threads, run_id=run_id,
                        out=str(out), params=params, skip_existing=skip_existing)

            def submit(j: Job, attempt: int = 0):
                key = f"segment-{j.stem}-{run_id}" + (f"-again{attempt}" if attempt else "")
                return client.submit(_task, asdict(j), model_future, digest, key=key, retries=RETRIES,
                                     pure=False, **opts)

            futures = {submit(j): j for j in jobs}
            again = set()  # stems resubmitted once after the cluster cancelled their task
            records = []
            with tqdm(total=len(jobs), unit="file", desc="files", disable=None) as bar:
                pending = as_completed(futures)
                for future in pending:
                    job = futures[future]
                    try:
                        record = future.result()
                    except CancelledError:
                        if job.stem in again:
                            record = failed(job, f"{job.source.name}: the Dask task was cancelled twice")
                        else:  # a lost worker can cancel a task whose input died with it: try once more
                            again.add(job.stem)
                            if model_future.status != "finished":
                                model_future = client.scatter(blob, broadcast=True, hash=False)
                            retry = submit(job, 1)
                            futures[retry] = job
                            pending.add(retry)
                            continue
                    except Exception as err:  # the task itself died (KilledWorker after retries...)
                        record = failed(job, f"{job.source.name}: the Dask task failed "
                                             f"({type(err).__name__}: {err})")
                    log.update(record)
                    records.append(record)
                    bar.update(1)
                    if on_record is not None:
                        on_record(record)
            return records
    finally:
        if cluster is not None:
            cluster.close()


def _task(job: dict, blob: bytes, digest: str, *, settings: dict, requested: str, threads: int, run_id: str,
          out: str, params: dict, skip_existing: bool) -> dict:
    """One input, on a worker."""
    job = Job(Path(job["source"]), job["stem"], job["problem"])
    _maybe_die(job.stem)
    out = Path(out)
    if is_complete(out, job.stem) and _written_by(out, job.stem) == run_id:
        return _earlier_try(job, out)
    _set_threads(threads)
    settings = PredictSettings(**{**settings, "device": _worker_device(requested)})
    return segment_file(job, _model(blob, digest), out, settings, params, skip_existing)


def _earlier_try(job: Job, out: Path) -> dict:
    """The record of an input an earlier try of this task wrote (its worker died before reporting)."""
    from ..core.lazy import mean_above
    from ..io import read_image

    written = [str(p) for p in output_files(out, job.stem) if p.suffix in (".tif", ".zarr")]
    mask = read_image(written[-1], lazy=True).data
    return {**job.as_dict(), "status": "done", "note": "written by an earlier try of this task",
            "seconds": 0.0, "outputs": written, "shape": list(mask.shape), "foreground": mean_above(mask, 0)}


def _model(blob: bytes, digest: str):
    if digest not in _MODELS:
        import tempfile

        from ..core import load_model

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            path.write_bytes(blob)
            _MODELS[digest] = load_model(path)
    return _MODELS[digest]


def _set_threads(n: int) -> None:
    if not _THREADS:
        from ..core.device import set_cpu_threads

        _THREADS.append(set_cpu_threads(n))


def _worker_device(requested: str) -> str:
    from ..core.device import resolve_device

    if requested.strip().lower() == "auto":
        import torch
        from distributed import get_worker

        name = get_worker().name
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count > 1 and isinstance(name, int):
            return f"cuda:{name % count}"
    return resolve_device(requested).device


def _written_by(out: Path, stem: str) -> str | None:
    import json

    sidecar = output_files(out, stem)[-1]
    try:
        return json.loads(sidecar.read_text()).get("params", {}).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def _maybe_die(stem: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    marker, _, target = spec.rpartition(":")
    if target == stem and not Path(marker).exists():
        Path(marker).write_text("killed once\n")
        os._exit(1)
