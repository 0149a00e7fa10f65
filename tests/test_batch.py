"""Batch prediction: inputs from folders and globs, a bad file in the middle, resume, run.json as it goes."""
import json

import numpy as np
import pytest

from napari_metastructures.batch import RunLog, expand_inputs, output_files, run_serial
from napari_metastructures.batch.segment import PredictSettings
from napari_metastructures.cli import main
from napari_metastructures.io import read_image, write_tiff


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from napari_metastructures.core.training.model import TrainedModel, build_model

    net = build_model(encoder_depth=3, decoder_channels=(16, 8, 8)).eval()
    config = {"kind": "supervised", "preprocess": {},
              "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1, "classes": 1,
                        "decoder_channels": [16, 8, 8]}}
    return TrainedModel(net, config).save(tmp_path_factory.mktemp("model") / "tiny.pt")


def _images(folder, n, shape=(64, 64)):
    rng = np.random.default_rng(0)
    return [write_tiff(folder / f"img{i:02d}.tif", rng.integers(0, 4000, shape).astype(np.uint16), scale=(0.2, 0.2))
            for i in range(n)]


def _predict(model, inputs, out, *extra):
    return main(["predict", "--model", str(model), *map(str, inputs), "--out", str(out), "--tile", "64",
                 "--device", "cpu", *extra])


