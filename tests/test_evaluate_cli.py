"""`metastructures baseline` and `metastructures evaluate` end to end on tiny files."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_metastructures.cli import main
from napari_metastructures.io import read_image, write_tiff

# Two 4x4 images with two grey levels, so Otsu returns exactly the bright pixels.
IMG_A = np.full((4, 4), 10, np.uint16)
IMG_A[:2, :2] = 200  # bright 2x2 block
GT_A = (IMG_A > 100).astype(np.uint8)
GT_A[1, 2] = 1  # one foreground pixel Otsu misses: tp 4, fp 0, fn 1, tn 11
IMG_B = np.full((4, 4), 10, np.uint16)
IMG_B[3, :] = 200  # bright bottom row
GT_B = np.zeros((4, 4), np.uint8)
GT_B[3, :3] = 1  # Otsu adds (3, 3): tp 3, fp 1, fn 0, tn 12
# Topology of B: both are 1-px lines on row 3, so they are their own skeletons: S(pred) 4 px, 3 in gt;
# S(gt) 3 px, all in pred -> skel_precision 3/4, skel_recall 1, clDice 2 (3/4) / (7/4) = 6/7.


def _line(c0, c1, shape=(9, 24)):
    """A 1-px line on row 4, columns c0..c1-1: its own skeleton."""
    a = np.zeros(shape, np.uint8)
    a[4, c0:c1] = 1
    return a


def _bar(c0, c1, shape=(9, 24)):
    """A 3-px bar on rows 3-5, columns c0..c1-1, corners cut: skeleton row 4, columns c0+1..c1-2."""
    a = np.zeros(shape, np.uint8)
    a[3:6, c0:c1] = 1
    a[3, c0] = a[5, c0] = a[3, c1 - 1] = a[5, c1 - 1] = 0
    return a


def _rows(path):
    with open(path, newline="") as fh:
        return {(r["protocol"], r["image"]): r for r in csv.DictReader(fh)}


@pytest.fixture
def folders(tmp_path):
    img, gt = tmp_path / "images", tmp_path / "gt"
    write_tiff(img / "a.tif", IMG_A, scale=(0.25, 0.5))
    write_tiff(img / "b.tif", IMG_B, scale=(0.25, 0.5))
    write_tiff(gt / "a.tif", GT_A)
    write_tiff(gt / "b_mask.tif", GT_B)  # the <stem>_mask.tif spelling is accepted too
    return tmp_path


def test_baseline_then_evaluate_matches_hand_counts(folders, capsys):
    pred = folders / "pred"
    code = main(["baseline", "--method", "otsu", str(folders / "images" / "a.tif"),
                 str(folders / "images" / "b.tif"), "--out", str(pred)])
    assert code == 0
    mask = read_image(pred / "a_mask.tif")
    assert mask.data.dtype == np.uint8 and mask.scale == pytest.approx((0.25, 0.5))
    np.testing.assert_array_equal(mask.data, IMG_A > 100)
    side = json.loads((pred / "a_mask.json").read_text())
    assert side["params"]["method"] == "otsu" and side["params"]["source"].endswith("a.tif")

    assert main(["evaluate", str(pred), str(folders / "gt")]) == 0
    rows = _rows(pred / "evaluation.csv")
    assert {p for p, _ in rows} == {"honest"}  # the oracle is never the default
    a, b, pooled = rows["honest", "a"], rows["honest", "b"], rows["honest", "(pooled)"]
    assert float(a["dice"]) == pytest.approx(8 / 9) and float(a["iou"]) == pytest.approx(4 / 5)
    assert float(a["accuracy"]) == pytest.approx(15 / 16)
    assert float(b["dice"]) == pytest.approx(6 / 7) and float(b["iou"]) == pytest.approx(3 / 4)
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == ("7", "1", "1", "23")
    assert float(pooled["dice"]) == pytest.approx(14 / 16)
    assert float(pooled["accuracy"]) == pytest.approx(30 / 32)
    assert pooled["auc"] == "" and a["upper_bound"] == "no"
    assert float(b["skel_precision"]) == pytest.approx(3 / 4) and float(b["skel_recall"]) == 1.0
    assert float(b["cldice"]) == pytest.approx(6 / 7)
    assert all(a[k] != "" for k in ("cldice", "skel_precision", "skel_recall"))
    saved = json.loads((pred / "evaluation.json").read_text())
    assert saved["protocols"] == ["honest"] and len(saved["rows"]) == 3
    assert saved["rows"][1]["cldice"] == pytest.approx(6 / 7)
    out = capsys.readouterr().out
    assert "honest" in out and "oracle" not in out.split("wrote")[0]


def test_valid_mask_drops_the_untrusted_pixel(folders):
    pred = folders / "pred"
    main(["baseline", "--method", "otsu", str(folders / "images" / "a.tif"), "--out", str(pred)])
    valid = np.ones((4, 4), np.uint8)
    valid[1, 2] = 0
    write_tiff(folders / "valid" / "a_valid.tif", valid)
    out_csv = folders / "scores" / "a.csv"
    assert main(["evaluate", str(pred), str(folders / "gt"), "--valid", str(folders / "valid"),
                 "--out", str(out_csv)]) == 0
    row = _rows(out_csv)["honest", "a"]
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == ("4", "0", "0", "11")
    assert float(row["dice"]) == 1.0
    assert (folders / "scores" / "a.json").is_file()


def test_probabilities_give_auc_and_oracle_only_on_request(tmp_path):
    prob = np.array([[0.9, 0.6, 0.4, 0.1], [0.8, 0.2, 0.7, 0.3]], np.float32)
    gt = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], np.uint8)
    write_tiff(tmp_path / "pred" / "c_prob.tif", prob)
    write_tiff(tmp_path / "gt" / "c.tif", gt)
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--protocol", "oracle"]) == 0
    rows = _rows(tmp_path / "pred" / "evaluation.csv")
    honest = rows["honest", "c"]
    # prob > 0.5: tp 2, fp 2, fn 1, tn 3
    assert float(honest["dice"]) == pytest.approx(4 / 7) and float(honest["iou"]) == pytest.approx(2 / 5)
    assert float(honest["accuracy"]) == pytest.approx(5 / 8)
    # positives 0.9, 0.8, 0.4 against 5 negatives win 5 + 5 + 3 of 15 pairs
    assert float(honest["auc"]) == pytest.approx(13 / 15)
    assert float(rows["honest", "(pooled)"]["auc"]) == pytest.approx(13 / 15)
    oracle = rows["oracle", "(pooled)"]
    assert oracle["upper_bound"] == "yes" and oracle["polarity"] == "high"
    assert float(oracle["threshold"]) == pytest.approx(0.8)  # prob >= 0.8: tp 2, fp 0, fn 1
    assert float(oracle["dice"]) == pytest.approx(0.8) and float(oracle["accuracy"]) == pytest.approx(7 / 8)
    assert float(rows["oracle", "c"]["dice"]) == pytest.approx(0.8)
    # topology of the oracle mask prob >= 0.8, the 2-px vertical line (0,0)-(1,0), its own skeleton, all in gt;
    # gt's skeleton is itself, 3 px ((0,0), (1,0), (0,2)), 2 of them in the mask:
    # skel_precision 1, skel_recall 2/3, clDice 2 (2/3) / (5/3) = 4/5
    for row in (rows["oracle", "c"], oracle):
        assert float(row["skel_precision"]) == 1.0 and float(row["skel_recall"]) == pytest.approx(2 / 3)
        assert float(row["cldice"]) == pytest.approx(4 / 5)
    assert honest["cldice"] != ""  # the honest mask prob > 0.5 is scored too
    assert float(oracle["dice"]) >= float(rows["honest", "(pooled)"]["dice"])


def test_topology_columns_honour_the_valid_mask(tmp_path):
    # l: gt a 1-px line, columns 2..21 (20 px); pred the same line plus a 3-px spur at column 15, rows 1-3.
    # m: gt a 3-px bar, columns 2..21 (skeleton columns 3..20, 18 px); pred the bar's left half,
    #    columns 2..11 (skeleton columns 3..10, 8 px; it covers row 4 on columns 2..11).
    spur = _line(2, 22)
    spur[1:4, 15] = 1
    write_tiff(tmp_path / "pred" / "l_mask.tif", spur)
    write_tiff(tmp_path / "gt" / "l.tif", _line(2, 22))
    write_tiff(tmp_path / "pred" / "m_mask.tif", _bar(2, 12))
    write_tiff(tmp_path / "gt" / "m.tif", _bar(2, 22))
    valid = np.zeros((9, 24), np.uint8)
    valid[:, :16] = 1  # columns 0..15 are scored
    write_tiff(tmp_path / "valid" / "l_valid.tif", valid)
    write_tiff(tmp_path / "valid" / "m.tif", valid)
    pred, gt = str(tmp_path / "pred"), str(tmp_path / "gt")

    # without --valid: l Tprec 20/23, Trec 1, clDice 40/43; m Tprec 8/8, Trec 9/18, clDice 2/3;
    # pooled Tprec (20 + 8) / (23 + 8) = 28/31, Trec (20 + 9) / (20 + 18) = 29/38
    assert main(["evaluate", pred, gt, "--out", str(tmp_path / "all.csv")]) == 0
    rows = _rows(tmp_path / "all.csv")
    assert float(rows["honest", "l"]["cldice"]) == pytest.approx(40 / 43)
    assert float(rows["honest", "l"]["skel_precision"]) == pytest.approx(20 / 23)
    assert float(rows["honest", "m"]["cldice"]) == pytest.approx(2 / 3)
    assert float(rows["honest", "m"]["skel_recall"]) == pytest.approx(1 / 2)
    assert float(rows["honest", "(pooled)"]["skel_precision"]) == pytest.approx(28 / 31)
    assert float(rows["honest", "(pooled)"]["skel_recall"]) == pytest.approx(29 / 38)

    # with --valid (columns 0..15), skeletons of the whole masks, then cut:
    # l: S(pred) in valid = line columns 2..15 (14) + spur (3) = 17, 14 in gt; S(gt) 14, all in pred
    #    -> Tprec 14/17, Trec 1, clDice 2 (14/17) / (31/17) = 28/31
    # m: S(pred) 8, all in gt; S(gt) in valid = columns 3..15 = 13, of which columns 3..11 (9) in pred
    #    -> Tprec 1, Trec 9/13, clDice 2 (9/13) / (22/13) = 9/11
    # pooled: Tprec (14 + 8) / (17 + 8) = 22/25, Trec (14 + 9) / (14 + 13) = 23/27,
    #    clDice = 2 * 22 * 23 / (22 * 27 + 23 * 25) = 1012/1169
    out = tmp_path / "valid.csv"
    assert main(["evaluate", pred, gt, "--valid", str(tmp_path / "valid"), "--protocol", "oracle",
                 "--out", str(out)]) == 0
    rows = _rows(out)
    lo, m = rows["honest", "l"], rows["honest", "m"]
    assert float(lo["skel_precision"]) == pytest.approx(14 / 17) and float(lo["skel_recall"]) == 1.0
    assert float(lo["cldice"]) == pytest.approx(28 / 31)
    assert float(m["skel_precision"]) == 1.0 and float(m["skel_recall"]) == pytest.approx(9 / 13)
    assert float(m["cldice"]) == pytest.approx(9 / 11)
    # the oracle's best cut of a 0/1 mask is the mask itself, so its topology is the same by hand
    for protocol in ("honest", "oracle"):
        pooled = rows[protocol, "(pooled)"]
        assert float(pooled["skel_precision"]) == pytest.approx(22 / 25)
        assert float(pooled["skel_recall"]) == pytest.approx(23 / 27)
        assert float(pooled["cldice"]) == pytest.approx(1012 / 1169)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["rows"][0]["image"] == "l" and saved["rows"][0]["skel_precision"] == pytest.approx(14 / 17)


def test_dfc_baseline_cli_is_seeded(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((24, 24)) * 50).astype(np.uint16)
    img[8:12, :] += 400
    write_tiff(tmp_path / "img.tif", img)
    args = ["baseline", "--method", "dfc", str(tmp_path / "img.tif"), "--max-iter", "5",
            "--n-channels", "8", "--seed", "4", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    assert main(args + ["--out", str(tmp_path / "two")]) == 0
    one = read_image(tmp_path / "one" / "img_mask.tif").data
    np.testing.assert_array_equal(one, read_image(tmp_path / "two" / "img_mask.tif").data)
    seed5 = [*args]
    seed5[args.index("--seed") + 1] = "5"
    assert main(seed5 + ["--out", str(tmp_path / "three")]) == 0
    assert not np.array_equal(one, read_image(tmp_path / "three" / "img_mask.tif").data)
    params = json.loads((tmp_path / "one" / "img_mask.json").read_text())["params"]
    assert params["max_iter"] == 5 and params["seed"] == 4 and params["lr"] == 0.1  # core default


def test_clear_errors(tmp_path, folders, capsys):
    assert main(["baseline", "--method", "otsu", str(tmp_path / "nope.tif"), "--out", str(tmp_path)]) == 2
    assert "nope.tif" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), str(folders / "gt")]) == 2
    assert "_mask.tif" in capsys.readouterr().err
    write_tiff(tmp_path / "p" / "a_mask.tif", np.zeros((3, 3), np.uint8))
    assert main(["evaluate", str(tmp_path / "p"), str(folders / "gt")]) == 2
    err = capsys.readouterr().err
    assert "a_mask.tif" in err and "shape" in err
    write_tiff(tmp_path / "q" / "zzz_mask.tif", np.zeros((4, 4), np.uint8))
    assert main(["evaluate", str(tmp_path / "q"), str(folders / "gt")]) == 2
    assert "zzz" in capsys.readouterr().err
