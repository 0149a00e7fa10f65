"""iGTT building blocks: DMI in closed form, candidates, polarity, EMS, the start, data helpers."""
import math

import numpy as np
import pytest
import torch

from napari_metastructures.core.igtt.candidates import (
    calibrate,
    candidate_scores,
    polarity,
    select,
    select_batch,
)
from napari_metastructures.core.igtt.dmi import (
    dmi_candidate_scores,
    dmi_candidate_scores_det,
    dmi_determinant,
    dmi_loss,
    soft_iou_loss,
    thresholds,
)
from napari_metastructures.core.igtt.ems import ems, ems_points, interior_count, skeleton
from napari_metastructures.core.training_data import CropSampler, as_slices, normalize, preprocess


def test_dmi_loss_matches_determinant_on_random_data():
    rng = np.random.default_rng(0)
    p = rng.random((3, 40, 50))
    y = (rng.random((3, 40, 50)) < 0.3).astype(np.float64)
    det = dmi_determinant(p, y)
    loss = dmi_loss(torch.from_numpy(p), torch.from_numpy(y))
    assert float(loss) == pytest.approx(-math.log(abs(det) + 1e-3), rel=1e-6)
    # sign-blind: p and 1 - p give the same unsigned loss; the signed loss rewards only the right sign
    flipped = dmi_loss(torch.from_numpy(1 - p), torch.from_numpy(y))
    assert float(flipped) == pytest.approx(float(loss), rel=1e-6)
    good = (0.2 + 0.6 * y)
    s_good = dmi_loss(torch.from_numpy(good), torch.from_numpy(y), signed=True)
    s_bad = dmi_loss(torch.from_numpy(1 - good), torch.from_numpy(y), signed=True)
    assert float(s_good) < 0 < float(s_bad)
    assert float(s_bad) == pytest.approx(-math.log(1e-3), rel=1e-6)


def _split_score(prob, values, t, squared):
    """Reference: one candidate ``[prob > t]`` built as a mask, scored from its two classes."""
    above = prob > t
    q = above.mean()
    mu1 = values[above].mean() if above.any() else 0.0
    mu0 = values[~above].mean() if not above.all() else 0.0
    return q * (1 - q) * ((mu1 - mu0) ** 2 if squared else abs(mu1 - mu0))


def _score_cases():
    rng = np.random.default_rng(1)
    levels = np.linspace(0.0, 1.0, 11)
    ties = levels[rng.integers(0, 11, size=(40, 30))]  # every pixel sits exactly on a threshold
    ties[0, :2] = 0.0, 1.0
    for p, k in [(rng.beta(0.5, 2.0, size=(64, 64)), 30), (rng.beta(0.5, 2.0, size=(37, 91)), 30), (ties, 11)]:
        yield p, p + rng.normal(0, 0.2, p.shape), thresholds(p, k)


@pytest.mark.parametrize("criterion", ["dmi", "otsu", "image-otsu", "image-dmi"])
def test_production_candidate_scores_equal_explicit_candidates(criterion):
    """candidate_scores (the one searchsorted + bincount pass iGTT runs) against K masks built one by one."""
    for p, image, t in _score_cases():
        scores = candidate_scores(p, image, t, criterion)
        values = image if criterion.startswith("image") else p
        expected = [_split_score(p, values, x, squared=criterion.endswith("otsu")) for x in t]
        np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)
        if criterion == "dmi":  # the paper's determinant: |det(P S_k^T)| = N^2 q (1-q) |mu1 - mu0|
            dets = [abs(dmi_determinant(p, (p > x).astype(np.float64))) for x in t]
            np.testing.assert_allclose(p.size ** 2 * scores, dets, rtol=1e-7, atol=1e-6)
            np.testing.assert_allclose(dmi_candidate_scores(p, t), dmi_candidate_scores_det(p, t), rtol=1e-7,
                                       atol=1e-7)
    p, _, t = next(_score_cases())
    np.testing.assert_array_equal(candidate_scores(p, None, t, "image-otsu"), candidate_scores(p, p, t, "otsu"))
    with pytest.raises(ValueError, match="unknown criterion"):
        candidate_scores(p, p, t, "kmeans")


def test_dmi_loss_is_exact_where_a_float32_determinant_is_not():
    # 250 x 250 float32 maps with p and y nearly independent: N sum(p y) and sum(p) sum(y) are ~1e9 and
    # their difference ~1e4, so float32 arithmetic loses digits; dmi_loss sums in float64 and does not
    rng = np.random.default_rng(2)
    p = rng.random(250 * 250).astype(np.float32)
    y = np.zeros(p.size, np.float32)
    y[np.argsort(p)[1::2]] = 1.0  # every other pixel by rank: covariance ~ 1 / (4 N)
    exact = abs(dmi_determinant(p, y))
    assert 1e3 < exact < 1e6
    loss = dmi_loss(torch.from_numpy(p), torch.from_numpy(y))
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(-math.log(exact + 1e-3), rel=1e-6)
    p32, y32 = torch.from_numpy(p), torch.from_numpy(y)
    det32 = float(p.size * (p32 * y32).sum() - p32.sum() * y32.sum())
    assert abs(det32 - exact) > 1e-4 * exact  # the float32 trap the float64 sums avoid


