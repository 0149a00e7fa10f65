"""Seeded synthetic 3D z-stacks of a cell (ER or mitochondria) with ground truth.

A flattened ellipsoidal cell with a nucleus fills the middle planes (planes above and below get only
out-of-focus light). ER: Voronoi tubule meshes on curved layers under the top and bottom cortex,
denser layers and the nuclear envelope by the nucleus, 10-50x brighter there. Mitochondria: branched
tubes from persistent random walks just under the cortex. Optics: anisotropic Gaussian PSF, wide
haze, cytosol glow, uneven illumination; the camera of :mod:`.synthetic_cells` (offset, gain, shot
and read noise, clipping at the bit depth). Ground truth: the structure voxels before blur.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import Voronoi

from .synthetic import _curve_points, _poisson_disc
from .synthetic_cells import CAMERA_OFFSET, ZONES, _fit_scale, peripheral_snr
from .synthetic_optics import photons_for, smooth_field, to_uint16

MIN_RADIUS = 0.6  # px: the thinnest a tube is drawn across (y, x)
MIN_COVER = 0.1  # part of a voxel's z-extent a tube must cover for the voxel to be in the mask
HAZE_SIGMA_UM = (1.0, 0.6)  # out-of-focus blur (z, xy)


@dataclass
class VolumeImage:
    """One synthetic z-stack and everything known about it.

    Attributes
    ----------
    image : ndarray of uint16
        Camera counts (ADU), (Z, Y, X).
    mask, cell : ndarray of bool
        Ground truth (in-focus structure voxels before blur) and the inside of the cell, (Z, Y, X).
    spacing : tuple of float
        Voxel size (z, y, x) in um.
    kind : str
        ``"er"`` or ``"mito"``.
    params : dict
        JSON-friendly record of what made the stack (seed, noise level, PSF, gain...).
    signal : ndarray of float32
        Noise-free expected image in ADU (offset included, not clipped).
    zones : ndarray of uint8
        Region labels, see :data:`.synthetic_cells.ZONES`.
    """

    image: np.ndarray
    mask: np.ndarray
    cell: np.ndarray
    spacing: tuple[float, float, float]
    kind: str
    params: dict
    signal: np.ndarray | None = field(default=None, repr=False)
    zones: np.ndarray | None = field(default=None, repr=False)


# cell geometry in um (centre z, y, x; footprint radius terms; half-heights above and below the
# centre), voxel grids and the perinuclear fields of the zones
_Cell = namedtuple("_Cell", "centre r0 amp phase stretch tilt top bottom cell nucleus shell fall zones info")


def _check(shape: tuple, spacing: tuple, noise_level: str | float, bit_depth: int, psf_sigma_um: tuple,
           dimming: float | None) -> tuple:
    """Shape and spacing as tuples; ValueError naming the argument if one is bad."""
    shape, spacing = tuple(shape), tuple(spacing)
    if len(shape) != 3 or shape[0] < 6 or min(shape[1:]) < 32:
        raise ValueError(f"shape must be 3D (z, y, x) with at least 6 planes and 32 px a side, got {shape}")
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be 3 positive voxel sizes (z, y, x) in um, got {spacing}")
    if len(tuple(psf_sigma_um)) != 2 or not all(s > 0 for s in psf_sigma_um):
        raise ValueError(f"psf_sigma_um must be 2 positive sigmas (z, xy) in um, got {psf_sigma_um}")
    if int(bit_depth) != bit_depth or not 8 <= bit_depth <= 16:
        raise ValueError(f"bit_depth must be an integer from 8 to 16, got {bit_depth!r}")
    if dimming is not None and not dimming >= 1:
        raise ValueError(f"dimming must be at least 1, got {dimming!r}")
    photons_for(noise_level)  # checks noise_level
    return tuple(int(n) for n in shape), tuple(float(s) for s in spacing)


def _radius(c: _Cell, theta: np.ndarray) -> np.ndarray:
    """Footprint radius (um) of the cell towards angle ``theta``: a wobbly ellipse."""
    ell = 1.0 / np.sqrt(np.cos(theta - c.tilt) ** 2 + (np.sin(theta - c.tilt) / c.stretch) ** 2)
    ks = np.arange(2, 2 + len(c.amp))
    return c.r0 * ell * (1 + (c.amp * np.cos(ks * theta[..., None] + c.phase)).sum(-1))


def _rho(c: _Cell, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Footprint radius at (y, x) um, normalised: 0 on the cell axis, 1 at the cell edge."""
    dy, dx = y - c.centre[1], x - c.centre[2]
    return np.hypot(dy, dx) / _radius(c, np.arctan2(dy, dx))


