"""``metastructures predict``: run a saved model (iGTT or supervised) on many images.

Inputs are files, folders (their TIFF files) and glob patterns (quote them: ``"data/*.tif"``).
Each input is read, segmented and written before the next is read, so memory stays flat as the
batch grows. For each input: ``DIR/<stem>_prob.tif`` (float32 in [0, 1]) and ``DIR/<stem>_mask.tif``
(uint8 0/1, ``prob > 0.5``), with the input's pixel size, each written atomically (complete or
absent). Probability maps larger than ``--zarr-above`` (1 GiB) are written as ``<stem>_prob.zarr``
and ``<stem>_mask.zarr`` stores instead, block by block, with the same JSON sidecars; inputs can be
``.zarr`` stores (plain arrays or OME-Zarr), and TIFFs over 1 GiB are read lazily, one plane or
volume at a time (docs/scale-out.md, "Large files"). ``DIR/run.json`` is rewritten as inputs finish.
A file that fails is reported by name and the batch goes on; the summary lists what failed. Exit
code 1 when some file failed, 2 when every input was bad.

``--workers N`` runs the batch on a local Dask cluster of N processes and ``--scheduler ADDRESS``
on a running one (optional extra ``[distributed]``; see docs/scale-out.md).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment images with a saved model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="INPUT",
                   help="TIFF files or .zarr stores, folders of them, or glob patterns")
    p.add_argument("--model", required=True, metavar="PATH", help="a model saved by igtt --save-model")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--skip-existing", action="store_true",
                   help="resume: leave inputs whose outputs are all in DIR untouched")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.add_argument("--tile", type=int, default=256, help="tile size in px (default 256)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in px (default 32)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass (default 4)")
    p.add_argument("--volume", choices=["auto", "slices", "ortho"], default="auto",
                   help="how z-stacks are predicted: auto (default): ortho for files with a Z axis, slices "
                        "otherwise; slices: xy planes only (about 8x faster); ortho: xy, xz and yz planes of the "
                        "same network, z resampled by the file's z step / pixel size, averaged (docs/igtt.md)")
    p.add_argument("--axes", metavar="AXES",
                   help="the inputs' axes, e.g. TZYX or ZYX, instead of what each file says (T time, Z depth)")
    p.add_argument("--zarr-above", type=float, default=1.0, metavar="GIB",
                   help="write probability maps larger than this many GiB (float32) as .zarr stores, block by "
                        "block, instead of TIFFs computed in memory (default 1; 0: always zarr)")
    dist = p.add_argument_group("scale-out (needs the [distributed] extra)")
    dist.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
    dist.add_argument("--scheduler", metavar="ADDRESS", help="run on a running Dask scheduler (tcp://host:port)")
    dist.add_argument("--threads-per-worker", type=int, default=1, metavar="N",
                      help="torch threads per Dask worker (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..batch import PredictSettings, RunLog, expand_inputs, run_serial
    from ..core import load_model
    from ..core.device import DeviceChoice, resolve_device

    t0 = time.perf_counter()
    if args.tile < 32 or args.batch_size < 1 or args.overlap < 0:
        raise InputError("--tile must be >= 32, --batch-size >= 1 and --overlap >= 0.")
    zarr_above = zarr_limit(args.zarr_above)
    if args.workers is not None and args.scheduler:
        raise InputError("--workers and --scheduler: give one (a local cluster, or a running scheduler).")
    if (args.workers is not None and args.workers < 1) or args.threads_per_worker < 1:
        raise InputError("--workers and --threads-per-worker must be >= 1.")
    out = Path(args.out)
    check_writable(out)  # before the model is read or any image segmented
    distributed = args.workers is not None or bool(args.scheduler)
    if distributed:
        from ..batch.distributed import check_available

        check_available()
    if distributed:  # resolved on each worker, which may have a GPU this machine lacks
        _check_device_name(args.device)
        choice = DeviceChoice(args.device, "resolved on each Dask worker", "")
    else:
        choice = resolve_device(args.device)
    model = load_model(args.model)
    if model.classes != 1:
        raise InputError(f"{Path(args.model).name}: a {model.classes}-class model; predict writes "
                         "binary masks and needs a one-class model.")
    jobs = expand_inputs(args.images)
    settings = PredictSettings(choice.device, args.tile, args.overlap, args.batch_size, axes=args.axes,
                               volume=args.volume, zarr_above=zarr_above)
    params = {"method": "predict", "model": str(args.model), "version": __version__}
    header = {
        "command": "predict", "version": __version__, "model": str(args.model),
        "model_version": model.version, "model_config": model.config,
        "device": {"requested": args.device, "used": choice.device, "name": choice.name},
        "params": {"tile": args.tile, "overlap": args.overlap, "batch_size": args.batch_size,
                   "skip_existing": args.skip_existing, "axes": args.axes,
                   "volume": args.volume, "zarr_above_bytes": zarr_above},
        "machine": f"{platform.node()} {platform.machine()}",
    }
    log = RunLog(out / "run.json", header, jobs)
    where = f"{choice.name}"
    if distributed:
        where = f"Dask ({args.scheduler or f'{args.workers} local worker(s)'})"
    print(f"predicting {len(jobs)} file(s) with {Path(args.model).name} on {where}", flush=True)
    if distributed:
        from ..batch.distributed import run_distributed

        run_distributed(jobs, args.model, out, settings, params, log, skip_existing=args.skip_existing,
                        on_record=_print_record, workers=args.workers, scheduler=args.scheduler,
                        threads=args.threads_per_worker, requested_device=args.device)
    else:
        run_serial(jobs, model, out, settings, params, log, skip_existing=args.skip_existing,
                   on_record=_print_record)
    log.finish(timings={"total_s": time.perf_counter() - t0})
    for line in log.summary_lines():
        print(line, file=sys.stderr if line.startswith("  failed") else sys.stdout, flush=True)
    return exit_code(log)


def zarr_limit(gib) -> int:
    """``--zarr-above`` in bytes; a number of GiB >= 0, else InputError."""
    import math

    if gib is None or not math.isfinite(gib) or gib < 0:
        raise InputError(f"--zarr-above {gib}: give a size in GiB, 0 or more (0: every output as zarr).")
    return int(gib * 1024**3)


def _check_device_name(device: str) -> None:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:<i>``, without asking this machine's hardware."""
    import re

    from ..core.device import DeviceError

    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", (device or "").strip().lower()):
        raise DeviceError(f"device {device!r}: use auto, cpu, mps, cuda or cuda:<index>")


def _print_record(record: dict) -> None:
    from tqdm.auto import tqdm

    if record["status"] == "done":
        when = "trained on it" if record.get("trained_on") else f"{record['seconds']:.1f}s"
        tqdm.write(f"{record['stem']}: {when}, foreground {100 * record['foreground']:.1f}%")
    elif record["status"] == "skipped":
        tqdm.write(f"{record['stem']}: skipped, outputs already complete")
    else:
        tqdm.write(f"error: {record['reason']}", file=sys.stderr)


def exit_code(log) -> int:
    """0 when nothing failed; 2 when every input failed (bad input); 1 when some did."""
    s = log.summary()
    if not s["failed"]:
        return 0
    return 2 if s["failed"] == s["total"] else 1
