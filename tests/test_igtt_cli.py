"""`metastructures igtt` and `metastructures predict` end to end on tiny images."""
import json

import numpy as np
import pytest

from napari_metastructures.cli import main
from napari_metastructures.io import read_image, write_tiff

TINY = ["--encoder-depth", "3", "--decoder-channels", "16,8,8", "--crop", "64", "--batch-size", "2",
        "--steps-per-epoch", "2", "--tile", "64", "--threads", "2", "--device", "cpu"]


def _image(shape, seed):
    rng = np.random.default_rng(seed)
    img = rng.normal(300, 40, shape)
    img[..., 10:14, :] += 900
    img[..., :, 30:33] += 900
    return np.clip(img, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def igtt_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("igtt")
    a = write_tiff(tmp / "cell_a.tif", _image((64, 72), 0), scale=(0.1, 0.1))
    b = write_tiff(tmp / "cell_b.tif", _image((2, 48, 64), 1), scale=(0.5, 0.2, 0.2))
    out = tmp / "out"
    code = main(["igtt", str(a), str(b), "--out", str(out), "--epochs", "2", "--seed", "1",
                 "--save-model", str(tmp / "model.pt"), *TINY])
    return code, tmp, out


@pytest.mark.slow
def test_igtt_writes_outputs_with_scale_and_run_json(igtt_run, capsys):
    code, tmp, out = igtt_run
    assert code == 0
    prob = read_image(out / "cell_a_prob.tif")
    mask = read_image(out / "cell_a_mask.tif")
    assert prob.data.dtype == np.float32 and prob.data.shape == (64, 72)
    assert 0 <= prob.data.min() and prob.data.max() <= 1
    assert mask.data.dtype == np.uint8 and set(np.unique(mask.data)) <= {0, 1}
    np.testing.assert_array_equal(mask.data, (prob.data > 0.5).astype(np.uint8))
    assert prob.scale == pytest.approx((0.1, 0.1)) and mask.scale == pytest.approx((0.1, 0.1))
    stack = read_image(out / "cell_b_prob.tif")
    assert stack.data.shape == (2, 48, 64) and stack.scale == pytest.approx((0.5, 0.2, 0.2))
    report = json.loads((out / "run.json").read_text())
    assert report["seed"] == 1 and report["device"]["used"] == "cpu"
    assert report["params"]["epochs"] == 2 and report["params"]["encoder_depth"] == 3
    assert len(report["epochs"]) == 2 and len(report["losses"]) == 2
    assert all(np.isfinite(report["losses"]))
    assert report["timings"]["total_s"] > 0 and len(report["timings"]["epoch_s"]) == 2
    assert (tmp / "model.pt").is_file()
    assert not list(out.glob(".*part"))  # no temporary files left


@pytest.mark.slow
def test_predict_subcommand_matches_training_outputs(igtt_run, capsys):
    code, tmp, out = igtt_run
    out2 = tmp / "pred"
    assert main(["predict", "--model", str(tmp / "model.pt"), str(tmp / "cell_a.tif"), "--out", str(out2),
                 "--device", "cpu", "--tile", "64", "--overlap", "32"]) == 0
    trained = read_image(out / "cell_a_prob.tif").data
    predicted = read_image(out2 / "cell_a_prob.tif")
    assert predicted.scale == pytest.approx((0.1, 0.1))
    np.testing.assert_allclose(predicted.data, trained, atol=1e-5)
    assert (out2 / "cell_a_mask.tif").is_file()
    report = json.loads((out2 / "run.json").read_text())
    assert report["command"] == "predict" and report["model_config"]["kind"] == "igtt"


@pytest.mark.slow
def test_igtt_prints_progress_per_epoch(tmp_path, capsys):
    a = write_tiff(tmp_path / "x.tif", _image((64, 64), 3))
    assert main(["igtt", str(a), "--out", str(tmp_path / "o"), "--epochs", "1", "--no-ems", *TINY]) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "loss" in text and "device" in text


@pytest.mark.slow
def test_structure_objects_samples_interiors_and_is_recorded(tmp_path):
    a = write_tiff(tmp_path / "x.tif", _image((64, 64), 4))
    assert main(["igtt", str(a), "--out", str(tmp_path / "o"), "--epochs", "1", "--structure", "objects",
                 *TINY]) == 0
    report = json.loads((tmp_path / "o" / "run.json").read_text())
    assert report["params"]["structure"] == "objects"
    assert report["structure"]["structure"] == "objects" and report["structure"]["reason"] == "set by the user"
    with pytest.raises(SystemExit):
        main(["igtt", str(a), "--out", str(tmp_path / "p"), "--structure", "blobs", *TINY])


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    rgb = write_tiff(tmp_path / "rgb.tif", np.zeros((32, 32, 3), np.uint8))
    assert main(["igtt", str(rgb), "--out", str(tmp_path / "o"), *TINY]) == 2
    assert "rgb.tif" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "none.pt"), str(rgb), "--out", str(tmp_path)]) == 2
    assert "no such model file" in capsys.readouterr().err
    ok = write_tiff(tmp_path / "ok.tif", _image((64, 64), 4))
    assert main(["igtt", str(ok), "--out", str(tmp_path / "o"), "--device", "cuda:7", "--epochs", "1"]) == 2
    assert "cuda:7" in capsys.readouterr().err


