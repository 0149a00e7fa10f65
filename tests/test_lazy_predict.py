"""Lazy inputs and outputs (core/lazy.py): block reads, zarr outputs, and predict(out=)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from napari_metastructures.core import lazy  # noqa: E402
from napari_metastructures.core.igtt.config import IgttConfig  # noqa: E402
from napari_metastructures.core.igtt.model import IgttModel  # noqa: E402
from napari_metastructures.core.training.data import blocks, preprocess, volume_scope  # noqa: E402
from napari_metastructures.core.training.model import TrainedModel, build_model  # noqa: E402

KW = dict(device="cpu", tile=64, overlap=16)


def tiny(kind="trained", classes=1, scope="auto"):
    import torch

    cfg = IgttConfig.preset("fast", encoder_depth=3, decoder_channels=(16, 8, 8), background_sigma=10.0)
    torch.manual_seed(0)
    model_dict = dict(cfg.model_dict(), classes=classes)
    net = build_model(**model_dict)
    config = {"model": model_dict, "preprocess": dict(cfg.preprocess_dict(), scope=scope)}
    if kind == "igtt":
        return IgttModel(net, dict(config, kind="igtt", calibration=cfg.calibration_dict()))
    return TrainedModel(net, config)


def stack(shape, seed=3):
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 4.0, shape)
    img[..., 20:24, :] += 40.0
    img[..., :, 30:33] += 30.0
    return img.astype(np.float32)


def reference(model, arr, axes=None):
    """predict's numpy path as it was before lazy inputs: all blocks, then one np.stack."""
    from napari_metastructures.core.training.data import as_slices
    from napari_metastructures.core.training.tiling import predict_tiled

    spec = model.config.get("preprocess", {})
    volume = model.classes == 1 and volume_scope(spec.get("scope"), arr.ndim, axes)
    outs = []
    for block in blocks(arr, volume):
        x, score = preprocess(block, spec, "both")
        probs = [predict_tiled(model.net, sl, 64, 16, 4, "cpu", None) for sl in as_slices(x)]
        prob = model._postprocess(np.stack(probs) if x.ndim > 2 else probs[0], score)
        outs += as_slices(prob) if x.ndim > 2 else [prob]
    if model.classes == 1:
        return np.stack(outs).reshape(arr.shape).astype(np.float32, copy=False)
    stacked = np.stack(outs, axis=1)
    return stacked.reshape((stacked.shape[0],) + arr.shape).astype(np.float32, copy=False)


class Counting:
    """A dask array over ``img`` (one chunk per plane) that counts the chunks read."""

    def __init__(self, img):
        self.reads = 0
        self.img = img

        def count(block, block_info=None):
            if block.size:  # dask calls it on empty arrays to learn the output's type
                self.reads += 1
            return block

        chunks = (1,) * (img.ndim - 2) + img.shape[-2:]
        self.data = da.from_array(img, chunks=chunks).map_blocks(count, dtype=img.dtype)
        self.planes = int(np.prod(img.shape[:-2], dtype=np.int64))


# ---------------------------------------------------------------- lazy.py

def test_block_indices_and_read_block():
    assert lazy.block_indices((5, 6), 2) == [()]
    assert lazy.block_indices((2, 3, 5, 6), 2) == [(t, z) for t in range(2) for z in range(3)]
    assert lazy.block_indices((2, 3, 5, 6), 3) == [(0,), (1,)]
    img = stack((2, 3, 40, 40))
    c = Counting(img)
    assert lazy.is_lazy(c.data) and not lazy.is_lazy(img)
    got = lazy.read_block(c.data, (1, 2))
    assert isinstance(got, np.ndarray) and c.reads == 1
    np.testing.assert_array_equal(got, img[1, 2])
    assert lazy.read_block(img, (1,)).base is not None  # numpy: a view, not a copy


