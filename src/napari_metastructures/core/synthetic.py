"""Seeded synthetic fluorescence images with ground truth.

Two organelle models, both 2D, both rendered through the same simple optics:

* :func:`er_network` - endoplasmic reticulum: a polygonal mesh of thin tubules with
  three-way junctions (curved Voronoi edges), some open polygons, optional sheets.
* :func:`mitochondria` - short worm-like tubules and round puncta, sparse (about 10 %
  foreground), clustered, with strong out-of-focus haze.

Optics (:func:`render_optics`, in :mod:`.synthetic_optics`, re-exported here): PSF blur
(Gaussian), smooth uneven illumination, out-of-focus haze, a background level, Poisson shot
noise and Gaussian read noise. Images are float32 photon counts; :func:`to_uint16` converts them.

:func:`circle_in_rectangle` gives the binary test figure used for meta-structure demos.

Every generator is deterministic for a given ``seed``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import Voronoi

from .synthetic_optics import (  # noqa: F401 (re-exported)
    NOISE_LEVELS,
    measured_snr,
    photons_for,
    render_optics,
    smooth_field,
    to_uint16,
)

# ---------------------------------------------------------------- geometry helpers

def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 16:
        raise ValueError(f"shape must be 2D with both sides at least 16 px, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _poisson_disc(extent: tuple[float, float], radius: float, rng: np.random.Generator,
                  candidates: int = 8) -> np.ndarray:
    """Random points in [0, extent) no closer than ``radius`` (dart throwing on a grid)."""
    cell = radius / np.sqrt(2)
    gh, gw = int(np.ceil(extent[0] / cell)), int(np.ceil(extent[1] / cell))
    grid = -np.ones((gh, gw), dtype=np.int64)
    n_try = int(candidates * extent[0] * extent[1] / radius**2)
    trial = rng.uniform(0, 1, size=(n_try, 2)) * np.asarray(extent)
    pts = np.empty((n_try, 2))
    n = 0
    r2 = radius * radius
    for p in trial:
        gy, gx = int(p[0] / cell), int(p[1] / cell)
        near = grid[max(gy - 2, 0):gy + 3, max(gx - 2, 0):gx + 3].ravel()
        near = near[near >= 0]
        if near.size and (((pts[near] - p) ** 2).sum(1) < r2).any():
            continue
        grid[gy, gx] = n
        pts[n] = p
        n += 1
    return pts[:n].copy()


def _curve_points(p0: np.ndarray, p1: np.ndarray, ctrl: np.ndarray, step: float = 0.4) -> tuple:
    """Sample quadratic Bezier curves (one per row) every ``step`` pixels; returns points, curve index."""
    length = np.linalg.norm(p1 - p0, axis=1) + np.linalg.norm(ctrl - (p0 + p1) / 2, axis=1)
    n = np.maximum(2, np.ceil(length / step).astype(np.int64) + 1)
    idx = np.repeat(np.arange(len(n)), n)
    t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n - 1, n)
    t = t[:, None]
    pts = (1 - t) ** 2 * p0[idx] + 2 * (1 - t) * t * ctrl[idx] + t**2 * p1[idx]
    return pts, idx


def _rasterize(pts: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> tuple:
    """Skeleton image (bool) and per-pixel value image from sub-pixel points."""
    rc = np.rint(pts).astype(np.int64)
    keep = (rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])
    rc, values = rc[keep], values[keep]
    skel = np.zeros(shape, dtype=bool)
    val = np.zeros(shape, dtype=np.float32)
    skel[rc[:, 0], rc[:, 1]] = True
    val[rc[:, 0], rc[:, 1]] = values
    return skel, val


def _tubes(skel: np.ndarray, val: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Grow a skeleton into tubes of ``radius``: mask and a fluorophore map (projected thickness)."""
    if not skel.any():
        return np.zeros(skel.shape, bool), np.zeros(skel.shape, np.float32)
    dist, (iy, ix) = ndi.distance_transform_edt(~skel, return_indices=True)
    mask = dist <= radius
    # a filled tube seen from above: thickness ~ chord length sqrt(1 - (d/r)^2); soft edge
    rr = radius + 0.5
    profile = np.sqrt(np.clip(1.0 - (dist / rr) ** 2, 0, None))
    return mask, (profile * val[iy, ix]).astype(np.float32)


# ---------------------------------------------------------------- ER network

