import numpy as np
import pytest

from napari_metastructures.core.synthetic_cells import er_cell
from napari_metastructures.core.synthetic_crops import binned, crop_set, inner_crop


def test_inner_crop_lies_inside_the_cell_and_matches_the_cell_image():
    cell = er_cell((200, 200), seed=3)
    crop = inner_crop(cell, 64, seed=1)
    y, x, size = crop.params["crop"]
    assert size == 64 and crop.image.shape == crop.mask.shape == (64, 64)
    assert crop.cell.mean() >= 0.9
    np.testing.assert_array_equal(crop.image, cell.image[y:y + 64, x:x + 64])
    np.testing.assert_array_equal(crop.mask, cell.mask[y:y + 64, x:x + 64])
    assert inner_crop(cell, 64, seed=1).params["crop"] == crop.params["crop"]  # seeded
    with pytest.raises(ValueError, match="larger than the cell image"):
        inner_crop(cell, 300, seed=0)


def test_binned_averages_blocks_and_keeps_half_covered_mask_pixels():
    cell = er_cell((64, 64), seed=0)
    two = binned(cell, 2)
    assert two.image.shape == (32, 32) and two.params["bin"] == 2 and two.image.dtype == cell.image.dtype
    block = cell.image[:2, :2].astype(float).mean()
    assert two.image[0, 0] == np.rint(block)
    assert two.mask[5, 7] == (cell.mask[10:12, 14:16].mean() >= 0.5)
    assert binned(cell, 1) is cell


def test_crop_set_gives_one_dense_crop_per_seed():
    crops = crop_set("er", seeds=(0, 1), size=64, factor=2)
    assert len(crops) == 2 and all(c.image.shape == (64, 64) for c in crops)
    assert all(c.params["bin"] == 2 for c in crops)
    assert crops[0].params["seed"] != crops[1].params["seed"]
    assert all(0.15 < c.mask.mean() < 0.85 for c in crops)  # the dense interior, not background
    with pytest.raises(ValueError, match="kind must be one of"):
        crop_set("golgi")
