"""Seeded synthetic whole-cell images (ER or mitochondria) with ground truth.

A camera crop of a cell on a dark background: a nucleus (a dark hole; for ER rimmed by
the nuclear envelope), a thick perinuclear zone that saturates the camera (the gain is
set so that a seeded 1-4 % of the cell does), a periphery 10-50x (mitochondria 10-30x)
dimmer at low SNR, out-of-focus haze, PSF blur, uneven illumination, shot and read noise,
camera offset, gain, uint16 and clipping at the bit depth. Blocks from :mod:`.synthetic`.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import brentq

from .synthetic import _check_shape, _mesh, _mito_objects, _sheets, _tubes
from .synthetic_optics import photons_for, render_optics, smooth_field

#: Peak photons of a *peripheral* tubule (or mitochondrion) for the named noise levels.
NOISE_LEVELS_CELL: dict[str, float] = {"low": 140.0, "medium": 45.0, "high": 20.0}

#: Values of :attr:`CellImage.zones`.
ZONES: dict[str, int] = {"outside": 0, "nucleus": 1, "perinuclear": 2, "middle": 3, "peripheral": 4}

CAMERA_OFFSET = 100.0  # ADU


@dataclass
class CellImage:
    """One synthetic cell image and everything known about it.

    Attributes
    ----------
    image : ndarray of uint16
        Camera image in ADU, (H, W).
    mask : ndarray of uint8
        Ground truth, 1 on the structure inside the cell.
    cell : ndarray of uint8
        1 inside the cell outline.
    params : dict
        JSON-friendly record of what made the image (seed, noise level, dimming, gain...).
    signal : ndarray of float32
        Noise-free expected image in ADU (offset included, not clipped).
    zones : ndarray of uint8
        Region labels, see :data:`ZONES`.
    """

    image: np.ndarray
    mask: np.ndarray
    cell: np.ndarray
    params: dict
    signal: np.ndarray | None = field(default=None, repr=False)
    zones: np.ndarray | None = field(default=None, repr=False)


def _photons(noise_level: str | float) -> float:
    """Peripheral photons for a level name (the names of :data:`.synthetic.NOISE_LEVELS`) or a number."""
    named = isinstance(noise_level, str) and noise_level in NOISE_LEVELS_CELL
    return photons_for(NOISE_LEVELS_CELL[noise_level] if named else noise_level)


def _start(shape: tuple[int, int], seed: int | np.random.Generator, noise_level: str | float,
           bit_depth: int, *defaults: tuple) -> tuple:
    """Check the arguments; shape, bit depth, the generator, a random cell layout and ``defaults``:
    each ``(value, lo, hi)`` gives the value as a float, or, if None, a draw in [lo, hi) after the layout."""
    _photons(noise_level)
    if int(bit_depth) != bit_depth or not 8 <= bit_depth <= 16:
        raise ValueError(f"bit_depth must be an integer from 8 to 16, got {bit_depth!r}")
    shape, rng = _check_shape(shape), np.random.default_rng(seed)
    lay = _layout(shape, rng)
    return shape, int(bit_depth), rng, lay, [float(rng.uniform(lo, hi) if v is None else v) for v, lo, hi in defaults]


# cell, nucleus; signed distance from the nuclear rim and a randomly stretched copy; profile
# 1 at the nucleus, ~0 in the periphery; fall-off to the cell edge; zone width; rim half-width
_Layout = namedtuple("_Layout", "cell nucleus dist dist_eff shell fall width rim zones info")


def _edges(cell: np.ndarray) -> int:
    return int(cell[0].any()) + int(cell[-1].any()) + int(cell[:, 0].any()) + int(cell[:, -1].any())


def _outline(shape: tuple[int, int], rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> tuple:
    """Random smooth star-shaped outline: centre, radius, cell mask."""
    # centre: central, or near one edge / a corner so the cell runs off the frame
    centre = rng.uniform(0.35, 0.65, 2) * np.asarray(shape)
    near_edge = rng.uniform() < 0.5
    if near_edge:
        for axis in rng.permutation(2)[: rng.integers(1, 3)]:
            frac = rng.uniform(0.02, 0.22)
            centre[axis] = shape[axis] * (frac if rng.uniform() < 0.5 else 1 - frac)
    target = rng.uniform(0.55, 0.85) if near_edge else rng.uniform(0.45, 0.68)
    ks = np.arange(2, 9)[:, None, None]
    amp, phase = rng.normal(0, 0.13, (7, 1, 1)) / ks**0.9, rng.uniform(0, 2 * np.pi, (7, 1, 1))
    theta = np.arctan2(yy - centre[0], xx - centre[1])
    wave = np.clip(1 + (amp * np.cos(ks * theta + phase)).sum(0), 0.55, None)
    rel = np.hypot(yy - centre[0], xx - centre[1]) / wave
    radius = float(np.quantile(rel, target))  # exactly `target` of the frame is cell
    return centre, radius, rel < radius


def _layout(shape: tuple[int, int], rng: np.random.Generator) -> _Layout:
    """Random cell outline, nucleus and the distance fields derived from them."""
    side = float(min(shape))
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    for _ in range(8):  # a crop of a real cell runs off at most two frame edges
        centre, radius, cell = _outline(shape, rng, yy, xx)
        if _edges(cell) <= 2:
            break
    # nucleus: a wobbly ellipse well inside the cell, its centre inside the frame
    a = min(rng.uniform(0.11, 0.16) * side, 0.42 * radius)
    b, tilt = a * rng.uniform(0.65, 0.92), rng.uniform(0, np.pi)
    wob_amp, wob_ph = rng.normal(0, 0.035, 2), rng.uniform(0, 2 * np.pi, 2)
    # its centre anywhere in the frame (8 % margin) far enough inside the cell; the frame
    # edge is no cell edge, so the nucleus may sit at a frame edge, leaving mostly periphery
    inside = ndi.distance_transform_edt(cell)
    ok = inside > 1.1 * a + 0.06 * side
    ok[: int(0.08 * shape[0])], ok[int(0.92 * shape[0]):] = False, False
    ok[:, : int(0.08 * shape[1])], ok[:, int(0.92 * shape[1]):] = False, False
    pick = rng.choice(np.flatnonzero(ok)) if ok.any() else np.argmax(inside)
    nuc = np.array(np.unravel_index(pick, shape), dtype=np.float64) + rng.uniform(-0.5, 0.5, 2)
    ang = np.arctan2(yy - nuc[0], xx - nuc[1])
    ell = a * b / np.sqrt((b * np.cos(ang - tilt)) ** 2 + (a * np.sin(ang - tilt)) ** 2)
    wobble = 1 + wob_amp[0] * np.cos(2 * ang + wob_ph[0]) + wob_amp[1] * np.cos(3 * ang + wob_ph[1])
    dist = np.hypot(yy - nuc[0], xx - nuc[1]) - ell * wobble
    rim = rng.uniform(1.5, 1.9)  # half-width of the nuclear envelope
    nucleus = dist < -rim
    # an irregular, lopsided perinuclear zone: distances stretched by smooth random factors
    lopsided = 1 - rng.uniform(0.2, 0.45) * np.cos(ang - rng.uniform(0, 2 * np.pi))
    dist_eff = np.clip(dist, 0, None) * (0.6 + 0.8 * smooth_field(shape, rng, scale=side / 3)) * lopsided
    d_far = float(np.quantile(dist_eff[cell], 0.95)) if cell.any() else side
    width = float(min(rng.uniform(0.08, 0.12) * side, 0.33 * d_far))
    shell = np.exp(-((dist_eff / width) ** 2.5)).astype(np.float32)
    fall = (1.0 / (1.0 + dist_eff / max(d_far, 1.0))).astype(np.float32)
    zones = np.where(shell >= 0.5, 2, np.where(dist_eff < 2.2 * width, 3, 4)).astype(np.uint8)
    zones[nucleus], zones[~cell] = 1, 0
    info = {"cell_fraction": float(cell.mean()), "cell_centre": [float(c) for c in centre],
            "edges_touched": _edges(cell), "nucleus_centre": [float(c) for c in nuc],
            "nucleus_axes": [float(a), float(b)], "perinuclear_width": width}
    return _Layout(cell, nucleus, dist, dist_eff, shell, fall, width, rim, zones, info)


def _fit_scale(base: np.ndarray, extra: np.ndarray, inner: np.ndarray, outer: np.ndarray,
               dimming: float) -> float:
    """``k`` such that median(base + k*extra) over ``inner`` is ``dimming`` x that over ``outer``."""
    bi, ei, bo, eo = base[inner], extra[inner], base[outer], extra[outer]

    def excess(k: float) -> float:  # continuous, increasing in k for a sensible layout
        return float(np.median(bi + k * ei) - dimming * np.median(bo + k * eo))

    hi = 1.0
    while excess(hi) < 0 and hi < 1e4:
        hi *= 2
    return 0.0 if excess(0.0) >= 0 else hi if excess(hi) < 0 else brentq(excess, 0.0, hi, xtol=1e-9)


def _render(lay: _Layout, structure: np.ndarray, mask: np.ndarray, haze0: np.ndarray,
            haze1: np.ndarray, rng: np.random.Generator, *, photons: float, dimming: float,
            bit_depth: int, psf_sigma: float, illumination: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Scale the bright zone to ``dimming``, add noise and take a camera picture.

    In-focus fluorophores are ``structure * (fall + k * shell)``, haze ``haze0 + k * haze1``;
    ``k`` is fitted so that the noise-free median over the perinuclear foreground is
    ``dimming`` times the peripheral one.
    """
    shape = structure.shape
    illum = 1.0 - illumination * smooth_field(shape, rng, scale=max(shape) / 2.5)
    b_out = rng.uniform(2.0, 5.0)  # photons outside the cell (medium, camera glow)
    f0, f1 = structure * lay.fall * illum, structure * lay.shell * illum
    h0, h1 = haze0 * illum + b_out / photons, haze1 * illum
    base = ndi.gaussian_filter(f0, psf_sigma) + h0
    extra = ndi.gaussian_filter(f1, psf_sigma) + h1
    inner, outer = (mask > 0) & (lay.zones == 2), (mask > 0) & (lay.zones == 4)
    if inner.sum() < 20 or outer.sum() < 20:  # degenerate layout: use distance quartiles
        q1, q3 = np.quantile(lay.dist_eff[mask > 0], [0.25, 0.75])
        inner, outer = (mask > 0) & (lay.dist_eff <= q1), (mask > 0) & (lay.dist_eff >= q3)
    k = _fit_scale(base, extra, inner, outer, dimming)
    expected = photons * (base + k * extra)
    measured = float(np.median(expected[inner]) / np.median(expected[outer]))
    max_adu = float(2**bit_depth - 1)
    sat_target = rng.uniform(0.01, 0.04)
    gain = (max_adu - CAMERA_OFFSET) / float(np.quantile(expected[lay.cell], 1 - sat_target))
    counts = render_optics((f0 + k * f1).astype(np.float32), rng, haze=(h0 + k * h1).astype(np.float32),
                           photons=photons, psf_sigma=psf_sigma, illumination=0.0,
                           background=0.0, read_noise=0.0)
    read_e = rng.uniform(1.2, 2.0)
    adu = CAMERA_OFFSET + gain * (counts + rng.normal(0.0, read_e, shape))
    image = np.clip(np.rint(adu), 0, max_adu).astype(np.uint16)
    signal = (CAMERA_OFFSET + gain * expected).astype(np.float32)
    info = {"photons": photons, "dimming": dimming, "dimming_measured": measured, "bright_scale": k,
            "gain": gain, "offset": CAMERA_OFFSET, "read_noise_e": read_e, "background_photons": b_out,
            "psf_sigma": psf_sigma, "illumination": illumination, "saturation_target": sat_target,
            "saturated_fraction": (image[lay.cell] == max_adu).mean(), "mask_fraction": mask[lay.cell].mean(),
            "peripheral_snr": peripheral_snr(image, signal, mask, lay.zones)}
    info = {key: float(value) for key, value in info.items()}
    return image, signal, info


