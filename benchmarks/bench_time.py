"""Time-lapses: does smoothing the foreground probability over time help?

Data: :func:`core.synthetic_timelapse.timelapse`, whole cells (ER, mitochondria) filmed for 10
frames of 160 x 160 px with fresh camera noise per frame and 2 % bleaching per frame, seeds 0-1,
medium and high noise, at two motion speeds: slow (0.3 px per frame) and fast (2 px per frame;
separate mitochondria travel 1-3 px per frame). Slow and fast films of a seed show the same cell.

For every kind, noise level and seed, iGTT (``fast`` preset, shortened schedule, seed 0) trains on
frames 0, 4 and 8 of the slow film (as ``--train-frames 0,4,8``); that model predicts every frame
of the slow and the fast film. The probabilities are then smoothed over T with
:func:`core.temporal.smooth_over_time` (mean over 3 and 5 frames, median over 5, and the
motion-tolerant ``reach`` variant) and thresholded at 0.5. Dice and clDice are pooled over all
frames of both seeds; ratios are against no smoothing of the same predictions.
"""
from __future__ import annotations

import time

from _common import Row

from napari_metastructures.core.igtt.config import IgttConfig
from napari_metastructures.core.igtt.engine import run as igtt_run
from napari_metastructures.core.metrics import pooled_scores
from napari_metastructures.core.synthetic_timelapse import timelapse
from napari_metastructures.core.temporal import smooth_over_time
from napari_metastructures.core.topology import pooled_topology

SPEEDS = {"slow": 0.3, "fast": 2.0}
#: name: keyword arguments of smooth_over_time
METHODS = {"mean 3": {"window": 3}, "mean 5": {"window": 5}, "median 5": {"window": 5, "how": "median"},
           "mean 5 reach 2": {"window": 5, "reach": 2}}


def _scores(probs: list, gts: list) -> tuple[float, float]:
    masks = [f > 0.5 for p in probs for f in p]
    truth = [f for g in gts for f in g]
    return float(pooled_scores(masks, truth)["dice"]), float(pooled_topology(masks, truth)["cldice"])


def run(quick: bool = False) -> list[Row]:
    shape, frames = ((96, 96), 6) if quick else ((160, 160), 10)
    train_at = [0, 3] if quick else [0, 4, 8]
    seeds = (0,) if quick else (0, 1)
    levels = ("high",) if quick else ("medium", "high")
    rows = []
    for kind in ("er", "mito"):
        for level in levels:
            probs = {s: [] for s in SPEEDS}
            gts = {s: [] for s in SPEEDS}
            train_s = []
            for seed in seeds:
                films = {s: timelapse(kind, shape, frames, seed=seed, noise_level=level, speed=v, bleach=0.02)
                         for s, v in SPEEDS.items()}
                cfg = IgttConfig.preset("fast", epochs=2 if quick else 4, max_steps=4 if quick else 12)
                t0 = time.perf_counter()
                result = igtt_run([films["slow"].image[train_at]], cfg, seed=0, device="cpu", axes=["TYX"])
                train_s.append(time.perf_counter() - t0)
                for s, film in films.items():
                    probs[s].append(result.model.predict(film.image, "cpu", tile=cfg.tile, overlap=cfg.overlap,
                                                         axes="TYX"))
                    gts[s].append(film.mask)
            for s in SPEEDS:
                base = _scores(probs[s], gts[s])
                for name, kwargs in METHODS.items():
                    dice, cl = _scores([smooth_over_time(p, 0, **kwargs) for p in probs[s]], gts[s])
                    note = (f"clDice {cl:.3f} vs {base[1]:.3f} (ratio {cl / base[1]:.3f}); "
                            f"training {sum(train_s) / len(train_s):.0f} s per model")
                    rows.append(Row(f"time {kind} {level} {s}: {name} Dice", dice, "Dice", "no smoothing",
                                    base[0], "reported", "cpu", note))
    return rows
