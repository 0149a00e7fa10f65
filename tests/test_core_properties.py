"""Hypothesis properties of the public core functions (issue 16): valid input never crashes and
keeps shape; invalid input raises InputError, the one exception type, never anything else."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_metastructures.core import noise
from napari_metastructures.core.density import density_map, meta_structure_similarity
from napari_metastructures.core.validate import InputError

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64])
SHAPES = hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=12)


@st.composite
def label_maps(draw, max_value: int = 4):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(SHAPES)
    top = min(max_value, int(np.iinfo(dtype).max))
    return draw(hnp.arrays(dtype, shape, elements=st.integers(0, top)))


#: family -> extra arguments that make a valid call
FAMILIES = {
    "sample_labels": {"p": 0.3, "seed": 0},
    "sample_labels_to_background": {"p": 0.3, "seed": 0},
    "flip_labels": {"p": 0.3, "seed": 0},
    "random_labels": {"p": 0.3, "seed": 0},
    "dilate_labels": {"iterations": 2},
    "erode_labels": {"iterations": 2},
    "morph_labels": {"ops": "de"},
    "skeleton_labels": {},
    "drop_instances": {"p": 0.5, "seed": 0},
    "misannotate_instances": {"p": 0.5, "seed": 0},
    "misclassify_instances": {"p": 0.5, "seed": 0},
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@FAST
@given(labels=label_maps())
def test_families_take_every_integer_dtype(family, labels):
    before = labels.copy()
    out = getattr(noise, family)(labels, **FAMILIES[family])
    assert out.shape == labels.shape and np.issubdtype(out.dtype, np.integer)
    np.testing.assert_array_equal(labels, before)  # the input is never modified


@pytest.mark.parametrize("family", sorted(FAMILIES))
@FAST
@given(bad=st.one_of(
    hnp.arrays(np.float32, SHAPES, elements=st.floats(0, 3, width=32)),
    hnp.arrays(np.int16, SHAPES, elements=st.integers(-5, -1)),
))
def test_families_refuse_float_and_negative_labels(family, bad):
    with pytest.raises(InputError):
        getattr(noise, family)(bad, **FAMILIES[family])


@FAST
@given(labels=label_maps(), p=st.one_of(st.floats(allow_nan=True), st.integers(-5, 5)))
def test_rates_outside_zero_one_are_input_errors(labels, p):
    if isinstance(p, float) and 0.0 <= p <= 1.0 or isinstance(p, int) and p in (0, 1):
        noise.flip_labels(labels, p, seed=0)
    else:
        with pytest.raises(InputError):
            noise.flip_labels(labels, p, seed=0)


@FAST
@given(labels=label_maps(), big=st.integers(2**33, 2**63 - 1))
def test_huge_ignore_values_never_give_float_labels(labels, big):
    try:
        out = noise.sample_labels(labels, 0.5, seed=0, ignore_value=big)
    except InputError:
        return
    assert np.issubdtype(out.dtype, np.integer)


@FAST
@given(labels=label_maps(), h=st.integers(0, 6))
def test_density_of_small_classes_is_a_fraction(labels, h):
    maps = density_map(labels, h)
    assert maps.shape[1:] == labels.shape and np.all(maps >= -1e-6) and np.all(maps <= 1 + 1e-6)


@FAST
@given(labels=label_maps(max_value=2**31 - 1))
def test_density_refuses_values_far_past_the_class_count_or_works(labels):
    try:
        maps = density_map(labels, 1)
    except InputError:
        return
    assert len(maps) <= 32 + 1


@FAST
@given(labels=label_maps(), h=st.integers(1, 4))
def test_similarity_is_bounded_or_nan(labels, h):
    value = meta_structure_similarity(labels, labels, h)
    assert np.isnan(value) or -1.0 <= value <= 1.0
