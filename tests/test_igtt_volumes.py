"""Z-stacks as volumes: the noise estimate, the significance gate and one candidate per volume."""
import numpy as np
import pytest

from napari_metastructures.core.igtt.config import IgttConfig
from napari_metastructures.core.igtt.engine import first_candidates, run
from napari_metastructures.core.training.data import (
    background_noise,
    blocks,
    noise_level,
    preprocess,
    significance_gate,
    subtract_background,
    volume_scope,
)


def stack_with_empty_planes(seed=0, shape=(6, 96, 96)):
    """A z-stack as in the yeast data: camera offset and noise everywhere, blobs only in the
    last three planes (the first three are empty, above the cell)."""
    rng = np.random.default_rng(seed)
    z, h, w = shape
    img = rng.normal(100.0, 4.0, shape)
    yy, xx = np.mgrid[:h, :w]
    truth = np.zeros(shape, bool)
    for k in range(3, z):
        for _ in range(6):
            cy, cx = rng.integers(10, h - 10), rng.integers(10, w - 10)
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(9, 25)
            img[k][blob] += 40.0
            truth[k] |= blob
    return np.clip(img, 0, 65535).astype(np.uint16), truth


def test_noise_is_measured_before_clipping():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 0.1, (200, 200)).astype(np.float32)
    assert noise_level(x) == pytest.approx(0.1, rel=0.1)
    # after clipping at 0 most residuals are 0: the estimate falls to a fraction of the truth
    assert noise_level(np.maximum(x, 0)) < 0.6 * noise_level(x)


def test_background_noise_reads_the_gaps_between_dense_structure():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 0.05, (256, 256)).astype(np.float32)
    assert 0.93 * 0.05 < background_noise(x) < 1.02 * 0.05  # white noise: about 0.98 of the truth
    lines = np.zeros_like(x, bool)
    lines[:, :192] = (np.arange(192) % 6 < 3)[None, :]  # sharp tubules on 3/4 of the image, half the pixels
    x[lines] += 1.0 + rng.normal(0.0, 0.2, int(lines.sum()))  # with more shot noise on them
    assert noise_level(x) > 2 * 0.05  # the whole image's residual is ruled by the structure
    assert 0.9 * 0.05 < background_noise(x) < 1.1 * 0.05
    assert background_noise(x[:8, :8]) == noise_level(x[:8, :8])  # smaller than one block


def test_gate_is_closed_on_noise_and_open_on_structure():
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, (128, 128)).astype(np.float32)
    x[60:64, :] += 3.0  # a tubule at 3 noise SDs per pixel
    g = significance_gate(x, 1.0, 2.0, 4.0)
    assert g[60:64, 10:-10].min() == 1.0
    for noise in (g[10:40, 10:-10], g[90:-10, 10:-10]):  # smoothed noise passes z > 2 about 2 % of the time
        assert noise.mean() < 0.01 and (noise > 0.5).mean() < 0.005


def test_background_threshold_is_pooled_over_a_volume():
    img, _ = stack_with_empty_planes()
    x = img.astype(np.float32)
    pooled = subtract_background(x, 10.0, clip=False)
    alone = subtract_background(x[0], 10.0, clip=False)
    # an empty plane alone loses its brighter half of the noise from the background estimate, which
    # then sits low; in the volume it keeps all its pixels and the residual is centred on 0
    assert float(np.median(alone)) > float(np.median(pooled[0])) + 0.1


def test_scope_rules():
    assert volume_scope("auto", 3) and volume_scope("auto", 4, "TZYX") and volume_scope("volume", 3, "TYX")
    assert not volume_scope("auto", 3, "TYX") and not volume_scope("slice", 3) and not volume_scope("auto", 2)
    assert not volume_scope(None, 3)  # models saved before volumes existed
    stack = np.zeros((2, 3, 8, 8))
    assert [b.shape for b in blocks(stack, True)] == [(3, 8, 8)] * 2
    assert [b.shape for b in blocks(stack, False)] == [(8, 8)] * 6
    with pytest.raises(Exception, match="scope"):
        IgttConfig.preset("fast", scope="planes")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_empty_planes_stay_empty_in_a_volume(seed):
    img, truth = stack_with_empty_planes(seed)
    cfg = IgttConfig.preset("fast", background_sigma=10.0)
    volume = first_candidates([img], cfg)[0].astype(bool)
    slices = first_candidates([img], cfg, axes=["TYX"])[0].astype(bool)  # each plane alone
    assert volume[:3].mean() < 0.002  # empty planes
    assert slices[:3].mean() > 0.05  # the old behaviour: each plane splits its own noise
    found = (volume & truth).sum() / truth.sum()
    assert found > 0.7 and (volume & ~truth).sum() < 0.5 * truth.sum()