def _make_cell(shape: tuple, spacing: tuple, rng: np.random.Generator) -> _Cell:
    """Random flattened cell (ellipsoid-like, flatter below), nucleus and perinuclear zone."""
    (nz, ny, nx), (sz, sy, sx) = shape, spacing
    half = np.array([ny * sy, nx * sx]) / 2
    r0 = rng.uniform(0.36, 0.44) * 2 * half.min()
    amp, phase = rng.normal(0, 0.05, 4) / np.arange(2, 6) ** 0.8, rng.uniform(0, 2 * np.pi, 4)
    stretch, tilt = rng.uniform(0.75, 1.0), rng.uniform(0, np.pi)
    top = rng.uniform(1.6, 2.2)
    bottom = top * rng.uniform(0.6, 0.85)
    squeeze = min(1.0, 0.72 * nz * sz / (top + bottom))  # leave out-of-focus planes above and below
    top, bottom = top * squeeze, bottom * squeeze
    zc = bottom + (nz * sz - top - bottom) * rng.uniform(0.4, 0.6)
    yc, xc = half + rng.uniform(-1, 1, 2) * np.clip(half - 1.05 * r0, 0, None)
    c = _Cell((zc, yc, xc), r0, amp, phase, stretch, tilt, top, bottom, *[None] * 6)
    z, y, x = (np.arange(n) * s for n, s in zip(shape, spacing))
    zr, y, x = z[:, None, None] - zc, y[:, None], x[None, :]
    cell = _rho(c, y, x)[None] ** 2 + (zr / np.where(zr >= 0, top, bottom)) ** 2 < 1
    # nucleus: a tilted ellipsoid off the centre, well inside the cell
    a = rng.uniform(0.3, 0.38) * r0
    b, tn, cz = a * rng.uniform(0.75, 0.95), rng.uniform(0, np.pi), rng.uniform(0.6, 0.72) * min(top, bottom)
    off = rng.uniform(0, 0.3) * r0 * np.exp(1j * rng.uniform(0, 2 * np.pi))
    u, v = y - yc - off.imag, x - xc - off.real
    ue, ve = u * np.cos(tn) + v * np.sin(tn), -u * np.sin(tn) + v * np.cos(tn)
    nucleus = ((zr - rng.uniform(-0.1, 0.1) * cz) / cz) ** 2 + ((ue / a) ** 2 + (ve / b) ** 2)[None] < 1
    nucleus &= ndi.binary_erosion(cell, iterations=2)
    # perinuclear zone: distance from the nucleus (um), stretched by smooth random factors
    dist = (ndi.distance_transform_edt(~nucleus, sampling=spacing) if nucleus.any()
            else np.sqrt(zr**2 + ((y - yc) ** 2 + (x - xc) ** 2)[None]))
    lopsided = 1 - rng.uniform(0.2, 0.45) * np.cos(np.arctan2(y - yc, x - xc) - rng.uniform(0, 2 * np.pi))
    d_eff = dist * ((0.6 + 0.8 * smooth_field((ny, nx), rng, min(ny, nx) / 3)) * lopsided)[None]
    d_far = float(np.quantile(d_eff[cell], 0.95))
    width = min(rng.uniform(0.9, 1.4), 0.33 * d_far)
    shell = np.exp(-((d_eff / width) ** 2.5)).astype(np.float32)
    zones = np.where(shell >= 0.5, 2, np.where(d_eff < 2.2 * width, 3, 4)).astype(np.uint8)
    zones[nucleus], zones[~cell] = ZONES["nucleus"], ZONES["outside"]
    info = {"cell_centre_um": [float(zc), float(yc), float(xc)], "cell_radius_um": float(r0),
            "cell_height_um": float(top + bottom), "cell_fraction": float(cell.mean()),
            "nucleus_axes_um": [float(cz), float(a), float(b)], "perinuclear_width_um": float(width)}
    return c._replace(cell=cell, nucleus=nucleus, shell=shell, zones=zones, info=info,
                      fall=(1.0 / (1.0 + d_eff / d_far)).astype(np.float32))


