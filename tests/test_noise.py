"""Core noisy-label families: statistics, transition matrices, determinism, nD shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_metastructures.core import noise as N
from napari_metastructures.core.validate import InputError


def binomial_ok(count: int, n: int, p: float, z: float = 4.5) -> bool:
    """``count`` is within z standard deviations of Binomial(n, p)'s mean."""
    return abs(count - n * p) <= z * np.sqrt(n * p * (1 - p)) + 1


@pytest.fixture
def binary():
    rng = np.random.default_rng(7)
    return (ndi.gaussian_filter(rng.random((256, 256)), 3) > 0.5).astype(np.uint8)


def squares(n: int = 10, size: int = 6, gap: int = 3, value=1) -> np.ndarray:
    """``n`` separate ``size`` x ``size`` squares in a row."""
    lab = np.zeros((size + 2 * gap, n * (size + gap) + gap), dtype=np.uint8)
    for i in range(n):
        x = gap + i * (size + gap)
        lab[gap:gap + size, x:x + size] = value if np.isscalar(value) else value[i]
    return lab


# ------------------------------------------------------------------------------ statistics
def test_flip_fractions_follow_the_binomial(binary):
    b, f = 0.1, 0.25
    noisy = N.flip_labels(binary, seed=1, p_fg_to_bg=f, p_bg_to_fg=b)
    n_bg, n_fg = np.count_nonzero(binary == 0), np.count_nonzero(binary == 1)
    assert binomial_ok(np.count_nonzero((binary == 0) & (noisy == 1)), n_bg, b)
    assert binomial_ok(np.count_nonzero((binary == 1) & (noisy == 0)), n_fg, f)
    assert set(np.unique(noisy)) <= {0, 1}


def test_multiclass_flip_goes_to_a_uniform_other_class():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 4, (200, 200)).astype(np.uint8)
    noisy = N.flip_labels(lab, 0.4, seed=2)
    changed = noisy != lab
    assert binomial_ok(np.count_nonzero(changed), lab.size, 0.4)
    shifts = ((noisy.astype(int) - lab) % 4)[changed]
    assert set(np.unique(shifts)) == {1, 2, 3}
    for s in (1, 2, 3):  # each other class equally likely
        assert binomial_ok(np.count_nonzero(shifts == s), shifts.size, 1 / 3)


def test_sample_keeps_each_class_with_probability_p(binary):
    noisy = N.sample_labels(binary, 0.3, seed=3)
    for c in (0, 1):
        n = np.count_nonzero(binary == c)
        assert binomial_ok(np.count_nonzero((binary == c) & (noisy == c)), n, 0.3)
    assert np.all((noisy == binary) | (noisy == 255))


def test_sample_to_background_keeps_exact_counts(binary):
    noisy = N.sample_labels_to_background(binary, 0.37, seed=4)
    assert np.count_nonzero(noisy) == round(0.37 * np.count_nonzero(binary))
    assert not np.any(noisy[binary == 0])  # background untouched
    bern = N.sample_labels(binary, 0.37, seed=4, mode="to_background", exact=False)
    assert binomial_ok(np.count_nonzero(bern), np.count_nonzero(binary), 0.37)


def test_exact_modes_hit_the_count(binary):
    flipped = N.flip_labels(binary, seed=5, p_fg_to_bg=0.2, p_bg_to_fg=0.05, exact=True)
    assert np.count_nonzero((binary == 1) & (flipped == 0)) == round(0.2 * np.count_nonzero(binary == 1))
    assert np.count_nonzero((binary == 0) & (flipped == 1)) == round(0.05 * np.count_nonzero(binary == 0))
    kept = N.sample_labels(binary, 0.6, seed=5, exact=True)
    for c in (0, 1):
        assert np.count_nonzero(kept == c) == round(0.6 * np.count_nonzero(binary == c))


