"""TIFF / OME-TIFF reading and writing, without a viewer."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_metastructures import io
from napari_metastructures.core.validate import InputError

SHAPES = {2: (20, 24), 3: (3, 20, 24), 4: (2, 3, 20, 24), 5: (2, 3, 2, 20, 24)}
SCALES = {2: (0.2, 0.1), 3: (0.5, 0.2, 0.1), 4: (4.0, 0.5, 0.2, 0.1), 5: (4.0, 0.5, 1.0, 0.2, 0.1)}


@pytest.mark.parametrize("ndim", [2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.int32, np.uint32])
def test_round_trip_keeps_data_and_scale(tmp_path, ndim, dtype):
    rng = np.random.default_rng(ndim)
    data = (rng.random(SHAPES[ndim]) * 200).astype(dtype)
    translate = tuple(float(i) for i in range(ndim))
    path = io.write_tiff(tmp_path / "x.tif", data, scale=SCALES[ndim], translate=translate)
    out = io.read_image(path)
    np.testing.assert_array_equal(out.data, data)
    assert out.data.dtype == data.dtype
    np.testing.assert_allclose(out.scale, SCALES[ndim])
    np.testing.assert_allclose(out.translate, translate)
    assert out.axes == io.AXES_BY_NDIM[ndim]
    assert out.name == "x"


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_scale_is_in_standard_resolution_tags(tmp_path, dtype):
    """Other readers (ImageJ, tifffile) see the pixel size: X/Y resolution, Z spacing."""
    path = io.write_tiff(tmp_path / "z.tif", np.zeros((3, 8, 8), dtype), scale=(0.7, 0.25, 0.5))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        xres, yres = (io._rational(page.tags[k].value) for k in ("XResolution", "YResolution"))
        unit = 1e4 if page.tags["ResolutionUnit"].value == 3 else 1.0  # cm or ImageJ micron
        assert unit / xres == pytest.approx(0.5) and unit / yres == pytest.approx(0.25)
        if tif.is_imagej:
            assert tif.imagej_metadata["spacing"] == pytest.approx(0.7)
            assert tif.imagej_metadata["unit"] == "micron"


def test_labels_flag_round_trips(tmp_path):
    path = io.write_tiff(tmp_path / "lab.tif", np.ones((8, 8), np.uint32), layer_type="labels")
    assert io.read_image(path).layer_type == "labels"
    path = io.write_tiff(tmp_path / "img.tif", np.ones((8, 8), np.uint16))
    assert io.read_image(path).layer_type == "image"


def test_ome_physical_sizes_become_scale(tmp_path):
    path = tmp_path / "cells.ome.tif"
    data = np.zeros((4, 2, 16, 16), np.uint16)
    tifffile.imwrite(path, data, metadata={
        "axes": "ZCYX", "PhysicalSizeX": 0.11, "PhysicalSizeY": 0.12,
        "PhysicalSizeZ": 300.0, "PhysicalSizeZUnit": "nm",
    })
    out = io.read_image(path)
    assert out.axes == "ZCYX" and out.name == "cells"
    np.testing.assert_allclose(out.scale, (0.3, 1.0, 0.12, 0.11))
    assert out.metadata["format"] == "ome-tiff"


def test_ome_5d(tmp_path):
    path = tmp_path / "t.ome.tiff"
    tifffile.imwrite(path, np.zeros((2, 3, 4, 8, 8), np.uint8),
                     metadata={"axes": "TCZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0})
    out = io.read_image(path)
    assert out.data.shape == (2, 3, 4, 8, 8)
    np.testing.assert_allclose(out.scale[-3:], (2.0, 0.5, 0.5))


def test_foreign_imagej_and_plain_resolution(tmp_path):
    ij = tmp_path / "ij.tif"
    tifffile.imwrite(ij, np.zeros((3, 8, 8), np.uint8), imagej=True, resolution=(10, 5),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"})
    np.testing.assert_allclose(io.read_image(ij).scale, (2.0, 0.2, 0.1))
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(cm, np.zeros((8, 8), np.uint8), resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    np.testing.assert_allclose(io.read_image(cm).scale, (0.5, 0.5))
    dpi = tmp_path / "dpi.tif"  # a 72 dpi default is not a pixel size
    tifffile.imwrite(dpi, np.zeros((8, 8), np.uint8), resolution=(72, 72), resolutionunit="INCH")
    assert io.read_image(dpi).scale == (1.0, 1.0)


def test_singleton_axes_are_dropped_with_their_scale(tmp_path):
    path = io.write_tiff(tmp_path / "s.tif", np.zeros((1, 3, 1, 8, 8), np.uint16), scale=(9, 0.5, 7, 0.2, 0.1))
    out = io.read_image(path)
    assert out.data.shape == (3, 8, 8)
    np.testing.assert_allclose(out.scale, (0.5, 0.2, 0.1))


def test_sidecar_holds_params_and_scale(tmp_path):
    params = {"kind": "flip", "p": np.float32(0.25), "seed": np.int64(3), "big": np.zeros(5000)}
    path = io.write_tiff(tmp_path / "noisy.tif", np.zeros((8, 8), np.uint8), scale=(0.3, 0.4),
                         params=params, layer_type="labels")
    side = json.loads((tmp_path / "noisy.json").read_text())
    assert side["params"]["kind"] == "flip" and side["params"]["p"] == pytest.approx(0.25)
    assert side["params"]["seed"] == 3 and side["params"]["big"].startswith("<array")
    assert side["scale"] == [0.3, 0.4] and side["layer_type"] == "labels" and side["image"] == "noisy.tif"
    assert io.read_image(path).metadata["params"]["kind"] == "flip"
    # no params, no sidecar
    io.write_tiff(tmp_path / "plain.tif", np.zeros((8, 8), np.uint8))
    assert not (tmp_path / "plain.json").exists()


def test_ome_name_sidecar(tmp_path):
    io.write_tiff(tmp_path / "a.ome.tif", np.zeros((8, 8), np.uint8), params={"x": 1})
    assert (tmp_path / "a.json").exists()


def test_suffix_added_when_missing(tmp_path):
    path = io.write_tiff(tmp_path / "result", np.zeros((8, 8), np.uint8))
    assert path.name == "result.tif" and path.exists()


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "out.tif"

    def broken(file, *args, **kwargs):
        with open(file, "wb") as fh:  # half a file, then a crash
            fh.write(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        io.write_tiff(target, np.zeros((8, 8), np.uint8), params={"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_old_file(tmp_path, monkeypatch):
    target = io.write_tiff(tmp_path / "out.tif", np.full((8, 8), 7, np.uint8))
    monkeypatch.setattr(tifffile, "imwrite", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        io.write_tiff(target, np.zeros((8, 8), np.uint8))
    monkeypatch.undo()
    assert (io.read_image(target).data == 7).all()
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def _half_a_tiff(path) -> bytes:
    full = io.write_tiff(path.with_name("full.tif"), np.ones((4, 64, 64), np.uint16), scale=(1, 1, 1))
    return full.read_bytes()[: full.stat().st_size // 2]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)), "not a readable TIFF"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"II*\x00\x08\x00\x00\x00"), "holds no images"),  # header only
        (lambda p: p.write_bytes(_half_a_tiff(p)), "truncated or corrupt"),
    ],
    ids=["random-bytes", "empty", "header-only", "truncated"],
)
def test_bad_files_raise_input_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "broken.tif"
    make(path)
    with pytest.raises(InputError, match=message) as err:
        io.read_image(path)
    assert "broken.tif" in str(err.value)


def test_unsupported_and_missing_files(tmp_path):
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InputError, match="photo.png: unsupported file type '.png'"):
        io.read_image(png)
    with pytest.raises(InputError, match="no such file"):
        io.read_image(tmp_path / "gone.tif")


def test_wrong_dimensionality_and_size_limit(tmp_path):
    one_d = tmp_path / "line.tif"
    tifffile.imwrite(one_d, np.arange(10, dtype=np.uint8), metadata={"axes": "X"})
    with pytest.raises(InputError, match="line.tif"):
        io.read_image(one_d)
    big = io.write_tiff(tmp_path / "big.tif", np.zeros((64, 64), np.uint16))
    with pytest.raises(InputError, match="big.tif: .*limit"):
        io.read_image(big, max_bytes=1000)
    with pytest.raises(InputError, match="2D to 5D"):
        io.write_tiff(tmp_path / "six.tif", np.zeros((2,) * 6, np.uint8))
    with pytest.raises(InputError, match="scale"):
        io.write_tiff(tmp_path / "s.tif", np.zeros((4, 4), np.uint8), scale=(1.0,))


def test_get_reader_accepts_tiffs_only(tmp_path):
    assert io.napari_get_reader("a.png") is None
    assert io.napari_get_reader(["a.tif", "b.png"]) is None
    assert io.napari_get_reader([]) is None
    assert callable(io.napari_get_reader("a.TIF"))
    assert callable(io.napari_get_reader(["a.tif", "b.ome.tiff"]))


def test_reader_gives_layer_data(tmp_path):
    a = io.write_tiff(tmp_path / "a.tif", np.ones((3, 8, 8), np.uint16), scale=(2, 0.5, 0.5))
    b = io.write_tiff(tmp_path / "b.tif", np.ones((8, 8), np.int32), scale=(0.1, 0.1), layer_type="labels")
    reader = io.napari_get_reader([str(a), str(b)])
    (da, ma, ta), (db, mb, tb) = reader([str(a), str(b)])
    assert ta == "image" and tb == "labels"
    assert ma["name"] == "a" and ma["scale"] == (2.0, 0.5, 0.5) and mb["scale"] == (0.1, 0.1)
    assert ma["metadata"]["source"] == str(a)


def test_reader_rgb_drops_channel_from_scale(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    (data, meta, kind), = io.read_layers(str(path))
    assert meta["rgb"] is True and len(meta["scale"]) == 2 and data.shape == (8, 8, 3)


def test_napari_writers_keep_scale_and_metadata(tmp_path):
    meta = {"name": "noisy", "scale": (1.5, 0.3, 0.3), "translate": (0.0, 2.0, 4.0),
            "metadata": {"params": {"p": 0.3}}}
    written = io.napari_write_labels(str(tmp_path / "lab.tif"), np.ones((2, 8, 8), np.int64), meta)
    out = io.read_image(written[0])
    assert out.layer_type == "labels" and out.scale == (1.5, 0.3, 0.3) and out.translate == (0.0, 2.0, 4.0)
    assert json.loads((tmp_path / "lab.json").read_text())["params"] == {"params": {"p": 0.3}}
    written = io.napari_write_image(str(tmp_path / "img.tif"), np.ones((8, 8), np.float32),
                                    {"scale": (0.2, 0.2), "metadata": {}})
    assert io.read_image(written[0]).scale == (0.2, 0.2)
    assert not (tmp_path / "img.json").exists()
    with pytest.raises(InputError, match="RGB"):
        io.napari_write_image(str(tmp_path / "rgb.tif"), np.zeros((8, 8, 3), np.uint8),
                              {"name": "photo", "rgb": True, "scale": (1, 1)})


def test_bundled_nuclei_load():
    for i in range(len(io.NUCLEI_STEMS)):
        image, mask, labels = io.load_nuclei_sample(i)
        assert image.shape == mask.shape == labels.shape == (256, 256)
        assert image.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        np.testing.assert_array_equal(mask, labels > 0)
        assert labels.max() >= 10
    assert (io.NUCLEI_DIR / "SOURCE.md").read_text().count("CC0") >= 1


@pytest.mark.parametrize("axes", ["CZYX", "ZCYX", "TZYX", "TCYX", "CYX", "ZYX"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int32])
def test_writer_keeps_the_axes_it_is_given(tmp_path, axes, dtype):
    """Every 4D array was labelled TZYX; a CZYX output then read back with its scale on the wrong axes."""
    from napari_metastructures.io import read_image, write_tiff

    shape = tuple(range(2, 2 + len(axes) - 2)) + (8, 9)
    scale = tuple(float(i + 1) / 10 for i in range(len(axes)))
    path = write_tiff(tmp_path / "out.tif", np.ones(shape, dtype), scale=scale, axes=axes)
    back = read_image(path)
    assert back.axes == axes and back.data.shape == shape
    assert back.scale == pytest.approx(scale)


def test_reader_names_axes_and_units(tmp_path, monkeypatch):
    """Issue 17 item 10: sliders read t and z, sizes in µm (napari's axis_labels and units)."""
    monkeypatch.setattr(io, "layers_take_axes", lambda: True)  # napari >= 0.6
    path = io.write_tiff(tmp_path / "tz.tif", np.zeros((2, 3, 8, 8), np.uint16), scale=(5.0, 0.25, 0.1, 0.1),
                         axes="TZYX")
    (_, meta, _), = io.read_layers(str(path))
    assert meta["axis_labels"] == ("t", "z", "y", "x")
    assert meta["units"] == ("pixel", "um", "um", "um")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((5, 8, 8), np.uint16))  # no pixel size: no length unit claimed
    (_, meta, _), = io.read_layers(str(plain))
    assert len(meta["axis_labels"]) == 3 and meta["units"] == ("pixel",) * 3
    monkeypatch.setattr(io, "layers_take_axes", lambda: False)  # napari 0.5: add_image refuses them
    (_, meta, _), = io.read_layers(str(path))
    assert "axis_labels" not in meta and "units" not in meta and meta["scale"] == pytest.approx((5.0, 0.25, 0.1, 0.1))


