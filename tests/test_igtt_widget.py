"""The iGTT dock widget in a real viewer: live runs, stop, save/load/predict, bad inputs, closing.

Runs use a tiny network (encoder depth 3, 64-px crops, one or two steps per epoch).
"""
from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import notification_manager
from qtpy.QtCore import QThreadPool

from napari_metastructures._widgets import igtt as igtt_module
from napari_metastructures._widgets.igtt import IgttWidget
from napari_metastructures.core.progress import OutOfMemoryAdvice
from napari_metastructures.core.synthetic import er_network
from napari_metastructures.io import read_image

TIMEOUT = 180_000  # ms; the test machine is shared and slow


@pytest.fixture
def er_image():
    image, _ = er_network((96, 96), seed=3)
    return image


def tiny(widget: IgttWidget, epochs: int = 2, steps: int = 1) -> IgttWidget:
    """A network small enough for a test: depth 3, 64-px crops, batch 2."""
    widget.encoder_depth.value = 3
    widget.crop.value = 64
    widget.batch.value = 2
    widget.steps.value = steps
    widget.epochs.value = epochs
    widget.preview_every.value = 1
    widget.early_stop.value = False
    return widget


def make_widget(make_napari_viewer, image, **layer_kw):
    viewer = make_napari_viewer()
    viewer.add_image(image, name="er", **layer_kw)
    widget = IgttWidget(viewer)
    viewer.window.add_dock_widget(widget, name="iGTT segmentation")
    return viewer, tiny(widget)


@pytest.mark.slow
def test_run_streams_into_layers_keeping_scale(make_napari_viewer, qtbot, er_image):
    viewer, widget = make_widget(make_napari_viewer, er_image, scale=(0.5, 0.25), translate=(3.0, 4.0))
    original = viewer.layers["er"].data.copy()
    panel = widget.panel
    assert panel.run_button.enabled, panel.run_button.tooltip
    seen, dock = [], []
    panel.epoch_done.connect(lambda r: seen.append((r.epoch, viewer.layers["er_igtt"])))
    panel.epoch_done.connect(lambda r: dock.append((panel.activity.bar.n, panel.activity.bar.total)))
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        panel.run()
        assert panel.running and not panel.run_button.enabled and panel.stop_button.enabled
        assert panel.activity.bar.desc.startswith("igtt: er")  # the run in napari's activity dock
    assert blocker.args == ["finished"]
    assert dock == [(1, 2), (2, 2)] and panel.activity.bar is None
    assert [e for e, _ in seen] == [1, 2]
    assert seen[0][1] is seen[1][1]  # one layer, updated in place
    mask, prob = viewer.layers["er_igtt"], viewer.layers["er_igtt_prob"]
    assert mask._type_string == "labels" and prob._type_string == "image"
    assert mask.data.shape == prob.data.shape == er_image.shape
    assert set(np.unique(mask.data)) <= {0, 1}
    assert 0.0 <= prob.data.min() and prob.data.max() <= 1.0
    np.testing.assert_array_equal(mask.data, (prob.data > 0.5).astype(np.uint8))
    for layer in (mask, prob):
        np.testing.assert_allclose(layer.scale, (0.5, 0.25))
        np.testing.assert_allclose(layer.translate, (3.0, 4.0))
    meta = mask.metadata
    assert meta["method"] == "igtt" and meta["source"] == "er" and meta["status"] == "finished"
    assert meta["seed"] == 0 and meta["device"] == "cpu" and meta["version"]
    assert meta["params"]["encoder_depth"] == 3 and meta["params"]["crop"] == 64
    assert meta["epoch"] == 2 and len(meta["timings"]["epoch_s"]) == 2
    np.testing.assert_array_equal(viewer.layers["er"].data, original)  # input untouched
    assert panel.model is not None and panel.save_button.enabled and panel.run_button.enabled
    assert "finished: 2/2 epochs" in panel.timing.value
    assert len(panel.plot.points) == 2
    # the finished probability layer is still marked as an output: not offered as an input
    assert [name for name, _ in widget._image_choices()] == ["er"]