def test_exact_selection_is_uniform_over_pixels():
    lab = np.ones((1, 12), dtype=np.uint8)
    hits = np.zeros(12)
    trials = 3000
    for seed in range(trials):
        hits += N.sample_labels(lab, 0.25, seed=seed, exact=True, mode="to_background")[0]
    assert hits.sum() == 3 * trials  # exactly round(0.25 * 12) each time
    for h in hits:  # every pixel kept about a quarter of the time
        assert binomial_ok(int(h), trials, 0.25)


def test_exact_correction_draws_distinct_uniform_pixels_from_the_pool():
    lab = np.ones(1000, dtype=np.uint8)
    sel = np.zeros(1000, dtype=bool)
    sel[:200] = True  # already selected: never drawn again
    hits = np.zeros(1000)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        idx = N._pick(rng, lab, sel, 1, True, 40, 800)  # the rejection path (dense pool)
        assert np.unique(idx).size == 40
        hits[idx] += 1
    assert not hits[:200].any()
    assert all(binomial_ok(int(h), 1000, 40 / 800) for h in hits[200:])


# ---------------------------------------------------------------------- transition matrices
def test_worked_values_from_the_issue():
    b, f = 0.1, 0.3
    q = N.transition_matrix("flip", p_bg_to_fg=b, p_fg_to_bg=f)
    np.testing.assert_allclose(q, [[1 - b, b], [f, 1 - f]])
    assert np.linalg.det(q) == pytest.approx(1 - b - f)
    g = 0.2
    q = N.transition_matrix("random", p=g)
    np.testing.assert_allclose(q, [[1 - g, g], [1 - g, g]])
    assert N.matrix_rank(q, tol=1e-9) == 1
    assert N.matrix_rank(N.transition_matrix("flip", p=0.5), tol=1e-9) == 1  # 1 - b - f = 0
    assert N.matrix_rank(N.transition_matrix("flip", p=0.2), tol=1e-9) == 2


@pytest.mark.parametrize(
    "kind, params",
    [
        ("flip", dict(p_bg_to_fg=0.1, p_fg_to_bg=0.3)),
        ("flip", dict(p=0.2, n_classes=3)),
        ("sample", dict(p=0.4)),
        ("sample-to-background", dict(p=0.6)),
        ("random", dict(p=0.3)),
    ],
)
def test_empirical_matrix_matches_theory(kind, params):
    m = params.get("n_classes", 2)
    lab = np.random.default_rng(1).integers(0, m, (300, 300)).astype(np.uint8)
    noisy, _ = N.make_noisy(lab, kind, seed=11, **params)
    q_emp, counts = N.empirical_transition_matrix(lab, noisy, n_classes=m, return_counts=True)
    q = N.transition_matrix(kind, n_classes=m, **{k: v for k, v in params.items() if k != "n_classes"})
    tol = 4.5 * np.sqrt(0.25 / counts.sum(axis=1).min())
    np.testing.assert_allclose(q_emp, q, atol=tol)


def test_instance_matrices_match_in_expectation():
    lab = squares(400, size=3, gap=1)
    noisy = N.drop_instances(lab, 0.3, seed=0)
    q = N.empirical_transition_matrix(lab, noisy)
    np.testing.assert_allclose(q, N.transition_matrix("drop-instances", p=0.3), atol=4.5 * np.sqrt(0.21 / 400))
    noisy = N.misclassify_instances(lab, 1.0, seed=0, n_classes=3)
    q = N.empirical_transition_matrix(lab, noisy, n_classes=3)
    np.testing.assert_allclose(q[1], N.transition_matrix("misclassify", p=1.0, n_classes=3)[1], atol=0.12)


def test_empirical_matrix_leaves_out_the_ignore_value():
    clean = np.array([[0, 1, 1, 255]], dtype=np.uint8)
    noisy = np.array([[255, 1, 0, 1]], dtype=np.uint8)
    q, counts = N.empirical_transition_matrix(clean, noisy, return_counts=True)
    assert q.shape == (2, 2)
    np.testing.assert_array_equal(counts, [[0, 0], [1, 1]])
    assert np.all(np.isnan(q[0]))  # no clean background left: undefined
    assert N.matrix_rank(q) == 1
    s = N.noise_summary(clean, noisy)
    assert s["error_rate"] == 0.5 and s["ignored_fraction"] == 0.5 and s["transition_matrix"][0] == [None, None]


