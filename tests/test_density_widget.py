"""The "Meta-structure density" dock widget in a real viewer."""
from __future__ import annotations

import numpy as np
import pytest

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


def test_density_layers_appear_and_update_in_place(qtbot, setup):
    viewer, widget, gt, noisy = setup
    gt_data = np.array(gt.data, copy=True)
    widget.bandwidth.value = 4
    widget.layers.value = [gt, noisy]
    qtbot.waitUntil(lambda: "noisy_density_c1" in viewer.layers)
    names = {"gt_density_c0", "gt_density_c1", "noisy_density_c0", "noisy_density_c1"}
    assert names <= {layer.name for layer in viewer.layers}
    d1 = viewer.layers["gt_density_c1"]
    np.testing.assert_allclose(d1.data, density_map(gt_data, 4)[1], atol=1e-6)
    assert tuple(d1.scale) == (0.5, 0.25) and tuple(d1.translate) == (3.0, -2.0)
    assert d1.colormap.name == "magma" and d1.metadata["density"]["bandwidth"] == 4
    n_layers = len(viewer.layers)

    widget.bandwidth.value = 9  # live, debounced
    qtbot.waitUntil(lambda: viewer.layers["gt_density_c1"].metadata["density"]["bandwidth"] == 9)
    assert len(viewer.layers) == n_layers  # updated, not duplicated
    assert viewer.layers["gt_density_c1"] is d1
    np.testing.assert_allclose(d1.data, density_map(gt_data, 9)[1], atol=1e-6)
    np.testing.assert_array_equal(gt.data, gt_data)  # input untouched

    widget.kernel.value = "gaussian"
    qtbot.waitUntil(lambda: viewer.layers["gt_density_c1"].metadata["density"]["kernel"] == "gaussian")
    assert len(viewer.layers) == n_layers


def test_panel_shows_matrix_rank_and_similarity(qtbot, setup):
    viewer, widget, gt, noisy = setup
    widget.live.value = False
    widget.layers.value = [gt, noisy]
    widget.reference.value = gt
    widget.update_maps()
    text = widget.panel.value
    assert "noisy:" in text and "gt:" in text
    assert "rank 2" in text and "similarity 1.000" in text  # gt against itself
    assert "Q[0, :]" in text


def test_image_layer_and_float_labels_give_a_message(qtbot, setup):
    viewer, widget, gt, noisy = setup
    widget.live.value = False
    image = viewer.add_image(np.random.default_rng(0).random((96, 128)).astype(np.float32), name="img")
    widget.layers.reset_choices()
    widget.layers.value = [image]
    assert widget.update_maps() == []
    assert "img is an Image layer" in widget.status.value
    assert not any(layer.name.startswith("img_density") for layer in viewer.layers)
    many = viewer.add_labels(np.arange(96 * 128, dtype=np.int32).reshape(96, 128) % 40, name="inst")
    widget.layers.reset_choices()
    widget.layers.value = [many]
    assert widget.update_maps() == []
    assert "inst: label values reach 39, more than 32 classes" in widget.status.value


def test_sample_demo_layers(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-metastructures", "meta_structure_demo")
    widget = DensityWidget(viewer)
    widget.live.value = False
    labels = [layer for layer in viewer.layers if layer._type_string == "labels"]
    assert len(labels) == 3
    widget.layers.value = labels
    widget.reference.value = labels[0]
    widget.update_maps()
    assert sum("_density_c" in layer.name for layer in viewer.layers) == 6
    text = widget.panel.value
    assert "rank 1" in text and "rank 2" in text