def test_structure_choice_sets_the_config_and_survives_a_preset_change(make_napari_viewer, er_image):
    _, widget = make_widget(make_napari_viewer, er_image)
    assert widget.config().structure == "auto"  # decided from the data by default
    widget.structure.value = "objects"
    widget.preset.value = "paper"
    assert widget.structure.value == "objects" and widget.config().structure == "objects"
    assert widget.config().epochs == 100


@pytest.mark.slow
def test_inputs_are_frozen_at_launch(make_napari_viewer, qtbot, er_image):
    viewer, widget = make_widget(make_napari_viewer, er_image)
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT):
        widget.panel.run()
        viewer.layers["er"].data = np.zeros((40, 40), np.float32)  # changed mid-run
        viewer.layers["er"].scale = (2.0, 2.0)
    assert viewer.layers["er_igtt"].data.shape == er_image.shape
    np.testing.assert_allclose(viewer.layers["er_igtt"].scale, (1.0, 1.0))


@pytest.mark.slow
def test_stop_ends_run_and_keeps_results(make_napari_viewer, qtbot, er_image):
    viewer, widget = make_widget(make_napari_viewer, er_image)
    tiny(widget, epochs=50, steps=4)
    panel = widget.panel
    epochs, shown = [], []  # the epoch and the (mask, probability) layers' data after each streamed epoch

    def record(result):
        epochs.append(result.epoch)
        shown.append((viewer.layers["er_igtt"].data.copy(), viewer.layers["er_igtt_prob"].data.copy()))

    panel.epoch_done.connect(record)
    with qtbot.waitSignal(panel.epoch_done, timeout=TIMEOUT):
        panel.run()
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        panel.stop()
    assert blocker.args == ["stopped"]
    assert epochs in ([1], [1, 2])  # at most the epoch already running when Stop was pressed
    layer, prob = viewer.layers["er_igtt"], viewer.layers["er_igtt_prob"]
    assert layer.data.shape == er_image.shape
    # the last good prediction is kept: what the last streamed epoch showed, not the empty placeholders
    np.testing.assert_array_equal(layer.data, shown[-1][0])
    np.testing.assert_array_equal(prob.data, shown[-1][1])
    assert prob.data.max() > 0.5 and layer.data.any()
    assert layer.metadata["status"] == "stopped" and layer.metadata["epoch"] == epochs[-1]
    assert panel.model is not None and panel.run_button.enabled and not panel.stop_button.enabled


@pytest.mark.slow
def test_save_load_predict_and_export(make_napari_viewer, qtbot, er_image, tmp_path):
    viewer, widget = make_widget(make_napari_viewer, er_image)
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT):
        widget.panel.run()
    path = widget.panel.save_model(tmp_path / "igtt.pt")
    assert path.is_file()

    other, _ = er_network((80, 72), seed=9)
    layer = viewer.add_image(other.astype(np.uint16), name="other", scale=(0.2, 0.2))
    fresh = IgttWidget(viewer)
    assert not fresh.panel.predict_button.enabled  # no model yet
    assert (fresh.crop.value, fresh.batch.value, fresh.steps.value) != (64, 2, 1)
    fresh.panel.load_model(path)
    # issue 17 item 12: the form shows what the loaded model was trained with
    assert (fresh.crop.value, fresh.batch.value, fresh.steps.value, fresh.epochs.value) == (64, 2, 1, 2)
    assert fresh.early_stop.value is False and fresh.structure.value == widget.structure.value
    fresh.panel.predict_on.value = layer
    assert fresh.panel.predict_button.enabled
    with qtbot.waitSignal(fresh.panel.predicted, timeout=TIMEOUT) as blocker:
        fresh.panel.predict()
    mask = blocker.args[0]
    assert mask.name == "other_igtt" and mask.data.shape == other.shape
    np.testing.assert_allclose(mask.scale, (0.2, 0.2))
    expected = (widget.panel.model.predict(other.astype(np.uint16), device="cpu") > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(mask.data, expected)  # the loaded model predicts like the trained one

    written = fresh.panel.export_masks(tmp_path / "other_mask.tif")
    back = read_image(written[0])
    np.testing.assert_array_equal(back.data, mask.data)
    np.testing.assert_allclose(back.scale[-2:], (0.2, 0.2), rtol=1e-4)

    # the Export button writes in a worker thread and says so
    target = tmp_path / "from_button.tif"
    fresh.panel.models._export_in_worker(target)
    qtbot.waitUntil(target.is_file, timeout=TIMEOUT)  # written atomically: present means complete
    np.testing.assert_array_equal(read_image(target).data, mask.data)


@pytest.mark.slow
def test_stop_during_predict_writes_nothing(make_napari_viewer, qtbot, er_image, monkeypatch):
    import threading

    viewer, widget = make_widget(make_napari_viewer, er_image)
    panel = widget.panel
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
        panel.run()
    other = viewer.add_image(er_network((80, 72), seed=9)[0], name="other")
    panel.predict_on.value = other
    started, gate, real = threading.Event(), threading.Event(), panel.model.predict

    def held_predict(*args, **kwargs):  # waits until the test has pressed Stop
        started.set()
        gate.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(panel.model, "predict", held_predict)
    panel.predict()
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT)
    assert panel.stop_button.enabled and "predicting 'other'" in panel.timing.value
    panel.stop()
    gate.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT)
    assert "stopped; nothing written" in panel.timing.value
    assert "other_igtt" not in viewer.layers and panel.run_button.enabled


