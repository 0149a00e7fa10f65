"""Baselines on a tiny synthetic image: bright tubules on a dark, uneven, noisy background."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures.core import baselines as b
from napari_metastructures.core.metrics import dice
from napari_metastructures.core.validate import InputError


def tubules(n: int = 64, seed: int = 0, noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Lines 3 px wide on a background that ramps from 0.1 to 0.45, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n] / n
    gt = np.zeros((n, n), bool)
    for r in range(6, n - 3, 14):
        gt[r:r + 3, 3:n - 3] = True
    gt[3:n - 3, n // 2:n // 2 + 3] = True
    img = 0.1 + 0.25 * xx + 0.1 * yy + 0.5 * gt + rng.normal(0, noise, (n, n))
    return (img * 1000).astype(np.uint16), gt.astype(np.uint8)


@pytest.mark.parametrize("method", ["otsu", "local", "sato", "frangi"])
def test_classical_baselines_find_the_tubules(method):
    img, gt = tubules()
    before = img.copy()
    mask = b.METHODS[method](img)
    assert mask.dtype == np.uint8 and mask.shape == img.shape
    assert set(np.unique(mask)) <= {0, 1}
    assert dice(mask, gt) > 0.9
    np.testing.assert_array_equal(img, before)  # input untouched


def test_otsu_fails_where_local_succeeds_on_a_steep_background():
    img, gt = tubules()
    steep = img.astype(np.float32) + np.linspace(0, 1500, img.shape[1])[None]
    assert dice(b.otsu_threshold(steep), gt) < 0.7
    assert dice(b.local_threshold(steep, block_size=15), gt) > 0.9


def test_local_offset_moves_the_threshold():
    img, _ = tubules()
    more = b.local_threshold(img, offset=0.05).sum()
    less = b.local_threshold(img, offset=-0.2).sum()
    assert more > b.local_threshold(img).sum() > less


def test_stack_is_segmented_plane_by_plane():
    img, gt = tubules()
    stack = np.stack([img, img[:, ::-1]])
    out = b.otsu_threshold(stack)
    assert out.shape == stack.shape
    np.testing.assert_array_equal(out[0], b.otsu_threshold(img))
    np.testing.assert_array_equal(out[1], b.otsu_threshold(img[:, ::-1]))


def test_constant_image_gives_empty_mask():
    flat = np.full((16, 16), 7, np.uint16)
    for name in ("otsu", "local", "sato", "frangi"):
        assert not b.METHODS[name](flat).any()


def test_bad_input_is_named():
    with pytest.raises(InputError, match="image"):
        b.otsu_threshold(np.zeros(5))
    with pytest.raises(InputError, match="NaN"):
        b.sato_otsu(np.full((8, 8), np.nan))
    with pytest.raises(InputError, match="block_size"):
        b.local_threshold(np.zeros((8, 8)), block_size=4)
    with pytest.raises(InputError, match="sigmas"):
        b.sato_otsu(np.zeros((8, 8)), sigmas=(0,))
    with pytest.raises(InputError, match="frangi: sigmas"):
        b.frangi_otsu(np.zeros((8, 8)), sigmas=(1, -2))


def test_frangi_finds_a_bright_line_on_noise():
    rng = np.random.default_rng(1)
    img = rng.normal(0.2, 0.05, (64, 64)).astype(np.float32)
    gt = np.zeros((64, 64), np.uint8)
    gt[30:33, 4:60] = 1  # one bright line, 3 px wide
    img[gt == 1] += 0.6
    before = img.copy()
    mask = b.frangi_otsu(img)
    assert mask.dtype == np.uint8 and mask.shape == img.shape
    assert set(np.unique(mask)) <= {0, 1}
    assert dice(mask, gt) > 0.85
    assert not mask[:20].any() and not mask[44:].any()  # no noise far from the line
    np.testing.assert_array_equal(img, before)
    # a dark line on the same noise is not a bright ridge: little or nothing is found there
    dark = rng.normal(0.8, 0.05, (64, 64)).astype(np.float32)
    dark[gt == 1] -= 0.6
    assert dice(b.frangi_otsu(dark), gt) < 0.3


def test_frangi_runs_per_plane_on_a_stack():
    img, gt = tubules()
    stack = np.stack([img, img[::-1], np.full_like(img, 5)])
    out = b.frangi_otsu(stack, sigmas=(1, 2))
    assert out.shape == stack.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], b.frangi_otsu(img, sigmas=(1, 2)))
    np.testing.assert_array_equal(out[1], b.frangi_otsu(img[::-1], sigmas=(1, 2)))
    assert not out[2].any()
    assert dice(out[1], gt[::-1]) > 0.9


def test_frangi_baseline_cli(tmp_path):
    import json

    from napari_metastructures.cli import main
    from napari_metastructures.io import read_image, write_tiff

    img, gt = tubules()
    write_tiff(tmp_path / "img.tif", img, scale=(0.1, 0.1))
    assert main(["baseline", "--method", "frangi", str(tmp_path / "img.tif"), "--unit", "px",
                 "--out", str(tmp_path / "d")]) == 0
    mask = read_image(tmp_path / "d" / "img_mask.tif")
    np.testing.assert_array_equal(mask.data, b.frangi_otsu(img))
    assert mask.scale == pytest.approx((0.1, 0.1)) and dice(mask.data, gt) > 0.9
    params = json.loads((tmp_path / "d" / "img_mask.json").read_text())["params"]
    assert params["method"] == "frangi" and params["sigmas"] == [1, 2, 3]  # the core default
    # the file has a pixel size (0.1 µm): sizes are µm, the px defaults rescaled from 65 nm pixels
    assert main(["baseline", "--method", "frangi", str(tmp_path / "img.tif"), "--out", str(tmp_path / "f")]) == 0
    params = json.loads((tmp_path / "f" / "img_mask.json").read_text())["params"]
    assert params["size_unit"] == "um" and params["sigmas"] == pytest.approx([0.65, 1.3, 1.95])
    assert main(["baseline", "--method", "frangi", str(tmp_path / "img.tif"), "--sigmas", "0.15",
                 "--out", str(tmp_path / "e")]) == 0
    params = json.loads((tmp_path / "e" / "img_mask.json").read_text())["params"]
    assert params["sigmas"] == [1.5] and params["pixel_size_um"] == pytest.approx(0.1)
    np.testing.assert_array_equal(read_image(tmp_path / "e" / "img_mask.tif").data,
                                  b.frangi_otsu(img, sigmas=(1.5,)))
    assert main(["baseline", "--method", "local", str(tmp_path / "img.tif"), "--block-size", "2",
                 "--out", str(tmp_path / "g")]) == 0  # 2 µm = 20 px -> 21, odd
    assert json.loads((tmp_path / "g" / "img_mask.json").read_text())["params"]["block_size"] == 21


def test_clusters_to_mask_picks_the_brighter_cluster():
    img = np.array([[1, 1, 9], [1, 9, 9]], float)
    labels = np.array([[4, 4, 2], [4, 2, 2]])
    np.testing.assert_array_equal(b.clusters_to_mask(labels, img), [[0, 0, 1], [0, 1, 1]])
    three = np.array([[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(b.clusters_to_mask(three, np.array([[1, 8, 9], [1, 8, 9.0]])),
                                  [[0, 1, 1], [0, 1, 1]])
    assert not b.clusters_to_mask(np.zeros((2, 2), int), np.ones((2, 2))).any()


@pytest.mark.slow
def test_dfc_runs_is_seeded_and_brighter_is_foreground():
    img, gt = tubules(n=32)
    steps = []
    kw = dict(n_channels=8, max_iter=15, seed=3, device="cpu")
    first = b.dfc_segment(img, progress=steps.append, **kw)
    again = b.dfc_segment(img, **kw)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, b.dfc_segment(img, **{**kw, "seed": 4}))
    assert first.dtype == np.uint8 and set(np.unique(first)) <= {0, 1}
    assert 1 <= len(steps) <= 15 and steps[0].n_labels <= 8
    fg, bg = img[first == 1], img[first == 0]
    assert fg.size and bg.size and fg.mean() > bg.mean()
    assert dice(first, gt) > 0.5


@pytest.mark.slow
def test_dfc_stops_at_min_labels_and_on_request():
    img, _ = tubules(n=32)
    done = b.run_dfc(img, n_channels=16, max_iter=200, min_labels=8, seed=0, device="cpu")
    assert done.n_labels <= 8 and not done.stopped and done.iterations < 200
    calls = []
    stopped = b.run_dfc(img, n_channels=16, max_iter=200, seed=0, device="cpu",
                        stop=lambda: calls.append(1) or len(calls) >= 3)
    assert stopped.stopped and stopped.iterations == 3 and stopped.labels.shape == img.shape


def test_dfc_rejects_bad_settings():
    with pytest.raises(InputError, match="DFC"):
        b.dfc_segment(np.random.default_rng(0).random((8, 8)), max_iter=0, device="cpu")
