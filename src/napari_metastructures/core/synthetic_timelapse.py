"""Seeded synthetic time-lapses of a whole cell (ER or mitochondria) with ground truth per frame.

The cell of :func:`.synthetic_cells.er_cell` / :func:`~.synthetic_cells.mito_cell` (outline,
saturated perinuclear zone, dim periphery, haze) moves between frames: a steady drift, a slow
smooth deformation and, for mitochondria, every separate mitochondrion travelling along its own
winding path inside the cytoplasm. Each frame gets its own shot and read noise; optional
photobleaching dims the fluorescence frame after frame. Masks move with the structure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .synthetic_cells import CAMERA_OFFSET, GENERATORS, ZONES
from .synthetic_optics import smooth_field

MOVING_MAX_AREA = 250  # px: bigger mitochondrial clusters move only with the cell
DEFORM_PX = 1.5  # amplitude of the slow deformation
MARGIN = 32  # px rendered around the frame (the same cell at every speed), room for the drift


@dataclass
class TimeLapse:
    """One synthetic time-lapse, (T, Y, X), and everything known about it.

    Attributes
    ----------
    image : ndarray of uint16
        Camera frames in ADU.
    mask : ndarray of uint8
        Ground truth per frame, 1 on the structure.
    cell : ndarray of uint8
        1 inside the cell outline, per frame.
    params : dict
        JSON-friendly record (kind, seed, speed, bleaching, the first cell's parameters...).
    signal : ndarray of float32
        Noise-free expected frames in ADU (offset included, not clipped).
    """

    image: np.ndarray
    mask: np.ndarray
    cell: np.ndarray
    params: dict
    signal: np.ndarray | None = field(default=None, repr=False)


def _warp(img: np.ndarray, shift: np.ndarray, order: int = 1) -> np.ndarray:
    """``img`` sampled at ``p - shift(p)`` (shift: (2, H, W)): content moves by ``shift``."""
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(np.float64)
    return ndi.map_coordinates(img, [yy - shift[0], xx - shift[1]], order=order, mode="nearest")


def _paths(n: int, frames: int, speed: float, rng: np.random.Generator) -> np.ndarray:
    """Steps (n, frames, 2) of winding paths: ``speed`` x U(0.5, 1.5) px per frame, turning slowly."""
    heading = rng.uniform(0, 2 * np.pi, (n, 1)) + np.cumsum(rng.normal(0, 0.5, (n, frames)), axis=1)
    length = speed * rng.uniform(0.5, 1.5, (n, 1))
    return np.stack([np.sin(heading), np.cos(heading)], -1) * length[..., None]


def _mito_layers(expected: np.ndarray, mask: np.ndarray) -> tuple:
    """Split mitochondria into a still layer and movable objects.

    Returns the still photons and mask, and per movable object its bounding box, photons and mask
    (its light within 4 px of it, above the haze filled in under it).
    """
    near = ndi.binary_dilation(mask, iterations=4)
    outside = (~near).astype(np.float64)
    # the haze under the objects: normalised convolution of the light around them
    fill = ndi.gaussian_filter(expected * outside, 4) / np.maximum(ndi.gaussian_filter(outside, 4), 1e-6)
    base = np.where(near, np.minimum(fill, expected), expected)
    light = expected - base
    labels, n = ndi.label(mask)
    _, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    owner = np.where(near, labels[iy, ix], 0)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    still_light, still_mask, objects = base.copy(), np.zeros(mask.shape, bool), []
    for i, box in enumerate(ndi.find_objects(owner), start=1):
        if box is None:
            continue
        own = owner[box] == i
        if sizes[i] > MOVING_MAX_AREA:
            still_light[box] += light[box] * own
            still_mask[box] |= labels[box] == i
        else:
            objects.append((box, light[box] * own, (labels[box] == i).astype(np.float64)))
    return still_light, still_mask, objects


def _place(obj: tuple, offset: np.ndarray, light: np.ndarray, mask: np.ndarray) -> None:
    """Add one object moved by ``offset`` (y, x) into ``light`` and ``mask`` (in place)."""
    box, obj_light, obj_mask = obj
    whole = np.round(offset).astype(int)
    part = offset - whole
    y0, x0 = box[0].start + whole[0] - 1, box[1].start + whole[1] - 1
    pad_l, pad_m = (np.pad(a, 1) for a in (obj_light, obj_mask))
    pad_l, pad_m = (ndi.shift(a, part, order=1, mode="constant") for a in (pad_l, pad_m))
    ys, xs = slice(max(y0, 0), min(y0 + pad_l.shape[0], light.shape[0])), \
        slice(max(x0, 0), min(x0 + pad_l.shape[1], light.shape[1]))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    sub = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    light[ys, xs] += pad_l[sub]
    mask[ys, xs] |= pad_m[sub] > 0.5


def timelapse(kind: str = "er", shape: tuple[int, int] = (160, 160), frames: int = 10, seed: int = 0,
              noise_level: str | float = "medium", speed: float = 0.5, bleach: float = 0.0,
              bit_depth: int = 12) -> TimeLapse:
    """A moving cell filmed for ``frames`` frames, with ground truth per frame.

    Parameters
    ----------
    kind : {"er", "mito"}
        The structure, as in :mod:`.synthetic_cells`.
    shape : tuple of int
        Frame shape (rows, columns).
    frames : int
        Number of time points (>= 1).
    seed : int
        Seeds the cell, the motion and the noise (three independent streams): the same seed gives
        the same film; another ``noise_level`` or ``speed`` with the same seed gives the same cell
        moving the same way, with other noise or faster.
    noise_level : str or float
        As in :func:`.synthetic_cells.er_cell`.
    speed : float
        Typical motion in pixels per frame: the cell drifts at ``speed / 2`` and deforms at about
        ``speed / 2``; separate mitochondria travel at ``speed`` x U(0.5, 1.5) relative to the cell.
    bleach : float
        Photobleaching rate per frame: frame ``t`` has ``exp(-bleach * t)`` of the first frame's
        fluorescence (0: none).
    bit_depth : int
        Camera bit depth.

    Returns
    -------
    TimeLapse
    """
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {sorted(GENERATORS)}, got {kind!r}")
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a whole number >= 1, got {frames!r}")
    if not speed >= 0 or not bleach >= 0:
        raise ValueError(f"speed and bleach must be >= 0, got speed={speed!r}, bleach={bleach!r}")
    frames = int(frames)
    cell_rng, motion_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    drift_dir = motion_rng.uniform(0, 2 * np.pi)
    drift = 0.5 * speed * np.array([np.sin(drift_dir), np.cos(drift_dir)])
    margin = MARGIN
    if 0.5 * speed * (frames - 1) + 2 * DEFORM_PX > margin - 2:
        raise ValueError(f"speed {speed} over {frames} frames drifts beyond the {margin}-px margin; "
                         "use fewer frames or a lower speed")
    big = (shape[0] + 2 * margin, shape[1] + 2 * margin)
    first = GENERATORS[kind](big, seed=cell_rng, noise_level=noise_level, bit_depth=bit_depth)
    gain, read_e = first.params["gain"], first.params["read_noise_e"]
    expected = np.clip((first.signal.astype(np.float64) - CAMERA_OFFSET) / gain, 0, None)
    # slow deformation: two smooth vector fields, mixed along a circle in time
    fields = np.stack([smooth_field(big, motion_rng, max(big) / 2) - 0.5 for _ in range(4)]).reshape(2, 2, *big)
    fields *= DEFORM_PX / max(float(np.abs(fields).max()), 1e-6)
    omega = min(0.5 * speed / DEFORM_PX, 1.0)
    if kind == "mito":
        still, still_mask, objects = _mito_layers(expected, first.mask > 0)
        steps = _paths(len(objects), frames, speed, motion_rng)
        room = np.isin(first.zones, [ZONES["perinuclear"], ZONES["middle"], ZONES["peripheral"]])
        room = ndi.binary_erosion(room, iterations=3)
        centres = np.array([[(b.start + b.stop - 1) / 2 for b in box] for box, _, _ in objects]).reshape(-1, 2)
        offsets = np.zeros((len(objects), 2))
    crop = (slice(margin, margin + shape[0]), slice(margin, margin + shape[1]))
    max_adu = float(2**bit_depth - 1)
    out = {k: [] for k in ("image", "mask", "cell", "signal")}
    for t in range(frames):
        if kind == "mito":
            light, mask = still.copy(), still_mask.copy()
            for i, obj in enumerate(objects):
                if t:  # a step that would leave the cytoplasm turns back
                    new = offsets[i] + steps[i, t]
                    y, x = np.clip(np.round(centres[i] + new).astype(int), 0, np.array(big) - 1)
                    offsets[i] = new if room[y, x] else offsets[i] - steps[i, t]
                _place(obj, offsets[i], light, mask)
        else:
            light, mask = expected, first.mask > 0
        shift = drift[:, None, None] * t + np.sin(omega * t) * fields[0] + (1 - np.cos(omega * t)) * fields[1]
        fluor = _warp(light, shift)[crop] * np.exp(-bleach * t)
        counts = noise_rng.poisson(np.clip(fluor, 0, None)) + noise_rng.normal(0.0, read_e, shape)
        out["image"].append(np.clip(np.rint(CAMERA_OFFSET + gain * counts), 0, max_adu).astype(np.uint16))
        out["mask"].append((_warp(mask.astype(np.float64), shift)[crop] > 0.5).astype(np.uint8))
        out["cell"].append((_warp(first.cell.astype(np.float64), shift)[crop] > 0.5).astype(np.uint8))
        out["signal"].append((CAMERA_OFFSET + gain * fluor).astype(np.float32))
    params = {**first.params, "kind": kind, "shape": [frames, *map(int, shape)], "frames": frames,
              "seed": int(seed), "speed": float(speed), "bleach": float(bleach), "margin": margin,
              "drift_px_per_frame": [float(d) for d in drift], "moving_objects": len(objects) if kind == "mito" else 0}
    arrays = {k: np.stack(v) for k, v in out.items()}
    return TimeLapse(arrays["image"], arrays["mask"], arrays["cell"], params, arrays["signal"])
