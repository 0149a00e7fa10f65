"""``metastructures igtt``: unsupervised iGTT segmentation of one or many images.

Trains one network on all the given images together (no labels), then writes for each input
``DIR/<stem>_prob.tif`` (float32 foreground probability in [0, 1]; the mask is ``prob > 0.5``),
``DIR/<stem>_mask.tif`` (uint8 0/1), both with the input's pixel size, and ``DIR/run.json``
(parameters, seed, device, timings, per-epoch losses). Prints one progress line per epoch.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable, read_inputs, seed, write_json_atomic, write_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("igtt", help="unsupervised segmentation with iGTT (trains on the images given)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="greyscale TIFF images (2D, 3D stacks, time-lapses)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--preset", default="fast", choices=["fast", "paper"],
                   help="fast (default): small U-Net, few epochs, early stop; paper: the official settings")
    p.add_argument("--epochs", type=int, help="number of epochs (default from the preset)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.add_argument("--save-model", metavar="PATH", help="also save the trained model to this file")
    p.add_argument("--structure", choices=["auto", "network", "objects"],
                   help="auto (default): decided from the first candidate and recorded in run.json; "
                        "network: thin tubules such as ER, the paper's EMS; objects: thick structures "
                        "such as mitochondria or nuclei, whose interior EMS also samples")
    p.add_argument("--no-ems", action="store_true", help="ablation: train on the raw candidates, without EMS")
    p.add_argument("--scope", choices=["auto", "volume", "slice"],
                   help="auto (default): a z-stack is one volume (normalised and thresholded as one; each "
                        "time point alone; a TYX time-lapse per frame); volume; slice: every 2D plane alone")
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
    adv.add_argument("--local-sigma", type=float, metavar="PX",
                     help="smallest local contrast window in px (default 8; widened to twice the structures' "
                          "width; 0: off)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The IgttConfig of the preset with the options given on the command line."""
    from dataclasses import fields

    from ..core.igtt.engine import IgttConfig

    # every flag named like an IgttConfig field overrides the preset when given; check() judges it
    over = {f.name: getattr(args, f.name) for f in fields(IgttConfig) if getattr(args, f.name, None) is not None}
    over.pop("preset", None)
    if "decoder_channels" in over:
        try:
            over["decoder_channels"] = tuple(int(v) for v in over["decoder_channels"].split(","))
        except ValueError:
            raise InputError(f"--decoder-channels {args.decoder_channels!r}: give whole numbers, "
                             "e.g. 64,32,16.") from None
    if getattr(args, "no_ems", False):
        over["use_ems"] = False
    return IgttConfig.preset(args.preset, **over)


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..core.device import resolve_device
    from ..core.igtt.engine import train
    from ..core.progress import drain

    t_start = time.perf_counter()
    out = Path(args.out)
    cfg = config_from_args(args)
    check_writable(out)  # before any reading or training
    if args.save_model:
        if Path(args.save_model).is_dir():
            raise InputError(f"--save-model {args.save_model}: is a folder; give a file name (e.g. model.pt).")
        check_writable(Path(args.save_model).parent, "--save-model")
    files = read_inputs(args.images)
    choice = resolve_device(args.device)
    print(f"iGTT ({cfg.preset} preset) on {len(files)} image(s), device: {choice.name} ({choice.reason})",
          flush=True)
    t_read = time.perf_counter()
    first_preview = None

    def show(record) -> None:
        nonlocal first_preview
        if first_preview is None and record.preview is not None:
            first_preview = time.perf_counter() - t_read
        print(record.line(), flush=True)

    result = drain(train([f.data for f in files], cfg, seed=args.seed, device=choice.device,
                         axes=[f.axes for f in files]), show)
    t_train = time.perf_counter()
    model, probs = result.model, result.outputs
    if probs is None:  # stopped mid-epoch: predict with the last good model
        probs = [model.predict(f.data, choice.device, axes=f.axes) for f in files]
    params = {"method": "igtt", "preset": cfg.preset, "seed": args.seed, "device": choice.device,
              "version": __version__}
    written = write_outputs(out, files, probs, params)
    if args.save_model:
        written.append(str(model.save(args.save_model)))
    t_end = time.perf_counter()
    history = model.history
    report = {
        "command": "igtt",
        "version": __version__,
        "inputs": [{"path": str(f.metadata.get("source", "")), "stem": f.stem, "shape": list(f.data.shape),
                    "dtype": str(f.data.dtype), "scale": list(f.scale)} for f in files],
        "outputs": written,
        "seed": args.seed,
        "device": {"requested": args.device, "used": choice.device, "name": choice.name,
                   "reason": choice.reason},
        "params": cfg.to_dict(),
        "structure": model.config.get("structure"),
        "timings": {"read_s": t_read - t_start, "train_s": t_train - t_read, "write_s": t_end - t_train,
                    "total_s": t_end - t_start, "first_preview_s": first_preview,
                    "epoch_s": [h["seconds"] for h in history]},
        "epochs": history,
        "losses": [h["loss"] for h in history],
        "machine": f"{platform.node()} {platform.machine()}",
    }
    write_json_atomic(out / "run.json", report)
    masks_fg = [float((p > 0.5).mean()) for p in probs]
    print(f"wrote {len(written)} file(s) and run.json to {out} in {t_end - t_start:.1f}s "
          f"(foreground {', '.join(f'{100 * m:.1f}%' for m in masks_fg)})", flush=True)
    return 0
