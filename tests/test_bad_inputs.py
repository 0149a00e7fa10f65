"""Our own battery of bad input (issue 16): every subcommand, its parameters at and past their
bounds, wrong types, NaN, huge values, output paths that cannot work, foreign model files and label
dtypes from bool to uint64.

Each refused case asserts: a usage error or one ``error:`` line naming the culprit, no traceback,
the documented exit code, untouched inputs and no leftover outputs. Cases at the bounds must work.
No case trains past the argument checks.
"""
from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import tifffile

from napari_metastructures.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, (rng.random((64, 64)) * 200).astype(np.uint8))
    labels = tmp_path / "lab.tif"
    lab = np.zeros((64, 64), np.uint8)
    lab[10:30, 10:40] = 1
    tifffile.imwrite(labels, lab)
    intensity = tmp_path / "intensity16.tif"
    tifffile.imwrite(intensity, (rng.random((64, 64)) * 60000).astype(np.uint16))
    floats = tmp_path / "float.tif"
    tifffile.imwrite(floats, rng.random((64, 64)).astype(np.float32))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    text_model = tmp_path / "text.pt"
    text_model.write_text("not a model")
    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    folders = {name: tmp_path / name for name in ("images", "masks", "preds")}
    for name, folder in folders.items():
        folder.mkdir()
        for stem in ("a", "b"):
            if name == "preds":
                tifffile.imwrite(folder / f"{stem}_mask.tif", lab)
            else:
                tifffile.imwrite(folder / f"{stem}.tif", lab * (200 if name == "images" else 1))
    return {"img": image, "lab": labels, "i16": intensity, "float": floats, "blocker": blocker,
            "text_model": text_model, "pickled": pickled, "out": tmp_path / "out", "tmp": tmp_path,
            **folders}


#: (command line with {placeholders}, word the error must name, exit code)
REFUSED = [
    # noise: parameters past their bounds, wrong types, NaN, huge
    ("noise {lab} --kind flip --p 1.5 --out {out}/n.tif", "p", 2),
    ("noise {lab} --kind flip --p -0.1 --out {out}/n.tif", "p", 2),
    ("noise {lab} --kind flip --p nan --out {out}/n.tif", "p", 2),
    ("noise {lab} --kind flip --p abc --out {out}/n.tif", "--p", 2),
    ("noise {lab} --kind banana --out {out}/n.tif", "--kind", 2),
    ("noise {lab} --kind dilate --iterations -3 --out {out}/n.tif", "iterations", 2),
    ("noise {lab} --kind random --n-classes 100000 --out {out}/n.tif", "class", 2),
    ("noise {lab} --kind morph --ops dz --out {out}/n.tif", "ops", 2),
    ("noise {float} --kind flip --p 0.2 --out {out}/n.tif", "float.tif", 2),
    ("noise {tmp}/missing.tif --kind flip --p 0.2 --out {out}/n.tif", "missing.tif", 2),
    ("noise {lab} --kind flip --p 0.2 --out {blocker}/n.tif", "a_file", 2),
    ("noise {lab} --kind flip --p 0.2 --out {lab}", "lab.tif", 2),
    ("noise {lab} --kind flip --p 0.2 --seed -1 --out {out}/n.tif", "seed", 2),
    # density
    ("density {lab} --bandwidth -1 --out {out}/d.tif", "bandwidth", 2),
    ("density {lab} --bandwidth nan --out {out}/d.tif", "bandwidth", 2),
    ("density {lab} --kernel gaussian -H 1000000000 --out {out}/d.tif", "bandwidth", 2),
    ("density {i16} --bandwidth 3 --out {out}/d.tif", "intensity16", 2),
    ("density {float} --bandwidth 3 --out {out}/d.tif", "float.tif", 2),
    ("density {lab} --kernel banana --out {out}/d.tif", "--kernel", 2),
    ("density {lab} --bandwidth 3 --out {blocker}/d.tif", "a_file", 2),
    # igtt: all refused before training
    ("igtt {img} --out {out} --crop 7", "crop", 2),
    ("igtt {img} --out {out} --crop 4096", "crop", 2),
    ("igtt {img} --out {out} --epochs 0", "epoch", 2),
    ("igtt {img} --out {out} --epochs -2", "epoch", 2),
    ("igtt {img} --out {out} --batch-size 0", "batch", 2),
    ("igtt {img} --out {out} --tile 0", "tile", 2),
    ("igtt {img} --out {out} --local-sigma nan", "local", 2),
    ("igtt {img} --out {out} --device banana", "banana", 2),
    ("igtt {img} --out {out} --threads 0", "threads", 2),
    ("igtt {img} --out {blocker}/o", "--out", 2),
    ("igtt {img} --out {out} --save-model {tmp}", "--save-model", 2),
    ("igtt {lab} --out {out} --seed 18446744073709551616", "seed", 2),
    ("igtt {tmp}/missing.tif --out {out}", "missing.tif", 2),
    # predict: foreign and missing model files
    ("predict --model {text_model} {img} --out {out}", "text.pt", 2),
    ("predict --model {pickled} {img} --out {out}", "pickled.pt", 2),
    ("predict --model {img} {img} --out {out}", "img.tif", 2),
    ("predict --model {tmp}/none.pt {img} --out {out}", "none.pt", 2),
    ("predict --model {text_model} {img} --out {blocker}/o", "--out", 2),
    # baseline
    ("baseline --method banana {img} --out {out}", "--method", 2),
    ("baseline --method sato --sigmas nan {img} --out {out}", "sigma", 2),
    ("baseline --method sato --sigmas 1,x {img} --out {out}", "sigma", 2),
    ("baseline --method local --block-size 4 {img} --out {out}", "block", 2),
    ("baseline --method otsu {tmp}/missing.tif --out {out}", "missing.tif", 2),
    ("baseline --method otsu {img} --out {blocker}/o", "a_file", 2),
    # evaluate
    ("evaluate {tmp}/nothing {masks}", "nothing", 2),
    ("evaluate {preds} {masks} --out {tmp}", "out", 2),
    ("evaluate {preds} {masks} --valid {tmp}/nothing", "nothing", 2),
    # study
    ("study --images {images} --masks {masks} --labels sample:abc --out {out}", "sample:abc", 2),
    ("study --images {images} --masks {masks} --labels cl --encoder banana --out {out}", "banana", 2),
    ("study --images {images} --masks {masks} --labels cl --encoder-depth 9 --out {out}", "depth", 2),
    ("study --images {images} --masks {masks} --labels cl --decoder-channels a,b --out {out}", "decoder", 2),
    ("study --images {images} --masks {masks} --labels cl --model deeplabv3plus --batch 1 --out {out}",
     "batch", 2),
    ("study --images {images} --masks {masks} --labels cl --split 1.5 --out {out}", "split", 2),
    # demo
    ("demo --out {out} --size 0", "size", 2),
    ("demo --out {out} --size 100000", "size", 2),
    ("demo --out {out} --device banana", "banana", 2),
    ("demo --out {blocker}/o", "a_file", 2),
]


