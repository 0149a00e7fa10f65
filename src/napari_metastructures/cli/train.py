"""``metastructures train``: train a network on images and rough labels ("Train from rough labels").

The command-line twin of the widget, with its defaults (a shallow U-Net, Adam, 128-px crops, 10
epochs of 25 steps). Labels: 0 background, 1..M classes, ``--ignore-value`` (default 255) left out
of the loss; ``--scribbles`` makes 0 mean "not annotated". ``--init MODEL`` starts from a saved
model (the whole network, or ``--init-part encoder``). For each image: ``DIR/<stem>_prob.tif``
(foreground probability) and ``DIR/<stem>_mask.tif`` (the predicted classes), with the image's pixel
size, and ``DIR/run.json`` with the settings, the losses and where training started.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable, seed


def register(sub: argparse._SubParsersAction) -> None:
    from ..core.training.supervised import SupervisedConfig
    from ..core.training.warm_start import INIT_PARTS

    d = SupervisedConfig.fast()
    p = sub.add_parser("train", help="train a network on images and rough labels",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="TIFF images")
    p.add_argument("--labels", nargs="+", required=True, metavar="LABELS",
                   help="one label TIFF per image, in the same order and of the same shape")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--ignore-value", type=int, default=d.ignore_value,
                   help=f"label value left out of the loss (default {d.ignore_value})")
    p.add_argument("--scribbles", action="store_true", help="unlabelled (0) = ignore; classes are 1..M")
    p.add_argument("--loss", default=d.loss, help="auto (BCE / cross-entropy), or e.g. dice, focal, sce, dmi")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.add_argument("--init", metavar="MODEL", help="start from this saved model (igtt or train --save-model)")
    p.add_argument("--init-part", choices=INIT_PARTS, default="all",
                   help="with --init: all (default) or encoder (the decoder starts fresh)")
    p.add_argument("--save-model", metavar="PATH", help="also save the trained model to this file")
    adv = p.add_argument_group("advanced (the widget's Advanced rows)")
    adv.add_argument("--arch", default=d.arch, help=f"default {d.arch}")
    adv.add_argument("--encoder", default=d.encoder, help=f"default {d.encoder}")
    adv.add_argument("--encoder-depth", type=int, default=d.encoder_depth, help=f"default {d.encoder_depth}")
    adv.add_argument("--crop", type=int, default=d.crop, help=f"training crop in px (default {d.crop})")
    adv.add_argument("--batch-size", type=int, default=d.batch, help=f"crops per batch (default {d.batch})")
    adv.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    adv.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch,
                     help=f"default {d.steps_per_epoch}; 0: from the data")
    adv.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs, help="epochs of BCE/CE first")
    adv.add_argument("--no-augment", action="store_true", help="no flips and rotations")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The widget's :meth:`SupervisedConfig.fast` with the options given (same fields, same defaults)."""
    from ..core.training.supervised import SupervisedConfig

    return SupervisedConfig.fast(
        arch=args.arch, encoder=args.encoder, encoder_depth=args.encoder_depth, loss=args.loss,
        epochs=args.epochs, lr=args.lr, batch=args.batch_size, crop=args.crop,
        steps_per_epoch=args.steps_per_epoch or None, ignore_value=args.ignore_value,
        unlabelled_is_ignore=args.scribbles, warmup_epochs=args.warmup_epochs, augment=not args.no_augment,
        preview_every=0).check()


def _read_pairs(images: list, labels: list) -> list:
    """``[(ImageFile, labels array)]``; InputError naming the file for a missing or mismatched one."""
    import numpy as np

    from ..io import read_image
    from ._files import read_inputs

    if len(images) != len(labels):
        raise InputError(f"{len(images)} image(s) but {len(labels)} label file(s); give one --labels file per image.")
    files = read_inputs(images)
    pairs = []
    for f, path in zip(files, labels):
        lab = read_image(path).data
        if not np.issubdtype(lab.dtype, np.integer):
            raise InputError(f"{Path(path).name}: labels must be whole numbers (got {lab.dtype}).")
        if lab.shape != f.data.shape:
            raise InputError(f"{Path(path).name}: shape {lab.shape} does not match {f.name} {f.data.shape}.")
        pairs.append((f, lab))
    return pairs


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import __version__
    from ..core.device import resolve_device
    from ..core.progress import drain
    from ..core.training.supervised import labels_from_probability, train_supervised
    from ..io import write_tiff
    from ._files import write_json_atomic

    t0 = time.perf_counter()
    out = Path(args.out)
    cfg = config_from_args(args)
    check_writable(out)
    if args.save_model:
        check_writable(Path(args.save_model).parent, "--save-model")
    if args.init and not Path(args.init).is_file():
        raise InputError(f"--init {args.init}: no such model file.")
    pairs = _read_pairs(args.images, args.labels)
    choice = resolve_device(args.device)
    print(f"training on {len(pairs)} image(s), device: {choice.name} ({choice.reason})"
          + (f", starting from {Path(args.init).name} ({args.init_part})" if args.init else ""), flush=True)
    init = (args.init, args.init_part) if args.init else None
    result = drain(train_supervised([f.data for f, _ in pairs], [lab for _, lab in pairs], cfg, seed=args.seed,
                                    device=choice.device, init=init), lambda r: print(r.line(), flush=True))
    model = result.model
    params = {"method": "train", "seed": args.seed, "device": choice.device, "version": __version__,
              "init": model.config.get("init")}
    written = []
    for f, _ in pairs:
        prob = model.predict(f.data, choice.device, tile=cfg.tile, axes=f.axes)
        multi = prob.shape != f.data.shape
        fg = (1.0 - prob[0]) if multi else prob
        mask = labels_from_probability(prob, model.config).astype(np.uint8 if not multi else np.uint16)
        meta = dict(params, source=str(f.metadata.get("source", f.name)))
        geometry = dict(scale=f.scale, axes=f.axes, translate=f.translate)
        written += [str(write_tiff(out / f"{f.stem}_prob.tif", np.clip(fg, 0, 1).astype(np.float32),
                                   params=dict(meta, output="foreground probability"), **geometry)),
                    str(write_tiff(out / f"{f.stem}_mask.tif", mask, params=dict(meta, output="predicted classes"),
                                   layer_type="labels", **geometry))]
    saved = str(model.save(args.save_model)) if args.save_model else None
    report = {
        "command": "train", "version": __version__, "seed": args.seed,
        "device": {"requested": args.device, "used": choice.device, "name": choice.name, "reason": choice.reason},
        "params": model.config.get("training"), "init": model.config.get("init"),
        "class_values": model.config.get("class_values"), "loss": model.config.get("loss"),
        "inputs": [{"image": str(f.metadata.get("source")), "labels": str(lab_path), "stem": f.stem}
                   for (f, _), lab_path in zip(pairs, args.labels)],
        "epochs": model.history, "losses": [h["loss"] for h in model.history], "outputs": written,
        "saved_model": saved, "seconds": time.perf_counter() - t0, "machine": f"{platform.node()} {platform.machine()}",
    }
    write_json_atomic(out / "run.json", report)
    print(f"wrote {len(written)} file(s) and run.json to {out} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0
