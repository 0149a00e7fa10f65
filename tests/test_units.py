"""Structure sizes in µm when the image has a pixel size, in px when it has none."""
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_metastructures.cli import main
from napari_metastructures.core.igtt.config import SIZE_FIELDS, IgttConfig
from napari_metastructures.core.igtt.engine import first_candidates
from napari_metastructures.core.synthetic_cells import er_cell
from napari_metastructures.core.units import REFERENCE_UM, choose_unit, pixel_size_um, um_per_unit
from napari_metastructures.core.validate import InputError
from napari_metastructures.io import read_image, write_tiff


def test_pixel_size_from_scale_and_units():
    assert pixel_size_um((0.25, 0.0655, 0.0655), ["µm"] * 3) == pytest.approx(0.0655)
    assert pixel_size_um((65.0, 65.0), ["nanometer", "nanometer"]) == pytest.approx(0.065)
    assert pixel_size_um((0.1, 0.1), ["micrometer", "micrometer"]) == pytest.approx(0.1)
    assert pixel_size_um((0.2, 0.05)) == pytest.approx(0.1)  # geometric mean, no units: µm
    assert pixel_size_um((1.0, 1.0)) is None  # napari's default scale: no pixel size
    assert pixel_size_um((1.0, 1.0), ["pixel", "pixel"]) is None
    assert pixel_size_um((1.0, 1.0), ["µm", "µm"]) is None  # the default every writer puts
    assert pixel_size_um((0.0, 0.1)) is None
    assert um_per_unit("s") is None and um_per_unit("mm") == 1000.0


def test_choose_unit_auto_um_px():
    assert choose_unit("auto", [0.1, 0.1005], ["a", "b"]).unit == "um"
    assert choose_unit("auto", [0.1, 0.1005], ["a", "b"]).pixel_size == pytest.approx(0.1)
    missing = choose_unit("auto", [0.1, None], ["a.tif", "b.tif"])
    assert missing.unit == "px" and "b.tif" in missing.reason
    mixed = choose_unit("auto", [0.1, 0.2], ["a.tif", "b.tif"])
    assert mixed.unit == "px" and "different pixel sizes" in mixed.reason
    assert choose_unit("px", [0.1], ["a"]).unit == "px"
    with pytest.raises(InputError, match="b.tif: has no pixel size"):
        choose_unit("um", [0.1, None], ["a.tif", "b.tif"])
    with pytest.raises(InputError, match="a.tif .* b.tif"):
        choose_unit("um", [0.1, 0.2], ["a.tif", "b.tif"])
    with pytest.raises(InputError, match="unit 'inch'"):
        choose_unit("inch", [0.1], ["a"])


def test_um_preset_is_the_px_preset_at_the_reference_pixel_size():
    px = IgttConfig.preset("fast")
    um = IgttConfig.preset("fast", size_unit="um", pixel_size_um=REFERENCE_UM)
    for name in SIZE_FIELDS:
        assert getattr(um, name) == pytest.approx(getattr(px, name) * REFERENCE_UM)
        assert getattr(um.in_pixels(), name) == pytest.approx(getattr(px, name))
    coarse = IgttConfig.preset("fast", size_unit="um", pixel_size_um=2 * REFERENCE_UM).in_pixels()
    assert coarse.local_sigma == pytest.approx(px.local_sigma / 2)
    assert coarse.background_sigma == pytest.approx(px.background_sigma / 2)
    assert coarse.ems_radius == 1 and isinstance(coarse.ems_radius, int)  # whole px, at least 1
    fine = IgttConfig.preset("fast", size_unit="um", pixel_size_um=REFERENCE_UM / 3).in_pixels()
    assert fine.ems_radius == 3
    assert um.preprocess_dict()["local_sigma"] == pytest.approx(px.local_sigma)
    assert um.preprocess_dict()["pixel_size_um"] == REFERENCE_UM
    # a value the user gives is read in the unit, not scaled
    assert IgttConfig.preset("fast", size_unit="um", pixel_size_um=0.1, local_sigma=1.0).in_pixels().local_sigma == 10