def test_inputs_from_files_folders_and_globs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "empty").mkdir()
    a1 = write_tiff(tmp_path / "a" / "x.tif", np.zeros((8, 8), np.uint8))
    write_tiff(tmp_path / "a" / "y.ome.tif", np.zeros((8, 8), np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    write_tiff(tmp_path / "b" / "x.tif", np.zeros((8, 8), np.uint8))
    jobs = expand_inputs([tmp_path / "a", a1, str(tmp_path / "b" / "*.tif"), tmp_path / "empty",
                          str(tmp_path / "none" / "*.tif"), tmp_path / "missing.tif"])
    assert [j.source.name for j in jobs] == ["x.tif", "y.ome.tif", "x.tif", "empty", "*.tif", "missing.tif"]
    assert [j.stem for j in jobs] == ["x", "y", "x_2", "empty", "*", "missing"]  # a1 given twice: once
    assert [bool(j.problem) for j in jobs] == [False, False, False, True, True, False]
    assert "holds no TIFF" in jobs[3].problem and "matches no TIFF" in jobs[4].problem


def test_a_corrupt_file_in_the_middle_is_reported_and_the_rest_written(tmp_path, tiny_model, capsys):
    inputs = _images(tmp_path, 3)
    inputs[1].write_bytes(inputs[1].read_bytes()[:300])  # truncated
    out = tmp_path / "out"
    assert _predict(tiny_model, inputs, out) == 1
    captured = capsys.readouterr()
    assert "img01.tif" in captured.err and "2 done, 0 skipped, 1 failed of 3" in captured.out
    for stem in ("img00", "img02"):
        assert all(p.is_file() for p in output_files(out, stem))
        assert read_image(out / f"{stem}_mask.tif").scale == pytest.approx((0.2, 0.2))
    assert not any(p.exists() for p in output_files(out, "img01"))
    report = json.loads((out / "run.json").read_text())
    assert report["finished"] and report["summary"]["failed"] == 1
    assert report["summary"]["failed_files"][0]["path"].endswith("img01.tif")
    assert [f["status"] for f in report["files"]] == ["done", "failed", "done"]
    assert not list(out.glob(".*part"))


def test_every_input_bad_exits_2(tmp_path, tiny_model, capsys):
    rgb = write_tiff(tmp_path / "rgb.tif", np.zeros((32, 32, 3), np.uint8))
    assert _predict(tiny_model, [rgb, tmp_path / "gone.tif"], tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "rgb.tif" in err and "gone.tif" in err


def test_skip_existing_leaves_finished_outputs_untouched(tmp_path, tiny_model):
    inputs = _images(tmp_path, 3)
    out = tmp_path / "out"
    assert _predict(tiny_model, inputs, out) == 0
    before = {p: p.stat().st_mtime_ns for s in ("img00", "img01", "img02") for p in output_files(out, s)}
    output_files(out, "img02")[-1].unlink()  # img02 unfinished: its mask sidecar is missing
    assert _predict(tiny_model, inputs, out, "--skip-existing") == 0
    for p, t in before.items():
        if p.name.startswith(("img00", "img01")):
            assert p.stat().st_mtime_ns == t, p
    assert output_files(out, "img02")[-1].is_file()
    assert output_files(out, "img02")[0].stat().st_mtime_ns != before[output_files(out, "img02")[0]]
    report = json.loads((out / "run.json").read_text())
    assert [f["status"] for f in report["files"]] == ["skipped", "skipped", "done"]
    assert _predict(tiny_model, inputs, out) == 0  # without the flag everything is written again
    assert output_files(out, "img00")[0].stat().st_mtime_ns != before[output_files(out, "img00")[0]]


def test_run_json_is_rewritten_as_each_file_finishes(tmp_path, tiny_model):
    from napari_metastructures.core import load_model

    jobs = expand_inputs(_images(tmp_path, 3))
    out = tmp_path / "out"
    log = RunLog(out / "run.json", {"command": "test"}, jobs)
    seen = []

    def on_record(record):
        seen.append([f["status"] for f in json.loads((out / "run.json").read_text())["files"]])

    run_serial(jobs, load_model(tiny_model), out, PredictSettings("cpu", 64), {"method": "test"}, log,
               on_record=on_record, progress=False)
    assert seen == [["done", "pending", "pending"], ["done", "done", "pending"], ["done", "done", "done"]]
    assert json.loads((out / "run.json").read_text())["finished"] is False  # finish() not called yet
    log.finish()
    assert json.loads((out / "run.json").read_text())["finished"] is True


def test_a_stop_request_keeps_the_files_written_and_the_rest_pending(tmp_path, tiny_model):
    from napari_metastructures.core import load_model
    from napari_metastructures.core.progress import StopRequested

    jobs = expand_inputs(_images(tmp_path, 3))
    out = tmp_path / "out"
    log = RunLog(out / "run.json", {}, jobs)
    done = []
    with pytest.raises(StopRequested):
        run_serial(jobs, load_model(tiny_model), out, PredictSettings("cpu", 64), {}, log,
                   on_record=done.append, stop=lambda: len(done) >= 1, progress=False)
    assert [r["stem"] for r in done] == ["img00"]
    assert all(p.is_file() for p in output_files(out, "img00"))
    assert not any(p.exists() for s in ("img01", "img02") for p in output_files(out, s))
    assert [f["status"] for f in json.loads((out / "run.json").read_text())["files"]] == ["done", "pending",
                                                                                          "pending"]


def test_training_sample_spreads_evenly_and_is_fixed():
    from napari_metastructures.cli.igtt import DEFAULT_TRAIN_ON, training_sample

    assert training_sample(3, None) == [0, 1, 2]
    assert len(training_sample(100, None)) == DEFAULT_TRAIN_ON
    assert training_sample(100, None)[0] == 0 and training_sample(100, None)[-1] == 99
    assert training_sample(10, 0.25) == [0, 4, 9]  # ceil(2.5) = 3 files
    assert training_sample(10, 1) == [0] and training_sample(2, 5) == [0, 1]
    assert training_sample(10, 0.01) == [0]


@pytest.mark.slow
def test_igtt_trains_on_a_sample_and_segments_every_file(tmp_path, capsys):
    tiny = ["--encoder-depth", "3", "--decoder-channels", "16,8,8", "--crop", "64", "--batch-size", "2",
            "--steps-per-epoch", "2", "--tile", "64", "--threads", "2", "--device", "cpu"]
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        img = np.random.default_rng(i).normal(300, 40, (64, 64))
        img[10:14, :] += 900
        img[:, 30:33] += 900
        write_tiff(folder / f"cell{i}.tif", img.clip(0, 4095).astype(np.uint16), scale=(0.1, 0.1))
    (folder / "cell9.tif").write_bytes(b"not a tiff at all")
    out = tmp_path / "out"
    assert main(["igtt", str(folder), "--out", str(out), "--train-on", "1", "--epochs", "1", *tiny]) == 1
    assert "cell9.tif" in capsys.readouterr().err
    report = json.loads((out / "run.json").read_text())
    assert [t["stem"] for t in report["trained_on"]] == ["cell0"]
    assert [f["status"] for f in report["files"]] == ["done", "done", "done", "failed"]
    assert report["files"][0]["trained_on"] and "trained_on" not in report["files"][1]
    for i in range(3):
        mask = read_image(out / f"cell{i}_mask.tif")
        assert mask.data.shape == (64, 64) and mask.scale == pytest.approx((0.1, 0.1))
        assert 0 < mask.data.mean() < 0.5  # the bright lines, not everything


def test_distributed_device_is_checked_by_name_and_left_to_the_workers(tmp_path, tiny_model, capsys):
    from napari_metastructures.cli.predict import _check_device_name
    from napari_metastructures.core.device import DeviceError

    for name in ("auto", "cpu", "mps", "cuda", "cuda:3", " CUDA:0 "):
        _check_device_name(name)  # cuda:3 is fine here: a worker may have it, this machine need not
    with pytest.raises(DeviceError, match="banana"):
        _check_device_name("banana")
    img = _images(tmp_path, 1)[0]
    assert _predict(tiny_model, [img], tmp_path / "out", "--workers", "1", "--device", "banana") == 2
    assert "banana" in capsys.readouterr().err
