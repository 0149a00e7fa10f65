"""Density maps, Lemma 1, Figure 6 and the meta-structure similarity."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures.core import noise, synthetic
from napari_metastructures.core.density import (
    box_count,
    compare_to_reference,
    density_map,
    expected_density,
    meta_structure_similarity,
)
from napari_metastructures.core.validate import InputError


def direct_window_sum(mask: np.ndarray, h: int) -> np.ndarray:
    """Reference: add every shifted copy of the zero-padded mask, O(N h^ndim)."""
    padded = np.pad(mask.astype(np.int64), h)
    out = np.zeros(mask.shape, dtype=np.int64)
    for offset in np.ndindex(*(2 * h + 1,) * mask.ndim):
        out += padded[tuple(slice(o, o + n) for o, n in zip(offset, mask.shape))]
    return out


@pytest.mark.parametrize("shape,h", [
    *[((9, 13), h) for h in (0, 1, 2, 3, 8, 40)],  # 8 and 40: wider than the image
    *[((6, 5, 7), h) for h in (0, 1, 2, 4, 12)],
    *[((17,), h) for h in (1, 5, 30)],
    *[((3, 4, 5, 6), h) for h in (1, 2)],
])
def test_box_count_equals_direct_window_sum(shape, h):
    rng = np.random.default_rng(sum(shape) + h)
    mask = rng.random(shape) < 0.4
    np.testing.assert_array_equal(box_count(mask, h), direct_window_sum(mask, h))


@pytest.mark.parametrize("h", [1, 5, 80])
def test_box_count_counts_stay_exact_past_the_narrow_dtype(h):
    # an all-ones 40x70 image: window counts up to 40*70, beyond uint8, exercised with modular sums
    mask = np.ones((40, 70), dtype=bool)
    np.testing.assert_array_equal(box_count(mask, h), direct_window_sum(mask, h))


@pytest.mark.parametrize("shape,h", [((12, 11), 2), ((5, 6, 7), 1), ((8, 9), 20)])
def test_density_is_fraction_of_full_window(shape, h):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=shape).astype(np.uint8)
    d = density_map(labels, h)
    assert d.dtype == np.float32 and d.shape == (3,) + shape
    for c in range(3):
        expect = direct_window_sum(labels == c, h) / (2 * h + 1) ** len(shape)
        np.testing.assert_allclose(d[c], expect, atol=1e-6)


def test_zero_padding_at_the_border():
    labels = np.ones((20, 20), dtype=np.uint8)
    d = density_map(labels, 2, classes=[1])[0]
    assert d[10, 10] == pytest.approx(1.0)
    assert d[0, 10] == pytest.approx(15 / 25)  # 3 of 5 rows inside
    assert d[0, 0] == pytest.approx(9 / 25)  # corner: 3x3 of the 5x5 window


def test_ignore_value_counts_as_no_class():
    labels = np.zeros((15, 15), dtype=np.uint8)
    labels[:, 8:] = 1
    labels[::2, ::2] = 255
    d = density_map(labels, 3)
    assert d.shape[0] == 2  # 255 is not a class
    counted = direct_window_sum(labels == 0, 3) + direct_window_sum(labels == 1, 3)
    np.testing.assert_allclose(d.sum(axis=0), counted / 49, atol=1e-6)
    with pytest.raises(InputError, match="ignore value"):
        density_map(labels, 3, classes=[255])


def test_paper_normalisation_is_count_over_2Nh():
    rng = np.random.default_rng(5)
    labels = (rng.random((30, 40)) < 0.3).astype(np.uint8)
    h = 4
    d = density_map(labels, h, classes=[1], normalize="paper")[0]
    n = np.count_nonzero(labels)
    np.testing.assert_allclose(d, direct_window_sum(labels == 1, h) / (2 * n * h), rtol=1e-5)
    with pytest.raises(InputError):
        density_map(labels, 0, normalize="paper")


def test_gaussian_kernel_sanity():
    labels = np.zeros((81, 81), dtype=np.uint8)
    labels[40, 40] = 1
    d = density_map(labels, 5, kernel="gaussian", classes=[1])[0]
    assert d.argmax() == 40 * 81 + 40  # peak at the pixel
    assert d.sum() == pytest.approx(1.0, abs=1e-3)  # mass kept away from the border
    assert d[40, 45] / d[40, 40] == pytest.approx(np.exp(-0.5), rel=0.02)  # sigma = h
    full = density_map(np.ones((50, 50), np.uint8), 4, kernel="gaussian", classes=[1])[0]
    assert full[25, 25] == pytest.approx(1.0, abs=1e-4) and 0.2 < full[0, 0] < 0.35  # zero padding


@pytest.mark.parametrize("bad,match", [
    (np.zeros((5, 5), np.float32), "integers"),
    (np.zeros((0, 5), np.uint8), "empty"),
])
def test_bad_input_gets_a_clear_message(bad, match):
    with pytest.raises(InputError, match=match):
        density_map(bad, 2)


def test_bad_parameters():
    labels = np.zeros((5, 5), np.uint8)
    for kwargs in ({"bandwidth": -1}, {"bandwidth": 1.5}, {"bandwidth": 1, "kernel": "tophat"},
                   {"bandwidth": 1, "normalize": "other"}):
        with pytest.raises(InputError):
            density_map(labels, **kwargs)


# ------------------------------------------------------------------------------------ Lemma 1
def test_lemma1_average_of_many_flips_matches_expected_density():
    clean = synthetic.circle_in_rectangle((64, 64))
    p, h, n = 0.3, 3, 200
    q = noise.transition_matrix("flip", p=p)
    expected = expected_density(clean, q, h)
    mean = np.mean([density_map(noise.flip_labels(clean, p, seed=s), h, classes=[0, 1]) for s in range(n)], axis=0)
    # per-pixel sd of one map is sqrt(p(1-p)/49) ~ 0.065; of the mean of 200 ~ 0.0046
    assert np.abs(mean - expected).max() < 6 * 0.0046
    assert np.abs(mean - expected).mean() < 0.0046


def test_lemma1_sampling_and_random_labels():
    clean = synthetic.circle_in_rectangle((48, 48))
    h = 2
    sampled = np.mean([density_map(noise.sample_labels(clean, 0.25, seed=s), h) for s in range(200)], axis=0)
    # sampling with the ignore value: the channel keeps 25 % of every class (ignored -> no class)
    np.testing.assert_allclose(sampled, expected_density(clean, 0.25 * np.eye(2), h), atol=0.03)
    # random labels: a rank-1 channel gives a flat interior
    q_rl = noise.transition_matrix("random", p=0.5)
    e = expected_density(clean, q_rl, h)[1]
    assert np.ptp(e[h:-h, h:-h]) < 1e-6


def test_expected_density_checks_q():
    clean = np.array([[0, 1, 2]], dtype=np.uint8)
    with pytest.raises(InputError, match="rows"):
        expected_density(clean, np.eye(2), 1)
    with pytest.raises(InputError):
        expected_density(clean, -np.eye(3), 1)


# ----------------------------------------------------------------------------------- Figure 6
def _corr(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_figure6_rcl_keeps_and_rl_loses_the_meta_structure():
    gt = synthetic.circle_in_rectangle((256, 256))
    h = 10
    inner = (slice(h, -h), slice(h, -h))
    d_gt = density_map(gt, h, classes=[1])[0][inner]
    rcl = noise.flip_labels(gt, 0.3, seed=0)  # Q = [[.7, .3], [.3, .7]], rank 2
    rl = noise.random_labels(gt, 0.5, seed=0)  # rank 1
    assert noise.matrix_rank(noise.empirical_transition_matrix(gt, rcl)) == 2
    assert noise.matrix_rank(noise.empirical_transition_matrix(gt, rl)) == 1
    d_rcl = density_map(rcl, h, classes=[1])[0][inner]
    d_rl = density_map(rl, h, classes=[1])[0][inner]
    assert _corr(d_gt, d_rcl) > 0.9
    assert abs(_corr(d_gt, d_rl)) < 0.15
    assert d_rl.std() < 0.25 * d_rcl.std()  # flat
    # and the affine map of Lemma 1: slope det(Q) = 0.4, intercept 0.3
    slope, intercept = np.polyfit(d_gt.ravel(), d_rcl.ravel(), 1)
    assert slope == pytest.approx(0.4, abs=0.03) and intercept == pytest.approx(0.3, abs=0.02)


# --------------------------------------------------------------------------------- similarity
def _families(gt, seed):
    return {
        "clean": gt,
        "flip": noise.flip_labels(gt, 0.45, seed=seed),
        "sample": noise.sample_labels(gt, 0.1, seed=seed),
        "dilate": noise.dilate_labels(gt, 1),
        "erode": noise.erode_labels(gt, 1),
        "skeleton": noise.skeleton_labels(gt),
        "random": noise.random_labels(gt, 0.1, seed=seed),
    }


def test_similarity_ranks_the_paper_families_on_blobs():
    rng = np.random.default_rng(0)
    gt = np.zeros((384, 384), dtype=np.uint8)
    yy, xx = np.mgrid[:384, :384]
    for cy, cx, r in zip(rng.uniform(20, 364, 56), rng.uniform(20, 364, 56), rng.uniform(6, 14, 56)):
        gt[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    h, k = 10, 6
    fams = [_families(gt, seed) for seed in range(k)]
    s = {name: meta_structure_similarity([gt] * k, [f[name] for f in fams], h) for name in fams[0]}
    assert s["clean"] == pytest.approx(1.0)
    # RCL keeps the meta-structure (pooled over 6 draws the noise left is ~0.005)
    assert min(s["flip"], s["sample"]) > 0.98
    # PCL moves it: 1-pixel dilation/erosion of blobs a little, the skeleton a lot; RL loses it
    assert min(s["dilate"], s["erode"]) > s["skeleton"] + 0.1
    assert s["skeleton"] > s["random"] + 0.3
    assert abs(s["random"]) < 0.1
    # one heavily flipped map scores high only because of the noise correction
    flip = fams[0]["flip"]
    assert meta_structure_similarity(gt, flip, h) > 0.9
    assert meta_structure_similarity(gt, flip, h, correct_noise=False) < 0.8


def test_similarity_is_symmetric_for_clean_copies_and_checks_shapes():
    gt = synthetic.circle_in_rectangle((64, 64))
    assert meta_structure_similarity(gt, gt.copy(), 4) == pytest.approx(1.0)
    assert meta_structure_similarity(gt, 1 - gt, 4) == pytest.approx(-1.0)  # classes swapped
    with pytest.raises(InputError, match="shape"):
        meta_structure_similarity(gt, gt[:10], 4)
    with pytest.raises(InputError):
        meta_structure_similarity([gt, gt], [gt], 4)
    assert np.isnan(meta_structure_similarity(np.zeros((20, 20), np.uint8), gt[:20, :20], 2))


def test_compare_to_reference():
    gt = synthetic.circle_in_rectangle((64, 64))
    res = compare_to_reference(gt, noise.random_labels(gt, 0.5, seed=1), 4)
    assert res["rank"] == 1 and res["transition_matrix"].shape == (2, 2)
    assert abs(res["similarity"]) < 0.3
    res = compare_to_reference(gt, gt, 4)
    assert res["rank"] == 2 and res["similarity"] == pytest.approx(1.0)


def test_instance_or_intensity_values_are_refused_not_ranged():
    """uint32 values near 4e9 built range(4e9); a 16-bit intensity image asked for 16 GiB."""
    from napari_metastructures.core.density import density_map, label_classes

    lab = np.zeros((16, 16), np.uint32)
    lab[2:5, 2:5] = 4_000_000_000
    for fn in (lambda: label_classes(lab, None, name="inst"), lambda: density_map(lab, 2, name="inst")):
        with pytest.raises(InputError, match="inst: label values reach 4000000000"):
            fn()
    assert density_map(lab, 2, classes=[0, 4_000_000_000]).shape == (2, 16, 16)  # named classes still work
    with pytest.raises(InputError, match="far beyond the image"):
        density_map(lab > 0, 10**9, kernel="gaussian")


def test_memory_limit_refuses_before_allocating(monkeypatch):
    from napari_metastructures.core.density import density_map
    from napari_metastructures.core.validate import MEMORY_ENV

    monkeypatch.setenv(MEMORY_ENV, "0.000001")  # about 1 kB
    with pytest.raises(InputError, match=f"GiB limit .*{MEMORY_ENV}"):
        density_map(np.zeros((64, 64), np.uint8), 2)
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(InputError, match=MEMORY_ENV):
        density_map(np.zeros((64, 64), np.uint8), 2)


@pytest.mark.parametrize("kernel", ["box", "gaussian"])
def test_inside_edges_have_no_dark_border(kernel):
    """Issue 17 item 7: a class that fills the image has density 1 up to the border with
    edges="inside"; with the paper's zero padding it falls off (a corner of a box: 1/4 in 2D)."""
    full = np.ones((40, 50), np.uint8)
    zero = density_map(full, 6, kernel, classes=[1])[0]
    inside = density_map(full, 6, kernel, classes=[1], edges="inside")[0]
    np.testing.assert_allclose(inside, 1.0, atol=1e-5)
    assert zero[0, 0] < 0.3 and zero[20, 25] > 0.99
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 50)) < 0.3).astype(np.uint8)
    a = density_map(labels, 6, kernel, edges="inside")
    b = density_map(labels, 6, kernel)
    np.testing.assert_allclose(a.sum(0), 1.0, atol=1e-5)  # classes still share each pixel
    if kernel == "box":  # the same where the whole window is inside (h = 6 from the border)
        np.testing.assert_allclose(a[:, 6:-6, 6:-6], b[:, 6:-6, 6:-6], atol=1e-6)
    assert not np.allclose(a, b)
    with pytest.raises(InputError, match="edges"):
        density_map(labels, 6, kernel, edges="mirror")
