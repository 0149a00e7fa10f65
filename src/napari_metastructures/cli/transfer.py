"""``metastructures transfer``: does pre-training on one structure, with any kind of label, help another?

Pre-trains one network per kind (``--kinds``: none, complete, misannotate, misclassify, random, pu,
igtt; see :mod:`..core.study.transfer`) on the source images and masks, then fine-tunes its
encoder on ``--budgets`` labelled target images (nested, picked by each of ``--seeds``) with one
schedule, and scores test Dice on held-out target images (``--test-fraction``, seeded split).
Writes ``DIR/transfer.json`` (every run), ``DIR/summary.csv``, ``DIR/transfer_dice.png`` and
``DIR/report.md``. ``benchmarks/make_transfer_report.py`` is the same study on the bundled data.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable, int_list


def register(sub: argparse._SubParsersAction) -> None:
    from ..core.study.transfer import PRETRAIN_KINDS

    p = sub.add_parser("transfer", help="pre-train with each kind of label, fine-tune on a few target images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source-images", required=True, metavar="DIR", help="pre-training images (2D TIFFs)")
    p.add_argument("--source-masks", required=True, metavar="DIR", help="their clean masks, same file stems")
    p.add_argument("--source-instances", metavar="DIR",
                   help="instance labels of the source (default: connected components of the masks)")
    p.add_argument("--target-images", required=True, metavar="DIR", help="images of the new structure")
    p.add_argument("--target-masks", required=True, metavar="DIR", help="their masks, same file stems")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--kinds", default=",".join(PRETRAIN_KINDS),
                   help=f"pre-training kinds, comma-separated (default {','.join(PRETRAIN_KINDS)})")
    p.add_argument("--budgets", type=int_list(1), default=(1, 3, 10), help="labelled target images (default 1,3,10)")
    p.add_argument("--seeds", type=int_list(0), default=(0, 1, 2), help="fine-tuning seeds (default 0,1,2)")
    p.add_argument("--test-fraction", type=float, default=0.3, help="target images held out (default 0.3)")
    p.add_argument("--pretrain-epochs", type=int, default=20, help="epochs of pre-training (default 20)")
    p.add_argument("--finetune-epochs", type=int, default=10, help="epochs of fine-tuning (default 10)")
    p.add_argument("--steps-per-epoch", type=int, default=8, help="batches per epoch (default 8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps (default auto)")
    p.set_defaults(func=run)


def _target_split(n: int, fraction: float, budgets, seeds):
    """``(test indices, pick(budget, seed) -> indices)``: a seeded split, then nested picks per seed."""
    import numpy as np

    from ..core.study import split_indices

    pool, test = split_indices(n, 1.0 - fraction, seed=0)
    if max(budgets) > len(pool):
        raise InputError(f"--budgets {max(budgets)}: only {len(pool)} target image(s) are left for fine-tuning "
                         f"after holding out {len(test)} for testing.")

    def pick(budget: int, seed: int) -> list:
        return [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))[:budget]]

    return test, pick


def run(args: argparse.Namespace) -> int:
    from ..core.atomic import atomic_write_bytes, atomic_write_text
    from ..core.device import resolve_device
    from ..core.progress import drain
    from ..core.study.report import _csv_bytes
    from ..core.study.transfer import TransferConfig, run_transfer, summarise
    from ..core.study.transfer_report import figure, table_lines, verdict
    from ._files import write_json_atomic
    from .study import load_pairs

    t0 = time.perf_counter()
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    config = TransferConfig(kinds=kinds, budgets=args.budgets, seeds=args.seeds,
                            device=resolve_device(args.device).device)
    config = replace(config, pretrain=replace(config.pretrain, epochs=args.pretrain_epochs,
                                              steps_per_epoch=args.steps_per_epoch),
                     finetune=replace(config.finetune, epochs=args.finetune_epochs,
                                      steps_per_epoch=args.steps_per_epoch)).check()
    if not 0 < args.test_fraction < 1:
        raise InputError(f"--test-fraction {args.test_fraction}: give a fraction between 0 and 1.")
    out = Path(args.out)
    check_writable(out)
    _, src_images, src_masks, src_inst = load_pairs(args.source_images, args.source_masks, args.source_instances)
    _, tgt_images, tgt_masks, _ = load_pairs(args.target_images, args.target_masks)
    test, pick = _target_split(len(tgt_images), args.test_fraction, config.budgets, config.seeds)

    def target(budget, seed):
        idx = pick(budget, seed)
        return [tgt_images[i] for i in idx], [tgt_masks[i] for i in idx]

    held_out = ([tgt_images[i] for i in test], [tgt_masks[i] for i in test])
    print(f"transfer: {len(src_images)} source image(s), {len(tgt_images)} target image(s) ({len(test)} held out), "
          f"kinds {', '.join(kinds)}, device {config.device}", flush=True)
    result = drain(run_transfer((src_images, src_masks, src_inst), target, held_out, config, out / "models"),
                   lambda line: print(line, flush=True))
    summary = summarise(result["rows"])
    write_json_atomic(out / "transfer.json", {"summary": summary, **result})
    atomic_write_bytes(out / "summary.csv", _csv_bytes(summary, ("kind", "budget", "mean", "sd", "min", "max", "n")))
    atomic_write_bytes(out / "transfer_dice.png", figure(summary, config.budgets, "labelled target images",
                                                         "Fine-tuned after each pre-training"))
    table = table_lines(summary, kinds, list(config.budgets))
    notes = [f"- {verdict(summary, k, 'none', b)}." for k in kinds if k != "none" and "none" in kinds
             for b in config.budgets[:2]]
    atomic_write_text(out / "report.md", "\n".join(["# Transfer study", "", *table, "", *notes,
                                                    "", "![Dice against budget](transfer_dice.png)", ""]))
    print("\n".join(table))
    print(f"wrote {out / 'report.md'} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0
