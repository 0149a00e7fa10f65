"""``metastructures density`` on TIFF files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from napari_metastructures.cli import main
from napari_metastructures.core.density import density_map
from napari_metastructures.core.synthetic import circle_in_rectangle
from napari_metastructures.io import read_image, write_tiff


@pytest.fixture
def labels_tif(tmp_path):
    lab = circle_in_rectangle((48, 64))
    path = write_tiff(tmp_path / "labels.tif", lab, scale=(0.5, 0.25), layer_type="labels")
    return path, lab


def test_density_writes_class_stack_with_scale_and_sidecar(tmp_path, capsys, labels_tif):
    path, lab = labels_tif
    out = tmp_path / "density.tif"
    assert main(["density", str(path), "--bandwidth", "3", "--unit", "px", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    written = read_image(out)
    assert written.data.dtype == np.float32 and written.data.shape == (2, 48, 64)
    np.testing.assert_allclose(written.data, density_map(lab, 3), atol=1e-6)
    assert tuple(written.scale)[-2:] == (0.5, 0.25)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["params"]["bandwidth"] == 3 and sidecar["params"]["kernel"] == "box"
    assert report["shape"] == [2, 48, 64]


def test_bandwidth_is_in_um_for_a_file_with_a_pixel_size(tmp_path, capsys, labels_tif):
    path, lab = labels_tif  # pixels 0.5 x 0.25 µm: 0.354 µm on average
    out = tmp_path / "um.tif"
    assert main(["density", str(path), "--bandwidth", "1.06", "--classes", "1", "--out", str(out)]) == 0
    np.testing.assert_allclose(read_image(out).data, density_map(lab, 3, classes=[1])[0], atol=1e-6)
    params = json.loads(out.with_suffix(".json").read_text())["params"]
    assert params["size_unit"] == "um" and params["bandwidth"] == 3 and params["bandwidth_set"] == 1.06
    assert params["pixel_size_um"] == pytest.approx((0.5 * 0.25) ** 0.5)


def test_single_class_and_gaussian_give_a_plain_image(tmp_path, capsys, labels_tif):
    path, lab = labels_tif
    out = tmp_path / "fg.tif"
    assert main(["density", str(path), "-H", "2", "--unit", "px", "--kernel", "gaussian", "--classes", "1",
                 "--out", str(out)]) == 0
    written = read_image(out)
    assert written.data.shape == (48, 64)
    np.testing.assert_allclose(written.data, density_map(lab, 2, "gaussian", classes=[1])[0], atol=1e-6)


def test_float_image_is_refused_with_a_message(tmp_path, capsys):
    path = write_tiff(tmp_path / "image.tif", np.random.default_rng(0).random((20, 20)).astype(np.float32))
    out = tmp_path / "x.tif"
    assert main(["density", str(path), "--bandwidth", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "image.tif" in err and "integers" in err
    assert not out.exists()


def test_negative_bandwidth_is_refused(tmp_path, capsys, labels_tif):
    path, _ = labels_tif
    assert main(["density", str(path), "--bandwidth", "-1", "--out", str(tmp_path / "x.tif")]) == 2
    assert "bandwidth" in capsys.readouterr().err


def test_out_under_a_file_is_one_error_line(tmp_path, capsys, labels_tif):
    path, _ = labels_tif
    # refused before reading, like every --out that cannot work (exit code 2: bad input)
    assert main(["density", str(path), "--bandwidth", "2", "--out", str(path / "d.tif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "labels.tif" in err and "a file stands where the folder should be" in err
    assert not list(tmp_path.glob("**/*.part"))
