"""Warm start (core.training.warm_start) and ``metastructures train``, the CLI twin of rough labels."""
from __future__ import annotations

import json

import numpy as np
import pytest

from napari_metastructures.cli import main
from napari_metastructures.core.noise import sample_labels
from napari_metastructures.core.synthetic import er_network
from napari_metastructures.core.training.model import TrainedModel, build_model
from napari_metastructures.core.training.warm_start import apply_init
from napari_metastructures.core.validate import InputError
from napari_metastructures.io import read_image, write_tiff

SMALL = {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1, "classes": 1,
         "decoder_channels": [32, 16, 16]}
TINY = ["--encoder-depth", "3", "--crop", "64", "--batch-size", "2", "--steps-per-epoch", "2", "--epochs", "1",
        "--device", "cpu"]


def _net(torch_seed: int, **over):
    import torch

    s = {**SMALL, **over}
    torch.manual_seed(torch_seed)
    return build_model(s["arch"], s["encoder"], s["encoder_depth"], in_channels=1, classes=s["classes"],
                       decoder_channels=s["decoder_channels"])


def _saved(tmp_path, **over) -> str:
    net = _net(1, **over)
    path = tmp_path / "start.pt"
    TrainedModel(net, {"kind": "supervised", "model": {**SMALL, **over}, "preprocess": {}}).save(path)
    return str(path)


def _equal(a, b) -> bool:
    return all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_whole_network_and_encoder_only_warm_start(tmp_path):
    import torch

    path = _saved(tmp_path)
    saved = torch.load(path, weights_only=True)["state_dict"]
    whole = _net(2)
    record = apply_init(whole, path, "all", SMALL)
    assert record["part"] == "all" and record["model"]["encoder_depth"] == 3
    assert _equal(saved, whole.state_dict())
    enc = _net(2)
    fresh = {k: v.clone() for k, v in enc.state_dict().items()}
    apply_init(enc, path, "encoder", SMALL)
    state = enc.state_dict()
    encoder_keys = [k for k in state if k.startswith("encoder.")]
    decoder_keys = [k for k in state if not k.startswith("encoder.") and state[k].dtype.is_floating_point
                    and state[k].numel() > 1]
    assert encoder_keys and decoder_keys
    assert all(torch.equal(state[k], saved[k]) for k in encoder_keys)  # encoder from the file
    assert all(torch.equal(state[k], fresh[k]) for k in decoder_keys)  # decoder as initialised
    assert not all(torch.equal(fresh[k], saved[k]) for k in decoder_keys)  # (so the check means something)


