"""Crops from inside synthetic whole cells, at the camera's pixel size or coarser.

Annotated real ER often comes as crops inside a cell (little or no dark outside) where the
network covers 40-70 % of the area. Whole cells (:mod:`.synthetic_cells`) are mostly periphery
and background; crops test the dense interior, and coarser pixels test tubules 2 px wide.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .synthetic_cells import GENERATORS, CellImage

__all__ = ["binned", "crop_set", "inner_crop"]


def binned(cell: CellImage, factor: int) -> CellImage:
    """The same cell seen with pixels ``factor`` times larger (mean of each block of camera pixels;
    a mask pixel is structure when half its block is)."""
    if factor == 1:
        return cell
    h, w = (s // factor for s in cell.image.shape)

    def mean(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float64)[: h * factor, : w * factor]
        return a.reshape(h, factor, w, factor).mean(axis=(1, 3))

    image = np.rint(mean(cell.image)).astype(cell.image.dtype)
    signal = None if cell.signal is None else mean(cell.signal).astype(np.float32)
    return CellImage(image, (mean(cell.mask) >= 0.5).astype(np.uint8), (mean(cell.cell) >= 0.5).astype(np.uint8),
                     dict(cell.params, bin=factor), signal, None)


def inner_crop(cell: CellImage, size: int, seed: int, min_inside: float = 0.9) -> CellImage:
    """A seeded ``size`` x ``size`` window of which at least ``min_inside`` lies inside the cell
    (or the most-inside window when none does)."""
    h, w = cell.cell.shape
    if size > min(h, w):
        raise ValueError(f"crop {size} px is larger than the cell image {cell.cell.shape}")
    inside = ndi.uniform_filter(cell.cell.astype(np.float64), size, mode="constant")
    lo, hi = size // 2, size - size // 2
    centres = np.zeros_like(inside, bool)
    centres[lo: h - hi + 1, lo: w - hi + 1] = True
    ok = centres & (inside >= min_inside)
    rng = np.random.default_rng(seed)
    flat = rng.choice(np.flatnonzero(ok)) if ok.any() else np.argmax(np.where(centres, inside, -1))
    cy, cx = np.unravel_index(flat, inside.shape)
    box = (slice(cy - lo, cy - lo + size), slice(cx - lo, cx - lo + size))
    return CellImage(cell.image[box].copy(), cell.mask[box].copy(), cell.cell[box].copy(),
                     dict(cell.params, crop=[int(cy - lo), int(cx - lo), size]),
                     None if cell.signal is None else cell.signal[box].copy(),
                     None if cell.zones is None else cell.zones[box].copy())


def crop_set(kind: str = "er", seeds: tuple[int, ...] = (0, 1, 2), noise_level: str | float = "medium",
             size: int = 256, factor: int = 1, min_inside: float = 0.9) -> list[CellImage]:
    """One inner crop per seed from a whole cell drawn ``2.5 x size`` across at ``factor`` times the
    final pixel count per side, then binned by ``factor``."""
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {sorted(GENERATORS)}, got {kind!r}")
    side = int(2.5 * size) * factor
    return [inner_crop(binned(GENERATORS[kind]((side, side), seed=s, noise_level=noise_level), factor), size, s,
                       min_inside) for s in seeds]
