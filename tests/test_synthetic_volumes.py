"""Synthetic 3D z-stacks: determinism, geometry, anisotropic optics, dynamic range, ground truth."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_metastructures.core import synthetic_volumes as sv
from napari_metastructures.core.synthetic_cells import ZONES

SHAPE = (16, 128, 128)
SPACING = (0.25, 0.065, 0.065)
KINDS = ("er", "mito")


@pytest.fixture(scope="module")
def stacks():
    """One cell per kind at every noise level (seed 3)."""
    return {kind: {n: sv.GENERATORS[kind](SHAPE, seed=3, noise_level=n) for n in ("low", "medium", "high")}
            for kind in KINDS}


def _autocorrelation(a: np.ndarray, axis: int, lag: int) -> float:
    a = a.astype(np.float64) - a.mean()
    n = a.shape[axis]
    x, y = np.take(a, range(n - lag), axis), np.take(a, range(lag, n), axis)
    return float((x * y).mean() / (a * a).mean())


def _z_runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of consecutive mask voxels along z, over all (y, x) columns."""
    pad = np.zeros((1,) + mask.shape[1:], bool)
    step = np.diff(np.concatenate([pad, mask, pad]).astype(np.int8), axis=0).transpose(1, 2, 0).ravel()
    return np.flatnonzero(step == -1) - np.flatnonzero(step == 1)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_output_and_seeds_differ(kind):
    gen = sv.GENERATORS[kind]
    a, b, c = gen(SHAPE, seed=7), gen(SHAPE, seed=7), gen(SHAPE, seed=8)
    for name in ("image", "mask", "cell", "signal", "zones"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.params == b.params
    for name in ("image", "mask", "cell"):
        assert not np.array_equal(getattr(a, name), getattr(c, name))


def test_generator_seed_is_reproducible():
    a = sv.er_volume(SHAPE, seed=np.random.default_rng(5))
    b = sv.er_volume(SHAPE, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a.image, b.image)
    assert a.params["seed"] == "generator"


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_spacing_and_params(kind):
    spacing = (0.3, 0.08, 0.07)
    v = sv.GENERATORS[kind]((12, 96, 112), seed=1, noise_level="high", spacing=spacing)
    assert v.image.shape == v.mask.shape == v.cell.shape == v.signal.shape == v.zones.shape == (12, 96, 112)
    assert v.image.dtype == np.uint16 and v.mask.dtype == bool and v.cell.dtype == bool
    assert v.spacing == spacing and v.kind == kind
    p = json.loads(json.dumps(v.params))  # JSON-friendly
    assert p["kind"] == kind and p["shape"] == [12, 96, 112] and p["spacing"] == list(spacing)
    assert p["seed"] == 1 and p["noise_level"] == "high" and p["bit_depth"] == 12
    # PSF sigmas are recorded in um and converted to voxels with this spacing
    sz, sxy = p["psf_sigma_um"]
    assert p["psf_sigma_vox"] == pytest.approx([sz / 0.3, sxy / 0.08, sxy / 0.07])


@pytest.mark.parametrize("kind", KINDS)
def test_mask_inside_cell_with_plausible_fraction(kind, stacks):
    v = stacks[kind]["medium"]
    assert v.mask.any() and not (v.mask & ~v.cell).any()
    assert not (v.mask & (v.zones == ZONES["nucleus"])).any()  # the nucleus is a hole
    frac = v.mask[v.cell].mean()
    assert 0.02 < frac < 0.25
    if kind == "mito":
        assert frac == pytest.approx(v.params["foreground_target"], rel=0.35)
    # a flattened cell in the middle planes: out-of-focus planes above and below it
    planes = np.flatnonzero(v.cell.any((1, 2)))
    assert planes[0] > 0 and planes[-1] < SHAPE[0] - 1
    assert np.ptp(planes) + 1 < 0.8 * SHAPE[0]
    height = np.ptp(planes) * SPACING[0]
    width = np.ptp(np.flatnonzero(v.cell.any((0, 2)))) * SPACING[1]
    assert height < 0.8 * width


@pytest.mark.parametrize("kind", KINDS)
def test_mask_components_cross_a_few_planes_not_a_slab(kind, stacks):
    v = stacks[kind]["medium"]
    lab, n = ndi.label(v.mask, np.ones((3, 3, 3)))
    sizes = np.bincount(lab.ravel())[1:]
    spans = np.array([sl[0].stop - sl[0].start for sl in ndi.find_objects(lab)])[sizes >= 100]
    assert len(spans) and (spans >= 2).all()  # curved: no component lies in one plane
    assert (spans <= 0.75 * SHAPE[0]).all()
    runs = _z_runs(v.mask)  # a tubule is 1-3 planes thick, not a slab
    assert np.median(runs) <= 2 and np.percentile(runs, 95) <= 4
    assert (runs >= 2).mean() > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_psf_blurs_further_in_z_than_in_xy(kind, stacks):
    v = stacks[kind]["low"]
    lag_xy = int(round(SPACING[0] / SPACING[2]))  # one z-step in physical units
    az, ax = _autocorrelation(v.image, 0, 1), _autocorrelation(v.image, 2, lag_xy)
    assert az > ax
    # the structures themselves are thin in z: with an isotropic PSF the order reverses
    iso = sv.GENERATORS[kind](SHAPE, seed=3, noise_level="low", psf_sigma_um=(0.1, 0.1))
    assert _autocorrelation(iso.image, 0, 1) < _autocorrelation(iso.image, 2, lag_xy)
    np.testing.assert_array_equal(iso.mask, v.mask)  # the ground truth does not depend on optics


def test_er_dynamic_range_and_saturation(stacks):
    v = stacks["er"]["low"]
    offset, top = v.params["offset"], 2**v.params["bit_depth"] - 1
    inner = v.mask & (v.zones == ZONES["perinuclear"])
    outer = v.mask & (v.zones == ZONES["peripheral"])
    ratio = np.median(v.signal[inner] - offset) / np.median(v.signal[outer] - offset)
    assert ratio >= 10 and ratio == pytest.approx(v.params["dimming"], rel=0.02)
    img = v.image.astype(np.float64) - offset
    assert np.percentile(img[inner], 75) / np.median(img[outer]) >= 10  # also in the camera image
    saturated = v.image == top
    assert 0 < saturated[v.cell].mean() < 0.02 and not (saturated & ~v.cell).any()
    dims = [sv.er_volume(SHAPE, seed=s).params["dimming"] for s in (0, 1)]
    assert all(10 <= d <= 50 for d in dims) and np.ptp(dims) > 1


def test_mito_stays_below_saturation_like_live_imaging(stacks):
    v = stacks["mito"]["low"]
    assert v.image.max() < 2**v.params["bit_depth"] - 1
    outside = v.image[~v.cell].astype(np.float64)
    assert abs(np.median(outside) - v.params["offset"]) < 30  # dark background near the offset
    assert np.percentile(v.image[v.mask], 50) > np.percentile(outside, 99)


@pytest.mark.parametrize("kind", KINDS)
def test_noise_levels_order_snr_on_the_same_cell(kind, stacks):
    levels = stacks[kind]
    snr = {n: v.params["peripheral_snr"] for n, v in levels.items()}
    assert snr["low"] > snr["medium"] > snr["high"] > 1
    for v in levels.values():  # the noise level changes the camera picture only
        np.testing.assert_array_equal(v.mask, levels["low"].mask)


def test_volume_set_order_and_content():
    vols = sv.volume_set("mito", seeds=(0, 1), noise_levels=("low", "high"), shape=(12, 64, 64))
    assert [(v.params["seed"], v.params["noise_level"]) for v in vols] == [
        (0, "low"), (0, "high"), (1, "low"), (1, "high")]
    assert all(v.kind == "mito" and v.image.shape == (12, 64, 64) for v in vols)
    np.testing.assert_array_equal(vols[0].mask, vols[1].mask)
    assert not np.array_equal(vols[0].mask, vols[2].mask)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: sv.er_volume((128, 128)), "shape"),
    (lambda: sv.er_volume((16, 20, 128)), "shape"),
    (lambda: sv.er_volume(SHAPE, spacing=(0.25, 0.0, 0.065)), "spacing"),
    (lambda: sv.mito_volume(SHAPE, spacing=(0.25, 0.065)), "spacing"),
    (lambda: sv.er_volume(SHAPE, noise_level="loud"), "noise_level"),
    (lambda: sv.mito_volume(SHAPE, noise_level=-3), "noise_level"),
    (lambda: sv.er_volume(SHAPE, bit_depth=20), "bit_depth"),
    (lambda: sv.er_volume(SHAPE, psf_sigma_um=(0.0, 0.1)), "psf_sigma_um"),
    (lambda: sv.mito_volume(SHAPE, foreground_fraction=0.9), "foreground_fraction"),
    (lambda: sv.er_volume(SHAPE, dimming=0.5), "dimming"),
    (lambda: sv.volume_set("golgi"), "kind"),
])
def test_bad_arguments_raise_clear_errors(call, name):
    with pytest.raises(ValueError, match=name):
        call()