def peripheral_snr(image: np.ndarray, signal: np.ndarray, mask: np.ndarray, zones: np.ndarray) -> float:
    """Peripheral SNR: mean noise-free ``signal`` on peripheral foreground minus that on
    peripheral background (2 px from the mask), over the std of ``image - signal`` there."""
    periph = zones == ZONES["peripheral"]
    fg = periph & (mask > 0)
    bg = periph & ~ndi.binary_dilation(mask > 0, iterations=2)
    if fg.sum() < 10 or bg.sum() < 10:
        return float("nan")
    noise = (image.astype(np.float64) - signal)[bg].std()
    return float((signal[fg].mean() - signal[bg].mean()) / max(noise, 1e-9))


def _body(lay: _Layout) -> np.ndarray:
    """Where haze lives: the cell, softly edged, much weaker over the nucleus."""
    cell, nucleus = (ndi.gaussian_filter(m.astype(np.float32), s) for m, s in ((lay.cell, 3), (lay.nucleus, 4)))
    return cell * (1 - 0.8 * nucleus)


def _finish(kind: str, lay: _Layout, structure: np.ndarray, mask: np.ndarray, haze: tuple,
            rng: np.random.Generator, seed: int | np.random.Generator, noise_level: str | float,
            bit_depth: int, dimming: float, optics: dict, extra: dict) -> CellImage:
    """Render the camera image and pack a :class:`CellImage`."""
    image, signal, info = _render(lay, structure.astype(np.float32), mask, *haze, rng,
                                  photons=_photons(noise_level), dimming=dimming, bit_depth=bit_depth, **optics)
    params = {"kind": kind, "shape": list(mask.shape),
              "seed": "generator" if isinstance(seed, np.random.Generator) else int(seed),
              "noise_level": noise_level if isinstance(noise_level, str) else float(noise_level),
              "bit_depth": bit_depth, **info, **lay.info, **extra}
    return CellImage(image, mask.astype(np.uint8), lay.cell.astype(np.uint8), params, signal, lay.zones)


