"""The "Meta-structure density" dock widget in a real viewer."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_metastructures._widgets import density as density_widget
from napari_metastructures._widgets.density import DensityWidget
from napari_metastructures.core.density import density_map
from napari_metastructures.core.noise import flip_labels
from napari_metastructures.core.synthetic import circle_in_rectangle


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    gt = circle_in_rectangle((96, 128))
    layer = viewer.add_labels(gt, name="gt", scale=(0.5, 0.25), translate=(3.0, -2.0))
    noisy = viewer.add_labels(flip_labels(gt, 0.2, seed=1), name="noisy", scale=(0.5, 0.25), translate=(3.0, -2.0))
    widget = DensityWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget, layer, noisy


def update(qtbot, widget):
    with qtbot.waitSignal(widget.updated, timeout=20_000) as blocker:
        widget.update_maps()
    return blocker.args[0]


def test_density_layers_appear_and_update_in_place(qtbot, setup):
    viewer, widget, gt, noisy = setup
    gt_data = np.array(gt.data, copy=True)
    widget.bandwidth.value = 4
    widget.layers.value = [gt, noisy]
    qtbot.waitUntil(lambda: "noisy density" in viewer.layers)
    # one map per binary input: the foreground's (the background's is its complement)
    assert {"gt density", "noisy density"} <= {layer.name for layer in viewer.layers}
    assert not any("c0" in layer.name for layer in viewer.layers)
    d1 = viewer.layers["gt density"]
    np.testing.assert_allclose(d1.data, density_map(gt_data, 4, edges="inside")[1], atol=1e-6)
    assert tuple(d1.scale) == (0.5, 0.25) and tuple(d1.translate) == (3.0, -2.0)
    assert d1.colormap.name == "magma" and d1.metadata["density"]["bandwidth"] == 4
    assert d1.metadata["density"]["edges"] == "inside"  # no dark border (issue 17 item 7)
    # the layers' scale is their pixel size (no units: µm), so h is also given in µm
    assert d1.metadata["density"]["bandwidth_um"] == pytest.approx(4 * (0.5 * 0.25) ** 0.5, abs=1e-3)
    assert "h = 4 px = 1.41 µm" in widget.status.value
    # one contrast range for every map of an update, so they compare by eye
    assert tuple(d1.contrast_limits) == tuple(viewer.layers["noisy density"].contrast_limits)
    n_layers = len(viewer.layers)

    widget.bandwidth.value = 9  # live, debounced
    qtbot.waitUntil(lambda: viewer.layers["gt density"].metadata["density"]["bandwidth"] == 9)
    assert len(viewer.layers) == n_layers  # updated, not duplicated
    assert viewer.layers["gt density"] is d1
    np.testing.assert_allclose(d1.data, density_map(gt_data, 9, edges="inside")[1], atol=1e-6)
    np.testing.assert_array_equal(gt.data, gt_data)  # input untouched

    widget.kernel.value = "gaussian"
    qtbot.waitUntil(lambda: viewer.layers["gt density"].metadata["density"]["kernel"] == "gaussian")
    assert len(viewer.layers) == n_layers


def test_panel_shows_matrix_rank_and_similarity(qtbot, setup):
    viewer, widget, gt, noisy = setup
    widget.live.value = False
    widget.layers.value = [gt, noisy]
    widget.reference.value = gt
    update(qtbot, widget)
    text = widget.panel.value
    assert "noisy:\n  similarity" in text and "rank 2" in text and "Q[0, :]" in text
    assert "gt: the reference" in text and text.count("  similarity") == 1  # not compared with itself


def test_panel_explains_the_similarity_beside_the_plain_correlation(qtbot, setup):
    """Issue 17 item 7: the number is explained on the panel, and the uncorrected correlation shows
    how much noise the maps carry (a 40 % flip: similarity near 1, plain r well below)."""
    viewer, widget, gt, _ = setup
    noisier = viewer.add_labels(flip_labels(gt.data, 0.4, seed=1), name="flip 0.4", scale=gt.scale)
    widget.live.value = False
    widget.layers.value = [noisier]
    widget.reference.value = gt
    update(qtbot, widget)
    text = widget.panel.value
    assert density_widget.LEGEND in text
    similarity = float(text.split("similarity ")[1].split()[0])
    plain = float(text.split("plain r ")[1].split(")")[0])
    assert similarity > 0.9 and plain < similarity - 0.1, (similarity, plain)  # 0.925 vs 0.777
    lines = text.count("\n") + 1  # every line has room at the panel's font
    assert widget.panel.native.minimumHeight() >= lines * widget.panel.native.fontMetrics().lineSpacing()


def test_maps_are_computed_off_the_gui_thread(qtbot, setup, thread_spy):
    """Issue 17 item 11: the maps are computed in a worker thread."""
    _, widget, gt, _ = setup
    widget.live.value = False
    threads = thread_spy(density_widget, "compute_maps")
    widget.layers.value = [gt]
    assert [layer.name for layer in update(qtbot, widget)] == ["gt density"]
    assert threads and threads[0] is not threading.main_thread()


def test_only_labels_are_offered_and_bad_values_give_a_message(qtbot, setup):
    viewer, widget, gt, noisy = setup
    widget.live.value = False
    viewer.add_image(np.random.default_rng(0).random((96, 128)).astype(np.float32), name="img")
    widget.layers.reset_choices()
    assert [name for name, _ in widget._layer_choices()] == ["gt", "noisy"]
    many = viewer.add_labels(np.arange(96 * 128, dtype=np.int32).reshape(96, 128) % 40, name="inst")
    widget.layers.reset_choices()
    widget.layers.value = [many]
    assert update(qtbot, widget) == []
    assert "inst: label values reach 39, more than 32 classes" in widget.status.value
    assert not any(layer.name.startswith("inst density") for layer in viewer.layers)


def test_sample_demo_layers(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-metastructures", "meta_structure_demo")
    widget = DensityWidget(viewer)
    widget.live.value = False
    labels = [layer for layer in viewer.layers if layer._type_string == "labels"]
    assert len(labels) == 3
    widget.layers.value = labels
    widget.reference.value = labels[0]
    update(qtbot, widget)
    assert sum(layer.name.endswith(" density") for layer in viewer.layers) == 3
    text = widget.panel.value
    assert "rank 1" in text and "rank 2" in text


def test_density_maps_are_not_offered_as_training_inputs(qtbot, setup):
    """Issue 17 item 3: our outputs never come back as inputs of the training widgets."""
    from napari_metastructures._widgets._forms import image_layers

    viewer, widget, gt, _ = setup
    viewer.add_image(np.zeros((96, 128), np.float32), name="raw")
    widget.live.value = False
    widget.layers.value = [gt]
    update(qtbot, widget)
    assert "gt density" in viewer.layers
    assert [name for name, _ in image_layers(viewer)] == ["raw"]
