"""``metastructures igtt``: unsupervised iGTT segmentation of one or many images.

Inputs are files, folders (their TIFF files) and glob patterns. Trains one network (no labels) on
a sample of the inputs (``--train-on``; default: up to 8 files spread evenly over the list, all of
them when there are fewer), then segments every input with it, one file at a time. For each
input: ``DIR/<stem>_prob.tif`` (float32 foreground probability in [0, 1]; the mask is
``prob > 0.5``) and ``DIR/<stem>_mask.tif`` (uint8 0/1), both with the input's pixel size, and
``DIR/run.json`` (parameters, seed, device, timings, per-epoch losses, which files were trained on,
and each file's status, rewritten as files finish). Prints one progress line per epoch. A file
that fails is reported by name and the rest go on (exit code 1). ``--train-frames`` trains on some
time points of a time-lapse and segments all of them. A file too big for memory (over 1 GiB of
pixels; TIFF or ``.zarr``) is read lazily: training uses a seeded, evenly spread sample of its
volumes (or planes) within ``--train-budget`` pixels, then every block is predicted, and outputs
above 1 GiB go to ``.zarr`` stores (see ``metastructures predict``); run.json lists the blocks.
``--init MODEL`` starts from a saved model (whole network, or ``--init-part encoder``), recorded in
run.json as ``init``.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable, seed

#: Files trained on when ``--train-on`` is not given (spread evenly over the inputs).
DEFAULT_TRAIN_ON = 8
#: Pixels of a lazily read (big) file that training reads, in Mpx (``--train-budget``): 64 Mpx is
#: 128 MiB of uint16 and about 1 GiB of float32 working copies while training.
TRAIN_BUDGET_MPX = 64.0


def register(sub: argparse._SubParsersAction) -> None:
    from ..core.training.warm_start import INIT_PARTS

    p = sub.add_parser("igtt", help="unsupervised segmentation with iGTT (trains on the images given)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="INPUT",
                   help="greyscale TIFF images (2D, 3D stacks, time-lapses), folders of them, or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--train-on", type=_count_or_fraction, metavar="N",
                   help=f"train on N of the inputs, or a fraction such as 0.1, spread evenly over them "
                        f"(default: {DEFAULT_TRAIN_ON}, or all when fewer); every input is segmented")
    p.add_argument("--preset", default="fast", choices=["fast", "paper"],
                   help="fast (default): small U-Net, few epochs, early stop; paper: the official settings")
    p.add_argument("--epochs", type=int, help="number of epochs (default from the preset)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.add_argument("--save-model", metavar="PATH", help="also save the trained model to this file")
    p.add_argument("--init", metavar="MODEL", help="start from this saved model (igtt or train --save-model)")
    p.add_argument("--init-part", choices=INIT_PARTS, default="all",
                   help="with --init: all (default) or encoder (the decoder starts fresh)")
    p.add_argument("--structure", choices=["auto", "network", "objects"],
                   help="auto (default): decided from the first candidate and recorded in run.json; "
                        "network: thin tubules such as ER, the paper's EMS; objects: thick structures "
                        "such as mitochondria or nuclei, whose interior EMS also samples")
    p.add_argument("--no-ems", action="store_true", help="ablation: train on the raw candidates, without EMS")
    p.add_argument("--scope", choices=["auto", "volume", "slice"],
                   help="auto (default): a z-stack is one volume (normalised and thresholded as one; each "
                        "time point alone; a TYX time-lapse per frame); volume; slice: every 2D plane alone")
    p.add_argument("--volume", choices=["auto", "slices", "ortho"], default="auto",
                   help="how z-stacks are predicted: auto (default): ortho for files with a Z axis, slices "
                        "otherwise; slices: xy planes only (about 8x faster); ortho: xy, xz and yz planes of the "
                        "same network, z resampled by the file's z step / pixel size, averaged (docs/igtt.md)")
    p.add_argument("--axes", metavar="AXES",
                   help="the inputs' axes, e.g. TZYX or ZYX, instead of what each file says (T time, Z depth); "
                        "recorded in run.json")
    p.add_argument("--train-frames", type=_frames_arg, metavar="N|LIST",
                   help="train on N time points of each time-lapse, spread evenly (or the listed ones, e.g. "
                        "0,4,9; the T axis wherever it is); every time point is then segmented")
    p.add_argument("--train-budget", type=float, default=TRAIN_BUDGET_MPX, metavar="MPX",
                   help=f"for files too big for memory (read lazily): train on a seeded, evenly spread sample of "
                        f"their volumes or planes holding at most this many megapixels (default {TRAIN_BUDGET_MPX:g})")
    p.add_argument("--zarr-above", type=float, default=1.0, metavar="GIB",
                   help="write probability maps larger than this many GiB as .zarr stores (default 1)")
    p.add_argument("--selection", choices=["image", "batch"],
                   help="choose the threshold candidate per image (default) or one per batch")
    # advanced options, mostly for tests and quick runs
    adv = p.add_argument_group("advanced")
    adv.add_argument("--encoder", help=argparse.SUPPRESS)
    adv.add_argument("--encoder-depth", type=int, help=argparse.SUPPRESS)
    adv.add_argument("--decoder-channels", help=argparse.SUPPRESS)
    adv.add_argument("--crop", type=int, help="training crop size in px")
    adv.add_argument("--batch-size", type=int, help="crops per training batch")
    adv.add_argument("--steps-per-epoch", type=int, help=argparse.SUPPRESS)
    adv.add_argument("--max-steps", type=int, help=argparse.SUPPRESS)
    adv.add_argument("--tile", type=int, help="prediction tile size in px")
    adv.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--unit", choices=["auto", "um", "px"], default="auto",
                   help="unit of the structure sizes (--local-sigma, haze, EMS radius): auto (default) is µm "
                        "when the files give a pixel size, else px; crop and tile stay in px")
    adv.add_argument("--local-sigma", type=float, metavar="SIZE",
                     help="smallest local contrast window, in --unit (default 0.52 µm, or 8 px without a pixel "
                          "size; widened to twice the structures' width; 0: off)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, unit=None):
    """The IgttConfig of the preset with the options given on the command line; sizes in the
    ``unit`` chosen for the files (a :class:`~..core.units.UnitChoice`; None: px)."""
    from dataclasses import fields

    from ..core.igtt.engine import IgttConfig

    # every flag named like an IgttConfig field overrides the preset when given; check() judges it
    over = {f.name: getattr(args, f.name) for f in fields(IgttConfig) if getattr(args, f.name, None) is not None}
    over.pop("preset", None)
    if unit is not None and unit.unit == "um":
        over.update(size_unit="um", pixel_size_um=unit.pixel_size)
    if "decoder_channels" in over:
        try:
            over["decoder_channels"] = tuple(int(v) for v in over["decoder_channels"].split(","))
        except ValueError:
            raise InputError(f"--decoder-channels {args.decoder_channels!r}: give whole numbers, "
                             "e.g. 64,32,16.") from None
    if getattr(args, "no_ems", False):
        over["use_ems"] = False
    return IgttConfig.preset(args.preset, **over)


def _frames_arg(text: str) -> tuple:
    """``("count", n)`` or ``("list", [i, ...])`` from ``--train-frames``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--train-frames {text!r}: a number of frames, or indices like 0,4,9") \
            from None
    if not values or min(values) < 0 or ("," not in text and values[0] < 1):
        raise argparse.ArgumentTypeError(f"--train-frames {text!r}: needs a count >= 1 or indices >= 0")
    return ("list", sorted(set(values))) if "," in text else ("count", values[0])