def test_layers_take_axes_from_napari_06():
    import napari

    from napari_metastructures.layer_axes import layers_take_axes

    new_enough = tuple(int(p) for p in napari.__version__.split(".")[:2]) >= (0, 6)
    assert layers_take_axes() is new_enough


def test_reader_layers_open_in_napari_with_their_axes(make_napari_viewer, tmp_path):
    path = io.write_tiff(tmp_path / "z.tif", np.zeros((3, 8, 8), np.uint16), scale=(0.25, 0.1, 0.1), axes="ZYX")
    viewer = make_napari_viewer()
    layer, = viewer.open(str(path), plugin="napari-metastructures")
    np.testing.assert_allclose(layer.scale, (0.25, 0.1, 0.1))
    if io.layers_take_axes():  # napari >= 0.6; older napari opens it with its default axis names
        assert tuple(layer.axis_labels) == ("z", "y", "x") and str(layer.units[0]) == "micrometer"


def test_channels_become_one_layer_each_with_their_names(make_napari_viewer, tmp_path):
    """Issue 12: the reader splits channels (channel_axis), named from the OME metadata."""
    path = tmp_path / "cells.ome.tif"
    data = np.zeros((2, 4, 16, 16), np.uint16)
    data[1] = 7
    tifffile.imwrite(path, data, metadata={"axes": "CZYX", "PhysicalSizeX": 0.11, "PhysicalSizeY": 0.11,
                                           "PhysicalSizeZ": 0.3, "Channel": {"Name": ["ER", "mito"]}})
    (_, meta, kind), = io.read_layers(str(path))
    assert kind == "image" and meta["channel_axis"] == 0 and meta["name"] == ["cells ER", "cells mito"]
    np.testing.assert_allclose(meta["scale"], (0.3, 0.11, 0.11))
    assert meta["metadata"]["axes"] == "ZYX"
    assert meta.get("axis_labels", ("z", "y", "x")) == ("z", "y", "x")  # absent before napari 0.6
    viewer = make_napari_viewer()
    er, mito = viewer.open(str(path), plugin="napari-metastructures")
    assert (er.name, mito.name) == ("cells ER", "cells mito")
    assert er.data.shape == (4, 16, 16) and int(mito.data.max()) == 7
    np.testing.assert_allclose(mito.scale, (0.3, 0.11, 0.11))


