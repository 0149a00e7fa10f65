"""The run panel's "Predict folder…": the streaming batch in the panel's worker, a bad file listed,
the first result opened, Stop keeping what was written."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from napari_metastructures._widgets.igtt import IgttWidget
from napari_metastructures.batch import output_files
from napari_metastructures.io import write_tiff

TIMEOUT = 120_000


@pytest.fixture
def folder_and_model(tmp_path):
    from napari_metastructures.core.training.model import TrainedModel, build_model

    net = build_model(encoder_depth=3, decoder_channels=(16, 8, 8)).eval()
    config = {"kind": "supervised", "preprocess": {},
              "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1, "classes": 1,
                        "decoder_channels": [16, 8, 8]}}
    model = TrainedModel(net, config)
    src = tmp_path / "in"
    src.mkdir()
    (src / "a_bad.tif").write_bytes(b"no tiff here")
    rng = np.random.default_rng(0)
    for name in ("b", "c", "d"):
        write_tiff(src / f"{name}.tif", rng.integers(0, 4000, (64, 72)).astype(np.uint16), scale=(0.3, 0.3))
    return src, tmp_path / "out", model


def _panel(make_napari_viewer, model):
    viewer = make_napari_viewer()
    widget = IgttWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.panel.models.set_model(model)
    widget.panel.device.value = "cpu"
    return viewer, widget.panel


def test_predict_folder_writes_every_good_file_and_opens_the_first(make_napari_viewer, qtbot, folder_and_model,
                                                                   monkeypatch):
    import napari_metastructures.batch as batch

    src, out, model = folder_and_model
    viewer, panel = _panel(make_napari_viewer, model)
    listed_on, real_expand = [], batch.expand_inputs
    monkeypatch.setattr(batch, "expand_inputs",
                        lambda *a, **k: listed_on.append(threading.current_thread()) or real_expand(*a, **k))
    assert panel.models.folder_button.enabled
    assert panel.models.predict_folder(src, out)
    assert panel.running and not panel.models.folder_button.enabled
    bar = panel.activity.bar  # the run in napari's activity dock
    assert not bar.total and "predicting in/" in bar.desc  # busy until the worker has listed the folder
    values = []
    bar.events.value.connect(lambda e: values.append(e.value))  # what the dock's bar shows
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT)
    assert panel.activity.bar is None and bar.total == 4 and bar.n == 4 and values == [1, 2, 3, 4]
    assert listed_on and threading.main_thread() not in listed_on  # the folder was listed in the worker
    for stem in ("b", "c", "d"):
        assert all(p.is_file() for p in output_files(out, stem))
    text = panel.timing.value
    assert "3 file(s) written, 1 failed" in text and "a_bad.tif" in text
    assert "b_mask" in viewer.layers  # the first result, with the file's pixel size
    np.testing.assert_allclose(viewer.layers["b_mask"].scale, (0.3, 0.3))
    report = json.loads((out / "run.json").read_text())
    assert report["finished"] and [f["status"] for f in report["files"]] == ["failed", "done", "done", "done"]
    assert panel.models.folder_button.enabled


def test_predict_folder_refuses_its_own_input_folder(make_napari_viewer, folder_and_model):
    src, _out, model = folder_and_model
    _viewer, panel = _panel(make_napari_viewer, model)
    assert not panel.models.predict_folder(src, src)
    assert not panel.running


def test_stop_during_predict_folder_keeps_the_written_files(make_napari_viewer, qtbot, folder_and_model,
                                                           monkeypatch):
    src, out, model = folder_and_model
    _viewer, panel = _panel(make_napari_viewer, model)
    calls, gate, real = [], threading.Event(), model.predict

    def held(*args, **kwargs):  # the second good file waits until Stop was pressed
        calls.append(1)
        if len(calls) == 2:
            gate.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "predict", held)
    panel.models.predict_folder(src, out)
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=TIMEOUT)
    panel.activity.bar.cancel()  # Cancel in napari's activity dock is the panel's Stop
    assert not panel.stop_button.enabled
    gate.set()
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT)
    assert all(p.is_file() for p in output_files(out, "b"))
    assert not any(p.exists() for s in ("c", "d") for p in output_files(out, s))
    assert "stopped" in panel.timing.value
    assert json.loads((out / "run.json").read_text())["stopped"] is True


def test_a_late_file_record_does_not_hide_the_folder_summary(make_napari_viewer, folder_and_model):
    """Under load the last file's progress can reach the GUI after the batch's summary."""
    src, out, model = folder_and_model
    _, panel = _panel(make_napari_viewer, model)
    actions = panel.models
    actions._on_file({"stem": "b", "status": "done"})
    assert panel.timing.value == "b: done (1 written)"
    summary = {"done": 1, "failed": 0, "stopped": False, "out": str(out), "failed_files": []}
    actions._on_folder_done((summary, None))
    actions._on_file({"stem": "c", "status": "done"})  # late
    assert panel.timing.value.startswith("1 file(s) written, 0 failed")