def er_network(
    shape: tuple[int, int] = (512, 512),
    seed: int | np.random.Generator = 0,
    noise_level: str | float = "medium",
    mesh_size: float = 26.0,
    tubule_width: float = 3.0,
    open_fraction: float = 0.15,
    sheets: int = 1,
    haze: float = 0.3,
    psf_sigma: float = 1.2,
    illumination: float = 0.4,
    background: float = 0.08,
) -> tuple[np.ndarray, np.ndarray]:
    """Render an ER-like network of thin tubules with its ground-truth mask.

    The mesh is the Voronoi diagram of well-spaced random points (so junctions are
    three-way), with gently curved edges; ``open_fraction`` of the edges is removed to
    leave open polygons and dangling ends. A blurred second, sparser network stands in
    for out-of-focus ER.

    Parameters
    ----------
    shape : tuple of int
        Image shape (rows, columns).
    seed : int or numpy.random.Generator
        Seed; the same seed gives the same image and mask.
    noise_level : str or float
        ``"low"``, ``"medium"``, ``"high"`` (see :data:`NOISE_LEVELS`) or the peak signal in photons.
    mesh_size : float
        Typical polygon diameter in pixels (mean spacing of the Voronoi seeds).
    tubule_width : float
        Width of a tubule in the mask, in pixels.
    open_fraction : float
        Fraction of mesh edges removed.
    sheets : int
        Number of small ER sheets (irregular flat patches on junctions) added.
    haze : float
        Out-of-focus ER intensity relative to in-focus tubules.
    psf_sigma, illumination, background : float
        Optics, see :func:`render_optics`.

    Returns
    -------
    image : ndarray of float32
        Photon counts.
    mask : ndarray of uint8
        1 on tubules and sheets, 0 elsewhere.
    """
    return _picture(shape, seed, noise_level, _er_structure, (mesh_size, tubule_width, open_fraction, sheets, haze),
                    psf_sigma=psf_sigma, illumination=illumination, background=background)


def _picture(shape: tuple[int, int], seed: int | np.random.Generator, noise_level: str | float,
             structure: Callable, args: tuple, **optics) -> tuple[np.ndarray, np.ndarray]:
    """Seed, check the arguments, ``fluor, mask, haze = structure(shape, rng, *args)``, image it.

    The frame shared by :func:`er_network` and :func:`mitochondria`; ``optics`` are keywords of
    :func:`render_optics`. Returns the image and the uint8 mask.
    """
    rng = np.random.default_rng(seed)
    photons = photons_for(noise_level)
    shape = _check_shape(shape)
    fluor, mask, haze = structure(shape, rng, *args)
    image = render_optics(fluor, rng, haze=haze, photons=photons, **optics)
    return image, mask.astype(np.uint8)


def _er_structure(shape: tuple[int, int], rng: np.random.Generator, mesh_size: float, tubule_width: float,
                  open_fraction: float, sheets: int, haze: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-focus fluorophores, mask and haze of :func:`er_network`."""
    skel, val, junctions = _mesh(shape, rng, mesh_size, open_fraction)
    mask, fluor = _tubes(skel, val, tubule_width / 2)
    if sheets:
        sheet_mask = _sheets(shape, rng, junctions, sheets, mesh_size)
        fluor = np.maximum(fluor, sheet_mask * rng.uniform(0.45, 0.6))
        mask |= sheet_mask
    # out-of-focus ER: another, coarser mesh, strongly blurred
    hskel, hval, _ = _mesh(shape, rng, mesh_size * 1.3, open_fraction)
    _, hfluor = _tubes(hskel, hval, tubule_width / 2 + 1)
    blur = ndi.gaussian_filter(hfluor, 4.0)
    diffuse = smooth_field(shape, rng, scale=max(shape) / 4)
    return fluor, mask, haze * (blur / max(blur.max(), 1e-6) + 0.5 * diffuse)


def _mesh(shape: tuple[int, int], rng: np.random.Generator, mesh_size: float,
          open_fraction: float, *, skip_outside: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skeleton, per-pixel brightness and junction coordinates of one Voronoi mesh.

    With ``skip_outside`` edges whose curve cannot reach the frame (both ends and the
    control point beyond the same side) are not sampled: same output, much faster,
    since the hull of the padded seeds has edges thousands of pixels long.
    """
    pad = 2 * mesh_size
    ext = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    pts = _poisson_disc(ext, mesh_size * 0.7, rng) - pad
    # thin the seeds where a smooth field is low: bigger polygons there
    field = smooth_field(shape, rng, scale=max(shape) / 2)
    rc = np.clip(np.rint(pts).astype(int), 0, np.array(shape) - 1)
    keep = rng.uniform(size=len(pts)) < 0.35 + 0.65 * field[rc[:, 0], rc[:, 1]]
    pts = pts[keep]
    vor = Voronoi(pts)
    ridges = np.array([r for r in vor.ridge_vertices if -1 not in r], dtype=np.int64).reshape(-1, 2)
    ridges = ridges[rng.uniform(size=len(ridges)) >= open_fraction]
    p0, p1 = vor.vertices[ridges[:, 0]], vor.vertices[ridges[:, 1]]
    d = p1 - p0
    normal = np.stack([-d[:, 1], d[:, 0]], 1)
    ctrl = (p0 + p1) / 2 + normal * rng.normal(0, 0.15, size=(len(d), 1))
    bright = rng.uniform(0.45, 1.0, size=len(ridges))
    if skip_outside:  # a Bezier curve stays in the hull of its three points
        ys, xs = np.stack([p0[:, 0], p1[:, 0], ctrl[:, 0]]), np.stack([p0[:, 1], p1[:, 1], ctrl[:, 1]])
        off = ((ys < -1).all(0) | (ys > shape[0]).all(0) | (xs < -1).all(0) | (xs > shape[1]).all(0))
        p0, p1, ctrl, bright = p0[~off], p1[~off], ctrl[~off], bright[~off]
    pts_c, idx = _curve_points(p0, p1, ctrl)
    skel, val = _rasterize(pts_c, bright[idx], shape)
    # beaded look: slow brightness variation along tubules
    val *= 0.75 + 0.5 * smooth_field(shape, rng, scale=6.0)
    return skel, val, vor.vertices[np.unique(ridges)]


def _sheets(shape: tuple[int, int], rng: np.random.Generator, junctions: np.ndarray, n: int,
            size: float) -> np.ndarray:
    """``n`` irregular flat sheets, each centred on a network junction."""
    out = np.zeros(shape, dtype=bool)
    inside = junctions[(junctions[:, 0] >= 0) & (junctions[:, 0] < shape[0])
                       & (junctions[:, 1] >= 0) & (junctions[:, 1] < shape[1])]
    if not len(inside):
        return out
    wobble = smooth_field(shape, rng, scale=size / 3) - 0.5
    yy, xx = np.ogrid[0:shape[0], 0:shape[1]]
    for k in rng.choice(len(inside), size=min(n, len(inside)), replace=False):
        cy, cx = inside[k]
        ry, rx = size * rng.uniform(0.6, 1.1, 2)
        out |= np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) + 0.6 * wobble < 1
    return out