def test_soft_iou_loss_bounds():
    y = torch.zeros(1, 1, 8, 8)
    y[..., 2:5, 2:5] = 1
    assert float(soft_iou_loss(y.clone(), y)) == pytest.approx(0.0, abs=1e-5)
    assert float(soft_iou_loss(1 - y, y)) == pytest.approx(1.0, abs=1e-5)


def _blobs(shape=(96, 96), seed=0, fraction=0.08, invert=False):
    """Bright sparse discs on a dark, noisy, slightly hazy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    while mask.mean() < fraction:
        cy, cx = rng.uniform(5, shape[0] - 5), rng.uniform(5, shape[1] - 5)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(3, 6) ** 2
    img = 0.15 + 0.7 * mask + rng.normal(0, 0.05, shape) + 0.1 * xx / shape[1]
    return (1 - img if invert else img).astype(np.float32), mask


def test_polarity_resolved_from_image_on_minority_foreground():
    img, mask = _blobs(fraction=0.08)
    assert mask.mean() < 0.15
    # an inverted prediction (background bright): DMI alone cannot tell, the image can
    prob = 1.0 - img
    c = select(prob, img, 30, "dmi")
    assert c.polarity == -1
    fg = c.mask(prob).astype(bool)
    assert fg.mean() < 0.5
    assert (fg & mask).sum() / mask.sum() > 0.9
    assert polarity(img, mask) == 1 and polarity(img, ~mask) == -1
    # the calibrated map puts exactly the chosen candidate above 0.5
    cal = calibrate(prob, c)
    assert cal.min() >= 0 and cal.max() <= 1
    np.testing.assert_array_equal(cal > 0.5, fg)


def test_dmi_criterion_prefers_balanced_split_image_otsu_does_not():
    img, mask = _blobs(fraction=0.08, seed=3)
    prob = np.clip(img, 0, 1)
    t = thresholds(prob, 30)
    dmi = candidate_scores(prob, img, t, "dmi")
    ours = candidate_scores(prob, img, t, "image-otsu")
    q = np.array([(prob > x).mean() for x in t])
    assert q[np.argmax(dmi[1:-1]) + 1] > q[np.argmax(ours[1:-1]) + 1]
    c = select(prob, img, 30, "image-otsu")
    assert abs(c.fraction - mask.mean()) < 0.03


def test_per_image_and_per_batch_selection_differ_on_different_images():
    a, _ = _blobs(seed=4)
    b, _ = _blobs(seed=5)
    b = 0.3 * b  # a dim image: its own threshold must be lower
    per_image = [select(np.clip(x, 0, 1), x) for x in (a, b)]
    per_batch = select_batch([np.clip(x, 0, 1) for x in (a, b)], [a, b])
    assert per_image[0].threshold != pytest.approx(per_image[1].threshold)
    assert per_batch[0].threshold == per_batch[1].threshold
    assert per_batch[1].fraction < per_image[1].fraction  # one shared threshold misses the dim image


def test_ems_statistics_and_determinism():
    mask = np.zeros((64, 64), np.uint8)
    mask[10:14, 5:60] = 1
    mask[20:50, 30:33] = 1
    sk = skeleton(mask)
    n = int(sk.sum())
    pts = np.argwhere(sk)
    out = ems(mask, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.sum() == math.ceil(0.1 * n)
    kept = np.argwhere(out)
    # every kept pixel lies within one pixel (per axis) of a skeleton pixel
    d = np.abs(kept[:, None, :] - pts[None, :, :]).max(axis=2).min(axis=1)
    assert d.max() <= 1
    np.testing.assert_array_equal(out, ems(mask, np.random.default_rng(0)))
    assert not np.array_equal(out, ems(mask, np.random.default_rng(1)))
    # shifted positions are distinct and reach both ends of [-r, r] on each axis
    big = np.stack(np.meshgrid(np.arange(20, 40), np.arange(20, 40)), -1).reshape(-1, 2)
    moved = ems_points(big, (64, 64), np.random.default_rng(2), radius=2, keep=1.0)
    assert len(np.unique(moved, axis=0)) == len(moved)
    assert moved.min(axis=0).tolist() == [18, 18] and moved.max(axis=0).tolist() == [41, 41]
    # shifts that leave the image are clipped to its border: 200 copies of (0, 0) fill the 3 x 3 corner
    corner = ems_points(np.zeros((200, 2), np.int64), (64, 64), np.random.default_rng(3), radius=2, keep=1.0)
    assert sorted(map(tuple, corner)) == [(i, j) for i in range(3) for j in range(3)]
    shifts = ems_points(np.array([[30, 30]] * 1), (64, 64), np.random.default_rng(3), radius=2)
    assert np.abs(shifts - 30).max() <= 2
    assert ems(np.zeros((16, 16)), 0).sum() == 0


def test_ems_region_samples_the_interior_of_thick_objects_only():
    thin = np.zeros((64, 64), np.uint8)
    thin[10:13, 4:60] = 1  # a 3-px tubule: the shifted skeleton band already covers it
    blob = np.zeros((64, 64), np.uint8)
    blob[12:52, 12:52] = 1  # a 40 x 40 square
    n_thin, n_blob = int(skeleton(thin).sum()), int(skeleton(blob).sum())
    assert interior_count(thin, n_thin, 1, 0.1) <= 1
    assert interior_count(blob, n_blob, 1, 0.1) == math.ceil(0.1 * (1600 - 3 * n_blob))
    base = ems(blob, 0)
    auto = ems(blob, 0, region="auto")
    assert auto.sum() > 4 * base.sum() and not auto[blob == 0].any()
    assert ems(blob, 0, region=1.0).sum() <= 2 * base.sum()
    np.testing.assert_array_equal(auto, ems(blob, 0, region="auto"))
    assert not np.array_equal(auto, ems(blob, 1, region="auto"))
    assert ems(thin, 0, region="auto").sum() <= ems(thin, 0).sum() + 1
    with pytest.raises(ValueError, match="auto"):
        ems(blob, 0, region="all")


def test_ems_shift_distribution_is_uniform_in_range():
    rng = np.random.default_rng(5)
    pts = np.array([[50, 50]])
    seen = np.array([ems_points(pts, (100, 100), rng, radius=1, keep=1.0)[0] - 50 for _ in range(900)])
    values, counts = np.unique(seen[:, 0], return_counts=True)
    assert list(values) == [-1, 0, 1]
    assert counts.min() > 240  # ~300 each
    assert abs(np.corrcoef(seen[:, 0], seen[:, 1])[0, 1]) < 0.1  # independent axes


def test_image_start_gives_nonzero_first_gradient_and_black_start_does_not():
    from napari_metastructures.core.igtt.engine import IgttConfig, first_targets

    img, mask = _blobs(seed=6)
    pre = preprocess(img, IgttConfig().preprocess_dict())
    p = torch.full((1, 1) + img.shape, 0.3, requires_grad=True)
    p_noise = (p + 0.1 * torch.from_numpy(np.random.default_rng(0).random(img.shape).astype(np.float32)))
    y_black = torch.zeros_like(p)
    loss = dmi_loss(p_noise, y_black) + soft_iou_loss(p_noise, y_black)
    loss.backward()
    assert float(p.grad.abs().max()) == 0.0  # the paper's epoch 1 learns nothing
    targets = first_targets([pre], IgttConfig(), np.random.default_rng(0))
    y = torch.from_numpy(targets[0][None, None])
    assert 0 < float(y.mean()) < 0.1
    p2 = p.detach().clone().requires_grad_(True)
    p2_noise = p2 + 0.1 * torch.from_numpy(np.random.default_rng(0).random(img.shape).astype(np.float32))
    (dmi_loss(p2_noise, y) + soft_iou_loss(p2_noise, y)).backward()
    assert float(p2.grad.abs().max()) > 0
    # and the first pseudo-labels sit on the bright structure
    assert mask[targets[0] > 0].mean() > 0.9


def test_normalize_slices_and_crops():
    u16 = (np.arange(100 * 80, dtype=np.uint16).reshape(100, 80) * 7)
    n = normalize(u16)
    assert n.dtype == np.float32 and n.shape == u16.shape
    assert np.percentile(n, 1) == pytest.approx(0, abs=1e-3)
    assert np.percentile(n, 99.8) == pytest.approx(1, abs=1e-3)
    assert not normalize(np.full((5, 5), 3, np.uint8)).any()
    stack = np.zeros((2, 3, 20, 30))
    assert len(as_slices(stack)) == 6 and as_slices(stack)[0].shape == (20, 30)
    small = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    s = CropSampler([small], [small > 300], crop=64, seed=0)
    x, y = s.sample(5)
    assert x.shape == (5, 1, 64, 64) and y.shape == (5, 64, 64)
    x2, _ = CropSampler([small], [small > 300], crop=64, seed=0).sample(5)
    np.testing.assert_array_equal(x, x2)
    x3, _ = CropSampler([small], [small > 300], crop=64, seed=1).sample(5)
    assert not np.array_equal(x, x3)
    # crops and targets stay aligned through flips/rotations
    assert np.array_equal(x[:, 0] > 300, y)


def test_background_subtraction_removes_haze_keeps_objects():
    img, mask = _blobs(seed=7, shape=(128, 128))
    yy, xx = np.mgrid[:128, :128]
    haze = 0.8 * np.exp(-((yy - 40) ** 2 + (xx - 90) ** 2) / (2 * 25.0**2))
    hazy = img + haze
    plain = normalize(hazy)
    clean = preprocess(hazy, {"background_sigma": 30})
    # Otsu-like split of the plain image is pulled into the haze; after subtraction it is not
    c_plain = select(np.clip(plain, 0, 1), plain)
    c_clean = select(np.clip(clean, 0, 1), clean)
    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())
    assert dice(c_clean.mask(np.clip(clean, 0, 1)).astype(bool), mask) > dice(
        c_plain.mask(np.clip(plain, 0, 1)).astype(bool), mask) + 0.05
