"""``metastructures evaluate``: score predictions against ground truth, pooled and per image.

Files pair by stem. In PRED_DIR, ``<stem>_mask.tif`` is a method's own binary mask and
``<stem>_prob.tif`` a foreground probability map (either or both). In GT_DIR the truth is
``<stem>.tif`` or ``<stem>_mask.tif``; in --valid DIR the trusted-pixel mask is ``<stem>.tif``,
``<stem>_valid.tif`` or ``<stem>_mask.tif`` (nonzero = scored).

Protocols, both labelled in every row:
  honest  (default) the method's own mask, or probability > 0.5. AUC where probabilities exist.
  oracle  the threshold and polarity that best fit the ground truth, one for the whole set, as in the
          paper's baseline tables. It peeks at the answer: an UPPER BOUND, never a method's result.
          Asking for it adds oracle rows beside the honest ones.

Topology columns (per image and pooled, for the honest mask and for the oracle's mask):
  cldice          clDice (Shit et al., CVPR 2021), the harmonic mean of the two below
  skel_precision  fraction of the predicted mask's skeleton inside the ground truth (spurs lower it)
  skel_recall     fraction of the ground truth's skeleton inside the predicted mask (gaps lower it)
Skeletons are taken per 2D plane of the whole masks, then only pixels inside --valid are counted;
pooled rows sum skeleton pixels over all images before dividing.
"""
from __future__ import annotations

import argparse
import csv
import io as _io
import math
from pathlib import Path

import numpy as np

from ..core import jsonsafe
from ..core.atomic import atomic_write_text
from ..core.validate import InputError
from ._files import OUTPUT_KINDS, check_folder, check_out_file, tiff_files

COLUMNS = ["protocol", "image", "dice", "iou", "accuracy", "auc", "cldice", "skel_precision", "skel_recall",
           "tp", "fp", "fn", "tn", "threshold", "polarity", "upper_bound", "source"]
POOLED = "(pooled)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="Dice, IoU, accuracy, AUC and clDice of predictions against ground truth",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred_dir", metavar="PRED_DIR", help="folder of <stem>_mask.tif and/or <stem>_prob.tif")
    p.add_argument("gt_dir", metavar="GT_DIR", help="folder of <stem>.tif (or <stem>_mask.tif) ground truth")
    p.add_argument("--valid", metavar="DIR", help="folder of trusted-pixel masks; other pixels are not scored")
    p.add_argument("--protocol", choices=["honest", "oracle"], default="honest",
                   help="honest (default), or also oracle: best threshold/polarity against the ground "
                        "truth, an upper bound")
    p.add_argument("--out", metavar="FILE.csv", help="results table (default PRED_DIR/evaluation.csv); "
                                                      "a .json with the same stem is written beside it")
    p.set_defaults(func=run)


def find_pairs(pred_dir: Path, gt_dir: Path, valid_dir: Path | None = None) -> list[dict]:
    """Match predictions to ground truth (and valid masks) by stem; see the module notes for names."""
    for label, folder in (("PRED_DIR", pred_dir), ("GT_DIR", gt_dir), ("--valid", valid_dir)):
        check_folder(folder, label)
    preds: dict[str, dict[str, Path]] = {}
    for stem, path in tiff_files(pred_dir).items():
        for kind in OUTPUT_KINDS:
            if stem.endswith(f"_{kind}"):
                preds.setdefault(stem[: -len(kind) - 1], {})[kind] = path
    if not preds:
        raise InputError(f"PRED_DIR {pred_dir}: no <stem>_mask.tif or <stem>_prob.tif files.")
    gts = tiff_files(gt_dir)
    valids = tiff_files(valid_dir) if valid_dir is not None else {}
    pairs, missing = [], []
    for stem in sorted(preds):
        gt = gts.get(stem) or gts.get(f"{stem}_mask")
        if gt is not None and gt in preds[stem].values():  # same folder: never score a mask against itself
            gt = None
        if gt is None:
            missing.append(stem)
            continue
        pair = {"stem": stem, "gt": gt, **preds[stem], "valid": None}
        if valid_dir is not None:
            pair["valid"] = valids.get(stem) or valids.get(f"{stem}_valid") or valids.get(f"{stem}_mask")
            if pair["valid"] is None:
                raise InputError(f"--valid {valid_dir}: no mask for {stem} ({stem}.tif or {stem}_valid.tif).")
        pairs.append(pair)
    if not pairs:
        raise InputError(f"no prediction in {pred_dir} has a ground truth file in {gt_dir} "
                         f"(looked for {missing[0]}.tif or {missing[0]}_mask.tif).")
    for pair in pairs:
        pair["skipped"] = missing
    return pairs


def _prob(data: np.ndarray, path: Path) -> np.ndarray:
    """Probabilities in [0, 1]: integer maps are divided by their dtype's maximum."""
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float64) / np.iinfo(data.dtype).max
    data = data.astype(np.float64)
    if data.size and (data.min() < 0 or data.max() > 1):
        raise InputError(f"{path.name}: probabilities must lie in [0, 1], got {data.min():.3g} to "
                         f"{data.max():.3g}.")
    return data