@pytest.mark.slow
def test_early_stop_is_named_when_the_run_ends(make_napari_viewer, qtbot, er_image, monkeypatch):
    from dataclasses import replace

    real = igtt_module.train

    def settles_at_once(images, config, **kwargs):  # every change counts as "settled"
        return real(images, replace(config, early_stop=True, early_stop_change=1.01), **kwargs)

    monkeypatch.setattr(igtt_module, "train", settles_at_once)
    viewer, widget = make_widget(make_napari_viewer, er_image)
    widget.epochs.value = 4
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT):
        widget.panel.run()
    text = widget.panel.timing.value
    assert text.startswith("finished: 2/4 epochs") and "early stop" in text


@pytest.mark.slow
def test_clear_previous_results(make_napari_viewer, qtbot, er_image):
    viewer, widget = make_widget(make_napari_viewer, er_image)
    tiny(widget, epochs=1)
    panel = widget.panel
    for _ in range(2):
        with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
            panel.run()
    assert [layer.name for layer in viewer.layers] == ["er", "er_igtt_prob", "er_igtt"]
    panel.clear_previous.value = False
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
        panel.run()
    assert "er_igtt [2]" in viewer.layers and "er_igtt" in viewer.layers
    panel.clear_results()
    assert [layer.name for layer in viewer.layers] == ["er"]


@pytest.mark.slow
def test_chosen_slices_of_a_stack(make_napari_viewer, qtbot):
    stack = np.stack([er_network((64, 64), seed=s)[0] for s in range(3)])
    viewer, widget = make_widget(make_napari_viewer, stack)
    tiny(widget, epochs=1)
    widget.slices.value = "0-5"
    assert not widget.panel.run_button.enabled
    assert "outside 0-2" in widget.panel.run_button.tooltip
    widget.slices.value = "0, 2"
    assert widget.panel.run_button.enabled, widget.panel.run_button.tooltip
    viewer.dims.set_point(0, 1)  # the user looks at slice 1, which does not train
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT):
        widget.panel.run()
        assert viewer.dims.point[0] == 0  # issue 17 item 10: the view moves to a slice that streams
    mask, prob = viewer.layers["er_igtt"], viewer.layers["er_igtt_prob"]
    assert mask.data.shape == stack.shape
    assert not prob.data[1].any() and prob.data[0].any() and prob.data[2].any()
    assert mask.metadata["slices"] == [0, 2]


@pytest.mark.parametrize(
    "data, reason",
    [
        (np.random.default_rng(0).random((96, 96, 3)).astype(np.float32), "RGB"),
        (np.where(np.eye(96, dtype=bool), np.nan, 1.0).astype(np.float32), "NaN"),
        (np.zeros((40, 40), np.uint16), "smaller than the 64-px training crop"),
    ],
)
def test_bad_images_disable_run_with_a_reason(make_napari_viewer, data, reason):
    viewer = make_napari_viewer()
    viewer.add_image(data, name="bad")
    widget = tiny(IgttWidget(viewer))
    panel = widget.panel
    assert not panel.run_button.enabled
    assert reason in panel.run_button.tooltip and "'bad'" in panel.run_button.tooltip
    assert reason in panel.problem.value
    panel.run()  # refused without starting a worker
    assert panel.worker is None and not panel.running


