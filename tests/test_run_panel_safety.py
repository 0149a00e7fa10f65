"""Results the user made are never lost: a stop before the first epoch keeps the model, "clear
previous results" keeps other images' results, and reruns reuse their layers through npe2's proxy."""
import numpy as np
import pytest

from napari_metastructures._widgets.igtt import IgttWidget
from napari_metastructures.core.synthetic import er_network

pytestmark = pytest.mark.slow
TIMEOUT = 240_000


def tiny(widget):
    widget.encoder_depth.value, widget.crop.value, widget.batch.value = 3, 64, 2
    widget.steps.value, widget.epochs.value, widget.early_stop.value = 1, 1, False
    return widget


def docked(make_napari_viewer, names=("er",), proxy=False):
    from napari.utils._proxies import PublicOnlyProxy

    viewer = make_napari_viewer()
    for i, name in enumerate(names):
        viewer.add_image(er_network((64, 64), seed=i)[0], name=name)
    widget = tiny(IgttWidget(PublicOnlyProxy(viewer) if proxy else viewer))
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def run(qtbot, panel, stop_at_once=False):
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        panel.run()
        if stop_at_once:
            panel.stop()
    return blocker.args[0]


def test_a_stop_before_the_first_epoch_keeps_the_previous_model(make_napari_viewer, qtbot):
    viewer, widget = docked(make_napari_viewer)
    panel = widget.panel
    assert run(qtbot, panel) == "finished"
    good, shown = panel.model, viewer.layers["er_igtt"].data.copy()
    assert len(good.history) == 1
    assert run(qtbot, panel, stop_at_once=True) == "stopped"
    assert panel.model is good and "1 epoch(s) trained" in panel.models.info.value
    assert "previous model is kept" in panel.timing.value and panel.save_button.enabled
    np.testing.assert_array_equal(viewer.layers["er_igtt"].data, shown)  # the last result stays too


def test_clear_previous_results_keeps_other_images_results(make_napari_viewer, qtbot):
    viewer, widget = docked(make_napari_viewer, names=("er", "mito"))
    assert widget.panel.clear_previous.value
    widget.images.value = [viewer.layers["er"]]
    assert run(qtbot, widget.panel) == "finished"
    er_mask = viewer.layers["er_igtt"].data.copy()
    widget.images.value = [viewer.layers["mito"]]
    assert run(qtbot, widget.panel) == "finished"
    names = [layer.name for layer in viewer.layers]
    assert {"er_igtt", "er_igtt_prob", "mito_igtt", "mito_igtt_prob"} <= set(names)
    np.testing.assert_array_equal(viewer.layers["er_igtt"].data, er_mask)


def test_a_rerun_through_the_npe2_proxy_reuses_its_layers(make_napari_viewer, qtbot):
    viewer, widget = docked(make_napari_viewer, proxy=True)
    assert run(qtbot, widget.panel) == "finished"
    first = [layer.name for layer in viewer.layers]
    assert run(qtbot, widget.panel) == "finished"
    assert [layer.name for layer in viewer.layers] == first == ["er", "er_igtt_prob", "er_igtt"]
    # its outputs are never offered back as inputs
    assert [name for name, _ in widget._image_choices()] == ["er"]


def test_outputs_have_their_own_colour(make_napari_viewer, qtbot):
    """Issue 17 item 6: a run's mask is not drawn in the ground truth's label-1 colour."""
    viewer, widget = docked(make_napari_viewer)
    truth = viewer.add_labels(np.ones((64, 64), np.uint8), name="truth")
    assert run(qtbot, widget.panel) == "finished"
    mask = viewer.layers["er_igtt"]
    ours, theirs = mask.colormap.map(np.array([1]))[0], truth.colormap.map(np.array([1]))[0]
    assert not np.allclose(ours, theirs) and mask.colormap.map(np.array([0]))[0][3] == 0
