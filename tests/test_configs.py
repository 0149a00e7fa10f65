"""Every training setting's rules live in the configs' check(); the decoder rule for a depth."""
import pytest

from napari_metastructures.core.igtt.config import IgttConfig
from napari_metastructures.core.training.settings import decoder_for
from napari_metastructures.core.training.supervised import SupervisedConfig
from napari_metastructures.core.validate import InputError


def test_decoder_rule_keeps_fitting_widths_and_halves_to_16_otherwise():
    assert decoder_for(3, (64, 32, 16)) == (64, 32, 16)
    assert decoder_for(4, (64, 32, 16)) == (128, 64, 32, 16)
    assert decoder_for(5, (64, 32, 16)) == (256, 128, 64, 32, 16)
    assert decoder_for(4, None) is None  # smp's defaults
    for depth in (3, 4, 5):
        cfg = IgttConfig.preset("fast", encoder_depth=depth)
        assert len(cfg.decoder_channels) == depth and cfg.decoder_channels[-1] == 16
        assert IgttConfig.preset("paper", encoder_depth=depth).decoder_channels is None


@pytest.mark.parametrize("over, message", [
    ({"crop": 100}, "multiple of 8"),
    ({"encoder_depth": 4, "crop": 72}, "multiple of 16"),
    ({"encoder_depth": 6}, "encoder depth 6"),
    ({"decoder_channels": (16, 8)}, "one width per encoder stage"),
    ({"arch": "deeplabv3plus", "batch_size": 1}, "DeepLabV3\\+ needs a batch of at least 2"),
    ({"tile": 100}, "tile 100"),
    ({"overlap": 200}, "overlap"),
    ({"epochs": 0}, "epochs"),
    ({"lr": 0.0}, "learning rate"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr_schedule": "linear"}, "schedule"),
    ({"structure": "tubes"}, "structure"),
    ({"criterion": "dice"}, "criterion"),
    ({"selection": "all"}, "selection"),
    ({"norm_low": 99.0, "norm_high": 1.0}, "percentiles"),
    ({"ems_keep": 0.0}, "EMS keep"),
    ({"threads": 0}, "threads"),
])
def test_igtt_check_names_the_bad_setting(over, message):
    with pytest.raises(InputError, match=message):
        IgttConfig.preset("fast", **over)
    cfg = IgttConfig.preset("fast")
    for key, value in over.items():
        setattr(cfg, key, value)
    with pytest.raises(InputError, match=message):
        cfg.check()


def test_good_igtt_settings_pass_and_zero_preview_means_last_only():
    assert IgttConfig.preset("fast").check().structure == "auto"
    assert IgttConfig.preset("paper").check().crop == 256
    assert IgttConfig.preset("fast", preview_every=0).preview_every == 0
    assert IgttConfig().preset == "fast" and IgttConfig.preset("paper").preset == "paper"


@pytest.mark.parametrize("over, message", [
    ({"crop": 100}, "multiple of 16"),
    ({"arch": "deeplabv3plus", "batch": 1}, "DeepLabV3\\+"),
    ({"arch": "segformer"}, "architecture"),
    ({"loss": "focal"}, "focal"),
    ({"warmup_epochs": -1}, "warm-up"),
    ({"decoder_channels": (8, 8)}, "one width per encoder stage"),
])
def test_supervised_check_names_the_bad_setting(over, message):
    with pytest.raises(InputError, match=message):
        SupervisedConfig(**over).check()
    assert SupervisedConfig().check().arch == "unet"


def test_cli_flags_named_like_config_fields_override_the_preset():
    from napari_metastructures.cli import build_parser
    from napari_metastructures.cli.igtt import config_from_args

    def cli(*argv):
        return config_from_args(build_parser().parse_args(["igtt", "a.tif", "--out", "o", *argv]))

    cfg = cli("--local-sigma", "12", "--epochs", "3", "--structure", "objects", "--no-ems")
    assert (cfg.local_sigma, cfg.epochs, cfg.structure, cfg.use_ems) == (12.0, 3, "objects", False)
    assert cli().to_dict() == IgttConfig.preset("fast").to_dict()
    with pytest.raises(InputError, match="local contrast window"):
        cli("--local-sigma", "-1")
    with pytest.raises(InputError, match="whole numbers"):
        cli("--decoder-channels", "a,b,c")
    with pytest.raises(InputError, match="epochs"):
        cli("--epochs", "0")


def test_the_viewers_rough_labels_defaults_are_the_fast_preset(make_napari_viewer):
    """Issue 17 item 8: the widget trains with the measured CPU preset, not the study's schedule."""
    from napari_metastructures._widgets.rough_labels import RoughLabelsWidget

    fast = SupervisedConfig.fast()
    assert (fast.optimizer, fast.encoder_depth, fast.decoder_channels, fast.steps_per_epoch) == ("adam", 3,
                                                                                                (64, 32, 16), 25)
    form = RoughLabelsWidget(make_napari_viewer()).config()
    assert form == fast.check()
    assert SupervisedConfig().optimizer == "sgd"  # the study's defaults are unchanged
    assert SupervisedConfig.fast(encoder_depth=4).check().decoder_channels == (128, 64, 32, 16)