def train_frames(f, choice) -> list | None:
    """The time points of ``f`` (an ImageFile) to train on, or None for all (no T axis, or no choice)."""
    import numpy as np

    if choice is None or "T" not in (f.axes or ""):
        return None
    n = f.data.shape[f.axes.index("T")]
    kind, value = choice
    if kind == "list":
        if max(value) >= n:
            raise InputError(f"--train-frames {','.join(map(str, value))}: the file has {n} time points (0-{n - 1}).")
        return value
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, value)).round()})


def _count_or_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--train-on {text!r}: give a number of files or a fraction") from None
    if not (0 < value < 1 or (value >= 1 and value == int(value))):
        raise argparse.ArgumentTypeError(f"--train-on {text}: a whole number >= 1, or a fraction in (0, 1)")
    return value


def training_sample(n: int, train_on: float | None) -> list[int]:
    """Indices of the inputs to train on: ``train_on`` files (a count, or a fraction of ``n``, at
    least one), spread evenly over the list; default :data:`DEFAULT_TRAIN_ON`. No randomness."""
    import numpy as np

    want = DEFAULT_TRAIN_ON if train_on is None else (train_on if train_on >= 1 else np.ceil(train_on * n))
    k = int(min(n, max(1, want)))
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import numpy as np

    from .. import __version__
    from ..batch import PredictSettings, RunLog, expand_inputs, run_serial, write_pair
    from ..batch.segment import failed, volume_args
    from ..core.device import resolve_device
    from ..core.igtt.engine import train
    from ..core.lazy import is_lazy
    from ..core.progress import drain
    from ..core.units import choose_unit
    from .predict import _print_record, exit_code, zarr_limit

    t_start = time.perf_counter()
    out = Path(args.out)
    cfg = config_from_args(args)
    zarr_above = zarr_limit(args.zarr_above)
    check_writable(out)  # before any reading or training
    if args.save_model:
        if Path(args.save_model).is_dir():
            raise InputError(f"--save-model {args.save_model}: is a folder; give a file name (e.g. model.pt).")
        check_writable(Path(args.save_model).parent, "--save-model")
    if args.init and not Path(args.init).is_file():
        raise InputError(f"--init {args.init}: no such model file.")
    jobs = expand_inputs(args.images)
    choice = resolve_device(args.device)
    picked = [jobs[i] for i in training_sample(len(jobs), args.train_on)]
    files, bad = _read_training_files(picked, args.axes)
    if not files:
        raise InputError("; ".join(r["reason"] for r in bad) + " (nothing left to train on)")
    frames = {job.stem: train_frames(f, args.train_frames) for job, f in files}
    files = [(job, f if frames[job.stem] is None else replace(
        f, data=np.take(f.data, frames[job.stem], axis=f.axes.index("T")))) for job, f in files]
    sampled = {}  # stem -> block indices trained on, for files read lazily
    for i, (job, f) in enumerate(files):
        if is_lazy(f.data):
            f, sampled[job.stem] = sample_for_training(f, args.train_budget, args.seed)
            files[i] = (job, f)
    unit = choose_unit(args.unit, [f.pixel_size_um for _, f in files], [job.source.name for job, _ in files])
    cfg = config_from_args(args, unit)
    print(f"iGTT ({cfg.preset} preset) on {len(jobs)} file(s), training on {len(files)}, device: {choice.name} "
          f"({choice.reason})" + (f", starting from {Path(args.init).name} ({args.init_part})" if args.init else ""),
          flush=True)
    print(cfg.sizes_line(), flush=True)
    t_read = time.perf_counter()
    first_preview = None

    def show(record) -> None:
        nonlocal first_preview
        if first_preview is None and record.preview is not None:
            first_preview = time.perf_counter() - t_read
        print(record.line(), flush=True)

    result = drain(train([f.data for _, f in files], cfg, seed=args.seed, device=choice.device,
                         axes=[f.axes for _, f in files],
                         init=(args.init, args.init_part) if args.init else None), show)
    t_train = time.perf_counter()
    model, probs = result.model, result.outputs
    if probs is None:  # stopped mid-epoch: predict with the last good model
        probs = [model.predict(f.data, choice.device, axes=f.axes) for _, f in files]
    params = {"method": "igtt", "preset": cfg.preset, "seed": args.seed, "device": choice.device,
              "version": __version__, "sizes": cfg.sizes(), "init": model.config.get("init")}
    header = {
        "command": "igtt", "version": __version__, "seed": args.seed,
        "device": {"requested": args.device, "used": choice.device, "name": choice.name, "reason": choice.reason},
        "params": {**cfg.to_dict(), "volume": args.volume, "zarr_above_bytes": zarr_above},
        "sizes": {**cfg.sizes(), "reason": unit.reason},
        "structure": model.config.get("structure"), "init": model.config.get("init"),
        "trained_on": [{"path": str(job.source), "stem": job.stem, "shape": list(f.data.shape),
                        "dtype": str(f.data.dtype), "scale": list(f.scale), "axes": f.axes,
                        "frames": frames[job.stem],
                        **({"blocks": [list(b) for b in sampled[job.stem]], "train_budget_mpx": args.train_budget}
                           if job.stem in sampled else {})} for job, f in files],
        "epochs": model.history, "losses": [h["loss"] for h in model.history],
        "machine": f"{platform.node()} {platform.machine()}",
    }
    log = RunLog(out / "run.json", header, jobs)
    for record in bad:
        log.update(record)
        _print_record(record)
    trained = set()
    for (job, f), prob in zip(files, probs):
        if frames[job.stem] is not None or job.stem in sampled or volume_args(f, args.volume):
            continue  # trained on some time points or blocks, or to be predicted in ortho planes: below, with the rest
        t = time.perf_counter()
        try:
            written = write_pair(out, job.stem, f, prob, params)
        except OSError as err:
            record = failed(job, f"{job.stem}: cannot write its outputs ({err.strerror or err})")
        else:
            record = {**job.as_dict(), "status": "done", "seconds": time.perf_counter() - t, "outputs": written,
                      "shape": list(f.data.shape), "foreground": float((prob > 0.5).mean()), "trained_on": True}
        log.update(record)
        _print_record(record)
        trained.add(job.stem)
    del files, probs  # the rest stream one file at a time
    rest = [j for j in jobs if j.stem not in trained and j.stem not in {r["stem"] for r in bad}]
    settings = PredictSettings(choice.device, cfg.tile, cfg.overlap, cfg.predict_batch, axes=args.axes,
                               volume=args.volume, zarr_above=zarr_above)
    run_serial(rest, model, out, settings, params, log, on_record=_print_record)
    if args.save_model:
        log.extra["saved_model"] = str(model.save(args.save_model))
    t_end = time.perf_counter()
    log.finish(timings={"read_s": t_read - t_start, "train_s": t_train - t_read, "write_s": t_end - t_train,
                        "total_s": t_end - t_start, "first_preview_s": first_preview,
                        "epoch_s": [h["seconds"] for h in model.history]})
    done = [r for r in log.records.values() if r["status"] == "done"]
    shares = ", ".join(f"{100 * r['foreground']:.1f}%" for r in done)
    print(f"wrote {2 * len(done)} file(s) and run.json to {out} in {t_end - t_start:.1f}s (foreground {shares})",
          flush=True)
    for line in log.summary_lines()[1:]:
        print(line, file=sys.stderr, flush=True)
    return exit_code(log)