# ---------------------------------------------------------------- mitochondria

def mitochondria(
    shape: tuple[int, int] = (512, 512),
    seed: int | np.random.Generator = 0,
    noise_level: str | float = "medium",
    foreground_fraction: float = 0.10,
    puncta_fraction: float = 0.35,
    haze: float = 0.6,
    psf_sigma: float = 1.3,
    illumination: float = 0.4,
    background: float = 0.06,
) -> tuple[np.ndarray, np.ndarray]:
    """Render sparse mitochondria (short worms and puncta) in heavy out-of-focus haze.

    Objects cluster around a few cell-like centres. Worms are persistent random walks
    8-45 px long and 3-6 px wide; puncta are round, 4-8 px across. Out-of-focus
    mitochondria above and below the plane appear as large blurred blobs.

    Parameters
    ----------
    shape : tuple of int
        Image shape (rows, columns).
    seed : int or numpy.random.Generator
        Seed; the same seed gives the same image and mask.
    noise_level : str or float
        ``"low"``, ``"medium"``, ``"high"`` (see :data:`NOISE_LEVELS`) or the peak signal in photons.
    foreground_fraction : float
        Target fraction of foreground pixels in the mask.
    puncta_fraction : float
        Fraction of objects that are puncta rather than worms.
    haze : float
        Peak out-of-focus intensity relative to in-focus mitochondria.
    psf_sigma, illumination, background : float
        Optics, see :func:`render_optics`.

    Returns
    -------
    image : ndarray of float32
        Photon counts.
    mask : ndarray of uint8
        1 on mitochondria, 0 elsewhere.
    """
    if not 0 < foreground_fraction < 0.6:
        raise ValueError(f"foreground_fraction must be in (0, 0.6), got {foreground_fraction}")
    return _picture(shape, seed, noise_level, _mito_structure, (foreground_fraction, puncta_fraction, haze),
                    psf_sigma=psf_sigma, illumination=illumination, background=background)