def test_no_theoretical_matrix_for_shape_dependent_noise():
    with pytest.raises(InputError, match="empirical"):
        N.transition_matrix("dilate")


# ------------------------------------------------------------------------- morphology
def test_dilate_and_erode_use_a_full_3x3_element():
    lab = np.zeros((9, 9), dtype=np.uint8)
    lab[4, 4] = 1
    assert np.count_nonzero(N.dilate_labels(lab)) == 9
    assert np.count_nonzero(N.dilate_labels(lab, iterations=2)) == 25
    cube = np.zeros((7, 7, 7), dtype=np.uint8)
    cube[3, 3, 3] = 2
    assert np.count_nonzero(N.dilate_labels(cube) == 2) == 27
    block = np.zeros((9, 9), dtype=np.uint8)
    block[2:7, 2:7] = 1
    assert np.count_nonzero(N.erode_labels(block)) == 9
    assert np.count_nonzero(N.erode_labels(block, iterations=2)) == 1
    assert np.all(N.erode_labels(np.ones((5, 5), np.uint8)) == 1)  # the border does not erode


def test_binary_morphology_matches_scipy(binary):
    el = np.ones((3, 3), bool)
    np.testing.assert_array_equal(N.dilate_labels(binary, 2), ndi.binary_dilation(binary, el, 2))
    np.testing.assert_array_equal(N.erode_labels(binary, 2), ndi.binary_erosion(binary, el, 2, border_value=1))
    closed = ndi.binary_erosion(ndi.binary_dilation(binary, el), el, border_value=1)
    np.testing.assert_array_equal(N.morph_labels(binary, "de"), closed)


def test_classes_do_not_overwrite_each_other_and_frames_stay_apart():
    lab = np.zeros((3, 7, 7), dtype=np.uint8)
    lab[1, 3, 2], lab[1, 3, 4] = 1, 2
    out = N.dilate_labels(lab, spatial_ndim=2)
    assert out[1, 3, 2] == 1 and out[1, 3, 4] == 2 and out[1, 3, 3] == 2
    assert not out[0].any() and not out[2].any()
    assert N.dilate_labels(lab)[0].any()  # all axes by default
    eroded = N.erode_labels(np.array([[1, 1, 1, 2, 2, 2]] * 3, np.uint8))
    np.testing.assert_array_equal(eroded[1], [1, 1, 0, 0, 2, 2])
    with pytest.raises(InputError, match="ops"):
        N.morph_labels(lab, "dx")


def test_skeleton_is_thin_and_per_class():
    lab = np.zeros((20, 40), dtype=np.uint8)
    lab[5:12, 3:18], lab[5:12, 22:37] = 1, 2
    sk = N.skeleton_labels(lab)
    assert set(np.unique(sk)) == {0, 1, 2}
    assert np.all((sk == 0) | (sk == lab))
    assert np.all(np.count_nonzero(sk[:, 6:15], axis=0) == 1)  # one pixel wide
    vol = np.zeros((9, 9, 9), np.uint8)
    vol[2:7, 2:7, 1:8] = 1
    sk3 = N.skeleton_labels(vol)
    assert 0 < np.count_nonzero(sk3) < np.count_nonzero(vol) // 10
    stack = N.skeleton_labels(np.stack([lab, lab]), spatial_ndim=2)
    np.testing.assert_array_equal(stack[1], sk)


