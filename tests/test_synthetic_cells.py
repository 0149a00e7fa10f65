"""Whole-cell synthetic images: determinism, camera, dynamic range, ground truth."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from napari_metastructures.core import synthetic_cells as sc

SHAPE = (192, 224)
GENERATORS = {"er": sc.er_cell, "mito": sc.mito_cell}


@pytest.fixture(scope="module")
def er_cells():
    return [sc.er_cell(SHAPE, seed=s, noise_level="low") for s in range(4)]


@pytest.fixture(scope="module")
def mito_cells():
    return [sc.mito_cell(SHAPE, seed=s, noise_level="low") for s in range(4)]


def _offset_free(cell: sc.CellImage, values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) - cell.params["offset"]


@pytest.mark.parametrize("kind", GENERATORS)
def test_same_seed_same_output_and_seeds_differ(kind):
    gen = GENERATORS[kind]
    a, b, c = gen((96, 128), seed=7), gen((96, 128), seed=7), gen((96, 128), seed=8)
    for name in ("image", "mask", "cell", "signal", "zones"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.params == b.params
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.cell, c.cell)
    assert not np.array_equal(a.mask, c.mask)


def test_generator_seed_is_reproducible():
    a = sc.er_cell((80, 80), seed=np.random.default_rng(3))
    b = sc.er_cell((80, 80), seed=np.random.default_rng(3))
    np.testing.assert_array_equal(a.image, b.image)
    c = sc.er_cell((80, 80), seed=np.random.default_rng(4))
    assert not np.array_equal(a.image, c.image) and not np.array_equal(a.mask, c.mask)
    assert a.params["seed"] == "generator"


@pytest.mark.parametrize("kind", GENERATORS)
def test_dtypes_shapes_and_json_params(kind):
    c = GENERATORS[kind]((100, 140), seed=1, noise_level="high")
    assert c.image.shape == c.mask.shape == c.cell.shape == c.signal.shape == c.zones.shape == (100, 140)
    assert c.image.dtype == np.uint16 and c.mask.dtype == np.uint8 and c.cell.dtype == np.uint8
    assert set(np.unique(c.mask)) == {0, 1} and set(np.unique(c.cell)) == {0, 1}
    p = json.loads(json.dumps(c.params))
    assert p["kind"] == kind and p["shape"] == [100, 140] and p["seed"] == 1
    assert p["noise_level"] == "high" and p["bit_depth"] == 12


@pytest.mark.parametrize("kind", GENERATORS)
@pytest.mark.parametrize("bit_depth", [12, 16])
def test_camera_saturates_a_few_percent_of_the_cell(kind, bit_depth):
    c = GENERATORS[kind](SHAPE, seed=2, bit_depth=bit_depth)
    top = 2**bit_depth - 1
    assert c.image.max() == top
    saturated = (c.image[c.cell > 0] == top).mean()
    assert 0.002 < saturated < 0.10
    assert (c.image[c.cell == 0] == top).mean() < 0.001  # saturation is a cell thing


def test_cell_outline_covers_45_to_85_percent_and_varies(er_cells):
    fractions = [c.cell.mean() for c in er_cells]
    assert all(0.43 < f < 0.87 for f in fractions)
    assert len({round(f, 3) for f in fractions}) == len(fractions)
    nuclei = {tuple(np.round(c.params["nucleus_centre"])) for c in er_cells}
    assert len(nuclei) == len(er_cells)
    assert all(c.params["edges_touched"] <= 2 for c in er_cells)


@pytest.mark.parametrize("kind, lo, hi", [("er", 10, 50), ("mito", 10, 30)])
def test_perinuclear_foreground_is_10_to_50x_brighter_than_peripheral(kind, lo, hi, er_cells, mito_cells):
    cells = er_cells if kind == "er" else mito_cells
    dims = []
    for c in cells:
        fg = c.mask > 0
        inner, outer = fg & (c.zones == sc.ZONES["perinuclear"]), fg & (c.zones == sc.ZONES["peripheral"])
        assert inner.sum() > 50 and outer.sum() > 50
        signal = _offset_free(c, c.signal)
        ratio = np.median(signal[inner]) / np.median(signal[outer])
        assert lo * 0.95 < ratio < hi * 1.05
        assert ratio == pytest.approx(c.params["dimming"], rel=0.02)
        # in the (low-noise) camera image the bright zone is clipped, so only a lower bound
        image = _offset_free(c, c.image)
        assert np.median(image[inner]) > 0.5 * lo * np.median(image[outer])
        dims.append(c.params["dimming"])
    assert np.ptp(dims) > 3  # the dimming factor varies with the seed


@pytest.mark.parametrize("kind", GENERATORS)
def test_outside_the_cell_is_dark_and_flat(kind):
    c = GENERATORS[kind](SHAPE, seed=3, noise_level="medium")
    outside = ndi.distance_transform_edt(c.cell == 0) > 12
    assert outside.sum() > 200
    periph = (c.mask > 0) & (c.zones == sc.ZONES["peripheral"])
    out_level = np.median(_offset_free(c, c.image[outside]))
    assert out_level < 0.4 * np.median(_offset_free(c, c.image[periph]))
    flat = _offset_free(c, c.signal[outside])
    assert np.ptp(flat) < 0.02 * flat.mean()  # no structure outside, only noise


def test_er_mask_covers_a_human_like_fraction_of_the_cell(er_cells):
    for c in er_cells:
        assert 0.25 <= c.mask[c.cell > 0].mean() <= 0.6


@pytest.mark.parametrize("kind", GENERATORS)
def test_mask_is_zero_outside_the_cell_and_in_the_nucleus(kind, er_cells, mito_cells):
    for c in er_cells if kind == "er" else mito_cells:
        nucleus = c.zones == sc.ZONES["nucleus"]
        assert nucleus.sum() > 200 and (c.cell[nucleus] == 1).all()
        assert c.mask[c.cell == 0].max() == 0
        assert c.mask[nucleus].max() == 0
        # the nuclear interior is darker than the perinuclear zone around it
        perinuclear = c.zones == sc.ZONES["perinuclear"]
        assert np.median(c.signal[nucleus]) < 0.5 * np.median(c.signal[perinuclear])


def test_er_nuclear_envelope_rim_is_in_the_mask(er_cells):
    for c in er_cells:
        nucleus = c.zones == sc.ZONES["nucleus"]
        rim = ndi.binary_dilation(nucleus, iterations=2) & ~nucleus & (c.cell > 0)
        assert c.mask[rim].mean() > 0.9


def test_er_skeleton_has_three_way_junctions(er_cells):
    for c in er_cells:
        skel = skeletonize(c.mask > 0)
        neighbours = ndi.convolve(skel.astype(int), np.ones((3, 3), int), mode="constant") - 1
        assert ndi.label(skel & (neighbours >= 3))[1] > 30


def test_er_mesh_is_denser_by_the_nucleus(er_cells):
    for c in er_cells:
        skel = skeletonize(c.mask > 0)
        near, far = c.zones == sc.ZONES["middle"], c.zones == sc.ZONES["peripheral"]
        assert skel[near].mean() > 1.2 * skel[far].mean()


def test_mito_mask_fraction_is_plausible(mito_cells):
    for c in mito_cells:
        assert 0.03 <= c.mask[c.cell > 0].mean() <= 0.25


@pytest.mark.parametrize("kind", GENERATORS)
def test_noise_levels_order_peripheral_snr(kind):
    snr = {n: GENERATORS[kind]((256, 256), seed=4, noise_level=n).params["peripheral_snr"]
           for n in sc.NOISE_LEVELS_CELL}
    assert snr["low"] > snr["medium"] > snr["high"]
    assert 1.0 < snr["high"] < 3.5  # hard but visible
    assert snr["low"] > 5


def test_development_set_covers_seeds_and_noise_levels():
    seeds, levels = (0, 5), ("low", "high")
    items = sc.development_set("mito", seeds=seeds, noise_levels=levels, shape=(96, 96))
    assert len(items) == len(seeds) * len(levels)
    assert [(c.params["seed"], c.params["noise_level"]) for c in items] == [(s, n) for s in seeds for n in levels]
    assert all(c.params["kind"] == "mito" and c.image.shape == (96, 96) for c in items)
    np.testing.assert_array_equal(items[0].mask, items[1].mask)  # same cell at both noise levels
    assert not np.array_equal(items[0].image, items[1].image)
    assert not np.array_equal(items[0].cell, items[2].cell)


@pytest.mark.parametrize("call", [
    lambda: sc.development_set("golgi"),
    lambda: sc.er_cell((64, 64), noise_level="extreme"),
    lambda: sc.mito_cell((64, 64), noise_level=-1.0),
    lambda: sc.er_cell((64, 64), bit_depth=20),
    lambda: sc.er_cell((8, 64)),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_bad_kind_message_names_the_choices():
    with pytest.raises(ValueError, match="er.*mito"):
        sc.development_set(kind="ER!")
