"""The "Train from rough labels" dock widget in a real viewer (tiny networks, one or two epochs)."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures._widgets.rough_labels import RoughLabelsWidget
from napari_metastructures.core.noise import sample_labels
from napari_metastructures.core.synthetic import er_network

TIMEOUT = 180_000  # ms; the test machine is shared and slow


def tiny(widget: RoughLabelsWidget, epochs: int = 2) -> RoughLabelsWidget:
    widget.encoder_depth.value = 3
    widget.crop.value = 64
    widget.batch.value = 2
    widget.steps.value = 1
    widget.epochs.value = epochs
    widget.preview_every.value = 1
    return widget


@pytest.fixture
def er_pair():
    return er_network((96, 96), seed=5)


@pytest.mark.slow
def test_trains_from_sampled_noisy_labels(make_napari_viewer, qtbot, er_pair):
    """Labels from the 'Noisy labels' widget (10% sampled, 255 = not sampled) work as they are."""
    image, mask = er_pair
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er", scale=(0.1, 0.1), translate=(5.0, 0.0))
    noisy = sample_labels(mask, 0.1, seed=0)
    assert set(np.unique(noisy)) == {0, 1, 255}
    labels = viewer.add_labels(noisy, name="er_sample")
    kept = noisy.copy()
    widget = tiny(RoughLabelsWidget(viewer))
    viewer.window.add_dock_widget(widget, name="Train from rough labels")
    assert widget.image.value is viewer.layers["er"] and widget.label_layer.value is labels
    assert widget.ignore_value.value == 255
    panel = widget.panel
    assert panel.run_button.enabled, panel.run_button.tooltip
    epochs = []
    panel.epoch_done.connect(lambda r: epochs.append(r.epoch))
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        panel.run()
    assert blocker.args == ["finished"] and epochs == [1, 2]
    out = viewer.layers["er_rough"]
    assert out.data.shape == image.shape and set(np.unique(out.data)) <= {0, 1}
    np.testing.assert_allclose(out.scale, (0.1, 0.1))
    np.testing.assert_allclose(out.translate, (5.0, 0.0))
    meta = out.metadata
    assert meta["method"] == "rough_labels" and meta["params"]["labels"] == "er_sample"
    assert meta["params"]["ignore_value"] == 255 and meta["params"]["class_values"] == [0, 1]
    np.testing.assert_array_equal(labels.data, kept)  # the input labels are not modified
    prob = viewer.layers["er_rough_prob"]
    np.testing.assert_array_equal(out.data, (prob.data > 0.5).astype(np.uint8))


@pytest.mark.slow
def test_scribbles_map_back_to_their_class_values(make_napari_viewer, qtbot, er_pair):
    """Scribble mode: 0 = not annotated; classes 1 (background) and 2 (structure)."""
    image, mask = er_pair
    scribbles = np.zeros(mask.shape, np.uint8)
    scribbles[::7, :] = np.where(mask[::7, :] > 0, 2, 1)  # a few annotated rows
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er")
    viewer.add_labels(scribbles, name="scribbles")
    widget = tiny(RoughLabelsWidget(viewer), epochs=1)
    widget.scribbles.value = True
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT):
        widget.panel.run()
    out = viewer.layers["er_rough"]
    assert set(np.unique(out.data)) <= {1, 2}  # never 0: every pixel gets a painted class
    assert out.metadata["params"]["class_values"] == [1, 2]
    assert out.metadata["params"]["unlabelled_is_ignore"] is True


@pytest.mark.slow
def test_stop_save_load_predict(make_napari_viewer, qtbot, er_pair, tmp_path):
    image, mask = er_pair
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er")
    viewer.add_labels(mask, name="mask")
    widget = tiny(RoughLabelsWidget(viewer), epochs=100)
    viewer.window.add_dock_widget(widget)  # docked: napari refreshes its layer choices
    widget.steps.value = 3
    panel = widget.panel
    with qtbot.waitSignal(panel.epoch_done, timeout=TIMEOUT):
        panel.run()
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        panel.stop()
    assert blocker.args == ["stopped"]
    assert viewer.layers["er_rough"].data.shape == image.shape  # the last preview stays
    path = panel.save_model(tmp_path / "rough.pt")
    other = viewer.add_image(image[:80, :64].copy(), name="crop", scale=(2.0, 2.0))
    panel.model = None
    panel.load_model(path)
    panel.predict_on.value = other
    with qtbot.waitSignal(panel.predicted, timeout=TIMEOUT) as blocker:
        panel.predict()
    out = blocker.args[0]
    assert out.name == "crop_rough" and out.data.shape == (80, 64)
    np.testing.assert_allclose(out.scale, (2.0, 2.0))


def test_bad_label_layers_are_refused_with_a_reason(make_napari_viewer, er_pair):
    image, mask = er_pair
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er")
    float_mask = viewer.add_image(mask.astype(np.float32), name="float_mask")
    widget = tiny(RoughLabelsWidget(viewer))
    viewer.window.add_dock_widget(widget)  # docked: napari refreshes its layer choices
    panel = widget.panel
    widget.label_layer.value = float_mask  # a mask opened as a float Image layer
    assert not panel.run_button.enabled
    assert "labels must be integers" in panel.run_button.tooltip
    assert "'float_mask'" in panel.run_button.tooltip

    small = viewer.add_labels(mask[:50, :50], name="small")
    widget.label_layer.value = small
    assert not panel.run_button.enabled and "must match" in panel.run_button.tooltip

    good = viewer.add_labels(mask, name="good")
    widget.label_layer.value = good
    assert panel.run_button.enabled, panel.run_button.tooltip
    widget.arch.value = "deeplabv3plus"
    widget.batch.value = 1
    assert not panel.run_button.enabled and "batch of at least 2" in panel.run_button.tooltip
    widget.batch.value = 2
    assert panel.run_button.enabled


def test_empty_labels_start_no_run(make_napari_viewer, er_pair):
    image, mask = er_pair
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er")
    viewer.add_labels(np.zeros_like(mask), name="nothing")
    widget = tiny(RoughLabelsWidget(viewer))
    widget.panel.run()  # refused up front (the button is disabled), never a failed run
    assert widget.panel.worker is None and not widget.panel.run_button.enabled
    assert "no foreground" in widget.panel.run_button.tooltip


@pytest.mark.parametrize("values,reason", [
    (lambda lab: np.zeros_like(lab), "no foreground"),
    (lambda lab: np.arange(lab.size, dtype=np.int32).reshape(lab.shape) % 200, "instance labels"),
])
def test_labels_that_cannot_train_disable_run_naming_the_layer(make_napari_viewer, er_pair, values, reason):
    """Issue 17 item 12: empty and instance labels are refused before Run, by layer name."""
    image, mask = er_pair
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er")
    bad = viewer.add_labels(values(mask.astype(np.int32)), name="my labels")
    widget = tiny(RoughLabelsWidget(viewer))
    widget.image.value, widget.label_layer.value = viewer.layers["er"], bad
    widget.panel.refresh()
    assert not widget.panel.run_button.enabled
    assert reason in widget.panel.problem.value and "layer 'my labels'" in widget.panel.problem.value


def test_predict_refuses_rgb_and_nan_layers_before_the_click(make_napari_viewer, er_pair):
    """Issue 17 item 12: Predict is disabled, with the reason, for a layer it cannot segment."""
    from napari_metastructures.core.training.model import TrainedModel

    image, _ = er_pair
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er")
    nan = image.astype(np.float32)
    nan[3, 3] = np.nan
    viewer.add_image(nan, name="holes")
    viewer.add_image(np.zeros((32, 32, 3), np.uint8), name="rgb", rgb=True)
    widget = tiny(RoughLabelsWidget(viewer))
    models = widget.panel.models
    models.model = object.__new__(TrainedModel)  # any model: only the buttons are looked at
    for name, reason in (("holes", "NaN"), ("rgb", "RGB")):
        models.predict_on.value = viewer.layers[name]
        models.update_buttons()
        assert not models.predict_button.enabled and reason in models.predict_button.tooltip, name
    models.predict_on.value = viewer.layers["er"]
    models.update_buttons()
    assert models.predict_button.enabled