def test_sample_blocks_is_seeded_spread_and_within_budget():
    shape = (50, 64, 64)
    a = lazy.sample_blocks(shape, 2, budget_px=10 * 64 * 64, seed=1)
    assert a == lazy.sample_blocks(shape, 2, budget_px=10 * 64 * 64, seed=1)
    assert len(a) == 10 and len(set(a)) == 10 and a == sorted(a)
    assert a[0][0] < 5 and a[-1][0] >= 45  # spread over the whole stack
    assert a != lazy.sample_blocks(shape, 2, budget_px=10 * 64 * 64, seed=2)
    assert len(lazy.sample_blocks(shape, 2, budget_px=1, seed=0)) == 1  # at least one block
    assert len(lazy.sample_blocks(shape, 2, budget_px=10**9, seed=0)) == 50
    only = [(3,), (7,), (9,)]
    assert set(lazy.sample_blocks(shape, 2, 2 * 64 * 64, seed=0, only=only)) <= set(only)


def test_output_array_switches_at_the_limit(tmp_path):
    shape = (4, 8, 8)
    small = lazy.output_array(shape, np.float32, limit=4 * 8 * 8 * 4)
    assert isinstance(small, np.ndarray) and small.shape == shape
    big = lazy.output_array(shape, np.float32, limit=4 * 8 * 8 * 4 - 1, store=tmp_path / "p.zarr")
    assert not isinstance(big, np.ndarray) and big.shape == shape and big.chunks == (1, 8, 8)
    big[1] = 1.0
    assert not (tmp_path / "p.zarr").exists()  # still partial
    final = lazy.finish_store(big)
    assert final == tmp_path / "p.zarr" and not (tmp_path / "p.zarr.partial").exists()
    back = zarr.open_array(str(final), mode="r")
    assert back[1].sum() == 64 and back[0].sum() == 0
    temp = lazy.output_array(shape, np.uint8, limit=0)
    where = lazy.store_path(temp)
    assert lazy.is_temporary(where) and where.exists()
    lazy.remove_store(temp)
    assert not where.parent.exists()


def test_a_failed_write_leaves_no_store_under_the_final_name(tmp_path):
    from napari_metastructures.core.lazy import output_array, remove_store

    target = tmp_path / "x.zarr"
    arr = output_array((3, 8, 8), np.float32, limit=0, store=target)
    try:
        arr[0] = 1.0
        raise RuntimeError("killed half way")
    except RuntimeError:
        remove_store(arr)
    assert not target.exists() and not (tmp_path / "x.zarr.partial").exists()
    # a finished store is replaced whole by the next finished one, never removed by remove_store
    first = output_array((3, 8, 8), np.float32, limit=0, store=target)
    first[:] = 1.0
    lazy.finish_store(first)
    lazy.remove_store(target)
    assert target.exists()
    second = output_array((3, 8, 8), np.float32, limit=0, store=target)
    second[:] = 2.0
    lazy.finish_store(second)
    assert zarr.open_array(str(target), mode="r")[:].min() == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr"]


# ---------------------------------------------------------------- predict on lazy data

@pytest.fixture(scope="module")
def models():
    return {"trained": tiny(), "igtt": tiny("igtt"), "slices": tiny("igtt", scope="slice")}


@pytest.mark.parametrize("which", ["trained", "igtt", "slices"])
def test_lazy_input_gives_the_numpy_result_bit_for_bit(models, which):
    model, img = models[which], stack((2, 3, 64, 64))
    want = reference(model, img, axes="TZYX")
    np.testing.assert_array_equal(model.predict(img, axes="TZYX", **KW), want)
    c = Counting(img)
    got = model.predict(c.data, axes="TZYX", **KW)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert c.reads == c.planes  # every plane read once


def test_2d_image_lazy(models):
    model, img = models["igtt"], stack((64, 80))
    got = model.predict(zarr_of(img), **KW)
    np.testing.assert_array_equal(got, reference(model, img))


