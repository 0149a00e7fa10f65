"""Every dock widget opens the way a user opens it: from the Plugins menu, through npe2."""
import warnings

import pytest

from napari_metastructures.cli.view import PLUGIN, WIDGETS


@pytest.mark.parametrize("name", WIDGETS)
def test_widget_opens_from_the_plugin_menu(make_napari_viewer, name):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "er_network")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # private napari access through npe2's proxy
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    expected = {"iGTT segmentation": "IgttWidget", "Noisy labels": "NoisyLabelsWidget",
                "Meta-structure density": "DensityWidget", "Train from rough labels": "RoughLabelsWidget"}
    assert type(widget).__name__ == expected[name]
    assert dock.widget() is not None


def test_view_command_docks_all_widgets_and_loads_a_sample(make_napari_viewer, monkeypatch):
    import napari

    from napari_metastructures.cli import view

    made = []
    monkeypatch.setattr(napari, "Viewer", lambda **kw: made.append(make_napari_viewer(**kw)) or made[-1])
    viewer = view.open_viewer("er_network", WIDGETS)
    assert viewer is made[0]
    assert "ER network (synthetic)" in viewer.layers
    window = viewer.window  # napari < 0.7 has no public dock_widgets mapping
    docked = list(getattr(window, "dock_widgets", None) or window._dock_widgets)
    for name in WIDGETS:
        assert any(name in d for d in docked), (name, docked)


def test_opening_noisy_labels_adds_no_layer_until_asked(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "er_network")
    before = [layer.name for layer in viewer.layers]
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Noisy labels")
    assert widget.source.value is viewer.layers["ER network ground truth"]
    assert not widget._timer.isActive()  # no preview scheduled on open
    widget.p.value = 0.3  # a user change schedules one
    assert widget._timer.isActive()
    with qtbot.waitSignal(widget.previewed, timeout=20_000):
        widget.preview()
    assert [layer.name for layer in viewer.layers] == before + ["ER network ground truth_flip (preview)"]


def test_training_widgets_keep_run_visible_with_every_dock_open(make_napari_viewer, qtbot):
    """Issue 17 item 4: with all four docks stacked, Run, progress and the warning line still show."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.open_sample(PLUGIN, "er_network")
    widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[1]
               for name in ("Noisy labels", "Train from rough labels", "Meta-structure density",
                            "iGTT segmentation")}
    qtbot.waitUntil(lambda: widgets["iGTT segmentation"].native.isVisible())
    assert viewer.window._qt_window.height() <= 1000  # the docks fit the window; it does not grow past the screen
    for name in ("Train from rough labels", "iGTT segmentation"):
        panel = widgets[name].panel
        for w in (panel.run_button, panel.progress, panel.timing):
            region = w.native.visibleRegion().boundingRect()
            assert w.native.isVisible() and region.height() >= w.native.sizeHint().height() - 2, (name, w)