def _draw(pts: np.ndarray, radius: np.ndarray, value: np.ndarray, shape: tuple) -> tuple:
    """Mask and fluorophore map of tubes through sub-voxel points ``pts`` (N, 3; voxels, z y x).

    ``radius`` (N, 3) is the ellipsoidal tube radius in voxels per axis, ``value`` (N,) the
    brightness. z is sampled coarsely, so a voxel gets the part of its z-extent that the tube
    covers on the voxel's (y, x) line: fluorophores in proportion, the mask from :data:`MIN_COVER`.
    """
    mask, fluor = np.zeros(int(np.prod(shape)), bool), np.zeros(int(np.prod(shape)), np.float32)
    reach = np.ceil(radius.max(0, initial=1) + [0.5, 0, 0]).astype(int)
    off = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3)
    for s in range(0, len(pts), 8000):  # chunks keep memory small
        p, r, val = pts[s:s + 8000], radius[s:s + 8000, None, :], value[s:s + 8000, None]
        vox = np.rint(p).astype(int)[:, None, :] + off[None]  # (n, k, 3)
        d = vox - p[:, None, :]
        half = r[..., 0] * np.sqrt(np.clip(1 - (d[..., 1] / r[..., 1]) ** 2 - (d[..., 2] / r[..., 2]) ** 2, 0, None))
        cover = np.clip(np.minimum(half - d[..., 0], 0.5) - np.maximum(-half - d[..., 0], -0.5), 0, None)
        ok = (cover > 0) & ((vox >= 0) & (vox < np.array(shape))).all(-1)
        flat = np.ravel_multi_index(tuple(vox[ok].T), shape)
        mask[flat[cover[ok] >= MIN_COVER]] = True
        np.maximum.at(fluor, flat, (np.broadcast_to(val, cover.shape)[ok] * cover[ok]).astype(np.float32))
    return mask.reshape(shape), fluor.reshape(shape)


def _finish(kind: str, c: _Cell, structure: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            spacing: tuple, seed: int | np.random.Generator, noise_level: str | float, extra: dict, *,
            dimming: float, bit_depth: int, psf_sigma_um: tuple, illumination: float, haze: tuple,
            saturation: float) -> VolumeImage:
    """Blur, add haze, set the perinuclear zone ``dimming`` x brighter, take a camera picture.

    Fluorophores are ``structure * (fall + k * shell)``, with ``k`` fitted on the noise-free median
    perinuclear / peripheral foreground; photons scale the peripheral foreground median to
    :func:`photons_for` ``(noise_level)``. The gain saturates ``saturation`` of the cell (if > 0).
    """
    photons, structure = photons_for(noise_level), structure.astype(np.float32)
    psf = tuple(s / sp for s, sp in zip((psf_sigma_um[0], *psf_sigma_um[1:] * 2), spacing))
    wide = tuple(s / sp for s, sp in zip((HAZE_SIGMA_UM[0], HAZE_SIGMA_UM[1], HAZE_SIGMA_UM[1]), spacing))
    illum = (1.0 - illumination * smooth_field(structure.shape[1:], rng, max(structure.shape[1:]) / 2.5))[None]
    h_amp, cyto, h_peri = haze
    body = (ndi.gaussian_filter(c.cell.astype(np.float32), (1.0, 3.0, 3.0))
            * (1 - 0.8 * ndi.gaussian_filter(c.nucleus.astype(np.float32), (1.0, 4.0, 4.0))))
    inner, outer = mask & (c.zones == ZONES["perinuclear"]), mask & (c.zones == ZONES["peripheral"])
    if inner.sum() < 20 or outer.sum() < 20:  # degenerate layout: use shell quartiles
        q1, q3 = np.quantile(c.shell[mask], [0.25, 0.75])
        inner, outer = mask & (c.shell >= q3), mask & (c.shell <= q1)
    f0, f1 = structure * c.fall * illum, structure * c.shell * illum
    g0 = ndi.gaussian_filter(f0, psf)
    norm = max(float(np.median(g0[outer])), 1e-6)  # peripheral foreground -> 1
    b_out = rng.uniform(2.0, 5.0)  # photons outside the cell (medium, camera glow)
    base = (g0 + h_amp * ndi.gaussian_filter(f0, wide, truncate=3)) / norm + cyto * body * c.fall * illum
    base += b_out / photons
    extra_f = ndi.gaussian_filter(f1, psf) + h_amp * ndi.gaussian_filter(f1, wide, truncate=3)
    extra_f = extra_f / norm + h_peri * body * c.shell * illum
    k = _fit_scale(base, extra_f, inner, outer, dimming)
    expected = photons * (base + k * extra_f)
    max_adu = float(2**bit_depth - 1)
    if saturation > 0:  # gain such that about this fraction of the cell saturates
        gain = (max_adu - CAMERA_OFFSET) / float(np.quantile(expected[c.cell], 1 - saturation))
    else:  # a plain camera gain, far from saturation as in live imaging
        gain = rng.uniform(0.8, 2.0)
    read_e = rng.uniform(1.2, 2.0)
    counts = rng.poisson(expected).astype(np.float32) + rng.normal(0.0, read_e, expected.shape).astype(np.float32)
    image = to_uint16(np.clip(CAMERA_OFFSET + gain * counts, 0, max_adu))
    signal = (CAMERA_OFFSET + gain * expected).astype(np.float32)
    info = {"photons": photons, "dimming": dimming, "bright_scale": k, "gain": gain, "offset": CAMERA_OFFSET,
            "dimming_measured": np.median(expected[inner]) / np.median(expected[outer]),
            "read_noise_e": read_e, "background_photons": b_out, "illumination": illumination,
            "saturation_target": saturation, "saturated_fraction": (image[c.cell] == max_adu).mean(),
            "mask_fraction": mask[c.cell].mean(), "peripheral_snr": peripheral_snr(image, signal, mask, c.zones)}
    params = {"kind": kind, "shape": list(mask.shape), "spacing": list(spacing),
              "seed": "generator" if isinstance(seed, np.random.Generator) else int(seed),
              "noise_level": noise_level if isinstance(noise_level, str) else float(noise_level),
              "bit_depth": int(bit_depth), **{key: float(value) for key, value in info.items()},
              "psf_sigma_um": [float(s) for s in psf_sigma_um], "psf_sigma_vox": [float(s) for s in psf],
              "haze": [float(h) for h in haze], **c.info, **extra}
    return VolumeImage(image, mask, c.cell, spacing, kind, params, signal, c.zones)