def zarr_of(img):
    z = zarr.create(shape=img.shape, chunks=(1,) * (img.ndim - 2) + img.shape[-2:], dtype=img.dtype,
                    store=zarr.storage.MemoryStore() if hasattr(zarr.storage, "MemoryStore") else None)
    z[...] = img
    return z


def test_ortho_lazy_and_out_zarr(models, tmp_path):
    model, img = models["igtt"], stack((2, 8, 64, 64), seed=5)
    want = model.predict(img, volume_mode="ortho", anisotropy=2.0, axes="TZYX", **KW)
    c = Counting(img)
    out = lazy.output_array(img.shape, np.float32, limit=0, store=tmp_path / "o.zarr")
    got = model.predict(c.data, volume_mode="ortho", anisotropy=2.0, axes="TZYX", out=out, **KW)
    assert got is out and c.reads == c.planes
    np.testing.assert_array_equal(out[...], want)


def test_out_zarr_slices_same_values(models, tmp_path):
    model, img = models["trained"], stack((3, 64, 64))
    out = lazy.output_array(img.shape, np.float32, limit=0, store=tmp_path / "s.zarr")
    assert model.predict(zarr_of(img), out=out, axes="ZYX", **KW) is out
    np.testing.assert_array_equal(out[...], model.predict(img, axes="ZYX", **KW))


def test_reads_one_block_before_predicting_it(models, monkeypatch):
    """The first forward pass happens after one block is read, not after the whole stack."""
    from napari_metastructures.core.training import tiling

    model, img = models["slices"], stack((4, 64, 64))
    c = Counting(img)
    seen = []
    real = tiling.predict_tiled

    def spy(*args, **kwargs):
        seen.append(c.reads)
        return real(*args, **kwargs)

    monkeypatch.setattr(tiling, "predict_tiled", spy)
    model.predict(c.data, axes="ZYX", **KW)
    assert seen == [1, 2, 3, 4]
    c2 = Counting(img)
    seen.clear()

    def spy2(*args, **kwargs):
        seen.append(c2.reads)
        return real(*args, **kwargs)

    monkeypatch.setattr(tiling, "predict_tiled", spy2)
    models["igtt"].predict(c2.data, axes="ZYX", **KW)  # one volume: its 4 planes, read once
    assert seen == [4, 4, 4, 4]


def test_multiclass_lazy_matches_and_refuses_out(tmp_path):
    model, img = tiny(classes=3), stack((2, 64, 64))
    got = model.predict(zarr_of(img), **KW)
    assert got.shape == (3,) + img.shape
    np.testing.assert_array_equal(got, reference(model, img))
    with pytest.raises(ValueError, match="one-class"):
        model.predict(img, out=np.empty(img.shape, np.float32), **KW)


def test_out_of_the_wrong_shape_or_dtype_is_refused(models):
    img = stack((2, 64, 64))
    for bad in (np.empty((2, 64, 65), np.float32), np.empty(img.shape, np.float64)):
        with pytest.raises(ValueError, match="float32 array of shape"):
            models["trained"].predict(img, out=bad, **KW)


# ---------------------------------------------------------------- lazy reading