def load_pairs(pairs: list[dict]) -> list[dict]:
    """Read every file of ``pairs`` into arrays: keys ``stem, mask, prob, gt, valid`` (missing = None)."""
    from ..io import read_image

    loaded = []
    for pair in pairs:
        gt = read_image(pair["gt"]).data
        item = {"stem": pair["stem"], "gt": gt, "mask": None, "prob": None, "valid": None,
                "source": pair.get("mask", pair.get("prob")).name}
        for key in ("mask", "prob", "valid"):
            if pair.get(key) is not None:
                data = read_image(pair[key]).data
                if data.shape != gt.shape:
                    raise InputError(f"{pair[key].name} has shape {data.shape} but the ground truth "
                                     f"{pair['gt'].name} has {gt.shape}; they must match.")
                item[key] = _prob(data, pair[key]) if key == "prob" else data
        loaded.append(item)
    return loaded


def _row(protocol: str, image: str, scores: dict, topo: dict, source: str = "", threshold="",
         polarity="") -> dict:
    row = {k: scores.get(k) for k in ("dice", "iou", "accuracy", "auc", "tp", "fp", "fn", "tn")}
    row.update(cldice=topo["cldice"], skel_precision=topo["skeleton_precision"],
               skel_recall=topo["skeleton_recall"])
    row.update(protocol=protocol, image=image, threshold=threshold, polarity=polarity,
               upper_bound="yes" if protocol == "oracle" else "no", source=source)
    return row


def score(items: list[dict], protocols: tuple[str, ...] = ("honest",)) -> list[dict]:
    """Rows (per image, then pooled) for each protocol; honest always comes first."""
    from ..core import metrics

    rows: list[dict] = []
    gts = [it["gt"] for it in items]
    valids = [it["valid"] for it in items]
    probs = [it["prob"] for it in items]
    # the honest mask: the method's own, else prob > 0.5 (as in metrics.pooled_scores)
    masks = [it["mask"] if it["mask"] is not None else it["prob"] > metrics.HONEST_THRESHOLD for it in items]
    for it, mask in zip(items, masks):
        topo = metrics.pooled_topology([mask], [it["gt"]], [it["valid"]])
        rows.append(_row("honest", it["stem"], metrics.image_scores(it["mask"], it["gt"], it["valid"], it["prob"]),
                         topo, it["source"], threshold="" if it["mask"] is not None else metrics.HONEST_THRESHOLD))
    pooled = metrics.pooled_scores(masks, gts, valids,
                                   probs if all(p is not None for p in probs) else None)
    rows.append(_row("honest", POOLED, pooled, metrics.pooled_topology(masks, gts, valids)))
    if "oracle" in protocols:
        maps = [it["prob"] if it["prob"] is not None else it["mask"] for it in items]
        best = metrics.oracle_scores(maps, gts, valids)
        thr, pol = best["threshold"], best["polarity"]
        oracle_masks = [metrics.apply_threshold(s, thr, pol) for s in maps]
        for it, s, mask in zip(items, maps, oracle_masks):
            oriented = s if pol == "high" else -np.asarray(s, dtype=np.float64)
            per = metrics.image_scores(mask, it["gt"], it["valid"], oriented)
            topo = metrics.pooled_topology([mask], [it["gt"]], [it["valid"]])
            rows.append(_row("oracle", it["stem"], per, topo, it["source"], thr, pol))
        rows.append(_row("oracle", POOLED, best, metrics.pooled_topology(oracle_masks, gts, valids), "", thr, pol))
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return "" if value is None else str(value)


def write_results(rows: list[dict], csv_path: Path, info: dict) -> Path:
    """Write ``rows`` to ``csv_path`` and rows plus ``info`` to the .json beside it (both atomic)."""
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
    atomic_write_text(csv_path, buf.getvalue())
    json_path = csv_path.with_suffix(".json")  # a metric that cannot be computed is null
    atomic_write_text(json_path, jsonsafe.dumps({**info, "rows": rows}, indent=2))
    return json_path


def format_rows(rows: list[dict]) -> str:
    """A plain text table of the main scores."""
    head = f"{'protocol':<8} {'image':<28} {'dice':>7} {'iou':>7} {'acc':>7} {'auc':>7}"
    lines = [head]
    for r in rows:
        vals = " ".join(f"{r[k]:>7.4f}" if r[k] is not None and math.isfinite(r[k]) else f"{'-':>7}"
                        for k in ("dice", "iou", "accuracy", "auc"))
        lines.append(f"{r['protocol']:<8} {r['image'][:28]:<28} {vals}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    pred_dir, gt_dir = Path(args.pred_dir), Path(args.gt_dir)
    valid_dir = Path(args.valid) if args.valid else None
    if args.out:
        check_out_file(args.out, [])  # before any reading
    pairs = find_pairs(pred_dir, gt_dir, valid_dir)
    skipped = pairs[0]["skipped"]
    if skipped:
        print(f"note: no ground truth for {len(skipped)} prediction(s), not scored: {', '.join(skipped)}")
    protocols = ("honest", "oracle") if args.protocol == "oracle" else ("honest",)
    rows = score(load_pairs(pairs), protocols)
    csv_path = Path(args.out) if args.out else pred_dir / "evaluation.csv"
    info = {"pred_dir": str(pred_dir), "gt_dir": str(gt_dir), "valid_dir": str(valid_dir) if valid_dir else None,
            "protocols": list(protocols), "skipped": skipped,
            "note": "honest: the method's own mask or prob > 0.5; oracle: best threshold/polarity chosen "
                    "against the ground truth, an upper bound"}
    json_path = write_results(rows, csv_path, info)
    print(format_rows(rows))
    if "oracle" in protocols:
        print("oracle rows are an UPPER BOUND: threshold and polarity were chosen against the ground truth.")
    print(f"wrote {csv_path} and {json_path}")
    return 0