# ---------------------------------------------------------------------------- instances
def test_drop_instances_exact_and_with_an_instance_map():
    lab = squares(10)
    out = N.drop_instances(lab, 0.5, seed=1, exact=True)
    assert N.label_instances(out).max() == 5
    assert np.all((out == 0) | (out == lab))
    inst = N.label_instances(lab)
    merged = np.where(inst > 0, (inst + 1) // 2, 0)  # pairs of squares form one instance
    out = N.drop_instances(lab, 0.5, seed=1, exact=True, instances=merged)
    for k in range(1, 6):
        assert len(np.unique(out[merged == k])) == 1  # a pair is dropped together


def test_instances_of_a_stack_stay_in_their_frame():
    frame = squares(3)
    stack = np.stack([frame, frame])
    assert N.label_instances(stack).max() == 3  # nD: the frames touch
    per_frame, classes = N.label_instances(stack, spatial_ndim=2, return_classes=True)
    assert per_frame.max() == 6 and list(classes) == [0] + [1] * 6
    out = N.drop_instances(stack, 0.5, seed=0, exact=True, spatial_ndim=2)
    assert N.label_instances(out, spatial_ndim=2).max() == 3


def test_misannotation_labels_non_target_instances_as_target():
    lab = squares(6, value=[1, 2, 1, 2, 1, 2])
    out = N.misannotate_instances(lab, 1.0, seed=0, target=1)
    np.testing.assert_array_equal(out, (lab > 0).astype(np.uint8))
    all_objects = N.label_instances(squares(6))  # binary: some objects were never labelled
    binary = np.where(np.isin(all_objects, [1, 2, 3]), 1, 0).astype(np.uint8)
    out = N.misannotate_instances(binary, 1.0, seed=0, instances=all_objects)
    np.testing.assert_array_equal(out, (all_objects > 0).astype(np.uint8))


def test_misclassification_gives_each_instance_one_random_class():
    lab = squares(200, size=3, gap=1)
    out = N.misclassify_instances(lab, 1.0, seed=3, n_classes=4)
    inst = N.label_instances(lab)
    per_instance = ndi.maximum(out, inst, np.arange(1, 201)), ndi.minimum(out, inst, np.arange(1, 201))
    np.testing.assert_array_equal(*per_instance)  # each instance stays one class
    classes = per_instance[0]
    assert set(np.unique(classes)) == {1, 2, 3}
    assert np.all(out[lab == 0] == 0)
    np.testing.assert_array_equal(N.misclassify_instances(lab, 1.0, seed=3), lab)  # binary: nothing to swap


# ------------------------------------------------------------------- determinism, nD, API
@pytest.mark.parametrize("kind", ["sample", "sample-to-background", "flip", "random", "misclassify", "drop-instances"])
def test_seeded_runs_repeat_and_seeds_differ(kind):
    lab = squares(40, size=3, gap=1, value=[1, 2] * 20)
    a, pa = N.make_noisy(lab, kind, seed=5, p=0.5)
    b, _ = N.make_noisy(lab, kind, seed=5, p=0.5)
    c, _ = N.make_noisy(lab, kind, seed=6, p=0.5)
    d, _ = N.make_noisy(lab, kind, seed=np.random.default_rng(5), p=0.5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, d)
    assert not np.array_equal(a, c)
    assert pa["seed"] == 5 and pa["kind"] == kind


def test_missing_seed_is_drawn_and_recorded():
    lab = np.random.default_rng(0).integers(0, 2, (30, 30)).astype(np.uint8)
    a, params = N.make_noisy(lab, "flip", p=0.3)
    assert isinstance(params["seed"], int)
    np.testing.assert_array_equal(N.make_noisy(lab, **params)[0], a)  # the record replays the run
    assert not np.array_equal(N.make_noisy(lab, **{**params, "seed": params["seed"] + 1})[0], a)


@pytest.mark.parametrize("shape", [(16, 20), (4, 16, 20), (2, 3, 16, 20)])
@pytest.mark.parametrize("kind", N.KINDS)
def test_every_kind_keeps_nd_shapes(kind, shape):
    lab = np.zeros(shape, dtype=np.uint8)
    lab[..., 4:10, 5:12] = 1
    lab[..., 12:15, 2:6] = 2
    params = {"p": 0.5} if "p" in N.kind_parameters(kind) else {}
    out, _ = N.make_noisy(lab, kind, seed=0, **params)
    assert out.shape == shape
    assert lab[..., 4, 5].all()  # input untouched


def test_bad_input_gets_clear_errors():
    lab = np.zeros((8, 8), np.uint8)
    with pytest.raises(InputError, match="unknown noise kind"):
        N.make_noisy(lab, "blur")
    with pytest.raises(InputError, match="does not take iterations"):
        N.make_noisy(lab, "flip", p=0.1, iterations=2)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        N.flip_labels(lab, 1.5)
    with pytest.raises(InputError, match="n_classes"):
        N.flip_labels(lab + 3, 0.1, n_classes=2)
    with pytest.raises(InputError, match="binary"):
        N.flip_labels(np.eye(3, dtype=np.uint8) * 2, None, p_fg_to_bg=0.1, p_bg_to_fg=0.1)
    with pytest.raises(InputError, match="integers"):
        N.make_noisy(lab.astype(float), "flip", p=0.1)


def test_many_values_are_refused_as_classes_but_summarised_as_foreground():
    image = np.arange(100 * 100).reshape(100, 100) % 200  # looks like an intensity image
    with pytest.raises(InputError, match="intensity image or an instance map"):
        N.flip_labels(image, 0.1)
    assert N.flip_labels(image, 0.1, n_classes=200, seed=0).max() < 200
    ids = N.label_instances(squares(80, size=2, gap=1))  # 80 instance ids
    dropped = N.drop_instances(ids, 0.5, seed=1, exact=True)
    s = N.noise_summary(ids, dropped)
    assert s["binarised"] and len(s["transition_matrix"]) == 2
    assert s["transition_matrix"][1][0] == pytest.approx(0.5)
    assert s["error_rate"] == pytest.approx(np.mean(ids != dropped))


def test_ignore_pixels_are_never_a_class():
    lab = np.array([[0, 1, 255, 255] * 50] * 50, dtype=np.uint8)
    out = N.flip_labels(lab, 0.5, seed=0)
    assert np.all(out[lab == 255] == 255)
    assert set(np.unique(out)) == {0, 1, 255}
    out = N.sample_labels(lab, 0.5, seed=0, mode="to_background")
    assert np.all(out[lab == 255] == 255)
    wide = N.sample_labels(lab.astype(np.uint8), 0.5, seed=0, ignore_value=1000)
    assert wide.dtype == np.uint16 and 1000 in wide


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    n_classes=st.integers(2, 5),
    kind=st.sampled_from(N.KINDS),
    p=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_any_shape_and_class_count(shape, n_classes, kind, p, seed):
    lab = np.random.default_rng(seed).integers(0, n_classes, shape).astype(np.uint8)
    params = {"p": p} if "p" in N.kind_parameters(kind) else {}
    out, params = N.make_noisy(lab, kind, seed=seed, **params)
    assert out.shape == lab.shape
    assert np.issubdtype(out.dtype, np.integer) and out.min() >= 0
    assert np.all((out < max(n_classes, 2)) | (out == 255))
    q = N.empirical_transition_matrix(lab, out, n_classes=n_classes)
    assert q.shape == (n_classes, n_classes)
    assert 0 <= N.matrix_rank(q) <= n_classes


def test_huge_iteration_counts_end_fast_with_the_saturated_result():
    """``--iterations 1000000000`` hung; past the image's extent more steps change nothing."""
    from napari_metastructures.core.noise import dilate_labels, erode_labels
    from napari_metastructures.core.validate import InputError

    lab = np.zeros((20, 30), np.uint8)
    lab[3:6, 4:9] = 1
    lab[12:15, 20:25] = 2
    for fn in (dilate_labels, erode_labels):
        np.testing.assert_array_equal(fn(lab, iterations=10**9), fn(lab, iterations=30))
    assert not np.array_equal(dilate_labels(lab, iterations=2), dilate_labels(lab, iterations=30))
    with pytest.raises(InputError, match="iterations"):
        dilate_labels(lab, iterations=-1)
    with pytest.raises(InputError, match="iterations"):
        erode_labels(lab, iterations=1.5)