def test_read_image_lazy_tiff_reads_no_pixels_until_asked(tmp_path, monkeypatch):
    import tifffile

    from napari_metastructures import io

    img = stack((3, 4, 40, 48)).astype(np.uint16)
    path = io.write_tiff(tmp_path / "movie.tif", img, scale=(2.0, 0.5, 0.1, 0.1), axes="TZYX")
    read = [0]  # bytes tifffile read from files
    real = tifffile.FileHandle.read

    def counted(self, *a, **k):
        got = real(self, *a, **k)
        read[0] += len(got)
        return got

    monkeypatch.setattr(tifffile.FileHandle, "read", counted)
    plane = img[0, 0].nbytes
    got = io.read_image(path, lazy=True)
    assert lazy.is_lazy(got.data) and got.axes == "TZYX" and got.scale == pytest.approx((2.0, 0.5, 0.1, 0.1))
    assert got.metadata["lazy"] and read[0] < plane  # the header only
    lazy.check_image_lazy(got.data, name=path.name)  # uint16: layout only, no pixels
    before = read[0]
    assert before < plane
    np.testing.assert_array_equal(lazy.read_block(got.data, (2, 1)), img[2, 1])
    assert plane <= read[0] - before < 2 * plane  # that plane only
    monkeypatch.setattr(io, "LAZY_ABOVE", img.nbytes - 1)
    assert lazy.is_lazy(io.read_image(path, lazy="auto").data)
    monkeypatch.setattr(io, "LAZY_ABOVE", img.nbytes)
    assert isinstance(io.read_image(path, lazy="auto").data, np.ndarray)
    with pytest.raises(Exception, match="movie.tif: .*limit"):
        io.read_image(path, max_bytes=100)  # in memory: the limit still holds
    assert lazy.is_lazy(io.read_image(path, max_bytes=100, lazy=True).data)


