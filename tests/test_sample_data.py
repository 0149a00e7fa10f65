"""Sample data and the reader/writer inside a real napari viewer."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_metastructures import _sample_data, io
from napari_metastructures.core.validate import InputError

PLUGIN = "napari-metastructures"


@pytest.mark.parametrize(
    "key, image_name, labels_name",
    [
        ("er_network", "ER network (synthetic)", "ER network ground truth"),
        ("mitochondria", "Mitochondria (synthetic)", "Mitochondria ground truth"),
        ("nuclei", "Nuclei (DSB2018)", "Nuclei ground truth"),
    ],
)
def test_open_sample_gives_image_and_ground_truth(make_napari_viewer, key, image_name, labels_name):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, key)
    image, labels = viewer.layers[image_name], viewer.layers[labels_name]
    assert image._type_string == "image" and labels._type_string == "labels"
    assert image.data.shape == labels.data.shape
    assert labels.data.any() and labels.data.max() == 1
    assert image.metadata == labels.metadata and image.metadata["source"]


def test_nuclei_sample_matches_bundled_files(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "nuclei")
    image, mask, inst = io.load_nuclei_sample(1)
    np.testing.assert_array_equal(viewer.layers["Nuclei (DSB2018)"].data[1], image)
    np.testing.assert_array_equal(viewer.layers["Nuclei instances"].data[1], inst)
    assert viewer.layers["Nuclei (DSB2018)"].metadata["stems"] == list(io.NUCLEI_STEMS)


YEAST = "Yeast mitochondria, 3D time-lapse (real)"


def test_yeast_sample_opens_with_physical_scale(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "yeast_mitochondria")
    assert [layer.name for layer in viewer.layers] == [YEAST]  # real data: no ground-truth layer
    image = viewer.layers[YEAST]
    assert image._type_string == "image"
    assert image.data.shape == (3, 17, 192, 279) and image.data.dtype == np.uint16
    np.testing.assert_allclose(image.scale[1:], (0.25, 0.0655, 0.0655))
    assert image.scale[0] == pytest.approx(4.54, abs=0.01)
    lo, hi = image.contrast_limits
    assert image.data.min() <= lo < hi <= image.data.max()
    assert image.metadata["licence"] == "CC BY 4.0" and "Nellie" in image.metadata["attribution"]
    assert image.metadata["pixel_size_um"] == {"z": 0.25, "y": 0.0655, "x": 0.0655}
    assert "no ground truth" in image.metadata["ground_truth"]
    if hasattr(image, "axis_labels"):
        assert tuple(image.axis_labels) == ("t", "z", "y", "x")
    if hasattr(image, "units"):
        assert [str(u) for u in image.units] == ["second", "micrometer", "micrometer", "micrometer"]


def test_yeast_sample_scale_comes_from_ome_metadata(tmp_path):
    data, sizes = _sample_data.load_yeast_mito_sample()
    assert data.shape == (3, 17, 192, 279) and data.dtype == np.uint16
    assert sizes["Z"] == 0.25 and sizes["Y"] == sizes["X"] == 0.0655
    assert sizes["T"] == pytest.approx(4.54, abs=0.01)
    # the package's own OME reader agrees
    assert io.read_image(_sample_data.YEAST_MITO_FILE).scale == tuple(sizes[a] for a in "TZYX")
    # without OME pixel sizes: a clear error, not a silent scale of 1
    bare = tmp_path / "bare.ome.tif"
    tifffile.imwrite(bare, data[:2], ome=True, metadata={"axes": "TZYX", "PhysicalSizeX": 0.1})
    with pytest.raises(InputError, match="lack TimeIncrement, PhysicalSizeZ, PhysicalSizeY"):
        _sample_data.load_yeast_mito_sample(bare)


def test_yeast_sample_attribution_is_installed_beside_it():
    from importlib.resources import files

    folder = files("napari_metastructures") / "sample_data" / "yeast_mito_3d"
    assert (folder / "yeast_mito_t3.ome.tif").is_file()
    text = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "Nellie" in text and "Lefebvre" in text
    assert "doi:10.1038/s41592-025-02612-7" in text and "first 3 time points" in text


def test_manifest_lists_every_sample():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    samples = {s.key: s for s in pm.get_manifest(PLUGIN).contributions.sample_data}
    assert set(samples) >= {"er_network", "mitochondria", "nuclei", "meta_structure_demo", "yeast_mitochondria"}
    assert samples["yeast_mitochondria"].display_name == YEAST
    assert samples["yeast_mitochondria"].command == "napari-metastructures.sample_yeast_mito"


def test_meta_structure_demo_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "meta_structure_demo")
    names = [layer.name for layer in viewer.layers]
    assert names == ["Circle in rectangle (ground truth)", "RCL: flipped, p=0.3 (rank 2)",
                     "RL: random, p=0.5 (rank 1)"]
    clean, rcl, rl = (layer.data for layer in viewer.layers)
    assert all(layer._type_string == "labels" for layer in viewer.layers)
    assert clean.shape == rcl.shape == rl.shape == (256, 256)
    # flipping 30 % keeps most pixels; random labels agree with the truth about half the time
    assert 0.65 < (rcl == clean).mean() < 0.75
    assert 0.4 < (rl == clean).mean() < 0.6
    assert viewer.layers[1].metadata["params"] == {"kind": "flip", "p": 0.3, "seed": 0}
    assert viewer.layers[2].metadata["transition_matrix_rank"] == 1


def test_sample_functions_are_seeded():
    a, b = _sample_data.er_network(), _sample_data.er_network()
    np.testing.assert_array_equal(a[0][0], b[0][0])
    c, d = _sample_data.meta_structure_demo(), _sample_data.meta_structure_demo()
    np.testing.assert_array_equal(c[2][0], d[2][0])


def test_open_with_our_reader_keeps_scale(make_napari_viewer, tmp_path):
    path = io.write_tiff(tmp_path / "stack.tif", np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16),
                         scale=(2.0, 0.5, 0.25))
    labels = io.write_tiff(tmp_path / "mask.tif", np.ones((3, 16, 16), np.uint8), scale=(2.0, 0.5, 0.25),
                           layer_type="labels")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    viewer.open(str(labels), plugin=PLUGIN)
    image, mask = viewer.layers["stack"], viewer.layers["mask"]
    assert image._type_string == "image" and mask._type_string == "labels"
    np.testing.assert_allclose(image.scale, (2.0, 0.5, 0.25))
    np.testing.assert_allclose(mask.scale, (2.0, 0.5, 0.25))


def test_ome_tiff_opens_with_physical_scale(make_napari_viewer, tmp_path):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.zeros((4, 16, 16), np.uint16),
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1, "PhysicalSizeZ": 0.4})
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    np.testing.assert_allclose(viewer.layers["cells"].scale, (0.4, 0.1, 0.1))


def test_napari_builtin_reader_still_opens_tiffs(make_napari_viewer, tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.ones((16, 16), np.uint8))
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari")
    assert viewer.layers["plain"].data.shape == (16, 16)


def test_corrupt_file_gives_clear_error_not_a_crash(make_napari_viewer, tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(np.random.default_rng(1).bytes(2000))
    viewer = make_napari_viewer()
    with pytest.raises(InputError, match="broken.tif: not a readable TIFF"):
        viewer.open(str(bad), plugin=PLUGIN)
    assert len(viewer.layers) == 0


def test_corrupt_file_with_preferred_reader_reports_our_message(make_napari_viewer, tmp_path, monkeypatch):
    """The GUI path: with our reader preferred for *.tif, napari wraps our message in a ReaderPluginError,
    which File > Open shows in its reader dialog (offering napari's own reader) instead of a traceback."""
    from napari.errors import ReaderPluginError
    from napari.settings import get_settings

    bad = tmp_path / "empty.tif"
    bad.write_bytes(b"")
    viewer = make_napari_viewer()
    monkeypatch.setattr(get_settings().plugins, "extension2reader", {"*.tif": PLUGIN})
    with pytest.raises(ReaderPluginError) as err:
        viewer.open(str(bad), plugin=None)  # None: use the preferred reader, as File > Open does
    # napari >= 0.7 puts our message in the error's text; 0.6 keeps it as the cause it shows beneath
    texts, e = [], err.value
    while e is not None:
        texts.append(str(e))
        e = e.__cause__
    assert any("empty.tif: the file is empty" in t for t in texts), texts


def test_png_is_not_claimed_by_our_reader(make_napari_viewer, tmp_path):
    from npe2 import PluginManager

    readers = PluginManager.instance().iter_compatible_readers([str(tmp_path / "x.png")])
    assert PLUGIN not in {r.plugin_name for r in readers}
    readers = PluginManager.instance().iter_compatible_readers([str(tmp_path / "x.tif")])
    assert PLUGIN in {r.plugin_name for r in readers}


def test_save_labels_layer_through_napari_keeps_scale(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.eye(16, dtype=np.int32), scale=(0.3, 0.6), name="lab",
                              metadata={"params": {"p": 0.1}})
    out = tmp_path / "saved.tif"
    written = layer.save(str(out), plugin=PLUGIN)
    assert written == [str(out)]
    back = io.read_image(out)
    assert back.layer_type == "labels" and back.scale == (0.3, 0.6)
    np.testing.assert_array_equal(back.data, layer.data)
    assert (tmp_path / "saved.json").exists()
