"""The iGTT training generator: records, stop, save/load, determinism, tiled prediction."""
import numpy as np
import pytest

from napari_metastructures.core import load_model
from napari_metastructures.core.igtt import IgttModel
from napari_metastructures.core.igtt.engine import IgttConfig, run, train
from napari_metastructures.core.progress import EpochResult, drain
from napari_metastructures.core.training import TrainedModel, TrainResult
from napari_metastructures.core.training.data import preprocess
from napari_metastructures.core.training.tiling import predict_tiled

pytestmark = pytest.mark.slow


def tiny(**over) -> IgttConfig:
    base = dict(encoder_depth=3, decoder_channels=(16, 8, 8), crop=64, batch_size=2, steps_per_epoch=3,
                epochs=2, tile=64, overlap=16, early_stop=False, threads=2, background_sigma=10.0)
    base.update(over)
    return IgttConfig.preset("fast", **base)


def lines_image(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(20, 4, shape)
    img[10:13, :] += 60
    img[:, 40:43] += 60
    img[30:50, 15:18] += 50
    return np.clip(img, 0, 255).astype(np.uint8)


def collect(gen):
    records = []
    result = drain(gen, records.append)
    return records, result


@pytest.fixture(scope="module")
def trained():
    return collect(train([lines_image(), lines_image((80, 70), 1)], tiny(), seed=0, device="cpu"))


def test_generator_yields_epoch_records_and_returns_a_result(trained):
    records, result = trained
    model = result.model
    assert [r.epoch for r in records] == [1, 2]
    for r in records:
        assert isinstance(r, EpochResult) and r.n_epochs == 2
        assert np.isfinite(r.loss) and r.seconds > 0
        assert 0 < r.foreground_fraction < 0.6
        assert r.preview is not None and [p.shape for p in r.preview] == [(64, 64), (80, 70)]
        assert all(p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1 for p in r.preview)
    assert isinstance(result, TrainResult) and isinstance(model, IgttModel) and len(model.history) == 2
    assert result.stopped is None and "stopped" not in model.config and result.history is model.history
    assert not hasattr(model, "outputs") and not hasattr(model, "masks")  # results live on the result
    assert model.history[0]["loss"] == pytest.approx(records[0].loss)
    assert [m.shape for m in result.masks] == [(64, 64), (80, 70)]
    # the mask is the calibrated map above 0.5 and covers the bright lines
    np.testing.assert_array_equal(result.masks[0], (result.outputs[0] > 0.5).astype(np.uint8))
    img = lines_image()
    assert img[result.masks[0] > 0].mean() > img[result.masks[0] == 0].mean() + 5


def test_stop_mid_epoch_returns_within_one_batch_with_usable_model():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 6  # epoch 1: 3 batches + 1 tile batch; stop before the 2nd batch of epoch 2

    records, result = collect(train([lines_image()], tiny(epochs=3), seed=0, device="cpu", stop=stop))
    assert len(records) == 1
    assert len(calls) == 6  # polled once per batch, nothing ran after the request
    assert result.stopped == {"epoch": 2, "completed_steps": 1} == result.model.config["stopped"]
    assert len(result.history) == 1 and result.outputs is None and result.masks is None
    prob = result.model.predict(lines_image(seed=3), device="cpu", tile=64)
    assert prob.shape == (64, 64) and np.isfinite(prob).all() and 0 <= prob.min() <= prob.max() <= 1


def test_stop_during_the_full_image_prediction():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 4  # after epoch 1's 3 training batches, before its first tile batch

    records, result = collect(train([lines_image((64, 200))], tiny(), seed=0, device="cpu", stop=stop))
    assert records == [] and len(calls) == 4
    assert result.stopped == {"epoch": 1, "completed_steps": 3} and result.outputs is None


def test_predict_tiled_polls_stop_between_tile_batches():
    from napari_metastructures.core.progress import StopRequested

    _, result = collect(train([lines_image()], tiny(epochs=1), seed=0, device="cpu"))
    model = result.model
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(StopRequested):
        predict_tiled(model.net, np.zeros((64, 300), np.float32), tile=64, overlap=16, batch_size=1,
                      device="cpu", stop=stop)
    assert len(calls) == 2


def test_stop_before_first_batch():
    records, result = collect(train([lines_image()], tiny(), seed=0, device="cpu", stop=lambda: True))
    assert records == [] and isinstance(result.model, TrainedModel)
    assert result.stopped == {"epoch": 1, "completed_steps": 0} and result.outputs is None


def test_save_load_predict_round_trip(trained, tmp_path):
    _, result = trained
    model = result.model
    img = lines_image((90, 75), seed=5)
    before = model.predict(img, device="cpu", tile=64, overlap=16)
    path = model.save(tmp_path / "m.pt")
    loaded = load_model(path)
    assert isinstance(loaded, IgttModel)
    after = loaded.predict(img, device="cpu", tile=64, overlap=16)
    np.testing.assert_array_equal(before, after)
    assert loaded.config == model.config and loaded.history == model.history
    spec, smallest = loaded.config["preprocess"], loaded.config["training"]["local_sigma"]
    # the haze sigma the run used (it follows the local window) is what predict() repeats
    assert spec["background_sigma"] == round(max(smallest, 0.7 * spec["local_sigma"]), 1) != 10.0
    # the model's outputs on its own training image equal a fresh prediction
    np.testing.assert_allclose(model.predict(lines_image(), device="cpu", tile=64, overlap=16),
                               result.outputs[0], atol=1e-6)
    stack = np.stack([img, img])
    # frames of a time-lapse are predicted alone, like the 2D image
    frames = loaded.predict(stack, device="cpu", tile=64, overlap=16, axes="TYX")
    np.testing.assert_allclose(frames[1], after, atol=1e-6)
    # a z-stack is one volume: one candidate, so identical planes come out identical
    volume = loaded.predict(stack, device="cpu", tile=64, overlap=16)
    np.testing.assert_array_equal(volume[0], volume[1])
    assert abs(float((volume > 0.5).mean()) - float((after > 0.5).mean())) < 0.05
    # trained and loaded networks both keep their convolution weights channels-last (the faster layout)
    import torch

    for net in (model.net, loaded.net):
        convs = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1]
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def test_load_rejects_foreign_file(tmp_path):
    from napari_metastructures.core.validate import InputError

    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a napari-metastructures model"):
        load_model(bad)