def test_um_settings_are_checked():
    with pytest.raises(InputError, match="need a pixel size"):
        IgttConfig.preset("fast", size_unit="um")
    with pytest.raises(InputError, match="size unit 'cm'"):
        IgttConfig.preset("fast", size_unit="cm")
    with pytest.raises(InputError, match="EMS radius"):
        IgttConfig.preset("fast", ems_radius=0)
    line = IgttConfig.preset("fast", size_unit="um", pixel_size_um=0.1).sizes_line()
    assert "sizes in µm" in line and "pixel size 0.1 µm" in line and "(5.2 px)" in line


def _candidate_agreement(image, small_image, config_big, config_small):
    big = first_candidates(image, config_big)[0].astype(bool)
    small = first_candidates(small_image, config_small)[0].astype(bool)
    down = big[::2, ::2]
    return 2 * np.sum(down & small) / max(1, down.sum() + small.sum())


def test_sizes_in_um_follow_the_structures_across_pixel_sizes():
    """The same cell imaged at two pixel sizes: in µm the engine sees the same structures; a px
    window tuned for one pixel size is twice too wide (or narrow) for the other."""
    cell = er_cell((192, 192), seed=3, noise_level="low").image.astype(np.float32)
    fine = ndi.zoom(cell, 2, order=1)  # the same cell with 2x smaller pixels
    in_um = _candidate_agreement(fine, cell, IgttConfig.preset("fast", size_unit="um", pixel_size_um=0.05),
                                 IgttConfig.preset("fast", size_unit="um", pixel_size_um=0.1))
    in_px = _candidate_agreement(fine, cell, IgttConfig.preset("fast"), IgttConfig.preset("fast"))
    assert in_um > in_px + 0.05, (in_um, in_px)  # seeds 3, 4: 0.865 vs 0.703, 0.882 vs 0.806


def _tiny_args(tmp_path):
    return ["--encoder-depth", "3", "--decoder-channels", "16,8,8", "--crop", "64", "--batch-size", "2",
            "--steps-per-epoch", "1", "--tile", "64", "--threads", "2", "--device", "cpu", "--epochs", "1"]


def test_igtt_cli_reads_sizes_in_um_from_the_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    img = rng.normal(300, 30, (64, 64))
    img[20:24, :] += 800
    path = write_tiff(tmp_path / "cell.tif", np.clip(img, 0, None).astype(np.uint16), scale=(0.13, 0.13))
    assert read_image(path).pixel_size_um == pytest.approx(0.13)
    assert main(["igtt", str(path), "--out", str(tmp_path / "um"), *_tiny_args(tmp_path)]) == 0
    assert "sizes in µm (pixel size 0.13 µm)" in capsys.readouterr().out
    run = json.loads((tmp_path / "um" / "run.json").read_text())
    assert run["sizes"]["unit"] == "um" and run["sizes"]["pixel_size_um"] == pytest.approx(0.13)
    assert run["sizes"]["px"]["local_sigma"] == pytest.approx(0.52 / 0.13, abs=0.01)
    assert read_image(tmp_path / "um" / "cell_mask.tif").metadata["params"]["sizes"]["unit"] == "um"
    assert main(["igtt", str(path), "--out", str(tmp_path / "px"), "--unit", "px", "--local-sigma", "6",
                 *_tiny_args(tmp_path)]) == 0
    run = json.loads((tmp_path / "px" / "run.json").read_text())
    assert run["sizes"]["unit"] == "px" and run["sizes"]["px"]["local_sigma"] == 6
    bare = write_tiff(tmp_path / "bare.tif", np.clip(img, 0, None).astype(np.uint16))
    assert main(["igtt", str(bare), "--out", str(tmp_path / "u"), "--unit", "um", *_tiny_args(tmp_path)]) == 2
    assert "bare.tif: has no pixel size" in capsys.readouterr().err
