"""z-stacks: iGTT on independent 2D slices, as one volume, and volume + ortho-plane prediction.

Data: :func:`core.synthetic_volumes.volume_set` (3D whole cells with an anisotropic PSF and ground
truth), ER and mitochondria, seeds 0-1, medium and high noise. Each mode trains with the CLI defaults
(``fast`` preset, seed 0):

- ``slices``: ``scope="slice"``, every plane normalised and thresholded alone;
- ``volume``: ``scope="volume"`` (the default for a ZYX stack), the training outputs; EMS and the
  structure choice work on the 3D candidate, with the stack's anisotropy (z step / pixel size);
- ``ortho``: the volume model predicting xy, xz and yz planes (z resampled by the spacing).

Dice and clDice are pooled over the stacks of a set (clDice from per-plane skeletons). Times are the
medians of the runs (training for slices / volume, prediction for ortho against the volume's own
training-time prediction). Ratios: each mode against slices. Notes name the structure each mode
chose (n: network, o: objects, one letter per stack).
"""
from __future__ import annotations

import statistics
import time

import numpy as np
from _common import Row

from napari_metastructures.core.igtt.config import IgttConfig
from napari_metastructures.core.igtt.engine import run as igtt_run
from napari_metastructures.core.metrics import pooled_scores
from napari_metastructures.core.synthetic_volumes import volume_set
from napari_metastructures.core.topology import pooled_topology


def _scores(masks: list, gts: list) -> tuple[float, float]:
    dice = pooled_scores(masks, gts)["dice"]
    cl = pooled_topology(masks, gts)["cldice"]
    return float(dice), float(cl)


def run(quick: bool = False) -> list[Row]:
    shape = (12, 96, 96) if quick else (16, 128, 128)
    seeds = (0,) if quick else (0, 1)
    levels = ("medium",) if quick else ("medium", "high")
    rows = []
    for kind in ("er", "mito"):
        for level in levels:
            vols = volume_set(kind, seeds=seeds, noise_levels=(level,), shape=shape)
            gts = [v.mask for v in vols]
            out = {"slices": [], "volume": [], "ortho": []}
            secs = {"slices": [], "volume": [], "ortho": []}
            chose = {"slices": "", "volume": ""}
            for v in vols:
                for scope in ("slice", "volume"):
                    cfg = IgttConfig.preset("fast", scope=scope, max_steps=8 if quick else None,
                                            epochs=2 if quick else 8)
                    t0 = time.perf_counter()
                    mode = "slices" if scope == "slice" else "volume"
                    result = igtt_run([v.image], cfg, seed=0, device="cpu", axes=["ZYX"],
                                      anisotropy=v.spacing[0] / v.spacing[1])
                    secs[mode].append(time.perf_counter() - t0)
                    out[mode].append(result.masks[0] > 0)
                    chose[mode] += result.model.config.get("structure", {}).get("structure", "?")[0]
                    if scope == "volume":
                        t0 = time.perf_counter()
                        prob = result.model.predict(v.image, "cpu", tile=cfg.tile, overlap=cfg.overlap, axes="ZYX",
                                                    volume_mode="ortho", anisotropy=v.spacing[0] / v.spacing[1])
                        secs["ortho"].append(time.perf_counter() - t0)
                        out["ortho"].append(prob > 0.5)
            base = _scores(out["slices"], gts)
            for mode in ("slices", "volume", "ortho"):
                dice, cl = _scores(out[mode], gts)
                what = "prediction" if mode == "ortho" else "training"
                fg, truth = np.mean([m.mean() for m in out[mode]]), np.mean([g.mean() for g in gts])
                note = (f"clDice {cl:.3f} vs {base[1]:.3f}; {statistics.median(secs[mode]):.1f} s median "
                        f"({what}); fg {fg:.3f} vs truth {truth:.3f}; structure {chose.get(mode, chose['volume'])}")
                rows.append(Row(f"3D {kind} {level} {shape}: {mode} Dice", dice, "Dice", "slices", base[0],
                                "volume, ortho >= slices", "cpu", note))
    return rows