def test_mismatched_settings_are_refused_with_the_reason(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(InputError, match=r"start\.pt: cannot start from this model: encoder_depth 3 \(this run: 4\)"):
        apply_init(_net(0, encoder_depth=4, decoder_channels=[32, 16, 16, 16]), path, "encoder",
                   {**SMALL, "encoder_depth": 4, "decoder_channels": [32, 16, 16, 16]})
    three = {**SMALL, "classes": 3}
    with pytest.raises(InputError, match="classes 1 \\(this run: 3\\).*encoder only"):
        apply_init(_net(0, classes=3), path, "all", three)
    net = _net(0, classes=3)
    assert apply_init(net, path, "encoder", three)["part"] == "encoder"  # the encoder still fits
    with pytest.raises(InputError, match="init part 'decoder'"):
        apply_init(_net(0), path, "decoder", SMALL)


@pytest.fixture
def pair(tmp_path):
    image, mask = er_network((96, 96), seed=5)
    img = write_tiff(tmp_path / "er.tif", image, scale=(0.1, 0.1))
    lab = write_tiff(tmp_path / "er_labels.tif", sample_labels(mask, 0.1, seed=0), layer_type="labels")
    return tmp_path, img, lab, image


@pytest.mark.slow
def test_train_command_end_to_end_and_from_its_own_model(pair, capsys):
    tmp, img, lab, image = pair
    out = tmp / "out"
    assert main(["train", str(img), "--labels", str(lab), "--out", str(out), "--save-model", str(tmp / "m.pt"),
                 *TINY]) == 0
    mask, prob = read_image(out / "er_mask.tif"), read_image(out / "er_prob.tif")
    assert mask.data.shape == prob.data.shape == image.shape and set(np.unique(mask.data)) <= {0, 1}
    np.testing.assert_allclose(mask.scale, (0.1, 0.1))
    np.testing.assert_array_equal(mask.data, (prob.data > 0.5).astype(np.uint8))
    run = json.loads((out / "run.json").read_text())
    assert run["init"] is None and run["params"]["ignore_value"] == 255 and len(run["losses"]) == 1
    out2 = tmp / "out2"
    assert main(["train", str(img), "--labels", str(lab), "--out", str(out2), "--init", str(tmp / "m.pt"),
                 "--init-part", "encoder", *TINY]) == 0
    run2 = json.loads((out2 / "run.json").read_text())
    assert run2["init"]["part"] == "encoder" and run2["init"]["path"].endswith("m.pt")
    assert "starting from m.pt (encoder)" in capsys.readouterr().out
    # bad inputs: one line naming the file, exit code 2
    assert main(["train", str(img), "--labels", str(lab), str(lab), "--out", str(tmp / "o3"), *TINY]) == 2
    assert "1 image(s) but 2 label file(s)" in capsys.readouterr().err
    assert main(["train", str(img), "--labels", str(lab), "--out", str(tmp / "o4"), "--init", str(tmp / "no.pt"),
                 *TINY]) == 2
    assert "no.pt: no such model file" in capsys.readouterr().err
    assert main(["train", str(img), "--labels", str(lab), "--out", str(tmp / "o5"), "--init", str(tmp / "m.pt"),
                 *TINY[:1], "4", *TINY[2:]]) == 2
    assert "encoder_depth 3 (this run: 4)" in capsys.readouterr().err


@pytest.mark.slow
def test_widget_and_cli_give_the_same_model_for_the_same_seed(pair, make_napari_viewer):
    import torch

    from napari_metastructures._widgets.rough_labels import RoughLabelsWidget
    from napari_metastructures.core.progress import drain

    tmp, img, lab, image = pair
    assert main(["train", str(img), "--labels", str(lab), "--out", str(tmp / "cli"), "--seed", "3",
                 "--save-model", str(tmp / "cli.pt"), *TINY]) == 0
    viewer = make_napari_viewer()
    viewer.add_image(read_image(img).data, name="er")
    viewer.add_labels(read_image(lab).data, name="er_labels")
    w = RoughLabelsWidget(viewer)
    w.encoder_depth.value, w.crop.value, w.batch.value, w.steps.value, w.epochs.value = 3, 64, 2, 2, 1
    w.seed.value = 3
    assert w.image.value is viewer.layers["er"] and w.label_layer.value is viewer.layers["er_labels"]
    request = w.prepare()
    model = drain(request.start("cpu", lambda: False)).model
    cli = torch.load(tmp / "cli.pt", weights_only=True)["state_dict"]
    widget = model.net.state_dict()
    assert set(cli) == set(widget) and _equal(cli, {k: v.cpu() for k, v in widget.items()})


@pytest.mark.slow
def test_igtt_starts_from_a_saved_model_and_records_it(pair, capsys):
    import torch

    from napari_metastructures.core.igtt.config import IgttConfig
    from napari_metastructures.core.igtt.engine import run as igtt_run

    tmp, img, lab, image = pair
    igtt_tiny = [*TINY, "--decoder-channels", "16,8,8", "--tile", "64"]
    assert main(["igtt", str(img), "--out", str(tmp / "a"), "--save-model", str(tmp / "a.pt"), *igtt_tiny]) == 0
    assert main(["igtt", str(img), "--out", str(tmp / "b"), "--init", str(tmp / "a.pt"), "--init-part", "encoder",
                 *igtt_tiny]) == 0
    run = json.loads((tmp / "b" / "run.json").read_text())
    assert run["init"]["part"] == "encoder" and run["init"]["path"].endswith("a.pt")
    assert run["init"]["model"]["decoder_channels"] == [16, 8, 8]
    assert "starting from a.pt (encoder)" in capsys.readouterr().out
    assert json.loads((tmp / "a" / "run.json").read_text())["init"] is None
    # the whole network, stopped before its first batch: exactly the file's weights
    cfg = IgttConfig.preset("fast", encoder_depth=3, decoder_channels=(16, 8, 8), crop=64, batch_size=2,
                            max_steps=2, epochs=1, tile=64)
    result = igtt_run([image], cfg, seed=9, device="cpu", stop=lambda: True, init=(str(tmp / "a.pt"), "all"))
    saved = torch.load(tmp / "a.pt", weights_only=True)["state_dict"]
    assert _equal(saved, {k: v.cpu() for k, v in result.model.net.state_dict().items()})
    assert result.model.config["init"]["part"] == "all"
    # a network of another depth is refused before training, naming the file and both settings
    deeper = [*igtt_tiny[:1], "4", *igtt_tiny[2:-4], "--decoder-channels", "16,8,8,8", "--tile", "64"]
    assert main(["igtt", str(img), "--out", str(tmp / "c"), "--init", str(tmp / "a.pt"), *deeper]) == 2
    assert "a.pt: cannot start from this model: encoder_depth 3 (this run: 4)" in capsys.readouterr().err


@pytest.mark.slow
def test_the_widgets_start_row(pair, make_napari_viewer):
    from napari_metastructures._widgets.igtt import IgttWidget
    from napari_metastructures._widgets.rough_labels import RoughLabelsWidget
    from napari_metastructures.core.progress import drain

    tmp, img, lab, image = pair
    start = _saved(tmp)  # depth 3, decoder 32-16-16
    viewer = make_napari_viewer()
    viewer.add_image(read_image(img).data, name="er")
    viewer.add_labels(read_image(lab).data, name="er_labels")
    rough = RoughLabelsWidget(viewer)
    rough.encoder_depth.value, rough.crop.value, rough.batch.value, rough.steps.value, rough.epochs.value = \
        3, 64, 2, 2, 1
    assert rough.problem() == "" and rough.init.value is None
    rough.init.path.value = tmp / "missing.pt"
    assert rough.problem() == "start from: no such file."
    rough.init.path.value = start
    rough.init.part.value = "encoder"
    assert rough.problem() == ""
    request = rough.prepare()
    assert request.params["init"] == {"path": start, "part": "encoder"}
    model = drain(request.start("cpu", lambda: False)).model
    assert model.config["init"]["part"] == "encoder"
    igtt = IgttWidget(viewer)
    igtt.images.value = [viewer.layers["er"]]
    igtt.init.path.value = start
    igtt.epochs.value = 1
    request = igtt.prepare()
    assert request.params["init"] == {"path": start, "part": "all"}
    with pytest.raises(InputError, match="start.pt: cannot start from this model"):  # iGTT's default decoder
        drain(request.start("cpu", lambda: True))