def _digest(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _inputs(files) -> list:
    return [p for p in files["tmp"].rglob("*") if p.is_file() and files["out"] not in p.parents]


@pytest.mark.parametrize("line,culprit,code", REFUSED, ids=[c[0].split(" --out")[0][:60] for c in REFUSED])
def test_refused_with_one_line_and_nothing_lost(files, capsys, line, culprit, code):
    before = _digest(_inputs(files))
    args = line.format(**files).split()
    try:
        got = main(args)
    except SystemExit as done:  # argparse: usage, then its own error line
        got = done.code
    err = capsys.readouterr().err
    assert got == code, err
    assert "Traceback" not in err
    lines = [x for x in err.strip().splitlines() if "error:" in x]
    assert len(lines) == 1, err
    assert culprit.lower() in lines[0].lower(), lines[0]
    assert _digest(_inputs(files)) == before  # inputs untouched (and nothing written beside them)
    assert not (files["out"].exists() and any(p.is_file() for p in files["out"].rglob("*")))


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                   np.uint64, np.int64])
@pytest.mark.parametrize("kind", ["flip", "dilate", "sample", "misannotate"])
def test_every_label_dtype_works_or_says_why(files, capsys, dtype, kind):
    lab = np.zeros((32, 32), dtype)
    lab[4:12, 4:20] = 1
    if dtype not in (bool, np.uint8, np.int8):
        lab[20:28, 20:28] = 2
    path = files["tmp"] / f"lab_{np.dtype(dtype).name}.tif"
    tifffile.imwrite(path, lab.astype(np.uint8) if dtype is bool else lab)
    out = files["out"] / "n.tif"
    rate = [] if kind == "dilate" else ["--p", "0.2", "--seed", "1"]
    code = main(["noise", str(path), "--kind", kind, *rate, "--out", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 0 and out.is_file(), err


@pytest.mark.parametrize("line", [
    "noise {lab} --kind flip --p 0 --out {out}/n.tif",
    "noise {lab} --kind flip --p 1 --out {out}/n.tif",
    "noise {lab} --kind sample --p 0 --out {out}/n.tif",
    "noise {lab} --kind dilate --iterations 0 --out {out}/n.tif",  # no step: the labels as they are
    "noise {lab} --kind dilate --iterations 1000000000 --out {out}/n.tif",  # capped at the image size
    "noise {lab} --kind sample --p 0.5 --ignore-value 1099511627776 --out {out}/n.tif",  # uint64 labels
    "density {lab} --bandwidth 0 --out {out}/d.tif",
    "density {lab} --bandwidth 200 --out {out}/d.tif",
    "baseline --method otsu {img} --out {out}",
])
def test_values_at_the_bounds_work(files, capsys, line):
    assert main(line.format(**files).split()) == 0, capsys.readouterr().err
    assert any(p.is_file() for p in files["out"].rglob("*"))


def test_an_internal_error_is_one_line_with_exit_code_3(files, capsys, monkeypatch):
    import napari_metastructures.cli as cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    real_build = cli.build_parser

    def build():
        parser = real_build()
        for action in parser._subparsers._group_actions:
            action.choices["noise"].set_defaults(func=broken)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    args = ["noise", str(files["lab"]), "--kind", "flip", "--out", str(files["out"] / "n.tif")]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (ZeroDivisionError: a bug)" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):  # asked for: Python's own traceback
        main([*args, "--debug"])