def _mito_structure(shape: tuple[int, int], rng: np.random.Generator, foreground_fraction: float,
                    puncta_fraction: float, haze: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-focus fluorophores, mask and haze of :func:`mitochondria`."""
    density = _cell_density(shape, rng)
    mask = np.zeros(shape, dtype=bool)
    fluor = np.zeros(shape, dtype=np.float32)
    target = foreground_fraction * mask.size
    for _ in range(8):  # add batches until the target fraction is reached
        missing = target - mask.sum()
        if missing <= 0.03 * target:
            break
        m, f = _mito_objects(shape, rng, density, area=missing, puncta_fraction=puncta_fraction)
        mask |= m
        fluor = np.maximum(fluor, f)
    # out-of-focus mitochondria just off the plane (some blur) and far from it (heavy blur)
    _, near = _mito_objects(shape, rng, density, area=1.0 * target, puncta_fraction=puncta_fraction)
    _, far = _mito_objects(shape, rng, density, area=2.0 * target, puncta_fraction=puncta_fraction)
    blobs = ndi.gaussian_filter(near, 3.5) + 1.5 * ndi.gaussian_filter(far, 9.0)
    glow = ndi.gaussian_filter(density, 20.0)
    haze_map = blobs / max(blobs.max(), 1e-6) + 0.35 * glow / max(glow.max(), 1e-6)
    return fluor, mask, haze * haze_map / max(haze_map.max(), 1e-6)


def _cell_density(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Where mitochondria sit: a few overlapping cell-sized blobs, values in [0, 1]."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    dens = np.zeros(shape, dtype=np.float32)
    size = float(min(shape))
    for _ in range(rng.integers(2, 4)):
        cy, cx = rng.uniform(0.15, 0.85, 2) * np.asarray(shape)
        sy, sx = rng.uniform(0.18, 0.32, 2) * size
        dens = np.maximum(dens, np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2)))
    dens *= 0.6 + 0.4 * smooth_field(shape, rng, scale=size / 6)
    return dens / dens.max()


def _sample_positions(density: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    flat = density.ravel().astype(np.float64)
    flat = flat / flat.sum()
    pick = rng.choice(flat.size, size=n, p=flat)
    rc = np.stack(np.unravel_index(pick, density.shape), 1).astype(np.float64)
    return rc + rng.uniform(-0.5, 0.5, size=rc.shape)


def _mito_objects(shape: tuple[int, int], rng: np.random.Generator, density: np.ndarray,
                  area: float, puncta_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """About ``area`` pixels of worms and puncta, drawn where ``density`` is high."""
    mean_area = (1 - puncta_fraction) * 22 * 4.5 + puncta_fraction * np.pi * 2.8**2
    n = max(1, int(np.ceil(area / mean_area)))
    start = _sample_positions(density, n, rng)
    is_punctum = rng.uniform(size=n) < puncta_fraction
    length = np.where(is_punctum, 1, np.clip(rng.lognormal(np.log(18), 0.45, n), 8, 45)).astype(int)
    radius = np.where(is_punctum, rng.uniform(2.0, 4.0, n), rng.uniform(1.5, 3.0, n))
    bright = rng.uniform(0.55, 1.0, n)
    # persistent random walks, all at once: (n, max_len) steps, masked by length
    steps = length.max()
    turn = rng.normal(0, 0.12, size=(n, steps))
    heading = rng.uniform(0, 2 * np.pi, (n, 1)) + np.cumsum(turn, axis=1)
    path = np.cumsum(np.stack([np.sin(heading), np.cos(heading)], -1), axis=1)
    path = start[:, None, :] + path - path[:, :1, :]
    valid = np.arange(steps)[None, :] < length[:, None]
    obj = np.broadcast_to(np.arange(n)[:, None], valid.shape)[valid]
    pts = path[valid]
    mask = np.zeros(shape, dtype=bool)
    fluor = np.zeros(shape, dtype=np.float32)
    # group radii into bins so each tube gets (nearly) its own width
    bins = np.clip(np.rint(radius * 2) / 2, 1.5, 4.0)
    for r in np.unique(bins):
        sel = bins[obj] == r
        skel, val = _rasterize(pts[sel], bright[obj[sel]], shape)
        m, f = _tubes(skel, val, r)
        mask |= m
        fluor = np.maximum(fluor, f)
    return mask, fluor


# ---------------------------------------------------------------- test figure

def circle_in_rectangle(shape: tuple[int, int] = (256, 256), band: int | None = None) -> np.ndarray:
    """Binary test figure: a rectangular frame with a filled circle inside it.

    Foreground (1) is the frame - a band ``band`` pixels wide (default ``min(shape) // 16``)
    along the edge of a rectangle inset by 1/8 of the image - plus a filled disc centred in
    the rectangle with radius 1/4 of its shorter side. Background is 0. The thin frame and
    the solid disc show how meta-structure density differs for lines and blobs.

    Returns
    -------
    ndarray of uint8
    """
    h, w = int(shape[0]), int(shape[1])
    band = max(1, min(h, w) // 16) if band is None else int(band)
    top, left, bottom, right = h // 8, w // 8, h - h // 8, w - w // 8
    out = np.zeros((h, w), dtype=np.uint8)
    out[top:bottom, left:right] = 1
    out[top + band:bottom - band, left + band:right - band] = 0
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (top + bottom - 1) / 2, (left + right - 1) / 2
    r = min(bottom - top, right - left) / 4
    out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    return out
