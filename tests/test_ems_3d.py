"""EMS on volumes: 3D skeleton, shifts in z, y and x, z radius from the anisotropy; 2D unchanged."""
import math

import numpy as np
import pytest
from skimage.morphology import skeletonize

from napari_metastructures.core.igtt.config import IgttConfig
from napari_metastructures.core.igtt.ems import band, ems, ems_points, outside_band, skeleton, z_radius
from napari_metastructures.core.igtt.engine import pseudo_labels


def tube(shape=(20, 48, 48), start=(0, 8, 6), end=(19, 38, 42), radius=2.5):
    """A straight tube from ``start`` to ``end`` (voxels, z y x): it runs across every plane."""
    zz, yy, xx = np.indices(shape).astype(float)
    p = np.stack([zz, yy, xx], -1) - np.array(start, float)
    d = np.array(end, float) - np.array(start, float)
    t = np.clip((p @ d) / (d @ d), 0, 1)
    return np.linalg.norm(p - t[..., None] * d, axis=-1) <= radius


def old_ems(mask, seed, radius=1, keep=0.1):
    """EMS of one 2D mask as the code was before volumes (the reference for the 2D path)."""
    rng = np.random.default_rng(seed)
    pts = np.argwhere(skeletonize(mask.astype(bool)))
    moved = pts + rng.integers(-radius, radius + 1, size=(len(pts), 2))
    moved[:, 0] = np.clip(moved[:, 0], 0, mask.shape[0] - 1)
    moved[:, 1] = np.clip(moved[:, 1], 0, mask.shape[1] - 1)
    distinct = np.unique(moved, axis=0)
    pick = rng.choice(len(distinct), size=min(math.ceil(keep * len(pts)), len(distinct)), replace=False)
    out = np.zeros(mask.shape, np.uint8)
    kept = distinct[np.sort(pick)]
    out[kept[:, 0], kept[:, 1]] = 1
    return out


def test_z_radius_keeps_the_physical_length():
    assert z_radius(1, 1.0) == 1 and z_radius(2, 1.0) == 2
    assert z_radius(1, 3.8) == 0 and z_radius(2, 3.8) == 1 and z_radius(3, 0.5) == 6
    assert z_radius(1, None) == 0  # unknown: no z shifts
    with pytest.raises(ValueError, match="anisotropy"):
        z_radius(1, 0.0)


@pytest.mark.parametrize("seed", [0, 3])
def test_2d_ems_is_unchanged(seed):
    m = tube()[10]  # one plane: an elliptic section of the tube
    m[30:36, 5:40] = True
    assert m.sum() > 100
    np.testing.assert_array_equal(ems(m, seed), old_ems(m, seed))


def test_slice_scope_pseudo_labels_are_the_per_plane_2d_ems():
    stack = tube()
    cfg = IgttConfig.preset("fast")
    rng = np.random.default_rng(7)
    per_plane = [ems(m, rng, cfg.ems_radius, cfg.ems_keep) for m in stack]
    for groups in (None, [1] * len(stack)):  # 2D images, or a stack with scope="slice"
        got = pseudo_labels(list(stack), cfg, np.random.default_rng(7), "network", groups)
        assert len(got) == len(stack)
        for a, b in zip(got, per_plane):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("anisotropy", [1.0, 3.8, None])
def test_3d_points_lie_within_the_shift_radius_of_the_3d_skeleton(anisotropy):
    m = tube()
    skel = skeleton(m)
    n = int(skel.sum())
    assert skel.any(axis=(1, 2))[1:-1].all()  # the 3D skeleton crosses the planes (ends shortened)
    assert n < sum(int(skeleton(p).sum()) for p in m)  # one centre line, not one per plane
    out = ems(m, 0, radius=1, keep=0.1, anisotropy=anisotropy)
    assert out.shape == m.shape and out.dtype == np.uint8
    assert int(out.sum()) == math.ceil(0.1 * n)
    radii = (z_radius(1, anisotropy), 1, 1)
    assert band(skel, radii)[out > 0].all()


def test_z_shifts_occur_when_isotropic_and_not_when_anisotropic():
    m = tube()
    skel = skeleton(m)
    in_plane = band(skel, (0, 1, 1))
    iso = np.zeros(m.shape, int)
    for seed in range(5):
        iso += ems(m, seed, anisotropy=1.0)
        assert in_plane[ems(m, seed, anisotropy=3.8) > 0].all()  # no point leaves its plane
    assert (iso > 0)[~in_plane].sum() >= 2  # z-shifted points: off every in-plane band


def test_ems_points_in_3d_shift_each_axis_by_its_own_radius():
    pts = np.array([[5, 5, 5]] * 400)
    moved = ems_points(pts, (11, 11, 11), 0, radius=(0, 2, 1), keep=1.0)
    assert set(moved[:, 0]) == {5}
    assert set(moved[:, 1]) == {3, 4, 5, 6, 7} and set(moved[:, 2]) == {4, 5, 6}
    assert len(moved) == 15  # every distinct position, each once
    edge = ems_points(np.array([[0, 0, 0]] * 50), (3, 3, 3), 1, radius=1, keep=1.0)
    assert edge.min() >= 0  # clipped to the volume


def test_3d_ems_is_reproducible():
    m = tube()
    a, b = ems(m, 11, anisotropy=1.0), ems(m, 11, anisotropy=1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ems(m, 12, anisotropy=1.0))
    rng1, rng2 = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(ems(m, rng1, region="auto"), ems(m, rng2, region="auto"))


def test_auto_region_samples_the_interior_of_3d_objects():
    zz, yy, xx = np.indices((16, 48, 48))
    ball = (zz - 8) ** 2 + ((yy - 24) ** 2 + (xx - 24) ** 2) / 4 < 36  # 12 planes, 24 px across
    skel = skeleton(ball)
    network = ems(ball, 0, anisotropy=3.8)
    objects = ems(ball, 0, region="auto", anisotropy=3.8)
    outside = outside_band(ball, skel, (0, 1, 1))
    assert outside > 0.9 * ball.sum()
    assert (objects >= network).all()  # the same skeleton points first, then the interior
    assert objects.sum() >= math.ceil(0.1 * outside) and objects.sum() > 5 * network.sum()
    assert objects[~band(skel, (0, 1, 1))].sum() > 0.5 * math.ceil(0.1 * outside)
    thin = tube(radius=1.0)
    extra = ems(thin, 0, region="auto", anisotropy=1.0).sum() - ems(thin, 0, anisotropy=1.0).sum()
    assert extra <= 0.2 * ems(thin, 0, anisotropy=1.0).sum()  # a thin tube adds (almost) nothing
