"""Noise families on a 4096x4096 binary label against a floor measured in the same run.

Floor: one full copy of the label array plus one float32 random number per pixel, the least
any seeded pixel-wise family must do. Goal: pixel-wise families within 3x of it.
"""
from __future__ import annotations

import numpy as np
from _common import Row, median_time
from scipy import ndimage as ndi

from napari_metastructures.core.noise import make_noisy

#: (row name, kind, params, pixel-wise)
CASES = [
    ("sample (ignore)", "sample", dict(p=0.3), True),
    ("sample (ignore), exact", "sample", dict(p=0.3, exact=True), True),
    ("sample-to-background", "sample-to-background", dict(p=0.3, exact=False), True),
    ("sample-to-background, exact", "sample-to-background", dict(p=0.3), True),
    ("flip p=0.2", "flip", dict(p=0.2), True),
    ("flip fg->bg 0.2, bg->fg 0.05", "flip", dict(p_fg_to_bg=0.2, p_bg_to_fg=0.05), True),
    ("flip, exact", "flip", dict(p=0.2, exact=True), True),
    ("random p=0.3", "random", dict(p=0.3), True),
    ("dilate x1", "dilate", dict(iterations=1), True),
    ("erode x1", "erode", dict(iterations=1), True),
    ("morph de", "morph", dict(ops="de"), True),
    ("skeleton", "skeleton", {}, False),
    ("misannotate", "misannotate", dict(p=1.0, target=1), False),
    ("misclassify (3 classes)", "misclassify", dict(p=1.0, n_classes=3), False),
    ("drop-instances", "drop-instances", dict(p=0.3), False),
]


def binary_label(side: int, seed: int = 0) -> np.ndarray:
    """Blob-like binary label (about half foreground, many objects)."""
    rng = np.random.default_rng(seed)
    small = ndi.gaussian_filter(rng.random((side // 4, side // 4), dtype=np.float32), 3)
    return np.kron(small > np.median(small), np.ones((4, 4), dtype=bool)).astype(np.uint8)


def run(quick: bool = False) -> list[Row]:
    side = 2048 if quick else 4096
    labels = binary_label(side)
    rng = np.random.default_rng(1)
    repeats = 3 if quick else 7

    def floor():
        labels.copy()
        rng.random(labels.shape, dtype=np.float32)

    floor_s = median_time(floor, repeats=repeats)
    rows = []
    for name, kind, params, pixelwise in CASES:
        slow = not pixelwise
        t = median_time(lambda: make_noisy(labels, kind, seed=0, **params),  # noqa: B023 (timed now)
                        repeats=1 if slow else repeats,
                        warmup=0 if slow else 1)
        floor_s = min(floor_s, median_time(floor, repeats=3))  # refresh: the machine is shared
        rows.append(Row(
            name=f"noise {name} {side}x{side}", figure=t * 1e3, unit="ms", baseline_name="copy + 1 rand/px",
            baseline=floor_s * 1e3, goal="<= 3x floor" if pixelwise else "report",
            note="" if pixelwise else "object-wise / topology: not bound to the floor",
        ))
    return rows
