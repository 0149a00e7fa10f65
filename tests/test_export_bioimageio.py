"""bioimage.io export: the package passes bioimageio.spec's validation and reproduces our network."""
from __future__ import annotations

import io
import sys
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("bioimageio.spec")

from napari_metastructures.cli import main  # noqa: E402
from napari_metastructures.core import export_bioimageio as exporter  # noqa: E402

FILES = {"rdf.yaml", "weights.torchscript.pt", "test_input.npy", "test_output.npy", "sample_input.tif",
         "sample_output.tif", "cover.png", "README.md"}


def tiny_igtt_model():
    from napari_metastructures.core.igtt.config import IgttConfig
    from napari_metastructures.core.igtt.model import RULE, IgttModel
    from napari_metastructures.core.training.model import build_model

    net = build_model(encoder_depth=3, decoder_channels=(16, 8, 8)).eval()
    config = {"kind": "igtt", "preprocess": IgttConfig().preprocess_dict(), "calibration": {"rule": RULE},
              "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1,
                        "classes": 1, "decoder_channels": [16, 8, 8]}}
    return IgttModel(net, config)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A tiny iGTT model (haze removal, local contrast, gate: the full preprocessing) exported by the CLI."""
    from napari_metastructures.core.synthetic import er_network
    from napari_metastructures.io import write_tiff

    tmp = tmp_path_factory.mktemp("bioimageio")
    model = tiny_igtt_model()
    model.save(tmp / "model.pt")
    write_tiff(tmp / "sample.tif", (er_network((80, 70), seed=3)[0] * 3000).astype(np.uint16))
    assert main(["export-bioimageio", str(tmp / "model.pt"), "--out", str(tmp / "pkg"), "--name", "tiny model",
                 "--author", "A. Tester", "--sample", str(tmp / "sample.tif")]) == 0
    return tmp / "pkg.zip", model


def test_package_passes_bioimageio_validation(package):
    from bioimageio.spec import load_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    path, _model = package
    assert set(zipfile.ZipFile(path).namelist()) == FILES
    # perform_io_checks: every file's hash and readability; the package names no URL, so nothing is fetched
    descr = load_description(path, perform_io_checks=True)
    summary = descr.validation_summary
    assert isinstance(descr, ModelDescr), summary.format()
    assert summary.status == "valid-format", summary.format()  # "passed" needs bioimageio.core's run
    assert not [e for d in summary.details for e in d.errors]
    assert descr.name == "tiny model" and [a.name for a in descr.authors] == ["A. Tester"]
    assert descr.weights.torchscript is not None


def test_test_output_is_what_our_network_computes(package):
    """test_output.npy is our numpy preprocessing + network on test_input.npy, and the packaged
    TorchScript (what deepImageJ, ilastik and QuPath run) reproduces it (bioimageio.core's test)."""
    import torch

    from napari_metastructures.core.training.data import preprocess

    path, model = package
    z = zipfile.ZipFile(path)
    x = np.load(io.BytesIO(z.read("test_input.npy")))
    y = np.load(io.BytesIO(z.read("test_output.npy")))
    assert x.shape == y.shape == (1, 1, 64, 64) and x.dtype == y.dtype == np.float32  # the sample's 64-px centre
    with torch.no_grad():
        ours = torch.sigmoid(model.net(torch.from_numpy(preprocess(x[0, 0], model.config["preprocess"]))[None, None]))
    np.testing.assert_allclose(y, ours.numpy(), rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():  # torch 2.9+: "torch.jit.load is deprecated"; consumers still read it
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(io.BytesIO(z.read("weights.torchscript.pt")))
    with torch.no_grad():
        np.testing.assert_allclose(scripted(torch.from_numpy(x)).numpy(), y, rtol=1e-3, atol=1e-4)
        assert scripted(torch.rand(2, 1, 70, 90) * 100).shape == (2, 1, 70, 90)  # padded inside, cropped back


def test_preprocessing_in_torch_matches_numpy():
    """Each preprocessing option, on an image smaller than the 30-px haze blur's reach."""
    import torch

    from napari_metastructures.core.bioimageio_module import Preprocess
    from napari_metastructures.core.igtt.config import IgttConfig
    from napari_metastructures.core.synthetic import er_network
    from napari_metastructures.core.training.data import preprocess

    image = er_network((48, 72), seed=1)[0]
    full = IgttConfig().preprocess_dict()
    for spec in (full, dict(full, gate_input=True), dict(full, noise=None, gate=None), {"low": 2, "high": 99},
                 dict(full, background_exclude=False, clip=True), {}):
        got = Preprocess(spec)(torch.from_numpy(image)).numpy()
        np.testing.assert_allclose(got, preprocess(image, spec), rtol=1e-4, atol=1e-5, err_msg=str(spec))


def test_bad_inputs_give_one_line_errors(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "pkg.zip")
    assert main(["export-bioimageio", str(tmp_path / "missing.pt"), "--out", out]) == 2
    assert "missing.pt: no such model file" in capsys.readouterr().err
    (tmp_path / "notes.pt").write_text("not a model")
    assert main(["export-bioimageio", str(tmp_path / "notes.pt"), "--out", out]) == 2
    assert "not a napari-metastructures model" in capsys.readouterr().err
    assert main(["export-bioimageio", str(tmp_path / "notes.pt"), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(exporter.InputError, match="one 2D greyscale plane"):
        exporter.export_bioimageio(tiny_igtt_model(), out, sample=np.zeros((3, 40, 40)))
    with pytest.raises(exporter.InputError, match="at least 32 x 32"):
        exporter.export_bioimageio(tiny_igtt_model(), out, sample=np.zeros((20, 40)))
    with pytest.raises(exporter.InputError, match="name 'abc'"):  # the spec wants 5 characters or more
        exporter.export_bioimageio(tiny_igtt_model(), out, name="abc", sample=np.zeros((32, 32)))
    monkeypatch.setitem(sys.modules, "bioimageio.spec.model", None)  # the extra is not installed
    assert main(["export-bioimageio", str(tmp_path / "notes.pt"), "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "napari-metastructures[bioimageio]"' in err
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".*part"))  # nothing half-written


def test_widget_button_exports_in_a_worker(make_napari_viewer, qtbot, tmp_path, monkeypatch, thread_spy):
    import threading

    from napari_metastructures._widgets.igtt import IgttWidget

    viewer = make_napari_viewer()
    widget = IgttWidget(viewer)
    viewer.window.add_dock_widget(widget)
    models = widget.panel.models
    button = models.bioimageio_button
    assert button.text == "Export for bioimage.io…" and not button.enabled  # no model yet
    monkeypatch.setattr(exporter, "TEST_SIDE", 64)  # a small default test image
    threads = thread_spy(exporter, "export_bioimageio")
    models.set_model(tiny_igtt_model())
    assert button.enabled
    worker = models.export_bioimageio(tmp_path / "widget.zip")
    assert not button.enabled  # one export at a time
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    assert (tmp_path / "widget.zip").is_file()
    assert threads and threads[0] is not threading.main_thread()
    qtbot.waitUntil(lambda: button.enabled, timeout=5_000)
