"""``metastructures noise`` end to end on tiny TIFFs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from napari_metastructures.cli import main
from napari_metastructures.core.noise import flip_labels, label_instances
from napari_metastructures.io import read_image, write_tiff


@pytest.fixture
def labels_tif(tmp_path):
    lab = np.zeros((40, 60), dtype=np.uint8)
    lab[5:15, 5:20] = 1
    lab[20:35, 30:55] = 1
    lab[25:30, 5:12] = 1
    path = write_tiff(tmp_path / "clean.tif", lab, scale=(0.5, 0.25), layer_type="labels")
    return path, lab


def run_json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_flip_writes_same_shape_with_scale_and_prints_the_matrix(tmp_path, capsys, labels_tif):
    path, lab = labels_tif
    out = tmp_path / "noisy.tif"
    code, report, _ = run_json(capsys, ["noise", str(path), "--kind", "flip", "--p-fg-to-bg", "0.2",
                                        "--p-bg-to-fg", "0.05", "--seed", "3", "--out", str(out)])
    assert code == 0
    written = read_image(out)
    np.testing.assert_array_equal(written.data, flip_labels(lab, None, seed=3, p_fg_to_bg=0.2, p_bg_to_fg=0.05))
    assert tuple(written.scale) == pytest.approx((0.5, 0.25))
    q = np.array(report["transition_matrix"])
    assert q.shape == (2, 2) and np.allclose(q.sum(axis=1), 1)
    assert q[1, 0] == pytest.approx(np.mean(written.data[lab == 1] == 0), abs=1e-6)
    assert report["rank"] == 2 and report["params"]["seed"] == 3
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["params"]["kind"] == "flip" and sidecar["params"]["p_fg_to_bg"] == 0.2


def test_random_labels_have_rank_one(tmp_path, capsys, labels_tif):
    path, lab = labels_tif
    code, report, _ = run_json(capsys, ["noise", str(path), "--kind", "random", "--p", "0.3", "--seed", "1",
                                        "--tol", "0.1", "--out", str(tmp_path / "rl.tif")])
    assert code == 0 and report["rank"] == 1
    assert read_image(tmp_path / "rl.tif").data.shape == lab.shape


def test_sample_marks_ignored_pixels(tmp_path, capsys, labels_tif):
    path, lab = labels_tif
    code, report, _ = run_json(capsys, ["noise", str(path), "--kind", "sample", "--p", "0.5", "--seed", "2",
                                        "--exact", "--out", str(tmp_path / "s.tif")])
    assert code == 0
    data = read_image(tmp_path / "s.tif").data
    assert np.count_nonzero(data == 255) == lab.size - round(0.5 * np.count_nonzero(lab)) - round(
        0.5 * np.count_nonzero(lab == 0))
    assert report["ignored_fraction"] == pytest.approx(np.mean(data == 255))
    assert report["error_rate"] == 0.0
    code, report, _ = run_json(capsys, ["noise", str(path), "--kind", "sample-to-background", "--p", "0.5",
                                        "--no-exact", "--seed", "2", "--out", str(tmp_path / "b.tif")])
    assert code == 0 and report["params"]["exact"] is False


def test_dilate_iterations_and_instances_file(tmp_path, capsys, labels_tif):
    path, lab = labels_tif
    code, report, _ = run_json(capsys, ["noise", str(path), "--kind", "dilate", "--iterations", "2",
                                        "--out", str(tmp_path / "d.tif")])
    assert code == 0 and report["params"]["iterations"] == 2
    assert np.count_nonzero(read_image(tmp_path / "d.tif").data) > np.count_nonzero(lab)
    inst = label_instances(lab)
    inst_path = write_tiff(tmp_path / "inst.tif", inst.astype(np.uint16), layer_type="labels")
    code, report, _ = run_json(capsys, ["noise", str(path), "--kind", "drop-instances", "--p", "1",
                                        "--instances", str(inst_path), "--out", str(tmp_path / "drop.tif")])
    assert code == 0 and report["params"]["instances"] == str(inst_path)
    assert not read_image(tmp_path / "drop.tif").data.any()


def test_bad_input_exits_2_with_a_message(tmp_path, capsys, labels_tif):
    path, _ = labels_tif
    image = write_tiff(tmp_path / "image.tif", np.random.default_rng(0).random((20, 20)).astype(np.float32))
    code, _, err = run_json(capsys, ["noise", str(image), "--kind", "flip", "--p", "0.1",
                                     "--out", str(tmp_path / "x.tif")])
    assert code == 2 and "image.tif" in err and "integers" in err
    assert not (tmp_path / "x.tif").exists()
    intensity = write_tiff(tmp_path / "raw.tif", (np.arange(40 * 60).reshape(40, 60) % 250).astype(np.uint8))
    code, _, err = run_json(capsys, ["noise", str(intensity), "--kind", "flip", "--p", "0.1",
                                     "--out", str(tmp_path / "x.tif")])
    assert code == 2 and "raw.tif" in err and "intensity image" in err
    code, _, err = run_json(capsys, ["noise", str(path), "--kind", "flip", "--iterations", "2",
                                     "--out", str(tmp_path / "x.tif")])
    assert code == 2 and "--iterations does not apply to --kind flip" in err
    code, _, err = run_json(capsys, ["noise", str(path), "--kind", "sample", "--out", str(tmp_path / "x.tif")])
    assert code == 2 and "'p'" in err
    code, _, err = run_json(capsys, ["noise", str(tmp_path / "missing.tif"), "--kind", "erode",
                                     "--out", str(tmp_path / "x.tif")])
    assert code == 2 and "missing.tif" in err
    assert not (tmp_path / "x.tif").exists()


FAMILY_ARGS = {"dilate": [], "erode": [], "morph": [], "skeleton": [], "misannotate": [], "misclassify": [],
               "sample": ["--p", "0.5"], "random": ["--p", "0.3"], "drop-instances": ["--p", "0.5"],
               "flip": ["--p", "0.1"], "sample-to-background": ["--p", "0.5"]}


@pytest.mark.parametrize("kind", sorted(FAMILY_ARGS))
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64, np.int64])
def test_every_family_takes_wide_label_dtypes(tmp_path, capsys, kind, dtype):
    """uint64 labels crashed the transition matrix (uint64 + intp is float64) after out.tif was written."""
    lab = np.zeros((32, 40), dtype=dtype)
    lab[4:12, 4:20] = 1
    lab[16:28, 22:36] = 2
    path = tmp_path / "wide.tif"
    import tifffile

    tifffile.imwrite(path, lab)
    code, report, err = run_json(capsys, ["noise", str(path), "--kind", kind, *FAMILY_ARGS[kind], "--seed", "1",
                                          "--out", str(tmp_path / "noisy.tif")])
    assert code == 0, err
    assert "Traceback" not in err and np.array(report["transition_matrix"]).shape[0] == 3
    np.testing.assert_array_equal(tifffile.imread(path), lab)  # input untouched


def test_a_refused_summary_leaves_no_output(tmp_path, capsys, labels_tif):
    path, _ = labels_tif
    out = tmp_path / "noisy.tif"
    code = main(["noise", str(path), "--kind", "flip", "--p", "0.1", "--n-classes", "100000", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "100000 x 100000 transition matrix" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "noisy.json").exists()