def test_16bit_image_is_fine_and_crop_must_fit_depth(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image((er_network((96, 96), seed=1)[0] * 50).astype(np.uint16), name="u16")
    widget = tiny(IgttWidget(viewer))
    viewer.window.add_dock_widget(widget)  # docked: napari refreshes its layer choices
    assert widget.panel.run_button.enabled, widget.panel.run_button.tooltip
    widget.encoder_depth.value = 5
    widget.crop.value = 48
    assert not widget.panel.run_button.enabled
    assert "multiple of 32" in widget.panel.run_button.tooltip
    viewer.layers.remove("u16")
    assert not widget.panel.run_button.enabled
    assert "pick one or more image layers" in widget.panel.run_button.tooltip


def test_engine_error_is_a_notification_and_widget_recovers(make_napari_viewer, qtbot, er_image, monkeypatch):
    def out_of_memory(images, config, seed=0, device="auto", stop=None, axes=None, init=None):
        raise OutOfMemoryAdvice("cuda:0 ran out of memory; try a smaller batch size (now 2)")
        yield  # a generator, like the real engine

    viewer, widget = make_widget(make_napari_viewer, er_image)
    monkeypatch.setattr(igtt_module, "train", out_of_memory)
    before = len(notification_manager.records)
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT) as blocker:
        widget.panel.run()
    assert blocker.args == ["failed"]
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("smaller batch size" in m for m in messages), messages
    assert widget.panel.run_button.enabled and not widget.panel.running
    assert "er_igtt" not in viewer.layers


@pytest.mark.slow
def test_closing_the_viewer_mid_run_stops_the_worker(make_napari_viewer, qtbot, er_image, monkeypatch):
    real, engine = igtt_module.train, {"epochs": [], "ended": False}

    def watched(*args, **kwargs):  # the engine's own view: epochs it finished, and whether it returned
        gen = real(*args, **kwargs)
        try:
            while True:
                record = next(gen)
                engine["epochs"].append(record.epoch)
                yield record
        except StopIteration as done:
            return done.value
        finally:
            engine["ended"] = True

    monkeypatch.setattr(igtt_module, "train", watched)
    viewer, widget = make_widget(make_napari_viewer, er_image)
    tiny(widget, epochs=200, steps=4)
    panel = widget.panel
    epochs = []
    panel.epoch_done.connect(lambda r: epochs.append(r.epoch))
    with qtbot.waitSignal(panel.epoch_done, timeout=TIMEOUT):
        panel.run()
    viewer.close()
    assert panel._done.is_set()  # close waited for the training thread to leave the engine
    assert engine["ended"] and engine["epochs"][0] == 1
    assert max(engine["epochs"]) <= 2  # stopped within the epoch that was running at close, not at 200
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=30_000)
    qtbot.wait(200)  # late signals of the worker, if any, arrive now
    assert epochs == [1]  # nothing reached the closed widget after close


def test_progress_inside_the_first_epoch(make_napari_viewer, qtbot, er_image, monkeypatch):
    """Issue 17 item 9: before any epoch ends, the status line counts the batches done."""
    import threading

    release = threading.Event()

    def slow_first_epoch(images, config, seed=0, device="auto", stop=None, axes=None, init=None):
        for _ in range(7):  # seven batches, each polling Stop as the engine does
            stop()
        release.wait(60)  # the test looks at the panel now (released below, never a timed sleep)
        return None
        yield  # a generator, like the real engine

    monkeypatch.setattr(igtt_module, "train", slow_first_epoch)
    viewer, widget = make_widget(make_napari_viewer, er_image)
    widget.steps.value = 20
    panel = widget.panel
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
        panel.run()
        qtbot.waitUntil(lambda: panel._polled.polls >= 7, timeout=TIMEOUT)
        panel._tick()  # what the 1 s clock does
        text = panel.timing.value
        release.set()
    assert "epoch 1: step 7/20" in text