def _window_mesh(where: np.ndarray, rng: np.random.Generator, mesh_size: float,
                 open_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`.synthetic._mesh` computed only on the bounding box of ``where`` (saves time)."""
    skel, val = np.zeros(where.shape, bool), np.zeros(where.shape, np.float32)
    if not where.any():
        return skel, val, np.zeros((0, 2))
    lo, hi = [], []
    for axis, n in enumerate(where.shape):
        idx = np.flatnonzero(where.any(1 - axis))
        lo.append(min(max(idx[0] - 4, 0), n - 16))
        hi.append(max(min(idx[-1] + 5, n), lo[-1] + 16))
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
    skel[box], val[box], junc = _mesh((hi[0] - lo[0], hi[1] - lo[1]), rng, mesh_size, open_fraction,
                                      skip_outside=True)
    return skel, val, junc + np.array(lo)


def er_cell(shape: tuple[int, int] = (512, 512), seed: int | np.random.Generator = 0,
            noise_level: str | float = "medium", bit_depth: int = 12, *, dimming: float | None = None,
            tubule_width: float | None = None, psf_sigma: float = 1.3, illumination: float = 0.3) -> CellImage:
    """A whole cell with ER: dense sheets and tubules by the nucleus, a dim open mesh outside.

    Parameters
    ----------
    shape : tuple of int
        Image shape (rows, columns).
    seed : int or numpy.random.Generator
        Seed of every random step; the same seed gives the same image.
    noise_level : str or float
        ``"low"``, ``"medium"``, ``"high"`` (:data:`NOISE_LEVELS_CELL`) or photons of a
        peripheral tubule. The cell itself does not depend on it.
    bit_depth : int
        Camera bit depth (8-16); pixels clip at ``2**bit_depth - 1``.
    dimming : float, optional
        Perinuclear / peripheral foreground brightness ratio; default seeded in [10, 50].
    tubule_width : float, optional
        Tubule footprint in the mask (px); default seeded in [3.3, 4.0].
    psf_sigma, illumination : float
        Gaussian PSF sigma (px) and uneven-illumination strength (field spans [1-x, 1]).

    Returns
    -------
    CellImage
    """
    shape, bit_depth, rng, lay, (dimming, width) = _start(shape, seed, noise_level, bit_depth, (dimming, 10, 50),
                                                          (tubule_width, 3.3, 4.0))
    # dense mesh by the nucleus, sparse and open in the periphery, blended by a noisy field
    size_d, size_s = rng.uniform(11, 13.5), rng.uniform(16, 20)
    open_d, open_s = rng.uniform(0.04, 0.1), rng.uniform(0.2, 0.32)
    blend = np.exp(-((lay.dist_eff / (2.2 * lay.width)) ** 2)) + 0.9 * (smooth_field(shape, rng, 18.0) - 0.5)
    dense, sparse = (blend > 0.45) & lay.cell, (blend < 0.55) & lay.cell
    skel_d, val_d, junc = _window_mesh(dense, rng, size_d, open_d)
    skel_s, val_s, _ = _window_mesh(sparse, rng, size_s, open_s)
    skel = ((skel_d & dense) | (skel_s & sparse)) & lay.cell & (lay.dist > lay.rim + 1)
    val = np.maximum(np.where(dense, val_d, 0), np.where(sparse, val_s, 0))
    tmask, tfluor = _tubes(skel, val, width / 2)
    # nuclear envelope: a tube-like rim around the nucleus
    ring = np.abs(lay.dist) <= lay.rim
    ring_f = np.sqrt(np.clip(1 - (lay.dist / (lay.rim + 0.5)) ** 2, 0, None))
    ring_f *= rng.uniform(0.6, 0.85) * (0.8 + 0.4 * smooth_field(shape, rng, 8.0))
    # perinuclear sheets: a few on dense-mesh junctions plus irregular patches where a
    # smooth field is high; flat, with a faint texture
    jr = tuple(np.clip(np.rint(junc).astype(int), 0, np.array(shape) - 1).T)
    near = (lay.shell[jr] > 0.6) & (lay.dist[jr] > 0) & lay.cell[jr]
    n_sheets, zone = int(rng.integers(2, 6)), lay.zones == ZONES["perinuclear"]
    sheets = _sheets(shape, rng, junc[near], n_sheets, rng.uniform(7.0, 11.0))
    patch, cover = smooth_field(shape, rng, rng.uniform(7.0, 11.0)), rng.uniform(0.12, 0.25)
    if zone.any():
        sheets |= (patch > np.quantile(patch[zone], 1 - cover)) & (lay.shell > 0.55)
    sheets &= lay.cell & (lay.dist > 0)
    sheet_f = sheets * rng.uniform(0.7, 0.9) * (0.7 + 0.6 * smooth_field(shape, rng, 5.0))
    keep = lay.cell & ~lay.nucleus
    structure = np.maximum.reduce([tfluor, ring_f * ring, sheet_f]) * keep
    mask = (tmask | ring | sheets) & keep
    # out-of-focus ER from other planes: the meshes flipped, thicker, blurred
    hblur = ndi.gaussian_filter(_tubes((skel_d | skel_s)[::-1, ::-1], np.maximum(val_d, val_s)[::-1, ::-1],
                                       width / 2 + 1)[1], 5.0)
    hblur /= max(float(hblur.max()), 1e-6)
    body, thick = _body(lay), np.exp(-((lay.dist_eff / (1.2 * lay.width)) ** 2.5))
    h_amp, cyto, h_amp_p = rng.uniform(0.08, 0.18), rng.uniform(0.04, 0.08), rng.uniform(0.3, 0.5)
    haze = (body * lay.fall * (h_amp * hblur + cyto), body * thick * h_amp_p * (0.4 + hblur))
    extra = {"tubule_width": width, "mesh_size": [float(size_d), float(size_s)],
             "open_fraction": [float(open_d), float(open_s)], "n_sheets": n_sheets, "sheet_cover": float(cover),
             "haze": [float(h_amp), float(cyto), float(h_amp_p)]}
    return _finish("er", lay, structure, mask, haze, rng, seed, noise_level, bit_depth, dimming,
                   {"psf_sigma": psf_sigma, "illumination": illumination}, extra)


def mito_cell(shape: tuple[int, int] = (512, 512), seed: int | np.random.Generator = 0,
              noise_level: str | float = "medium", bit_depth: int = 12, *, dimming: float | None = None,
              foreground_fraction: float | None = None, puncta_fraction: float = 0.3, psf_sigma: float = 1.3,
              illumination: float = 0.3) -> CellImage:
    """A whole cell with mitochondria: bright perinuclear clusters, dim sparse worms outside.

    Parameters
    ----------
    shape, seed, noise_level, bit_depth
        As in :func:`er_cell`; ``noise_level`` photons refer to a peripheral mitochondrion.
    dimming : float, optional
        Perinuclear / peripheral foreground brightness ratio; default seeded in [10, 30].
    foreground_fraction : float, optional
        Target mask fraction of the cell area; default seeded in [0.08, 0.16].
    puncta_fraction : float
        Fraction of objects that are round puncta rather than worms.
    psf_sigma, illumination : float
        Optics, as in :func:`er_cell`.

    Returns
    -------
    CellImage
    """
    shape, bit_depth, rng, lay, (dimming, frac) = _start(shape, seed, noise_level, bit_depth, (dimming, 10, 30),
                                                         (foreground_fraction, 0.08, 0.16))
    if not 0 < frac < 0.5:
        raise ValueError(f"foreground_fraction must be in (0, 0.5), got {frac}")
    keep, crowd = lay.cell & ~lay.nucleus, np.exp(-((lay.dist_eff / (1.6 * lay.width)) ** 2))
    density = (0.12 + crowd) * (0.5 + 0.5 * smooth_field(shape, rng, min(shape) / 8)) * (keep & (lay.dist > 3))
    density, mask, structure = density.astype(np.float32), np.zeros(shape, bool), np.zeros(shape, np.float32)
    target = frac * lay.cell.sum()
    for _ in range(10):  # add batches until the target fraction is reached
        missing = target - mask.sum()
        if missing <= 0.03 * target:
            break
        m, f = _mito_objects(shape, rng, density, area=missing, puncta_fraction=puncta_fraction)
        mask |= m & keep
        structure = np.maximum(structure, f * keep)
    # out-of-focus mitochondria just off the plane and far from it, plus diffuse glow
    _, near = _mito_objects(shape, rng, density, area=target, puncta_fraction=puncta_fraction)
    _, far = _mito_objects(shape, rng, density, area=2 * target, puncta_fraction=puncta_fraction)
    blobs = ndi.gaussian_filter(near, 3.5) + 1.5 * ndi.gaussian_filter(far, 9.0)
    blobs /= max(float(blobs.max()), 1e-6)
    body = _body(lay)  # haze: out-of-focus blobs and a diffuse glow, both thick by the nucleus
    h_amp, cyto, h_amp_p = rng.uniform(0.15, 0.35), rng.uniform(0.04, 0.08), rng.uniform(0.15, 0.3)
    haze = (body * lay.fall * (h_amp * blobs + cyto), body * crowd * h_amp_p * (0.3 + blobs))
    extra = {"foreground_target": frac, "puncta_fraction": float(puncta_fraction),
             "haze": [float(h_amp), float(cyto), float(h_amp_p)]}
    return _finish("mito", lay, structure, mask, haze, rng, seed, noise_level, bit_depth, dimming,
                   {"psf_sigma": psf_sigma, "illumination": illumination}, extra)


GENERATORS = {"er": er_cell, "mito": mito_cell}


def development_set(kind: str = "er", seeds: tuple[int, ...] = (0, 1, 2),
                    noise_levels: tuple[str | float, ...] = ("low", "medium", "high"),
                    shape: tuple[int, int] = (384, 384), bit_depth: int = 12) -> list[CellImage]:
    """Cell images for every seed and noise level (seed-major order).

    Parameters
    ----------
    kind : str
        ``"er"`` or ``"mito"``.
    seeds : sequence of int
        One cell per seed, rendered at every noise level (same cell, different noise).
    noise_levels : sequence of str or float
        Names in :data:`NOISE_LEVELS_CELL` or photons.
    shape, bit_depth
        As in :func:`er_cell`.

    Returns
    -------
    list of CellImage
        ``len(seeds) * len(noise_levels)`` images; ``params`` names seed and noise level.
    """
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {sorted(GENERATORS)}, got {kind!r}")
    gen = GENERATORS[kind]
    return [gen(shape, seed=s, noise_level=n, bit_depth=bit_depth) for s in seeds for n in noise_levels]
