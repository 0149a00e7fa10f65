"""iGTT speed: seconds per epoch, time to the first preview and to the final mask for one 1024 x 1024
synthetic ER image (fast preset, CPU; and CUDA when present), and closed-form candidate selection
against K explicit determinants.

Goals (issue 5, 2-core CPU): final mask < 180 s, first preview < 15 s. The "baseline" of those rows is
the goal itself, so the ratio is the fraction of the budget used (< 1 meets it).
"""
from __future__ import annotations

import statistics
import time

import numpy as np
from _common import Row, median_time


def _igtt_rows(image: np.ndarray, device: str, quick: bool) -> list:
    from napari_metastructures.core.device import resolve_device
    from napari_metastructures.core.igtt.engine import IgttConfig, train
    from napari_metastructures.core.progress import drain

    choice = resolve_device(device)
    cfg = IgttConfig.preset("fast", **({"epochs": 2} if quick else {}))
    t0 = time.perf_counter()
    first, epochs = None, []

    def seen(rec) -> None:
        nonlocal first
        epochs.append(rec.seconds)
        if first is None and rec.preview is not None:
            first = time.perf_counter() - t0

    drain(train([image], cfg, seed=0, device=choice.device), seen)
    total = time.perf_counter() - t0
    name = f"{choice.device} ({choice.name})"
    size = f"{image.shape[0]}x{image.shape[1]}"
    note = f"{len(epochs)} epochs" + (" (quick: 2 epochs)" if quick else "")
    return [
        Row(f"igtt fast: s/epoch, {size}", statistics.median(epochs), "s", "final-mask budget / 8 epochs",
            180.0 / 8, "< 22.5 s", name, note),
        Row(f"igtt fast: time to first preview, {size}", first, "s", "goal", 15.0, "< 15 s", name, note),
        Row(f"igtt fast: time to final mask, {size}", total, "s", "goal", 180.0, "< 180 s", name, note),
    ]


def run(quick: bool = False) -> list:
    import torch

    from napari_metastructures.core.device import set_cpu_threads
    from napari_metastructures.core.igtt.dmi import dmi_candidate_scores, dmi_candidate_scores_det, thresholds
    from napari_metastructures.core.synthetic import er_network

    set_cpu_threads()
    size = 512 if quick else 1024
    image, _ = er_network((size, size), seed=0, noise_level="medium")
    rows = []
    # candidate scores: one pass vs K determinants, on a 1024 x 1024 probability map
    prob = np.random.default_rng(0).beta(0.5, 2.0, size=(1024, 1024))
    t = thresholds(prob, 30)
    closed = median_time(lambda: dmi_candidate_scores(prob, t), repeats=5)
    dets = median_time(lambda: dmi_candidate_scores_det(prob, t), repeats=1 if quick else 3)
    rows.append(Row("candidate scores K=30, 1024x1024: closed form", closed, "s", "K determinants", dets,
                    "ratio < 0.2", "cpu", "float64; identical scores (see tests)"))
    rows += _igtt_rows(image, "cpu", quick)
    if torch.cuda.is_available():
        rows += _igtt_rows(image, "cuda", quick)
    return rows