def test_unnamed_channels_are_numbered(tmp_path):
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 16, 16), np.uint8), metadata={"axes": "CYX"})
    (_, meta, _), = io.read_layers(str(path))
    assert meta["name"] == ["two c0", "two c1"] and meta["channel_axis"] == 0


def test_reader_leaves_plain_and_huge_tiffs_to_other_readers(tmp_path, monkeypatch):
    """Issue 12: claim a TIFF only when we add pixel sizes, axes or our metadata, and it fits in memory."""
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((8, 8), np.uint16), metadata=None)
    assert io.napari_get_reader(str(plain)) is None
    ours = io.write_tiff(tmp_path / "ours.tif", np.zeros((3, 8, 8), np.uint16), scale=(0.25, 0.1, 0.1))
    assert callable(io.napari_get_reader(str(ours)))
    ome = tmp_path / "cells.ome.tif"
    tifffile.imwrite(ome, np.zeros((2, 8, 8), np.uint16), metadata={"axes": "ZYX", "PhysicalSizeX": 0.1})
    assert callable(io.napari_get_reader(str(ome)))
    assert io.napari_get_reader([str(ours), str(plain)]) is None
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    assert callable(io.napari_get_reader(str(broken)))  # ours, so the user reads our message
    monkeypatch.setattr(io, "MAX_BYTES", 100)
    assert io.napari_get_reader(str(ours)) is None  # 3 x 8 x 8 x 2 bytes > 100: a lazy reader's job
