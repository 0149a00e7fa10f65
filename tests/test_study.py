"""The label-type study end to end on a tiny synthetic set (2 epochs, a tiny model), and its parts."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_metastructures.cli import main
from napari_metastructures.core.progress import drain
from napari_metastructures.core.study import (
    StudyConfig,
    noisy_training_labels,
    paper_check,
    parse_label_spec,
    parse_label_specs,
    run_study,
    split_indices,
    write_study,
)
from napari_metastructures.core.supervised import SupervisedConfig
from napari_metastructures.core.synthetic import er_network
from napari_metastructures.core.validate import InputError

TINY = dict(encoder_depth=3, crop=64, batch=2, epochs=2, steps_per_epoch=2, tile=64)


def read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_parse_label_specs():
    assert parse_label_spec("cl").kind == "clean"
    s = parse_label_spec("sample:0.1")
    assert (s.kind, s.params, s.group) == ("sample", {"p": 0.1}, "randomized")
    assert parse_label_spec("dilate:2").params == {"iterations": 2}
    assert parse_label_spec("skeleton").params == {}
    assert parse_label_spec("flip:p_fg_to_bg=0.3:p_bg_to_fg=0.1").params == {"p_fg_to_bg": 0.3, "p_bg_to_fg": 0.1}
    assert [x.name for x in parse_label_specs("cl, sample:0.1,random:0.1")] == ["cl", "sample:0.1", "random:0.1"]
    with pytest.raises(InputError, match="unknown kind"):
        parse_label_spec("blur:2")
    with pytest.raises(InputError, match="does not take"):
        parse_label_spec("skeleton:3")
    with pytest.raises(InputError, match="repeat"):
        parse_label_specs("cl,cl")


def test_split_is_seeded_and_disjoint():
    tr, te = split_indices(10, 0.7, seed=1)
    assert len(tr) == 7 and len(te) == 3 and not set(tr) & set(te)
    assert split_indices(10, 0.7, seed=1) == (tr, te)
    assert split_indices(10, 0.7, seed=2) != (tr, te)
    assert split_indices(2, 0.9, 0)[1] != []
    with pytest.raises(InputError):
        split_indices(1)


def test_noisy_training_labels():
    masks = [er_network((64, 64), seed=i)[1] for i in range(2)]
    clean, _ = noisy_training_labels(parse_label_spec("cl"), masks)
    assert all(np.array_equal(a, b) for a, b in zip(clean, masks))
    sampled, records = noisy_training_labels(parse_label_spec("sample:0.2"), masks, seed=5)
    ignored = np.mean([np.mean(s == 255) for s in sampled])
    assert 0.7 < ignored < 0.9
    assert [r["seed"] for r in records] == [5, 6]
    dilated, _ = noisy_training_labels(parse_label_spec("dilate:2"), masks)
    assert all(d.sum() > m.sum() for d, m in zip(dilated, masks))


def test_paper_check_reports_agreement_and_differences():
    rows = [{"group": "clean", "final_dice": 0.8}, {"group": "randomized", "final_dice": 0.78},
            {"group": "perturbed", "final_dice": 0.6}, {"group": "random", "final_dice": 0.1}]
    text = paper_check(rows)
    assert "randomized > perturbed: yes" in text and "perturbed > random: yes" in text
    rows[2]["final_dice"] = 0.9
    assert "randomized > perturbed: NO" in paper_check(rows)


@pytest.mark.slow
def test_study_end_to_end_core(tmp_path):
    data = [er_network((64, 64), seed=i, noise_level="low") for i in range(3)]
    config = StudyConfig(labels=parse_label_specs("cl,sample:0.1,random:0.1"),
                         training=SupervisedConfig(**TINY), split=0.67, device="cpu")
    lines = []
    result = drain(run_study([d[0] for d in data], [d[1] for d in data], config), lines.append)
    assert len(lines) == 6 and "test Dice" in lines[0]
    files = write_study(result, tmp_path / "out")
    out = tmp_path / "out"
    cols, rows = read_csv(out / "results.csv")
    assert cols == ["labels", "epoch", "step", "train_loss", "test_dice"]
    for name in ("cl", "sample:0.1", "random:0.1"):
        mine = [r for r in rows if r["labels"] == name]
        epoch_rows = [r for r in mine if r["test_dice"] != ""]
        step_rows = [r for r in mine if r["test_dice"] == ""]
        assert [r["epoch"] for r in epoch_rows] == ["1", "2"]
        assert [int(r["step"]) for r in step_rows] == [1, 2, 3, 4]
        assert all(0 <= float(r["test_dice"]) <= 1 for r in epoch_rows)
        assert all(np.isfinite(float(r["train_loss"])) for r in mine)
    scols, summary = read_csv(out / "summary.csv")
    assert {"labels", "final_dice", "best_dice"} <= set(scols)
    assert [s["labels"] for s in summary] == ["cl", "sample:0.1", "random:0.1"]
    for s in summary:
        last = [r for r in rows if r["labels"] == s["labels"] and r["test_dice"] != ""][-1]
        assert float(s["final_dice"]) == pytest.approx(float(last["test_dice"]), rel=1e-4)
        assert float(s["best_dice"]) >= float(s["final_dice"]) - 1e-9
    for key in ("fig_dice", "fig_loss", "fig_examples"):
        data_png = open(files[key], "rb").read()
        assert data_png[:8] == b"\x89PNG\r\n\x1a\n" and len(data_png) < 200_000
    report = (out / "report.md").read_text()
    assert "fig1_test_dice.png" in report and "| cl | clean |" in report and "random" in report
    assert not list(out.glob(".*.part"))


def test_plateau_rule():
    from napari_metastructures.core.study.runner import plateaued

    assert not plateaued([0.1, 0.2, 0.3], 2, 0.01)  # fewer than 2 x patience epochs
    assert not plateaued([0.1, 0.2, 0.3, 0.4], 2, 0.01)  # still rising: 0.35 vs 0.15
    assert not plateaued([0.5, 0.6, 0.6, 0.601], 2, 0.01)  # 0.6005 vs 0.55: rose by 0.05
    assert plateaued([0.5, 0.6, 0.6, 0.601], 2, 0.06)  # the mean rose by 0.0505 < 0.06
    assert plateaued([0.6, 0.61, 0.61, 0.6], 2, 0.005)  # no rise: plateau


@pytest.mark.slow
def test_study_until_plateau_stops_each_label_type_on_its_own():
    data = [er_network((64, 64), seed=i, noise_level="low") for i in range(2)]
    config = StudyConfig(labels=parse_label_specs("cl,random:0.1"), training=SupervisedConfig(**{**TINY, "epochs": 8}),
                         split=0.5, device="cpu", until="plateau", patience=1, min_delta=1.0)
    result = drain(run_study([d[0] for d in data], [d[1] for d in data], config))
    # a rise below 1.0 always counts as flat: each type stops after 2 x patience epochs, and the next one runs
    assert [(s["labels"], s["epochs"], s["plateau"]) for s in result.summary] == [
        ("cl", 2, True), ("random:0.1", 2, True)]
    assert not result.stopped
    capped = drain(run_study([d[0] for d in data], [d[1] for d in data],
                             StudyConfig(labels=parse_label_specs("cl"), training=SupervisedConfig(**TINY), split=0.5,
                                         device="cpu", until="plateau", patience=2, min_delta=-1.0)))
    assert [(s["epochs"], s["plateau"]) for s in capped.summary] == [(2, False)]  # the cap, no plateau


@pytest.mark.slow
def test_study_stop_keeps_what_is_done():
    data = [er_network((64, 64), seed=i) for i in range(2)]
    polls = []
    config = StudyConfig(labels=parse_label_specs("cl,dilate"), training=SupervisedConfig(**TINY), split=0.5,
                         device="cpu")
    result = drain(run_study([d[0] for d in data], [d[1] for d in data], config,
                             stop=lambda: polls.append(1) or len(polls) > 5))
    assert result.stopped and [s["labels"] for s in result.summary] == ["cl"]
    assert result.summary[0]["epochs"] == 2


@pytest.mark.slow
def test_study_cli(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    for i in range(3):
        image, mask = er_network((64, 64), seed=10 + i)
        tifffile.imwrite(tmp_path / "img" / f"er{i}.tif", image)
        tifffile.imwrite(tmp_path / "msk" / f"er{i}.tif", mask)
    out = tmp_path / "study"
    args = ["study", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "msk"),
            "--labels", "cl,dilate", "--epochs", "2", "--steps-per-epoch", "1", "--batch", "2", "--crop", "64",
            "--encoder-depth", "3", "--decoder-channels", "32,16,8", "--device", "cpu", "--loss", "weighted-bce",
            "--out", str(out)]
    assert main(args) == 0
    for name in ("results.csv", "summary.csv", "report.md", "config.json", "fig1_test_dice.png",
                 "fig2_train_loss.png", "fig5_examples.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "weighted-bce" in report and "(32, 16, 8)" in report
    # a mask missing for an image is a clear error, not a traceback
    (tmp_path / "msk" / "er2.tif").unlink()
    assert main(args) == 2
