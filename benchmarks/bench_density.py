"""Box-kernel density of a 4096x4096 label against the direct window sum and a copy floor.

- (a) The direct window sum (add every shifted copy of the zero-padded mask, O(N h^2)) is timed
  on a crop and scaled by the pixel ratio; its result is compared for equality with ours there.
- (b) The floor: one float32 copy of the label array, the least any per-class map must write.
- Flatness: the same call at h = 2, 25 and 200, each against h = 2.
Goals: >= 100x faster than (a), <= 4x the floor, flat in h.
"""
from __future__ import annotations

import time

import numpy as np
from _common import Row, median_time
from scipy import ndimage as ndi

from napari_metastructures.core.density import box_count, density_map


def binary_label(side: int, seed: int = 0) -> np.ndarray:
    """Blob-like binary label, about half foreground."""
    rng = np.random.default_rng(seed)
    small = ndi.gaussian_filter(rng.random((side // 4, side // 4), dtype=np.float32), 3)
    return np.kron(small > np.median(small), np.ones((4, 4), dtype=bool)).astype(np.uint8)


def direct_window_sum(mask: np.ndarray, h: int) -> np.ndarray:
    """O(N h^2) reference: sum of all (2h+1)^2 shifted copies of the zero-padded mask."""
    padded = np.pad(mask.astype(np.int32), h)
    out = np.zeros(mask.shape, dtype=np.int32)
    n0, n1 = mask.shape
    for dy in range(2 * h + 1):
        for dx in range(2 * h + 1):
            out += padded[dy:dy + n0, dx:dx + n1]
    return out


def run(quick: bool = False) -> list[Row]:
    side, crop, h = (1024, 128, 25) if quick else (4096, 256, 25)
    repeats = 3 if quick else 5
    labels = binary_label(side)
    ours = lambda bw: density_map(labels, bw, classes=[1])  # noqa: E731
    t_ours = median_time(lambda: ours(h), repeats=repeats)
    floor = median_time(lambda: labels.astype(np.float32), repeats=repeats)

    # (a) direct sum on a crop (with an h margin, so the crop's values are the full image's)
    r0 = side // 2
    region = labels[r0 - h:r0 + crop + h, r0 - h:r0 + crop + h]
    t0 = time.perf_counter()
    direct = direct_window_sum(region == 1, h)[h:-h, h:-h]
    t_direct = (time.perf_counter() - t0) * (side * side) / (crop * crop)
    full = ours(h)[0][r0:r0 + crop, r0:r0 + crop]
    same = np.array_equal(box_count(labels == 1, h)[r0:r0 + crop, r0:r0 + crop], direct)
    same &= np.allclose(full, direct / (2 * h + 1) ** 2, atol=1e-6)
    if not same:
        raise AssertionError("box-kernel density differs from the direct window sum on the crop")

    rows = [
        Row(name=f"density box h={h} {side}^2 vs direct sum", figure=t_ours * 1e3, unit="ms",
            baseline_name=f"direct sum ({crop}^2 crop, scaled)", baseline=t_direct * 1e3,
            goal=">= 100x faster", note=f"equal on crop: {same}"),
        Row(name=f"density box h={h} {side}^2 vs copy floor", figure=t_ours * 1e3, unit="ms",
            baseline_name="float32 copy of the labels", baseline=floor * 1e3, goal="<= 4x floor"),
    ]
    t_h2 = median_time(lambda: ours(2), repeats=repeats)
    for bw in (2, 25, 200):
        t = t_h2 if bw == 2 else median_time(lambda: ours(bw), repeats=repeats)  # noqa: B023 (timed now)
        rows.append(Row(name=f"density box h={bw} {side}^2 (flat in h)", figure=t * 1e3, unit="ms",
                        baseline_name="same at h=2", baseline=t_h2 * 1e3, goal="flat: <= 1.5x"))
    t_both = median_time(lambda: density_map(labels, h), repeats=repeats)
    rows.append(Row(name=f"density box h={h} {side}^2, both classes", figure=t_both * 1e3, unit="ms",
                    baseline_name="2 float32 copies", baseline=2 * floor * 1e3, goal="report"))
    return rows