@pytest.mark.parametrize("error", ["diverged", "oom"])
def test_failed_run_is_one_error_line(tmp_path, capsys, monkeypatch, error):
    from napari_metastructures.core.igtt import engine
    from napari_metastructures.core.progress import OutOfMemoryAdvice
    from napari_metastructures.core.training.loop import TrainingDiverged

    def fail(*args, **kwargs):
        raise TrainingDiverged("the loss became NaN") if error == "diverged" else OutOfMemoryAdvice("try less")
        yield

    monkeypatch.setattr(engine, "train", fail)
    ok = write_tiff(tmp_path / "ok.tif", _image((64, 64), 4))
    assert main(["igtt", str(ok), "--out", str(tmp_path / "o"), *TINY]) == 1
    err = capsys.readouterr().err
    assert err == ("error: the loss became NaN\n" if error == "diverged" else "error: try less\n")
    assert not (tmp_path / "o" / "run.json").exists()


def test_check_axes_and_with_axes(tmp_path):
    from napari_metastructures.core.validate import InputError, check_axes
    from napari_metastructures.io import with_axes

    assert check_axes("tzyx", (2, 3, 8, 8)) == "TZYX"
    for bad, why in [("ZYX", "name 3 axes"), ("CYX", "channel axis"), ("ZZX", "at most once"),
                     ("YXZ", "ending in YX")]:
        with pytest.raises(InputError, match=why):
            check_axes(bad, (2, 8, 8) if len(bad) == 3 and bad != "ZYX" else (1, 2, 8, 8))
    f = read_image(write_tiff(tmp_path / "s.tif", _image((2, 48, 64), 0), scale=(0.5, 0.2, 0.2)))
    assert f.axes == "ZYX"
    g = with_axes(f, "tyx")
    assert g.axes == "TYX" and g.metadata["axes_from"] == "--axes" and f.axes == "ZYX"
    with pytest.raises(InputError, match="s.tif: axes 'TZYX' name 4 axes"):
        with_axes(f, "TZYX")


@pytest.mark.slow
def test_predict_takes_axes_from_the_command_line(igtt_run, capsys):
    code, tmp, out = igtt_run
    out2 = tmp / "pred_axes"
    assert main(["predict", "--model", str(tmp / "model.pt"), str(tmp / "cell_b.tif"), "--out", str(out2),
                 "--device", "cpu", "--tile", "64", "--axes", "TYX"]) == 0
    assert read_image(out2 / "cell_b_mask.tif").axes == "TYX"  # written with the axes given
    report = json.loads((out2 / "run.json").read_text())
    assert report["params"]["axes"] == "TYX"
    assert main(["predict", "--model", str(tmp / "model.pt"), str(tmp / "cell_b.tif"), str(tmp / "cell_a.tif"),
                 "--out", str(tmp / "pred_bad"), "--device", "cpu", "--tile", "64", "--axes", "ZYX"]) == 1
    err = capsys.readouterr().err
    assert "cell_a.tif: axes 'ZYX' name 3 axes, but the image has 2" in err  # the batch went on
    assert (tmp / "pred_bad" / "cell_b_mask.tif").is_file()