def _read_training_files(jobs: list, axes: str | None = None) -> tuple[list, list]:
    """``([(job, ImageFile)...], [failed records])`` for the files picked for training."""
    from ..batch.segment import failed
    from ..core.lazy import check_image_lazy
    from ..io import read_image, with_axes

    files, bad = [], []
    for job in jobs:
        if job.problem:
            bad.append(failed(job, job.problem))
            continue
        try:
            f = with_axes(read_image(job.source, lazy="auto"), axes)
            check_image_lazy(f.data, name=job.source.name)
        except InputError as err:
            bad.append(failed(job, str(err)))
        else:
            files.append((job, f))
    return files, bad


def sample_for_training(f, budget_mpx: float, seed: int):
    """``(f with numpy data, block indices)``: a seeded, evenly spread sample of ``f``'s ZYX volumes
    (planes when there is no Z axis, or one volume is over the budget) within ``budget_mpx``
    megapixels (:func:`~..core.lazy.sample_blocks`), read one block at a time. The leading axes
    become one, named by the first of them."""
    from dataclasses import replace

    import numpy as np

    from ..core.lazy import read_block, sample_blocks

    if not budget_mpx > 0:
        raise InputError(f"--train-budget {budget_mpx}: give a number of megapixels above 0.")
    shape, budget = tuple(f.data.shape), int(budget_mpx * 1e6)
    ndim = 3 if len(shape) > 3 and f.axes[-3] == "Z" and np.prod(shape[-3:]) <= budget else 2
    ndim = min(ndim, len(shape))
    picks = sample_blocks(shape, ndim, budget, seed)
    data = np.stack([read_block(f.data, i) for i in picks]) if picks != [()] else read_block(f.data, ())
    axes = f.axes if picks == [()] else f.axes[0] + f.axes[-ndim:]
    keep = [0] + list(range(len(shape) - ndim, len(shape))) if picks != [()] else list(range(len(shape)))
    return replace(f, data=data, axes=axes, scale=tuple(f.scale[i] for i in keep),
                   translate=tuple(f.translate[i] for i in keep)), picks
