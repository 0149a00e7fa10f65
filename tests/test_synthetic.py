"""Synthetic ER / mitochondria generators: determinism, ground truth, optics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from napari_metastructures.core import synthetic

GENERATORS = {"er": synthetic.er_network, "mito": synthetic.mitochondria}


@pytest.fixture(scope="module")
def er():
    return synthetic.er_network((256, 256), seed=3)


@pytest.fixture(scope="module")
def mito():
    return synthetic.mitochondria((256, 256), seed=3)


@pytest.mark.parametrize("kind", GENERATORS)
def test_same_seed_same_output_and_seeds_differ(kind):
    gen = GENERATORS[kind]
    a_img, a_mask = gen((128, 160), seed=7)
    b_img, b_mask = gen((128, 160), seed=7)
    c_img, c_mask = gen((128, 160), seed=8)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert not np.array_equal(a_mask, c_mask)
    assert not np.array_equal(a_img, c_img)


@pytest.mark.parametrize("kind", GENERATORS)
def test_shapes_dtypes_and_ranges(kind):
    img, mask = GENERATORS[kind]((96, 200), seed=1)
    assert img.shape == mask.shape == (96, 200)
    assert img.dtype == np.float32 and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}
    assert img.min() >= 0 and np.isfinite(img).all()


def test_generator_object_as_seed_is_reproducible():
    a = synthetic.er_network((64, 64), seed=np.random.default_rng(5))
    b = synthetic.er_network((64, 64), seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    c = synthetic.er_network((64, 64), seed=np.random.default_rng(6))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


def test_er_is_a_connected_mesh_of_thin_tubules_with_junctions(er):
    _, mask = er
    frac = mask.mean()
    assert 0.10 < frac < 0.35
    # one big connected network, not scattered pieces
    lab, n = ndi.label(mask)
    sizes = np.bincount(lab.ravel())[1:]
    assert sizes.max() > 0.8 * mask.sum()
    # thin: nearly everything is within 2 px of the centre line
    dist = ndi.distance_transform_edt(mask)
    assert np.percentile(dist[mask > 0], 95) <= 2.5
    # polygonal mesh: many holes (enclosed background regions) and three-way junctions
    _, holes = ndi.label(mask == 0)
    assert holes > 20
    skel = skeletonize(mask > 0)
    neighbours = ndi.convolve(skel.astype(int), np.ones((3, 3), int), mode="constant") - 1
    junctions = ndi.label(skel & (neighbours >= 3))[1]
    assert junctions > 30


def test_er_tubule_width_parameter_changes_mask_width():
    _, thin = synthetic.er_network((128, 128), seed=2, tubule_width=2.0, sheets=0)
    _, thick = synthetic.er_network((128, 128), seed=2, tubule_width=5.0, sheets=0)
    assert thick.sum() > 1.5 * thin.sum()


def test_mito_sparse_with_target_fraction(mito):
    _, mask = mito
    assert 0.08 < mask.mean() < 0.12
    _, n = ndi.label(mask)
    assert n > 20  # many separate short objects
    _, mask2 = synthetic.mitochondria((256, 256), seed=3, foreground_fraction=0.05)
    assert 0.04 < mask2.mean() < 0.06


def test_mito_has_worms_and_puncta(mito):
    _, mask = mito
    lab, n = ndi.label(mask)
    objs = ndi.find_objects(lab)
    elong = []
    for i, sl in enumerate(objs, start=1):
        ys, xs = np.nonzero(lab[sl] == i)
        if len(ys) < 5:
            continue
        ev = np.linalg.eigvalsh(np.cov(np.stack([ys, xs])))
        elong.append(np.sqrt(ev[1] / max(ev[0], 1e-6)))
    elong = np.array(elong)
    assert (elong < 1.5).sum() >= 5  # round puncta
    assert (elong > 3.0).sum() >= 5  # elongated worms


def test_mito_background_is_hazy_not_flat(mito):
    img, mask = mito
    bg = ndi.binary_dilation(mask, iterations=4) == 0
    smooth = ndi.gaussian_filter(img, 8)
    # the low-pass background varies by much more than shot noise would allow
    bg_levels = smooth[bg]
    spread = np.percentile(bg_levels, 95) - np.percentile(bg_levels, 5)
    assert spread > 0.2 * (img[mask > 0].mean() - img[bg].mean())
    # haze=0 gives a flatter background than the default
    img0, mask0 = synthetic.mitochondria((256, 256), seed=3, haze=0.0, illumination=0.0)
    bg0 = ndi.binary_dilation(mask0, iterations=4) == 0
    s0 = ndi.gaussian_filter(img0, 8)[bg0]
    assert np.percentile(s0, 95) - np.percentile(s0, 5) < 0.5 * spread


@pytest.mark.parametrize("kind", GENERATORS)
def test_noise_levels_order_snr(kind):
    gen = GENERATORS[kind]
    snr = {lvl: synthetic.measured_snr(*gen((192, 192), seed=4, noise_level=lvl, haze=0.0))
           for lvl in ("low", "medium", "high")}
    assert snr["low"] > snr["medium"] > snr["high"] > 0
    # numeric photon counts work too and scale the counts
    img, _ = gen((64, 64), seed=4, noise_level=1000.0)
    img_low, _ = gen((64, 64), seed=4, noise_level=10.0)
    assert img.mean() > 20 * img_low.mean()


def test_bad_noise_level_is_rejected():
    with pytest.raises(ValueError, match="noise_level"):
        synthetic.er_network((32, 32), noise_level="extreme")
    with pytest.raises(ValueError, match="positive"):
        synthetic.mitochondria((32, 32), noise_level=-1)
    with pytest.raises(ValueError, match="2D"):
        synthetic.er_network((4, 64, 64))
    with pytest.raises(ValueError, match="foreground_fraction"):
        synthetic.mitochondria((32, 32), foreground_fraction=0.9)


def test_psf_blur_spreads_signal_beyond_mask():
    img, mask = synthetic.er_network((128, 128), seed=1, noise_level=1e5, haze=0.0, illumination=0.0,
                                     background=0.0)
    ring = ndi.binary_dilation(mask, iterations=2) & (mask == 0)
    far = ndi.binary_dilation(mask, iterations=6) == 0
    assert img[ring].mean() > 5 * max(img[far].mean(), 1.0)


def test_to_uint16_clips_and_rounds():
    out = synthetic.to_uint16(np.array([-3.0, 1.4, 1.6, 70000.0], np.float32))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [0, 1, 2, 65535])


def test_circle_in_rectangle_layout():
    fig = synthetic.circle_in_rectangle((256, 256))
    assert fig.dtype == np.uint8 and fig.shape == (256, 256)
    lab, n = ndi.label(fig)
    assert n == 2  # the frame and the disc are separate objects
    assert fig[128, 128] == 1  # disc centre
    assert fig[0, 0] == 0 and fig[32, 128] == 1  # outside; on the top edge of the frame
    assert fig[60, 60] == 0  # between frame and disc
    frame = lab == lab[32, 128]
    assert frame[33, 128] and not frame[32 + 16, 128]  # band is 16 px wide
