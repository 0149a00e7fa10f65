"""The widgets and the command line build the same network from the same settings, at every depth.

iGTT: the widget's form against ``metastructures igtt`` (its :func:`config_from_args`).
Rough labels: the widget against ``metastructures study``, which trains the same supervised network.
"""
from __future__ import annotations

import pytest

from napari_metastructures.cli import build_parser
from napari_metastructures.cli.igtt import config_from_args
from napari_metastructures.core.training.model import build_model

DEPTHS = (3, 4, 5)


def layout(net) -> list:
    """Every parameter and buffer of ``net``: its name and shape."""
    return [(name, tuple(value.shape)) for name, value in net.state_dict().items()]


def igtt_cli_config(*argv: str):
    args = build_parser().parse_args(["igtt", "image.tif", "--out", "out", *argv])
    return config_from_args(args)


@pytest.fixture
def igtt_widget(make_napari_viewer):
    from napari_metastructures._widgets.igtt import IgttWidget

    return IgttWidget(make_napari_viewer())


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("preset", ["fast", "paper"])
def test_igtt_widget_and_cli_build_the_same_network(igtt_widget, preset, depth):
    igtt_widget.preset.value = preset
    igtt_widget.encoder_depth.value = depth
    form = igtt_widget.config()
    cli = igtt_cli_config("--preset", preset, "--encoder-depth", str(depth))
    assert form.encoder_depth == cli.encoder_depth == depth
    assert form.model_dict() == cli.model_dict()
    assert layout(build_model(**form.model_dict())) == layout(build_model(**cli.model_dict()))


@pytest.mark.parametrize("value", [0.0, 12.0])
def test_local_contrast_window_is_one_setting_in_widget_and_cli(igtt_widget, value):
    igtt_widget.local_sigma.value = value
    cli = igtt_cli_config("--local-sigma", str(value))
    assert igtt_widget.config().local_sigma == cli.local_sigma == value
    assert igtt_widget.config().preprocess_dict() == cli.preprocess_dict()
    assert igtt_widget.local_sigma in list(igtt_widget.advanced.content)  # under "Advanced"
    assert igtt_widget.local_sigma.tooltip.startswith("Smallest window")


@pytest.mark.parametrize("preset", ["fast", "paper"])
def test_igtt_preset_as_opened_matches_the_bare_cli_preset(igtt_widget, preset):
    igtt_widget.preset.value = preset  # the form as a preset fills it, no field touched
    cli = igtt_cli_config("--preset", preset)
    assert igtt_widget.config().model_dict() == cli.model_dict()


def study_training_config(monkeypatch, *argv: str):
    """The SupervisedConfig that ``metastructures study`` trains with (caught before any training)."""
    import numpy as np

    from napari_metastructures.cli import main, study
    from napari_metastructures.core import study as core_study

    class Caught(Exception):
        pass

    seen = {}

    def catch(images, masks, config, **kwargs):
        seen["training"] = config.training
        raise Caught

    import tempfile

    monkeypatch.chdir(tempfile.mkdtemp())  # the study's preflight makes its --out folder
    pair = (["a"], [np.zeros((64, 64), np.float32)], [np.zeros((64, 64), np.uint8)], None)
    monkeypatch.setattr(study, "load_pairs", lambda *args: pair)
    monkeypatch.setattr(core_study, "run_study", catch)
    with pytest.raises(Caught):
        main(["study", "--images", "in", "--masks", "in", "--out", "out", "--debug", *argv])
    return seen["training"]


def supervised_network(config, classes: int = 1):
    """The network :func:`train_supervised` builds for ``config`` (binary labels: one output)."""
    decoder = list(config.decoder_channels) if config.decoder_channels else None
    return build_model(config.arch, config.encoder, config.encoder_depth, in_channels=1, classes=classes,
                       decoder_channels=decoder)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("arch", ["unet", "deeplabv3plus"])
def test_rough_labels_widget_and_study_build_the_same_network(make_napari_viewer, monkeypatch, arch, depth):
    from napari_metastructures._widgets.rough_labels import RoughLabelsWidget

    widget = RoughLabelsWidget(make_napari_viewer())
    widget.arch.value = arch
    widget.encoder.value = "resnet34"
    widget.encoder_depth.value = depth
    form = widget.config()
    # the viewer's defaults use slim decoder widths; the study takes them as --decoder-channels
    widths = ",".join(str(c) for c in form.decoder_channels)
    cli = study_training_config(monkeypatch, "--model", arch, "--encoder", "resnet34", "--encoder-depth", str(depth),
                                "--decoder-channels", widths)
    fields = ("arch", "encoder", "encoder_depth", "decoder_channels")
    assert {f: getattr(form, f) for f in fields} == {f: getattr(cli, f) for f in fields}
    assert layout(supervised_network(form)) == layout(supervised_network(cli))


@pytest.mark.parametrize("value", ["volume", "slice"])
def test_stack_scope_is_one_setting_in_widget_and_cli(igtt_widget, value):
    assert igtt_widget.config().scope == igtt_cli_config().scope == "auto"
    igtt_widget.scope.value = value
    cli = igtt_cli_config("--scope", value)
    assert igtt_widget.config().scope == cli.scope == value
    assert igtt_widget.config().preprocess_dict() == cli.preprocess_dict()
    assert igtt_widget.scope in list(igtt_widget.advanced.content)