def test_torch_loads_in_the_background_and_run_waits_for_it(make_napari_viewer, qtbot, er_image, monkeypatch):
    """Issue 17 item 11: docking does not import PyTorch on the GUI thread; Run turns on once it is there."""
    import threading

    from napari_metastructures._widgets import _workers

    pending = threading.Event()
    monkeypatch.setattr(_workers, "LOADED", pending)
    monkeypatch.setattr(_workers, "_loader", ["a loader that has not finished"])
    viewer, widget = make_widget(make_napari_viewer, er_image)
    panel = widget.panel
    assert not panel.ready and not panel.run_button.enabled
    assert "PyTorch is loading" in panel.problem.value and panel.device_info.value == "loading PyTorch…"
    assert list(panel.device.choices) == ["auto", "cpu"]
    pending.set()  # what the loader thread does when its imports are done
    qtbot.waitUntil(lambda: panel.run_button.enabled, timeout=10_000)
    assert panel.ready and "runs on" in panel.device_info.value


def test_torch_starts_loading_after_the_dock_is_drawn(make_napari_viewer, qtbot, er_image, monkeypatch):
    """Issue 17 item 11: the import thread holds Python's lock for long stretches; started while the
    widget is made, it made the dock's first layout and paint 5x slower. It starts a moment later."""
    import threading

    from napari_metastructures._widgets import _workers

    started, pending = [], threading.Event()
    monkeypatch.setattr(_workers, "LOADED", pending)
    monkeypatch.setattr(_workers, "_loader", [])
    monkeypatch.setattr(_workers, "start_loading", lambda: started.append(1) or pending)
    viewer, widget = make_widget(make_napari_viewer, er_image)
    assert started == [] and not widget.panel.run_button.enabled
    qtbot.waitUntil(lambda: started == [1], timeout=5_000)
    pending.set()
    qtbot.waitUntil(lambda: widget.panel.run_button.enabled, timeout=10_000)


def test_a_crop_that_would_not_fit_in_memory_disables_run(make_napari_viewer, er_image, monkeypatch):
    """Issue 16 (6): the engine's memory bound on the CPU is also a reason on the Run button."""
    viewer, widget = make_widget(make_napari_viewer, er_image)
    widget.panel.device.value = "cpu"
    assert widget.panel.run_button.enabled
    monkeypatch.setenv("METASTRUCTURES_MEMORY_GB", "0.01")  # 10 MB: a batch of 2 crops of 64 px needs 16 MB
    widget.panel.refresh()
    assert not widget.panel.run_button.enabled
    assert "needs about" in widget.panel.run_button.tooltip and "Lower 'crop' or 'batch'" in widget.panel.problem.value


def test_size_unit_follows_the_chosen_images(make_napari_viewer, er_image):
    """µm when the image has a pixel size (its scale), px without; each unit keeps its own value."""
    viewer, widget = make_widget(make_napari_viewer, er_image, scale=(0.13, 0.13))
    viewer.add_image(er_image, name="bare")
    assert widget.unit.unit == "um" and "µm" in widget.local_sigma.label
    cfg = widget.config()
    assert cfg.size_unit == "um" and cfg.pixel_size_um == pytest.approx(0.13)
    assert cfg.in_pixels().local_sigma == pytest.approx(0.52 / 0.13, abs=0.01)
    widget.local_sigma.value = 0.8
    widget.images.value = [viewer.layers["bare"]]
    assert widget.unit.unit == "px" and "px" in widget.local_sigma.label
    assert widget.local_sigma.value == 8.0 and widget.config().size_unit == "px"
    widget.local_sigma.value = 5.0
    widget.images.value = [viewer.layers["er"]]
    assert widget.local_sigma.value == pytest.approx(0.8)  # the µm value the user set is back
    widget.images.value = [viewer.layers["bare"]]
    assert widget.local_sigma.value == 5.0
    widget.images.value = [viewer.layers["er"], viewer.layers["bare"]]  # one has none: px, and why
    assert widget.unit.unit == "px" and "bare" in widget.unit.reason
    assert widget.prepare().params["sizes"]["unit"] == "px"