@pytest.mark.slow
def test_train_on_some_time_points_and_segment_every_one(tmp_path, capsys):
    movie = write_tiff(tmp_path / "movie.tif", _image((4, 3, 48, 64), 5), scale=(2.0, 0.5, 0.2, 0.2), axes="TZYX")
    out = tmp_path / "o"
    assert main(["igtt", str(movie), "--out", str(out), "--epochs", "1", "--train-frames", "2", *TINY]) == 0
    report = json.loads((out / "run.json").read_text())
    assert report["trained_on"][0]["frames"] == [0, 3] and report["trained_on"][0]["shape"] == [2, 3, 48, 64]
    mask = read_image(out / "movie_mask.tif")
    assert mask.data.shape == (4, 3, 48, 64) and mask.axes == "TZYX"
    assert all(mask.data[t].any() for t in range(4))  # every time point segmented, trained on or not
    assert main(["igtt", str(movie), "--out", str(tmp_path / "p"), "--train-frames", "0,7", *TINY]) == 2
    assert "--train-frames 0,7: the file has 4 time points (0-3)" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_ortho_uses_the_files_anisotropy(igtt_run, monkeypatch):
    from napari_metastructures.core.training.model import TrainedModel

    code, tmp, out = igtt_run
    stack = write_tiff(tmp / "zstack.tif", _image((12, 48, 64), 7), scale=(0.5, 0.2, 0.2), axes="ZYX")
    seen = []
    original = TrainedModel.predict

    def spy(self, image, *args, **kwargs):
        seen.append((kwargs.get("volume_mode"), kwargs.get("anisotropy")))
        return original(self, image, *args, **kwargs)

    monkeypatch.setattr(TrainedModel, "predict", spy)
    out2 = tmp / "ortho"
    assert main(["predict", "--model", str(tmp / "model.pt"), str(stack), str(tmp / "cell_a.tif"), "--out",
                 str(out2), "--device", "cpu", "--tile", "64", "--volume", "ortho"]) == 0
    assert seen[0] == ("ortho", pytest.approx(2.5)) and seen[1] == (None, None)  # 2D input: plain planes
    ortho = read_image(out2 / "zstack_prob.tif").data
    assert ortho.shape == (12, 48, 64) and 0 <= ortho.min() and ortho.max() <= 1
    assert json.loads((out2 / "run.json").read_text())["params"]["volume"] == "ortho"
    # the default (auto) predicts z-stacks in ortho planes and says so per file; slices turns it off
    seen.clear()
    assert main(["predict", "--model", str(tmp / "model.pt"), str(stack), "--out", str(tmp / "auto"),
                 "--device", "cpu", "--tile", "64"]) == 0
    assert seen == [("ortho", pytest.approx(2.5))]
    assert json.loads((tmp / "auto" / "run.json").read_text())["files"][0]["volume"] == "ortho"
    seen.clear()
    assert main(["predict", "--model", str(tmp / "model.pt"), str(stack), "--out", str(tmp / "sl"),
                 "--device", "cpu", "--tile", "64", "--volume", "slices"]) == 0
    assert seen == [(None, None)]
    assert json.loads((tmp / "sl" / "run.json").read_text())["files"][0]["volume"] == "slices"


@pytest.mark.slow
def test_a_file_too_big_for_memory_trains_on_a_sample_of_blocks(tmp_path, monkeypatch):
    from napari_metastructures import io

    movie = write_tiff(tmp_path / "big.tif", _image((6, 48, 64), 7), scale=(2.0, 0.2, 0.2), axes="TYX")
    monkeypatch.setattr(io, "LAZY_ABOVE", 100)  # every file counts as too big: read lazily
    out = tmp_path / "o"
    budget = str(2 * 48 * 64 / 1e6)  # two planes
    assert main(["igtt", str(movie), "--out", str(out), "--epochs", "1", "--seed", "3", "--train-budget", budget,
                 "--zarr-above", "0", *TINY]) == 0
    report = json.loads((out / "run.json").read_text())
    trained = report["trained_on"][0]
    assert len(trained["blocks"]) == 2 and trained["shape"] == [2, 48, 64] and trained["train_budget_mpx"] > 0
    mask = read_image(out / "big_mask.zarr")
    assert mask.data.shape == (6, 48, 64) and mask.axes == "TYX" and mask.scale == pytest.approx((2.0, 0.2, 0.2))
    assert report["files"][0]["status"] == "done" and not (out / "big_mask.tif").exists()
