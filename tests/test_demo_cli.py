"""`metastructures demo --quick`: the headless pipeline the README's run command falls back to."""
import json

import numpy as np
import pytest

from napari_metastructures.cli import main
from napari_metastructures.io import read_image

pytestmark = pytest.mark.slow  # every test shares one demo run, which trains iGTT


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "results"
    code = main(["demo", "--quick", "--out", str(out), "--device", "cpu", "--seed", "3"])
    return code, out


def test_demo_writes_every_result(demo_out):
    code, out = demo_out
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["noise"]) == {"flip", "sample", "dilate", "skeleton", "random"}
    assert set(summary["segmentation"]) == {"otsu", "local", "sato+otsu", "igtt"}
    for name in ("er_image.tif", "er_truth.tif", "er_image_prob.tif", "er_image_mask.tif", "overview.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("*.tmp*")), "temporary files left behind"
    png = (out / "overview.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_demo_matches_the_paper_on_rank_and_similarity(demo_out):
    _, out = demo_out
    noise = json.loads((out / "summary.json").read_text())["noise"]
    assert noise["flip"]["rank"] == 2 and noise["random"]["rank"] == 1
    assert noise["flip"]["similarity"] > noise["skeleton"]["similarity"] > noise["random"]["similarity"]


def test_demo_outputs_are_valid_and_reproducible(demo_out, tmp_path):
    _, out = demo_out
    prob = read_image(out / "er_image_prob.tif").data
    mask = read_image(out / "er_image_mask.tif").data
    assert prob.dtype == np.float32 and 0.0 <= prob.min() and prob.max() <= 1.0
    assert set(np.unique(mask)) <= {0, 1}
    again = tmp_path / "again"
    assert main(["demo", "--quick", "--out", str(again), "--device", "cpu", "--seed", "3"]) == 0
    np.testing.assert_array_equal(read_image(again / "er_image_mask.tif").data, mask)
    assert (json.loads((again / "summary.json").read_text())["noise"]
            == json.loads((out / "summary.json").read_text())["noise"])
    other = tmp_path / "other"
    assert main(["demo", "--quick", "--out", str(other), "--device", "cpu", "--seed", "4"]) == 0
    assert not np.array_equal(read_image(other / "er_image_mask.tif").data, mask)


def test_bad_device_is_one_error_line(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "o"), "--device", "banana"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "banana" in err
