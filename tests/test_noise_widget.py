"""The "Noisy labels" dock widget in a real viewer."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures._widgets.noisy_labels import NoisyLabelsWidget
from napari_metastructures.core.noise import flip_labels


@pytest.fixture
def clean():
    lab = np.zeros((64, 80), dtype=np.uint8)
    lab[10:30, 10:40] = 1
    lab[40:60, 50:75] = 1
    return lab


@pytest.fixture
def setup(make_napari_viewer, clean):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(clean.copy(), name="gt", scale=(0.5, 0.25), translate=(3.0, -2.0))
    widget = NoisyLabelsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.source.value = layer
    return viewer, widget, layer


def test_live_preview_appears_and_updates_in_place(qtbot, setup, clean):
    viewer, widget, layer = setup
    widget.family.value = "flip"
    widget.p.value = 0.1
    widget.seed.value = 4
    qtbot.waitUntil(lambda: "gt_flip" in viewer.layers and viewer.layers["gt_flip"].metadata["noise"]["p"] == 0.1)
    preview = viewer.layers["gt_flip"]
    np.testing.assert_array_equal(preview.data, flip_labels(clean, 0.1, seed=4))
    assert tuple(preview.scale) == (0.5, 0.25) and tuple(preview.translate) == (3.0, -2.0)
    assert "rank 2" in widget.summary.value
    n_layers = len(viewer.layers)

    widget.p.value = 0.3
    qtbot.waitUntil(lambda: preview.metadata["noise"]["p"] == 0.3)
    assert viewer.layers["gt_flip"] is preview and len(viewer.layers) == n_layers
    np.testing.assert_array_equal(preview.data, flip_labels(clean, 0.3, seed=4))
    np.testing.assert_array_equal(layer.data, clean)  # the source is never modified


def test_keep_freezes_a_copy_with_parameters_and_seed(qtbot, setup, clean):
    viewer, widget, layer = setup
    widget.family.value = "sample"
    widget.p.value = 0.5
    widget.seed.value = 9
    qtbot.waitUntil(lambda: "gt_sample" in viewer.layers and viewer.layers["gt_sample"].metadata["noise"]["seed"] == 9)
    kept = widget.keep()
    assert kept.name == "gt_sample_seed9" and kept is not viewer.layers["gt_sample"]
    assert kept.metadata["noise"]["kind"] == "sample" and kept.metadata["noise"]["p"] == 0.5
    assert kept.metadata["noise"]["source"] == "gt"
    assert tuple(kept.scale) == (0.5, 0.25)
    frozen = kept.data.copy()
    widget.seed.value = 10
    qtbot.waitUntil(lambda: viewer.layers["gt_sample"].metadata["noise"]["seed"] == 10)
    np.testing.assert_array_equal(kept.data, frozen)  # later previews leave it alone
    assert not np.array_equal(viewer.layers["gt_sample"].data, frozen)
    # the ignore value shows transparent, classes do not
    alpha = kept.colormap.map(np.array([0, 1, 255]))[:, 3]
    assert alpha[0] == 0 and alpha[1] > 0 and alpha[2] == 0
    np.testing.assert_array_equal(layer.data, clean)


def test_only_the_family_parameters_are_shown(setup):
    _, widget, _ = setup
    widget.family.value = "dilate"
    assert not widget.iterations.native.isHidden() and widget.p.native.isHidden()
    assert widget.seed.native.isHidden()
    widget.family.value = "flip"
    assert widget.iterations.native.isHidden() and not widget.p.native.isHidden()
    widget.separate.value = True
    assert widget.p.native.isHidden() and not widget.p_fg_to_bg.native.isHidden()
    assert widget.parameters()["p"] is None and widget.parameters()["p_fg_to_bg"] == widget.p_fg_to_bg.value


def test_image_or_negative_layers_disable_run(qtbot, setup):
    viewer, widget, _ = setup
    image = viewer.add_image(np.random.default_rng(0).random((32, 32)), name="raw")
    widget.source.value = image
    assert not widget.run_button.enabled and not widget.keep_button.enabled
    assert "raw is an Image layer" in widget.status.value
    assert widget.preview() is None and "raw_flip" not in viewer.layers
    negative = viewer.add_labels(np.full((16, 16), -1, dtype=np.int32), name="neg")
    widget.source.value = negative
    assert not widget.run_button.enabled and "negative" in widget.status.value
    widget.source.value = viewer.layers["gt"]
    assert widget.run_button.enabled and widget.status.value == ""


def test_bad_parameters_keep_the_last_good_preview(qtbot, setup):
    viewer, widget, _ = setup
    widget.live.value = False
    widget.family.value = "morph"
    widget.ops.value = "de"
    good = widget.preview()
    assert good is not None and good.name == "gt_morph"
    data = good.data.copy()
    widget.ops.value = "dz"
    assert widget.preview() is None
    assert "ops" in widget.status.value
    np.testing.assert_array_equal(viewer.layers["gt_morph"].data, data)


def test_stacks_can_work_frame_by_frame(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    stack = np.zeros((3, 20, 20), dtype=np.uint8)
    stack[1, 8:12, 8:12] = 1
    layer = viewer.add_labels(stack, name="stack")
    widget = NoisyLabelsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.live.value = False
    assert widget.source.value is layer  # starts on the active Labels layer
    widget.family.value = "dilate"
    assert not widget.per_frame.native.isHidden()
    widget.per_frame.value = True
    out = widget.preview()
    assert out.metadata["noise"]["spatial_ndim"] == 2
    assert not out.data[0].any() and not out.data[2].any() and np.count_nonzero(out.data[1]) == 36
