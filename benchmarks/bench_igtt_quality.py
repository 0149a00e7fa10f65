"""iGTT quality: pooled Dice, IoU and accuracy of the fast preset (defaults, no per-dataset tuning)
beside Otsu, local Gaussian thresholding and Sato ridge + Otsu, all in the same run, on

(a) synthetic ER networks and mitochondria (``core.synthetic``) at low, medium and high noise,
    two 512 x 512 images per set;
(b) real nuclei from ``/work/shared/data/nuclei-dsb2018`` (the first 12 images, for time).

Scores are honest: iGTT's mask is its own output (calibrated probability > 0.5), with no threshold
or polarity taken from the ground truth. One row per set and metric: iGTT against the best baseline
for that metric (named); the note lists every baseline.

``IGTT_STRUCTURE=objects`` runs iGTT with the widget's "thick objects" choice (``ems_region="auto"``)
instead of the default "thin network"; the baselines are the same.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
from _common import Row

DATA = Path(os.environ.get("NUCLEI_DIR", "/work/shared/data/nuclei-dsb2018"))


def datasets(quick: bool) -> dict:
    from napari_metastructures.core import synthetic

    size, n = (256, 1) if quick else (512, 2)
    out = {}
    for kind, fn in (("ER", synthetic.er_network), ("mito", synthetic.mitochondria)):
        for level in (["medium"] if quick else ["low", "medium", "high"]):
            pairs = [fn((size, size), seed=100 + i, noise_level=level) for i in range(n)]
            out[f"{kind} {level} noise"] = ([p[0] for p in pairs], [p[1] > 0 for p in pairs])
    files = sorted(glob.glob(str(DATA / "images" / "*.tif")))[: 4 if quick else 12]
    if files:
        import tifffile

        out["nuclei (DSB2018)"] = ([tifffile.imread(f) for f in files],
                                   [tifffile.imread(f.replace("/images/", "/masks/")) > 0 for f in files])
    return out


def score_all(images: list, gts: list, quick: bool) -> dict:
    """Pooled scores of every method on one set: {method: {dice, iou, accuracy}}."""
    from napari_metastructures.core.baselines import local_threshold, otsu_threshold, sato_otsu
    from napari_metastructures.core.igtt.engine import STRUCTURES, IgttConfig, run as run_igtt
    from napari_metastructures.core.metrics import pooled_scores

    structure = STRUCTURES[os.environ.get("IGTT_STRUCTURE", "network")]
    cfg = IgttConfig.preset("fast", ems_region=structure, **({"epochs": 3} if quick else {}))
    model = run_igtt(images, cfg, seed=0, device="cpu")
    masks = {
        "iGTT fast": model.masks,
        "Otsu": [otsu_threshold(i) for i in images],
        "local Gaussian": [local_threshold(i) for i in images],
        "Sato + Otsu": [sato_otsu(i) for i in images],
    }
    out = {}
    for name, ms in masks.items():
        s = pooled_scores(ms, gts)
        out[name] = {k: s[k] for k in ("dice", "iou", "accuracy")}
    out["iGTT fast"]["epochs"] = len(model.history)
    return out


def run(quick: bool = False) -> list:
    rows = []
    for set_name, (images, gts) in datasets(quick).items():
        scores = score_all(images, gts, quick)
        ours = scores.pop("iGTT fast")
        for metric in ("dice", "iou", "accuracy"):
            best = max(scores, key=lambda m: scores[m][metric])
            note = ", ".join(f"{m} {s[metric]:.3f}" for m, s in scores.items())
            rows.append(Row(f"igtt {metric}: {set_name}", ours[metric], "", f"best baseline ({best})",
                            scores[best][metric], "ratio > 1", "cpu",
                            f"{note}; {ours['epochs']} epochs; {len(images)} images"))
    return rows