def test_plain_load_refuses_an_igtt_model_instead_of_dropping_its_calibration(trained, tmp_path):
    from napari_metastructures.core.validate import InputError

    path = trained[1].model.save(tmp_path / "m.pt")
    with pytest.raises(InputError, match="load_model"):
        TrainedModel.load(path)
    assert isinstance(IgttModel.load(path), IgttModel)


def test_determinism_with_seed_on_cpu():
    images = [lines_image(seed=7)]
    a = run(images, tiny(epochs=1), seed=3, device="cpu")
    b = run(images, tiny(epochs=1), seed=3, device="cpu")
    c = run(images, tiny(epochs=1), seed=4, device="cpu")
    assert a.history[0]["loss"] == b.history[0]["loss"]
    np.testing.assert_array_equal(a.outputs[0], b.outputs[0])
    assert a.history[0]["loss"] != c.history[0]["loss"]
    assert not np.array_equal(a.outputs[0], c.outputs[0])


def test_training_leaves_the_global_torch_random_state_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run([lines_image(seed=7)], tiny(epochs=1), seed=3, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_tiled_prediction_matches_untiled(trained):
    model = trained[1].model
    img = lines_image((150, 170), seed=9)
    x = preprocess(img, model.config["preprocess"])
    whole = predict_tiled(model.net, x, tile=192, overlap=0, batch_size=1, device="cpu")  # one tile
    tiled = predict_tiled(model.net, x, tile=64, overlap=32, batch_size=3, device="cpu")
    assert whole.shape == tiled.shape == (150, 170)
    diff = np.abs(whole - tiled)
    assert diff.mean() < 0.02 and np.percentile(diff, 99) < 0.1


def test_stacks_batch_selection_and_no_ems():
    stack = np.stack([lines_image(seed=1), lines_image(seed=2)])
    records, model = collect(train([stack, lines_image((50, 60))], tiny(epochs=1, selection="batch",
                                                                        use_ems=False), device="cpu"))
    assert [p.shape for p in records[0].preview] == [(2, 64, 64), (50, 60)]
    assert len(set(records[0].extra["thresholds"])) == 1  # one threshold for the whole batch


def test_early_stop_message():
    # a tolerance of 1.0 counts any change as "stopped changing": the run stops after one epoch
    cfg = tiny(epochs=6, early_stop=True, early_stop_patience=1, early_stop_change=1.0)
    records, model = collect(train([lines_image()], cfg, device="cpu"))
    assert len(records) == 1 and "early stop" in records[-1].message
    assert records[-1].preview is not None


def test_presets_and_bad_settings():
    paper = IgttConfig.preset("paper")
    got = (paper.lr, paper.batch_size, paper.crop, paper.epochs, paper.criterion)
    assert got == (0.05, 32, 256, 100, "dmi")
    assert IgttConfig.preset("fast", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown iGTT setting"):
        IgttConfig.preset("fast", nonsense=1)
    with pytest.raises(ValueError, match="unknown preset"):
        IgttConfig.preset("slow")