def _near_nucleus(c: _Cell) -> np.ndarray:
    """The nucleus grown by one voxel: nucleus and a closed one-voxel nuclear envelope."""
    off = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1) / [1.0, 1.5, 1.5]
    return ndi.binary_dilation(c.nucleus, structure=(off**2).sum(-1) <= 1)


def _at(grid: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Values of a 2D or 3D grid at the voxels nearest to ``pts`` (voxel coordinates, clipped)."""
    ix = np.clip(np.rint(pts[:, -grid.ndim:]).astype(int), 0, np.array(grid.shape) - 1)
    return grid[tuple(ix.T)]


def _mesh_points(where: np.ndarray, rng: np.random.Generator, size: float,
                 open_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curve points (y, x px), brightness and edge id of a Voronoi mesh of polygons ``size`` px
    across over the bounding box of ``where``; three-way junctions, ``open_fraction`` edges removed."""
    idx = np.argwhere(where)
    lo, pad = idx.min(0) - 2.0 * size, 2.0 * size
    ext = tuple(float(e) for e in idx.max(0) + 1 + pad - lo)
    seeds = _poisson_disc(ext, 0.7 * size, rng)
    thin = smooth_field((int(ext[0]) + 1, int(ext[1]) + 1), rng, max(ext) / 2)  # bigger polygons where low
    seeds = seeds[rng.uniform(size=len(seeds)) < 0.35 + 0.65 * thin[tuple(seeds.astype(int).T)]]
    vor = Voronoi(seeds + lo)
    ridges = np.array([r for r in vor.ridge_vertices if -1 not in r], dtype=np.int64).reshape(-1, 2)
    ridges = ridges[rng.uniform(size=len(ridges)) >= open_fraction]
    p0, p1 = vor.vertices[ridges[:, 0]], vor.vertices[ridges[:, 1]]
    near = np.all([((p >= lo + size) & (p < lo + np.array(ext) - size)).all(1) for p in (p0, p1)], 0)
    p0, p1 = p0[near], p1[near]
    d = p1 - p0
    ctrl = (p0 + p1) / 2 + np.stack([-d[:, 1], d[:, 0]], 1) * rng.normal(0, 0.15, (len(d), 1))
    pts, edge = _curve_points(p0, p1, ctrl, step=0.3)
    return pts, rng.uniform(0.45, 1.0, len(d))[edge], edge


def er_volume(shape: tuple[int, int, int] = (24, 192, 192), seed: int | np.random.Generator = 0,
              noise_level: str | float = "medium", spacing: tuple[float, float, float] = (0.25, 0.065, 0.065),
              *, bit_depth: int = 12, dimming: float | None = None, psf_sigma_um: tuple[float, float] = (0.35, 0.1),
              illumination: float = 0.3) -> VolumeImage:
    """A z-stack of a cell with ER: tubule meshes under the cortex, dense and bright by the nucleus.

    Parameters
    ----------
    shape : tuple of int
        Stack shape (z, y, x).
    seed : int or numpy.random.Generator
        Seed of every random step; the same seed gives the same stack.
    noise_level : str or float
        ``"low"``, ``"medium"``, ``"high"`` (:data:`.synthetic_optics.NOISE_LEVELS`) or photons: median
        in-focus photons on the peripheral foreground. The cell does not depend on it.
    spacing : tuple of float
        Voxel size (z, y, x) in um.
    bit_depth : int
        Camera bit depth (8-16); voxels clip at ``2**bit_depth - 1``; 0.2-0.8 % of the cell saturates.
    dimming : float, optional
        Perinuclear / peripheral foreground brightness ratio; default seeded in [10, 50].
    psf_sigma_um : tuple of float
        Gaussian PSF sigmas (z, xy) in um.
    illumination : float
        Uneven-illumination strength (the field spans [1 - x, 1]).

    Returns
    -------
    VolumeImage
    """
    shape, spacing = _check(shape, spacing, noise_level, bit_depth, psf_sigma_um, dimming)
    rng = np.random.default_rng(seed)
    drawn = rng.uniform(10, 50)
    dimming = float(drawn if dimming is None else dimming)
    c, sp = _make_cell(shape, spacing, rng), np.array(spacing)
    near, foot = _near_nucleus(c), c.cell.any(0)
    size_d, size_s = rng.uniform(9, 11), rng.uniform(14, 18)  # polygon sizes (px): ~0.6 and ~1 um
    open_d, open_s = rng.uniform(0.04, 0.1), rng.uniform(0.2, 0.32)
    blend, bead = smooth_field(shape[1:], rng, 18.0), smooth_field(shape[1:], rng, 6.0)
    pts, val, rad = [], [], []
    # each side of the cell: a sparse cortical mesh, a dense one, a dense inner layer by the nucleus
    for side in (1, -1):
        half = c.top if side > 0 else c.bottom
        depth = rng.uniform(0.25, 0.45) + 0.3 * (smooth_field(shape[1:], rng, 30.0) - 0.5)  # um
        for dense, inner in ((False, False), (True, False), (True, True)):
            yx, v, edge = _mesh_points((c.shell > 0.2).any(0) & foot if dense else foot, rng,
                                       size_d if dense else size_s, open_d if dense else open_s)
            r = rng.uniform(0.06, 0.11, edge.max() + 1 if len(edge) else 1)[edge]  # tubule radius, um
            lift = half * np.sqrt(np.clip(1 - _rho(c, yx[:, 0] * sp[1], yx[:, 1] * sp[2]) ** 2, 0, None))
            z = lift * rng.uniform(0.35, 0.6) if inner else lift - _at(depth, yx)
            p = np.column_stack([(c.centre[0] + side * np.maximum(z, 0)) / sp[0], yx])
            mix = _at(c.shell, p) + 0.6 * (_at(blend, yx) - 0.5)
            ok = (z > 0) | (side < 0)  # where the cell is thinner than two depths one mesh is both
            ok &= ((mix > 0.45) if dense else (mix < 0.55)) & _at(c.cell, p) & ~_at(near, p)
            pts.append(p[ok]), val.append((v * (0.75 + 0.5 * _at(bead, yx)))[ok]), rad.append(r[ok])
    radius = np.maximum(np.concatenate(rad)[:, None] / sp, [0, MIN_RADIUS, MIN_RADIUS])
    tmask, tfluor = _draw(np.concatenate(pts), radius, np.concatenate(val), shape)
    envelope = near & ~c.nucleus  # a closed one-voxel shell, textured
    env_f = envelope * rng.uniform(0.6, 0.85) * (0.8 + 0.4 * smooth_field(shape[1:], rng, 8.0))[None]
    keep = c.cell & ~c.nucleus
    haze = (rng.uniform(0.08, 0.18), rng.uniform(0.04, 0.08), rng.uniform(0.3, 0.5))
    extra = {"mesh_size_px": [float(size_d), float(size_s)], "open_fraction": [float(open_d), float(open_s)]}
    return _finish("er", c, np.maximum(tfluor, env_f) * keep, (tmask | envelope) & keep, rng, spacing, seed,
                   noise_level, extra, dimming=dimming, bit_depth=bit_depth, psf_sigma_um=psf_sigma_um,
                   illumination=illumination, haze=haze, saturation=rng.uniform(0.002, 0.008))


def _frame(c: _Cell, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Footprint radius and half-height (um) of the cell on the rays to ``p`` (um from the centre)."""
    return _radius(c, np.arctan2(p[:, 1], p[:, 2])), np.where(p[:, 0] >= 0, c.top, c.bottom)


def _onto(c: _Cell, p: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Points ``p`` moved along their ray from the centre to ``depth`` um under the cell surface."""
    big_r, h = _frame(c, p)
    length = np.maximum(np.linalg.norm(p, axis=1), 1e-9)
    to_edge = length / np.hypot(np.hypot(p[:, 1], p[:, 2]) / big_r, p[:, 0] / h)
    return p * (np.maximum(to_edge - depth, 0.05) / length)[:, None]


def _turn(c: _Cell, p: np.ndarray, t: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Headings ``t`` made tangent to the cell surface at ``p``, turned by ``angle`` about its normal."""
    big_r, h = _frame(c, p)
    n = p / np.column_stack([h, big_r, big_r]) ** 2
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    t = t - n * (n * t).sum(1, keepdims=True)
    t = t * np.cos(angle)[:, None] + np.cross(n, t) * np.sin(angle)[:, None]
    return t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)


def _walks(c: _Cell, rng: np.random.Generator, p: np.ndarray, t: np.ndarray, steps: np.ndarray,
           step: float, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Persistent random walks under the cell surface: paths (n, max steps, 3) in um, valid mask."""
    p = _onto(c, p, depth)
    out = np.empty((len(p), int(steps.max(initial=1)), 3))
    for i in range(out.shape[1]):
        out[:, i] = p
        t = _turn(c, p, t, rng.normal(0.0, np.sqrt(step / 2.0), len(p)))  # persistence length 4 um
        q = _onto(c, p + step * t, depth)
        t, p = (q - p) / np.maximum(np.linalg.norm(q - p, axis=1, keepdims=True), 1e-9), q
    return out, np.arange(out.shape[1])[None, :] < steps[:, None]


def _mitochondria(c: _Cell, rng: np.random.Generator, n: int, spacing: tuple) -> tuple:
    """Points (voxels), radii (voxels) and brightness of ``n`` tubes under the cortex, half branched."""
    g = rng.normal(size=(4 * n, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    big_r, h = _frame(c, g)
    area = np.sqrt((1 - g[:, 0] ** 2) / big_r**2 + (g[:, 0] / h) ** 2)  # surface area per direction
    pick = rng.choice(4 * n, n, replace=False, p=area / area.sum())
    start = (g * np.column_stack([h, big_r, big_r]))[pick]  # uniform on the cell surface
    rad, bright = rng.uniform(0.15, 0.26, n), rng.uniform(0.55, 1.0, n)
    depth, step = rad + rng.uniform(0.1, 0.3, n), 0.5 * min(spacing[1:])
    steps = np.maximum(np.clip(rng.lognormal(np.log(2.0), 0.5, n), 0.8, 5.0) / step, 2).astype(int)
    path, valid = _walks(c, rng, start, _turn(c, start, rng.normal(size=(n, 3)), np.zeros(n)), steps, step, depth)
    # branches from a random point of half the tubes, turned by 50-80 degrees
    at = (rng.uniform(size=n) * (steps - 1)).astype(int)
    fork = np.flatnonzero(rng.uniform(size=n) < 0.5)
    p_b = path[fork, at[fork]]
    t_b = _turn(c, p_b, path[fork, at[fork] + 1] - p_b,
                rng.choice([-1, 1], len(fork)) * rng.uniform(0.9, 1.4, len(fork)))
    s_b = np.maximum(steps[fork] * rng.uniform(0.3, 0.7, len(fork)), 2).astype(int)
    path_b, valid_b = _walks(c, rng, p_b, t_b, s_b, step, depth[fork])
    obj = np.concatenate([np.nonzero(valid)[0], fork[np.nonzero(valid_b)[0]]])
    pts = (np.concatenate([path[valid], path_b[valid_b]]) + np.asarray(c.centre)) / np.asarray(spacing)
    return pts, np.maximum(rad[obj, None] / np.asarray(spacing), [0, MIN_RADIUS, MIN_RADIUS]), bright[obj]


def mito_volume(shape: tuple[int, int, int] = (24, 192, 192), seed: int | np.random.Generator = 0,
                noise_level: str | float = "medium", spacing: tuple[float, float, float] = (0.25, 0.065, 0.065),
                *, bit_depth: int = 12, dimming: float | None = None, foreground_fraction: float | None = None,
                psf_sigma_um: tuple[float, float] = (0.35, 0.1), illumination: float = 0.3) -> VolumeImage:
    """A z-stack of a cell with mitochondria: branched tubes (0.3-0.5 um across) under the cortex.

    Parameters
    ----------
    shape, seed, noise_level, spacing, bit_depth, psf_sigma_um, illumination
        As in :func:`er_volume`, but the camera gain is a plain 0.8-2 ADU per photon (no saturation,
        as in live imaging).
    dimming : float, optional
        Perinuclear / peripheral foreground brightness ratio; default seeded in [1.5, 4].
    foreground_fraction : float, optional
        Target mask fraction of the cell volume; default seeded in [0.04, 0.08].

    Returns
    -------
    VolumeImage
    """
    shape, spacing = _check(shape, spacing, noise_level, bit_depth, psf_sigma_um, dimming)
    rng = np.random.default_rng(seed)
    drawn = rng.uniform(1.5, 4), rng.uniform(0.04, 0.08)
    dimming = float(drawn[0] if dimming is None else dimming)
    frac = float(drawn[1] if foreground_fraction is None else foreground_fraction)
    if not 0 < frac < 0.3:
        raise ValueError(f"foreground_fraction must be in (0, 0.3), got {frac}")
    c = _make_cell(shape, spacing, rng)
    keep = c.cell & ~_near_nucleus(c)
    mask, structure = np.zeros(shape, bool), np.zeros(shape, np.float32)
    target, per_tube = frac * c.cell.sum(), 2 * np.pi * 0.2**2 * 2.0 / np.prod(spacing)  # voxels per tube
    for _ in range(10):  # add batches until the target fraction is reached
        before = mask.sum()
        if target - before <= 0.03 * target:
            break
        n = max(2, int(np.ceil(0.8 * (target - before) / per_tube)))
        m, f = _draw(*_mitochondria(c, rng, n, spacing), shape)
        mask |= m & keep
        structure = np.maximum(structure, f * keep)
        per_tube = max((mask.sum() - before) / n, 1.0)  # learn the real size
    haze = (rng.uniform(0.15, 0.3), rng.uniform(0.02, 0.05), rng.uniform(0.1, 0.2))
    return _finish("mito", c, structure, mask, rng, spacing, seed, noise_level, {"foreground_target": frac},
                   dimming=dimming, bit_depth=bit_depth, psf_sigma_um=psf_sigma_um, illumination=illumination,
                   haze=haze, saturation=0.0)


GENERATORS = {"er": er_volume, "mito": mito_volume}


def volume_set(kind: str = "er", seeds: tuple[int, ...] = (0, 1),
               noise_levels: tuple[str | float, ...] = ("low", "medium", "high"),
               shape: tuple[int, int, int] = (24, 192, 192),
               spacing: tuple[float, float, float] = (0.25, 0.065, 0.065)) -> list[VolumeImage]:
    """Stacks for every seed and noise level, seed-major (one cell per seed, at every level).

    Parameters
    ----------
    kind : str
        ``"er"`` or ``"mito"``.
    seeds, noise_levels : sequence
        Seeds (int) and noise levels (as in :func:`er_volume`).
    shape, spacing : tuple
        As in :func:`er_volume`.

    Returns
    -------
    list of VolumeImage
        ``len(seeds) * len(noise_levels)`` stacks.
    """
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {sorted(GENERATORS)}, got {kind!r}")
    return [GENERATORS[kind](shape, seed=s, noise_level=n, spacing=spacing) for s in seeds for n in noise_levels]