def _ome_zarr(path, img, scale):
    group = zarr.open_group(str(path), mode="w", **({"zarr_format": 2} if lazy._zarr_major() >= 3 else {}))
    arr = group.create_array("0", shape=img.shape, chunks=(1, 1) + img.shape[-2:], dtype=img.dtype) \
        if hasattr(group, "create_array") else group.create_dataset("0", shape=img.shape,
                                                                     chunks=(1, 1) + img.shape[-2:], dtype=img.dtype)
    arr[...] = img
    group.attrs["multiscales"] = [{
        "version": "0.4", "axes": [{"name": "t", "type": "time"}, {"name": "z", "type": "space", "unit": "micrometer"},
                                   {"name": "y", "type": "space", "unit": "micrometer"},
                                   {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": list(scale)}, {"type": "translation", "translation": [0, 0, 5.0, 0]}]}]}]
    return path


def test_read_image_on_zarr_directories(tmp_path):
    from napari_metastructures import io

    img = stack((2, 3, 32, 40)).astype(np.uint16)
    ome = _ome_zarr(tmp_path / "cells.zarr", img, (1.0, 0.3, 0.1, 0.1))
    got = io.read_image(ome)
    assert lazy.is_lazy(got.data) and got.axes == "TZYX" and got.name == "cells"
    assert got.scale == pytest.approx((1.0, 0.3, 0.1, 0.1)) and got.translate == pytest.approx((0, 0, 5.0, 0))
    assert got.pixel_size_um == pytest.approx(0.1) and got.anisotropy == pytest.approx(3.0)
    np.testing.assert_array_equal(lazy.read_block(got.data, (1, 2)), img[1, 2])
    plain = zarr_of(img[0])
    plain_path = tmp_path / "plain.zarr"
    z = lazy.output_array(img[0].shape, np.uint16, limit=0, store=plain_path)
    z[...] = plain[...]
    lazy.finish_store(z)
    got = io.read_image(plain_path)
    assert got.axes == "ZYX" and got.scale == (1.0, 1.0, 1.0)
    assert isinstance(io.read_image(plain_path, lazy=False).data, np.ndarray)
    (tmp_path / "junk.zarr").mkdir()
    with pytest.raises(io.InputError, match="junk.zarr"):
        io.read_image(tmp_path / "junk.zarr")
    with pytest.raises(io.InputError, match="gone.zarr"):
        io.read_image(tmp_path / "gone.zarr")


def test_check_image_lazy_samples_planes_for_nan():
    from napari_metastructures.core.validate import InputError

    img = np.zeros((40, 16, 16), np.float32)
    img[:, 3, 3] = np.nan
    with pytest.raises(InputError, match="bad: contains NaN"):
        lazy.check_image_lazy(da.from_array(img, chunks=(1, 16, 16)), name="bad")
    c = Counting(np.zeros((40, 16, 16), np.float32))
    lazy.check_image_lazy(c.data, budget_px=4 * 16 * 16)
    assert c.reads == 4


# ---------------------------------------------------------------- batch and command line

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return tiny("igtt").save(tmp_path_factory.mktemp("m") / "tiny.pt")


def test_batch_writes_zarr_above_the_limit_with_sidecars(tmp_path, model_file):
    import json

    from napari_metastructures.batch import is_complete, output_files
    from napari_metastructures.cli import main
    from napari_metastructures.io import read_image, write_tiff

    img = stack((2, 3, 64, 64)).astype(np.uint16)
    small = write_tiff(tmp_path / "small.tif", img[0, :1], scale=(0.5, 0.1, 0.1), axes="ZYX")
    big = _ome_zarr(tmp_path / "big.zarr", img, (2.0, 0.3, 0.1, 0.1))
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    out = tmp_path / "out"
    # the limit sits between the small file's float32 output and the big one's
    limit = str((img[0, :1].size * 4 + 1) / 1024**3)
    code = main(["predict", "--model", str(model_file), str(small), str(bad), str(big), "--out", str(out),
                 "--tile", "64", "--device", "cpu", "--volume", "slices", "--zarr-above", limit])
    assert code == 1  # bad.tif failed, the others went on
    assert (out / "small_prob.tif").is_file() and not (out / "small_prob.zarr").exists()
    assert [p.name for p in output_files(out, "big")] == ["big_prob.zarr", "big_prob.json", "big_mask.zarr",
                                                          "big_mask.json"]
    assert is_complete(out, "big") and not list(out.glob("*.partial"))
    prob, mask = read_image(out / "big_prob.zarr"), read_image(out / "big_mask.zarr")
    assert prob.axes == mask.axes == "TZYX" and mask.layer_type == "labels"
    assert prob.scale == pytest.approx((2.0, 0.3, 0.1, 0.1)) and mask.translate == pytest.approx((0, 0, 5.0, 0))
    p, m = np.asarray(prob.data), np.asarray(mask.data)
    assert m.dtype == np.uint8 and np.array_equal(m, (p > 0.5).astype(np.uint8))
    model = IgttModel.load(model_file)
    # same values as in memory (to float rounding: the command sets its own torch thread count)
    np.testing.assert_allclose(p, model.predict(img, axes="TZYX", **KW), atol=1e-5)
    side = json.loads((out / "big_mask.json").read_text())
    assert side["axes"] == "TZYX" and side["params"]["method"] == "predict" and side["shape"] == [2, 3, 64, 64]
    run = json.loads((out / "run.json").read_text())
    rec = {r["stem"]: r for r in run["files"]}
    assert [Path(o).name for o in rec["big"]["outputs"]] == ["big_prob.zarr", "big_mask.zarr"]
    assert str(out / "big_mask.zarr") in run["outputs"] and run["params"]["zarr_above_bytes"] > 0
    assert rec["bad"]["status"] == "failed" and rec["big"]["foreground"] == pytest.approx((p > 0.5).mean())


def test_a_failed_prediction_leaves_no_zarr_store(tmp_path, model_file, monkeypatch):
    from napari_metastructures.batch import expand_inputs
    from napari_metastructures.batch.segment import PredictSettings, segment_file

    img = stack((3, 64, 64)).astype(np.uint16)
    z = _ome_zarr(tmp_path / "in.zarr", img[None], (1.0, 0.3, 0.1, 0.1))
    model = IgttModel.load(model_file)
    calls = []

    def dies(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return np.zeros((64, 64), np.float32)

    from napari_metastructures.core.training import tiling

    monkeypatch.setattr(tiling, "predict_tiled", dies)
    out = tmp_path / "out"
    rec = segment_file(expand_inputs([z])[0], model, out, PredictSettings(tile=64, volume="slices", zarr_above=0),
                       {"method": "predict"})
    assert rec["status"] == "failed" and "boom" in rec["reason"]
    assert not out.exists() or not any(out.iterdir())
