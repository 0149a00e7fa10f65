"""Ortho-plane prediction: a z-stack seen from its xy, xz and yz planes by one 2D model."""
import numpy as np
import pytest

from napari_metastructures.core.igtt.config import IgttConfig
from napari_metastructures.core.igtt.model import IgttModel
from napari_metastructures.core.training.model import VOLUME_MODES, TrainedModel, build_model
from napari_metastructures.core.training.ortho import MIN_DEPTH, predict_planes, resampled_depth


def identity(p):
    return np.clip(p, 0.0, 1.0)


def vertical_lines(p):
    """Marks only columns bright along the whole plane: structure that runs along the plane's rows."""
    return np.broadcast_to(p.mean(axis=0) > 0.5, p.shape) * np.clip(p, 0.0, 1.0)


@pytest.mark.parametrize("shape", [(9, 17, 23), (12, 31, 8)])
@pytest.mark.parametrize("anisotropy", [1.0, 3.8, 4.0])
def test_identity_predictor_returns_the_volume(shape, anisotropy):
    vol = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = predict_planes(identity, vol, anisotropy)
    assert out.shape == vol.shape and out.dtype == np.float32
    err = np.abs(out - vol)
    if float(anisotropy).is_integer():  # the resampling round-trips exactly
        np.testing.assert_allclose(out, vol, atol=1e-5)
    else:  # linear up and down on white noise: close, not exact
        assert err.mean() < 0.05 and err.max() < 0.3
    assert np.abs(out - vol[::-1]).mean() > 10 * err.mean()  # not trivially close


def test_planes_have_the_resampled_proportions():
    seen = []
    vol = np.random.default_rng(1).random((8, 20, 30), dtype=np.float32)
    predict_planes(lambda p: seen.append(p.shape) or identity(p), vol, 3.8)
    n = resampled_depth(8, 3.8)
    assert n == round(7 * 3.8) + 1
    assert seen.count((20, 30)) == 8 and seen.count((n, 30)) == 20 and seen.count((n, 20)) == 30
    assert len(seen) == 8 + 20 + 30


def test_a_rod_along_z_is_found_only_by_the_side_views():
    vol = np.zeros((10, 24, 24), np.float32)
    vol[:, 12, 7] = 1.0  # a dot in every xy plane, a line in the xz plane y=12 and the yz plane x=7
    xy_only = np.stack([vertical_lines(p) for p in vol])
    ortho = predict_planes(vertical_lines, vol, 2.0)
    assert xy_only.max() == 0.0
    np.testing.assert_allclose(ortho[:, 12, 7], 2.0 / 3.0, atol=1e-6)  # two of three views
    ortho[:, 12, 7] = 0.0
    assert ortho.max() == 0.0


@pytest.mark.parametrize("planes, anisotropy", [(1, 1.0), (2, 3.8), (3, 1.0), (4, 0.5)])
def test_shallow_stacks_use_the_xy_view_alone(planes, anisotropy):
    assert resampled_depth(planes, anisotropy) < MIN_DEPTH
    vol = np.random.default_rng(2).random((planes, 40, 33), dtype=np.float32)
    seen = []
    out = predict_planes(lambda p: seen.append(p.shape) or identity(p), vol, anisotropy)
    assert out.shape == vol.shape and seen == [(40, 33)] * planes
    np.testing.assert_allclose(out, vol)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "x"])
def test_anisotropy_must_be_positive(bad):
    with pytest.raises(ValueError, match="anisotropy"):
        predict_planes(identity, np.zeros((8, 8, 8), np.float32), bad)


def test_predictor_must_keep_the_plane_shape():
    with pytest.raises(ValueError, match="returned shape"):
        predict_planes(lambda p: p[:-1], np.zeros((8, 8, 8), np.float32))


def tiny_models():
    cfg = IgttConfig.preset("fast", encoder_depth=3, decoder_channels=(16, 8, 8), background_sigma=10.0)
    import torch

    torch.manual_seed(0)
    net = build_model(**cfg.model_dict())
    config = {"model": cfg.model_dict(), "preprocess": cfg.preprocess_dict()}
    return (TrainedModel(net, config),
            IgttModel(net, dict(config, kind="igtt", calibration=cfg.calibration_dict())))


@pytest.fixture(scope="module")
def models():
    return tiny_models()


def stack(shape=(8, 64, 64), seed=3):
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 4.0, shape)
    img[..., 20:24, :] += 40.0
    return img.astype(np.float32)


KW = dict(device="cpu", tile=64, overlap=16)


@pytest.mark.parametrize("which", [0, 1])
def test_ortho_predicts_a_volume(models, which):
    model, img = models[which], stack()
    out = model.predict(img, volume_mode="ortho", anisotropy=3.8, **KW)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    slices = model.predict(img, **KW)
    assert not np.allclose(out, slices, atol=1e-4)  # the side views changed the result
    if which == 1:  # calibrated once for the combined volume: its candidate is > 0.5
        assert 0.0 < (out > 0.5).mean() < 1.0


def test_ortho_loops_over_time(models):
    model = models[1]
    img = np.stack([stack(seed=4), stack(seed=5)])  # TZYX
    out = model.predict(img, volume_mode="ortho", anisotropy=None, axes="TZYX", **KW)
    assert out.shape == img.shape and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(out[1], model.predict(img[1], volume_mode="ortho", **KW), atol=1e-6)


def test_slices_is_the_default(models):
    model, img = models[1], stack()
    np.testing.assert_array_equal(model.predict(img, volume_mode="slices", **KW), model.predict(img, **KW))


def test_bad_volume_modes_raise(models):
    model, img = models[0], stack()
    assert VOLUME_MODES == ("slices", "ortho")
    with pytest.raises(ValueError, match="volume_mode 'planes'.*slices, ortho"):
        model.predict(img, volume_mode="planes", **KW)
    with pytest.raises(ValueError, match="needs a z-stack"):
        model.predict(img[0], volume_mode="ortho", **KW)
    with pytest.raises(ValueError, match="'TYX'"):
        model.predict(img, volume_mode="ortho", axes="TYX", **KW)
    with pytest.raises(ValueError, match="anisotropy"):
        model.predict(img, volume_mode="ortho", anisotropy=0.0, **KW)
