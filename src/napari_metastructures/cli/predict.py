"""``metastructures predict``: run a saved model (iGTT or supervised) on new images.

Writes ``DIR/<stem>_prob.tif`` (float32 in [0, 1]) and ``DIR/<stem>_mask.tif`` (uint8 0/1,
``prob > 0.5``) for each input, with the input's pixel size, and ``DIR/run.json``.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable, read_inputs, write_json_atomic, write_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment images with a saved model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="greyscale TIFF images")
    p.add_argument("--model", required=True, metavar="PATH", help="a model saved by igtt --save-model")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.add_argument("--tile", type=int, default=256, help="tile size in px (default 256)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in px (default 32)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass (default 4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..core import load_model
    from ..core.device import resolve_device

    t0 = time.perf_counter()
    if args.tile < 32 or args.batch_size < 1 or args.overlap < 0:
        raise InputError("--tile must be >= 32, --batch-size >= 1 and --overlap >= 0.")
    check_writable(Path(args.out))  # before the model is read or any image segmented
    choice = resolve_device(args.device)
    model = load_model(args.model)
    if model.classes != 1:
        raise InputError(f"{Path(args.model).name}: a {model.classes}-class model; predict writes "
                         "binary masks and needs a one-class model.")
    files = read_inputs(args.images)
    print(f"predicting {len(files)} image(s) with {Path(args.model).name} on {choice.name}", flush=True)
    probs, seconds = [], []
    for f in files:
        t = time.perf_counter()
        probs.append(model.predict(f.data, choice.device, args.tile, args.overlap, args.batch_size, axes=f.axes))
        seconds.append(time.perf_counter() - t)
        print(f"{f.stem}: {seconds[-1]:.1f}s, foreground {100 * float((probs[-1] > 0.5).mean()):.1f}%",
              flush=True)
    params = {"method": "predict", "model": str(args.model), "device": choice.device, "version": __version__}
    written = write_outputs(Path(args.out), files, probs, params)
    report = {
        "command": "predict", "version": __version__, "model": str(args.model),
        "model_version": model.version, "model_config": model.config,
        "inputs": [{"path": str(f.metadata.get("source", "")), "stem": f.stem, "shape": list(f.data.shape)}
                   for f in files],
        "outputs": written,
        "device": {"requested": args.device, "used": choice.device, "name": choice.name},
        "params": {"tile": args.tile, "overlap": args.overlap, "batch_size": args.batch_size},
        "timings": {"per_image_s": seconds, "total_s": time.perf_counter() - t0},
        "machine": f"{platform.node()} {platform.machine()}",
    }
    write_json_atomic(Path(args.out) / "run.json", report)
    print(f"wrote {len(written)} file(s) and run.json to {args.out}", flush=True)
    return 0
