"""``metastructures study``: the paper's label-type study on a folder of images and clean masks.

For each label type (``cl`` = clean, or a noise kind with its parameter, e.g. ``sample:0.1``) it makes
noisy training labels, trains a fresh network with the same schedule, and records the test Dice
against the clean test masks after every epoch and the training loss per step. It writes
``DIR/results.csv``, ``DIR/summary.csv``, ``DIR/config.json``, PNG figures and ``DIR/report.md``.

Masks are matched to images by file stem; any nonzero mask value is foreground.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.validate import InputError
from ._files import check_folder, check_writable, int_list, seed, tiff_files


def _tiffs(folder: str, what: str) -> dict:
    check_folder(folder, f"--{what}")
    found = tiff_files(Path(folder))
    if not found:
        raise InputError(f"--{what} {folder}: holds no .tif/.tiff files.")
    return found


def load_pairs(images_dir: str, masks_dir: str, instances_dir: str | None = None):
    """Read images and masks (and instance labels) matched by stem; returns (names, images, masks, instances)."""
    from ..io import read_image

    images, masks = _tiffs(images_dir, "images"), _tiffs(masks_dir, "masks")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise InputError(f"--masks {masks_dir}: no mask for image(s) {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else "") + " (masks are matched by file stem).")
    names = sorted(images)
    inst = _tiffs(instances_dir, "instances") if instances_dir else None
    out_i, out_m, out_n = [], [], []
    for name in names:
        out_i.append(read_image(images[name]).data)
        out_m.append(read_image(masks[name]).data)
        if inst is not None:
            if name not in inst:
                raise InputError(f"--instances {instances_dir}: no instance labels for {name}.")
            out_n.append(read_image(inst[name]).data)
    return names, out_i, out_m, (out_n if inst is not None else None)


def register(sub: argparse._SubParsersAction) -> None:
    from ..core.study import DEFAULT_LABELS
    from ..core.training.losses import LOSSES

    p = sub.add_parser("study", help="train on clean vs noisy labels and compare test Dice (the paper's study)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, metavar="DIR", help="folder of greyscale 2D TIFF images")
    p.add_argument("--masks", required=True, metavar="DIR", help="folder of clean masks, same file stems")
    p.add_argument("--labels", default=DEFAULT_LABELS,
                   help=f"comma-separated label types: cl or KIND[:VALUE][:KEY=VALUE] (default {DEFAULT_LABELS})")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", choices=["unet", "deeplabv3plus"], default="unet", help="architecture (default unet)")
    p.add_argument("--encoder", default="resnet18", help="encoder name, random init (default resnet18)")
    p.add_argument("--encoder-depth", type=int, default=4, help="encoder stages, 3 to 5 (default 4)")
    p.add_argument("--decoder-channels", type=int_list(1), metavar="W,W,...",
                   help="U-Net decoder widths, one per encoder stage, e.g. 64,32,16 for a small fast model")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="sgd (momentum 0.9, the paper) or adam")
    p.add_argument("--loss", default="bce", choices=["auto", *LOSSES], help="training loss (default bce)")
    p.add_argument("--epochs", type=int, default=20,
                   help="epochs per label type (default 20); with --until plateau, the most epochs")
    p.add_argument("--until", choices=["epochs", "plateau"], default="epochs",
                   help="epochs (default): train every label type for --epochs; plateau: until its test Dice "
                        "stops rising (mean of the last --patience epochs within --min-delta of the ones before)")
    p.add_argument("--patience", type=int, default=5, help="with --until plateau: epochs per window (default 5)")
    p.add_argument("--min-delta", type=float, default=0.005,
                   help="with --until plateau: the smallest rise of mean test Dice that counts (default 0.005)")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: cover the training pixels once)")
    p.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    p.add_argument("--crop", type=int, default=256, help="training crop size in px (default 256)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate, momentum 0.9 (default 0.01)")
    p.add_argument("--split", type=float, default=0.7, help="fraction of images for training (default 0.7)")
    p.add_argument("--seed", type=seed, default=0, help="seed for the split, noise and training (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.add_argument("--instances", metavar="DIR", help="instance-label TIFFs for drop-instances and the "
                                                      "other instance kinds (default: connected components)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.progress import drain
    from ..core.study import StudyConfig, parse_label_specs, run_study, summary_table, write_study
    from ..core.training.supervised import SupervisedConfig

    specs = parse_label_specs(args.labels)
    training = SupervisedConfig(arch=args.model, encoder=args.encoder, encoder_depth=args.encoder_depth,
                                decoder_channels=args.decoder_channels, optimizer=args.optimizer, loss=args.loss,
                                epochs=args.epochs, lr=args.lr, batch=args.batch, crop=args.crop,
                                steps_per_epoch=args.steps_per_epoch)
    training.check()
    check_writable(args.out)  # before any reading or training
    names, images, masks, instances = load_pairs(args.images, args.masks, args.instances)
    if args.patience < 1:
        raise InputError(f"--patience {args.patience}: give at least 1 epoch.")
    config = StudyConfig(labels=specs, training=training, split=args.split, seed=args.seed, device=args.device,
                         until=args.until, patience=args.patience, min_delta=args.min_delta)
    print(f"study: {len(names)} images, label types {', '.join(s.name for s in specs)}", flush=True)
    result = drain(run_study(images, masks, config, names=names, instances=instances),
                   lambda line: print(line, flush=True))
    files = write_study(result, args.out)
    print(summary_table(result.summary))
    print(f"wrote {files['report']}")
    return 0
