"""iGTT quality: pooled Dice, IoU, accuracy and clDice of the fast preset with its defaults (no per-set
tuning) beside every baseline and the peer, all in the same run, on

(a) realistic whole cells (``core.synthetic_cells``): ER and mitochondria with a cell outline, a
    saturated perinuclear zone and peripheral structure 10-50x dimmer, at low, medium and high noise;
    three 384 x 384 images per set, seeds 100-102 (the development set behind the design used 0-2);
    and 256 x 256 ER crops inside such cells (``core.synthetic_crops``, medium noise, seeds 100-102)
    at the camera's pixels and binned 2x (denser network, tubules ~2 px);
(b) the older synthetic ER networks and hazy mitochondria (``core.synthetic``), two 512 x 512 images;
(c) real nuclei from ``/work/shared/data/nuclei-dsb2018`` (the first 12 images, for time).

Methods: iGTT, Otsu, local Gaussian, Sato + Otsu, Frangi + Otsu and Nellie (its defaults and the true
pixel size; only when ``pip install -e .[compare]`` installed it). Scores are honest: iGTT's mask is its
own output (calibrated probability > 0.5). One row per set and metric: iGTT against the best other
method for that metric (named); the note lists every method.

``IGTT_STRUCTURE=network|objects`` forces the structure instead of ``auto``; ``IGTT_SETS=cell,nuclei``
runs only the sets whose names contain one of the given words. Each set's rows are printed as it ends.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
from _common import Row

DATA = Path(os.environ.get("NUCLEI_DIR", "/work/shared/data/nuclei-dsb2018"))
#: Pixel size given to Nellie: the synthetic images are drawn at about 65 nm per pixel; DSB2018 has no
#: pixel size, and 0.1 um puts its nuclei inside Nellie's 0.25-1 um radius range (the best of 4 tried).
PIXEL_UM = {"cell": 0.065, "synthetic": 0.065, "nuclei": 0.1}
METRICS = ("dice", "cldice", "iou", "accuracy")


def datasets(quick: bool) -> dict:
    """{set name: (images, ground truths, pixel size in um)}."""
    from napari_metastructures.core import synthetic, synthetic_cells, synthetic_crops

    out = {}
    levels = ["medium"] if quick else ["low", "medium", "high"]
    seeds = (100,) if quick else (100, 101, 102)
    for kind in ("er", "mito"):
        for level in levels:
            cells = synthetic_cells.development_set(kind, seeds=seeds, noise_levels=(level,),
                                                    shape=(256, 256) if quick else (384, 384))
            out[f"{kind.upper() if kind == 'er' else kind} cell {level} noise"] = (
                [c.image for c in cells], [c.mask > 0 for c in cells], PIXEL_UM["cell"])
    for factor in (1, 2):  # crops inside the cell, as annotated real ER often is; at 2x pixels tubules are ~2 px
        crops = synthetic_crops.crop_set("er", seeds=seeds, noise_level="medium", size=128 if quick else 256,
                                         factor=factor)
        out[f"ER crop {factor}x px medium noise"] = ([c.image for c in crops], [c.mask > 0 for c in crops],
                                                     factor * PIXEL_UM["cell"])
    size, n = (256, 1) if quick else (512, 2)
    for kind, fn in (("ER", synthetic.er_network), ("mito", synthetic.mitochondria)):
        for level in levels:
            pairs = [fn((size, size), seed=100 + i, noise_level=level) for i in range(n)]
            out[f"{kind} {level} noise"] = ([p[0] for p in pairs], [p[1] > 0 for p in pairs],
                                            PIXEL_UM["synthetic"])
    files = sorted(glob.glob(str(DATA / "images" / "*.tif")))[: 4 if quick else 12]
    if files:
        import tifffile

        out["nuclei (DSB2018)"] = ([tifffile.imread(f) for f in files],
                                   [tifffile.imread(f.replace("/images/", "/masks/")) > 0 for f in files],
                                   PIXEL_UM["nuclei"])
    return out


def baseline_masks(images: list, pixel_um: float) -> dict:
    """{method: masks} for every baseline, and Nellie when it is installed."""
    from _nellie import nellie_mask

    from napari_metastructures.core.baselines import frangi_otsu, local_threshold, otsu_threshold, sato_otsu

    masks = {
        "Otsu": [otsu_threshold(i) for i in images],
        "local Gaussian": [local_threshold(i) for i in images],
        "Sato + Otsu": [sato_otsu(i) for i in images],
        "Frangi + Otsu": [frangi_otsu(i) for i in images],
    }
    nellie = [nellie_mask(np.asarray(i), pixel_um) for i in images]
    if all(m is not None for m in nellie):
        masks["Nellie"] = nellie
    return masks


def score_all(images: list, gts: list, pixel_um: float, quick: bool) -> dict:
    """Pooled scores of every method on one set: {method: {metric: value}}."""
    from napari_metastructures.core.igtt.engine import IgttConfig
    from napari_metastructures.core.igtt.engine import run as run_igtt
    from napari_metastructures.core.metrics import pooled_scores
    from napari_metastructures.core.topology import pooled_topology

    over = {"epochs": 3} if quick else {}
    if os.environ.get("IGTT_STRUCTURE"):
        over["structure"] = os.environ["IGTT_STRUCTURE"]
    result = run_igtt(images, IgttConfig.preset("fast", **over), seed=0, device="cpu")
    model = result.model
    masks = {"iGTT fast": result.masks, **baseline_masks(images, pixel_um)}
    out = {}
    for name, ms in masks.items():
        s = pooled_scores(ms, gts)
        out[name] = {k: s[k] for k in ("dice", "iou", "accuracy")}
        out[name]["cldice"] = pooled_topology(ms, gts)["cldice"]
    out["iGTT fast"]["epochs"] = len(model.history)
    out["iGTT fast"]["structure"] = (model.config.get("structure") or {}).get("structure", "?")
    return out


def run(quick: bool = False) -> list:
    from _common import format_table
    from _nellie import NELLIE_STATUS

    rows = []
    only = [w for w in os.environ.get("IGTT_SETS", "").split(",") if w]
    for set_name, (images, gts, pixel_um) in datasets(quick).items():
        if only and not any(w in set_name for w in only):
            continue
        scores = score_all(images, gts, pixel_um, quick)
        ours = scores.pop("iGTT fast")
        peer = "" if "Nellie" in scores else f"; Nellie: {NELLIE_STATUS}"
        for metric in METRICS:
            best = max(scores, key=lambda m: scores[m][metric])
            note = ", ".join(f"{m} {s[metric]:.3f}" for m, s in scores.items())
            rows.append(Row(f"igtt {metric}: {set_name}", ours[metric], "", f"best other ({best})",
                            scores[best][metric], "ratio > 1", "cpu",
                            f"{note}; {ours['epochs']} epochs; structure {ours['structure']}; "
                            f"{len(images)} images{peer}"))
        print(format_table(rows[-len(METRICS):]), flush=True)
    return rows
