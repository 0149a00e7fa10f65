"""Commands check their outputs and seeds before any work, and say what is wrong in one line."""
import numpy as np
import pytest
import tifffile

from napari_metastructures.cli import main


def _image(tmp_path):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((64, 64)) * 200).astype(np.uint8))
    return path


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("command", ["igtt", "study"])
def test_an_unwritable_out_is_refused_before_reading_or_training(tmp_path, capsys, command):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "results"
    args = (["igtt", str(tmp_path / "missing.tif"), "--out", str(out)] if command == "igtt" else
            ["study", "--images", str(tmp_path), "--masks", str(tmp_path), "--out", str(out)])
    assert main(args) == 2
    line = _one_error_line(capsys)
    assert "--out" in line and "missing.tif" not in line  # the output is checked first
    assert blocker.read_text() == "x"


def test_save_model_naming_a_folder_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    args = ["igtt", str(_image(tmp_path)), "--out", str(tmp_path / "o"), "--save-model", str(tmp_path / "models")]
    assert main(args) == 2
    assert "--save-model" in _one_error_line(capsys) and not (tmp_path / "o" / "run.json").exists()


@pytest.mark.parametrize("value", ["-1", str(2**64), "abc"])
@pytest.mark.parametrize("command", ["igtt", "noise", "demo", "study", "baseline"])
def test_seeds_outside_numpys_range_are_refused_by_the_parser(tmp_path, capsys, command, value):
    with pytest.raises(SystemExit) as done:
        main([command, "--seed", value])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "whole number from 0 to 2**64 - 1" in err or "must be from 0 to 2**64 - 1" in err


def test_a_foreign_model_file_is_one_short_line(tmp_path):
    from napari_metastructures.core import load_model
    from napari_metastructures.core.validate import InputError

    bad = tmp_path / "m.pt"
    tifffile.imwrite(bad, np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError) as err:
        load_model(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: not a napari-metastructures model") and "\n" not in message
    assert len(message) < 300 and "weights_only=False" not in message
