"""The "Noisy labels" dock widget in a real viewer."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_metastructures._widgets import noisy_labels
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
    qtbot.waitUntil(lambda: "gt_flip (preview)" in viewer.layers
                    and viewer.layers["gt_flip (preview)"].metadata["noise"]["p"] == 0.1)
    preview = viewer.layers["gt_flip (preview)"]
    np.testing.assert_array_equal(preview.data, flip_labels(clean, 0.1, seed=4))
    assert tuple(preview.scale) == (0.5, 0.25) and tuple(preview.translate) == (3.0, -2.0)
    assert "rank 2" in widget.summary.value
    n_layers = len(viewer.layers)

    widget.p.value = 0.3
    qtbot.waitUntil(lambda: preview.metadata["noise"]["p"] == 0.3)
    assert viewer.layers["gt_flip (preview)"] is preview and len(viewer.layers) == n_layers
    np.testing.assert_array_equal(preview.data, flip_labels(clean, 0.3, seed=4))
    np.testing.assert_array_equal(layer.data, clean)  # the source is never modified


def test_keep_freezes_a_copy_with_parameters_and_seed(qtbot, setup, clean):
    viewer, widget, layer = setup
    widget.family.value = "sample"
    widget.p.value = 0.5
    widget.seed.value = 9
    qtbot.waitUntil(lambda: "gt_sample (preview)" in viewer.layers
                    and viewer.layers["gt_sample (preview)"].metadata["noise"]["seed"] == 9)
    kept = widget.keep()
    assert kept.name == "gt_sample_p0.5_seed9" and kept is not viewer.layers["gt_sample (preview)"]
    assert kept.metadata["noise"]["kind"] == "sample" and kept.metadata["noise"]["p"] == 0.5
    assert kept.metadata["noise"]["source"] == "gt"
    assert tuple(kept.scale) == (0.5, 0.25)
    frozen = kept.data.copy()
    widget.seed.value = 10
    qtbot.waitUntil(lambda: viewer.layers["gt_sample (preview)"].metadata["noise"]["seed"] == 10)
    np.testing.assert_array_equal(kept.data, frozen)  # later previews leave it alone
    assert not np.array_equal(viewer.layers["gt_sample (preview)"].data, frozen)
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
    widget.preview()
    assert widget.preview_layer() is None and "raw" in widget.status.value
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
    with qtbot.waitSignal(widget.previewed) as blocker:
        widget.preview()
    good = blocker.args[0]
    assert good is not None and good.name == "gt_morph (preview)"
    data = good.data.copy()
    widget.ops.value = "dz"
    with qtbot.waitSignal(widget.previewed) as blocker:
        widget.preview()
    assert blocker.args[0] is None
    assert "gt: " in widget.status.value and "ops" in widget.status.value
    np.testing.assert_array_equal(viewer.layers["gt_morph (preview)"].data, data)


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
    assert not widget.per_frame.native.isHidden() and widget.per_frame.value  # frame by frame by default
    with qtbot.waitSignal(widget.previewed) as blocker:
        widget.preview()
    out = blocker.args[0]
    assert out.metadata["noise"]["spatial_ndim"] == 2
    assert not out.data[0].any() and not out.data[2].any() and np.count_nonzero(out.data[1]) == 36


def preview(qtbot, widget):
    with qtbot.waitSignal(widget.previewed, timeout=20_000) as blocker:
        widget.preview()
    return blocker.args[0]


def test_one_preview_layer_in_its_own_colour_across_families(qtbot, setup):
    """Issue 17 item 6: previews replace each other in one layer, drawn above kept layers."""
    viewer, widget, layer = setup
    widget.live.value = False
    n_before = len(viewer.layers)
    names = []
    for family in ("flip", "dilate", "sample", "skeleton"):
        widget.family.value = family
        out = preview(qtbot, widget)
        names.append(out.name)
        assert len(viewer.layers) == n_before + 1 and widget.preview_layer() is out
    assert names == [f"gt_{f} (preview)" for f in ("flip", "dilate", "sample", "skeleton")]
    own, truth = out.colormap.map(np.array([1]))[0], layer.colormap.map(np.array([1]))[0]
    assert not np.allclose(own, truth)
    widget.family.value = "flip"
    preview(qtbot, widget)
    kept = widget.keep()
    assert kept is not None and not widget.preview_layer().visible  # the kept copy shows instead
    widget.p.value = 0.4
    out = preview(qtbot, widget)
    assert out.visible and viewer.layers.index(out) == len(viewer.layers) - 1  # above the kept layer


def test_noise_is_computed_off_the_gui_thread(qtbot, setup, thread_spy):
    """Issue 17 item 11: the family runs in a worker thread; the GUI thread only shows it."""
    _, widget, _ = setup
    widget.live.value = False
    threads = thread_spy(noisy_labels, "compute_preview")
    out = preview(qtbot, widget)
    assert out is not None and threads and threads[0] is not threading.main_thread()


def test_the_matrix_readout_fits_and_clears(qtbot, setup):
    """Issue 17 item 5: every line of the read-out fits; a bad source leaves no old matrix."""
    viewer, widget, _ = setup
    widget.live.value = False
    preview(qtbot, widget)
    lines = widget.summary.value.count("\n") + 1
    assert lines >= 4
    assert widget.summary.native.minimumHeight() >= lines * widget.summary.native.fontMetrics().lineSpacing()
    widget.source.value = viewer.add_labels(np.full((16, 16), -1, dtype=np.int32), name="neg")
    assert widget.summary.value == "" and "negative" in widget.status.value


def test_a_family_that_changes_nothing_says_so(qtbot, setup):
    """Issue 17 item 12: misannotation of binary labels without instances leaves them as they are."""
    _, widget, _ = setup
    widget.live.value = False
    widget.family.value = "misannotate"
    preview(qtbot, widget)
    assert "same as gt" in widget.status.value
    widget.family.value = "flip"
    preview(qtbot, widget)
    assert "same as" not in widget.status.value


def test_keep_right_after_a_change_keeps_the_new_settings(qtbot, setup):
    """Keep while the preview is still computing keeps that preview once it lands, not the old one."""
    viewer, widget, _ = setup
    widget.live.value = False
    widget.family.value = "flip"
    preview(qtbot, widget)
    widget.p.value = 0.35
    with qtbot.waitSignal(widget.previewed, timeout=20_000):
        assert widget.keep() is None
    kept = viewer.layers["gt_flip_p0.35_seed0"]
    assert kept.metadata["noise"]["p"] == 0.35


def test_previews_and_kept_layers_keep_the_source_axes(qtbot, make_napari_viewer):
    """Outputs keep the input's axes: labels and units, as well as scale and translate."""
    viewer = make_napari_viewer()
    stack = np.zeros((3, 20, 20), dtype=np.uint8)
    stack[1, 8:12, 8:12] = 1
    layer = viewer.add_labels(stack, name="stack", scale=(0.25, 0.1, 0.1), axis_labels=("z", "y", "x"),
                              units=("um", "um", "um"))
    widget = NoisyLabelsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.live.value = False
    widget.family.value = "dilate"
    out = preview(qtbot, widget)
    kept = widget.keep()
    for result in (out, kept):
        assert tuple(result.axis_labels) == ("z", "y", "x") and tuple(result.units) == tuple(layer.units)
        assert tuple(result.scale) == (0.25, 0.1, 0.1)