def test_legacy_spec_treats_a_stack_as_slices():
    img, _ = stack_with_empty_planes()
    spec = {"background_sigma": 10.0, "local_sigma": 8.0, "local_floor": 3.0}  # a model saved before
    per_slice = np.stack([preprocess(s, spec) for s in img])
    assert not volume_scope(spec.get("scope"), img.ndim)
    np.testing.assert_allclose(np.stack([preprocess(b, spec) for b in blocks(img, False)]), per_slice)


@pytest.mark.slow
def test_trained_volume_predicts_like_its_training_outputs():
    img, _ = stack_with_empty_planes(shape=(3, 64, 64))
    cfg = IgttConfig.preset("fast", encoder_depth=3, decoder_channels=(16, 8, 8), crop=64, batch_size=2,
                            steps_per_epoch=2, epochs=1, tile=64, overlap=16, threads=2, background_sigma=10.0)
    result = run([img], cfg, seed=0, device="cpu")
    assert result.model.config["preprocess"]["scope"] == "auto"
    again = result.model.predict(img, device="cpu", tile=64, overlap=16)
    np.testing.assert_allclose(again, result.outputs[0], atol=1e-5)


def test_gate_weights_the_scoring_image_not_the_network_input():
    img, truth = stack_with_empty_planes()
    spec = IgttConfig.preset("fast", background_sigma=10.0).preprocess_dict()
    assert spec["gate_input"] is False
    net_input, score = preprocess(img, spec, "both")
    assert (score[:3] > 0).mean() < 0.01  # empty planes: nothing significant to score
    assert (net_input[:3] > 0).mean() > 0.2  # the network still sees the noise, and learns it is not structure
    assert score[truth].mean() > 0.5 * net_input[truth].mean()
    np.testing.assert_array_equal(preprocess(img, spec, "score"), score)
    np.testing.assert_array_equal(preprocess(img, spec), net_input)
    gated_spec = dict(spec, gate_input=True)
    np.testing.assert_array_equal(preprocess(img, gated_spec), score)


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["volume", "slice"])
def test_volume_scope_refines_and_decides_in_3d(scope, monkeypatch):
    from napari_metastructures.core.igtt import engine

    calls = []
    real = engine.ems

    def spy(mask, rng, *args, **kwargs):
        calls.append((np.ndim(mask), kwargs.get("anisotropy")))
        return real(mask, rng, *args, **kwargs)

    monkeypatch.setattr(engine, "ems", spy)
    img, _ = stack_with_empty_planes(shape=(4, 64, 64))
    cfg = IgttConfig.preset("fast", encoder_depth=3, decoder_channels=(16, 8, 8), crop=64, batch_size=2,
                            steps_per_epoch=2, epochs=2, tile=64, overlap=16, threads=2, background_sigma=10.0,
                            scope=scope, early_stop=False)
    result = run([img], cfg, seed=0, device="cpu", axes=["ZYX"], anisotropy=3.8)
    reason = result.model.config["structure"]["reason"]
    if scope == "volume":
        assert calls and all(c == (3, 3.8) for c in calls)  # one 3D EMS per epoch, the stack's anisotropy
        assert len(calls) == 2
        assert result.model.config["ems"] == {"volumes": "3d", "anisotropy": [3.8]}
        assert "3D skeleton band" in reason
    else:
        assert len(calls) == 2 * 4 and all(c[0] == 2 for c in calls)  # every plane alone, as before
        assert result.model.config["ems"] == {"volumes": None}
        assert "3D" not in reason
