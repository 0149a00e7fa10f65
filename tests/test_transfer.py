"""The transfer study (core.study.transfer): pre-training labels, fine-tuning and the summary."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures.core.progress import drain
from napari_metastructures.core.study.transfer import (
    TransferConfig,
    finetune_score,
    misplace_instances,
    pretrain_labels,
    run_transfer,
    summarise,
)
from napari_metastructures.core.supervised import SupervisedConfig
from napari_metastructures.core.synthetic import er_network
from napari_metastructures.core.validate import InputError

TINY = SupervisedConfig(arch="unet", encoder="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8), loss="auto",
                        batch=2, crop=32, epochs=1, steps_per_epoch=2, tile=64)


def _blobs(n=6, size=64, seed=0):
    rng = np.random.default_rng(seed)
    inst = np.zeros((size, size), np.int32)
    for i in range(1, n + 1):
        r, c = rng.integers(4, size - 10, 2)
        inst[r:r + 6, c:c + 6] = i
    return inst


def test_misplaced_instances_keep_their_shape_and_move():
    inst = np.zeros((40, 40), np.int32)
    inst[5:9, 5:12] = 1  # one 4 x 7 instance
    mask = (inst > 0).astype(np.uint8)
    assert np.array_equal(misplace_instances(mask, inst, p=0.0, seed=1), mask)
    moved = misplace_instances(mask, inst, p=1.0, seed=1)
    assert moved.sum() == mask.sum() and not np.array_equal(moved, mask)
    rows, cols = np.nonzero(moved)
    assert np.ptp(rows) in (3, 39) and np.ptp(cols) in (6, 39)  # the same box, perhaps wrapped at an edge
    assert np.array_equal(misplace_instances(mask, inst, 1.0, seed=1), moved)  # seeded


def test_pretraining_labels_of_each_kind():
    insts = [_blobs(seed=s) for s in range(3)]
    masks = [(i > 0).astype(np.uint8) for i in insts]
    classes = pretrain_labels("misclassify", masks, insts, seed=0)
    values = set(np.unique(np.concatenate([c.ravel() for c in classes])))
    assert values == {0, 1, 2}
    for c, inst in zip(classes, insts):  # one class per instance, background kept
        assert np.array_equal(c > 0, inst > 0)
        assert all(len(np.unique(c[inst == i])) == 1 for i in np.unique(inst) if i)
    pu = pretrain_labels("pu", masks, insts, seed=0)
    kept = [len(np.unique(inst[p > 0])) for p, inst in zip(pu, insts)]
    assert 0 < sum(kept) < 18 and all(((p > 0) <= (m > 0)).all() for p, m in zip(pu, masks))
    rnd = pretrain_labels("random", masks, insts, seed=0)
    assert 0.05 < np.mean([r.mean() for r in rnd]) < 0.15
    assert all(np.array_equal(a, b) for a, b in zip(pretrain_labels("complete", masks, insts), masks))
    with pytest.raises(InputError, match="takes no labels"):
        pretrain_labels("igtt", masks, insts)
    with pytest.raises(InputError, match="pre-training kind"):
        TransferConfig(kinds=("imagenet",)).check()


def test_finetuning_is_reproducible_and_the_summary_spreads_seeds():
    pairs = [er_network((64, 64), seed=s) for s in range(3)]
    cfg = TransferConfig(finetune=TINY, device="cpu")
    a = finetune_score(None, [pairs[0][0]], [pairs[0][1]], [pairs[2][0]], [pairs[2][1]], cfg, seed=4)
    b = finetune_score(None, [pairs[0][0]], [pairs[0][1]], [pairs[2][0]], [pairs[2][1]], cfg, seed=4)
    assert a["dice"] == b["dice"] and 0.0 <= a["dice"] <= 1.0
    rows = [{"kind": "none", "budget": 1, "seed": s, "dice": d} for s, d in enumerate((0.2, 0.4, 0.3))]
    (s,) = summarise(rows)
    assert s["mean"] == pytest.approx(0.3) and s["min"] == 0.2 and s["max"] == 0.4 and s["n"] == 3
    assert s["sd"] == pytest.approx(np.std([0.2, 0.4, 0.3]))


@pytest.mark.slow
def test_the_study_end_to_end_on_tiny_data(tmp_path):
    import torch

    insts = [_blobs(seed=s) for s in range(3)]
    source = ([np.where(i > 0, 900.0, 100.0) + np.random.default_rng(s).normal(0, 30, i.shape)
               for s, i in enumerate(insts)], [(i > 0).astype(np.uint8) for i in insts], insts)
    test = er_network((64, 64), seed=9)

    def target(budget, seed):
        pairs = [er_network((64, 64), seed=20 + 5 * seed + i) for i in range(budget)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    cfg = TransferConfig(kinds=("none", "misclassify", "igtt"), budgets=(1, 2), seeds=(0,), pretrain=TINY,
                         finetune=TINY, igtt_epochs=1, device="cpu")
    lines = []
    result = drain(run_transfer(source, target, ([test[0]], [test[1]]), cfg, tmp_path), lines.append)
    assert [(r["kind"], r["budget"]) for r in result["rows"]] == [
        ("none", 1), ("none", 2), ("misclassify", 1), ("misclassify", 2), ("igtt", 1), ("igtt", 2)]
    assert all(0.0 <= r["dice"] <= 1.0 for r in result["rows"])
    pre = {r["kind"]: r for r in result["pretrain"]}
    assert pre["none"]["path"] is None and pre["misclassify"]["classes"] == 3
    assert pre["igtt"]["structure"] in ("network", "objects")
    saved = torch.load(pre["igtt"]["path"], weights_only=True)
    assert any(k.startswith("encoder.") for k in saved["state_dict"])
    assert any("pre-trained igtt" in line for line in lines)


@pytest.mark.slow
def test_transfer_command_end_to_end(tmp_path, capsys):
    import json

    from napari_metastructures.cli import main
    from napari_metastructures.io import write_tiff

    for folder in ("si", "sm", "ti", "tm"):
        (tmp_path / folder).mkdir()
    for s in range(3):
        inst = _blobs(seed=s)
        write_tiff(tmp_path / "si" / f"n{s}.tif", np.where(inst > 0, 900.0, 100.0).astype(np.float32))
        write_tiff(tmp_path / "sm" / f"n{s}.tif", (inst > 0).astype(np.uint8), layer_type="labels")
    for s in range(5):
        image, mask = er_network((64, 64), seed=s)
        write_tiff(tmp_path / "ti" / f"er{s}.tif", image)
        write_tiff(tmp_path / "tm" / f"er{s}.tif", mask, layer_type="labels")
    args = ["transfer", "--source-images", str(tmp_path / "si"), "--source-masks", str(tmp_path / "sm"),
            "--target-images", str(tmp_path / "ti"), "--target-masks", str(tmp_path / "tm"),
            "--kinds", "none,pu", "--seeds", "0", "--test-fraction", "0.4", "--pretrain-epochs", "1",
            "--finetune-epochs", "1", "--steps-per-epoch", "1", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "o"), "--budgets", "1,2"]) == 0
    report = json.loads((tmp_path / "o" / "transfer.json").read_text())
    assert [(r["kind"], r["budget"]) for r in report["rows"]] == [("none", 1), ("none", 2), ("pu", 1), ("pu", 2)]
    assert (tmp_path / "o" / "transfer_dice.png").stat().st_size > 0
    assert "50 % of instances (PU)" in (tmp_path / "o" / "report.md").read_text()
    assert (tmp_path / "o" / "summary.csv").read_text().count("\n") == 5
    # 5 target images, 2 held out: a budget of 4 cannot be met
    assert main([*args, "--out", str(tmp_path / "o2"), "--budgets", "4"]) == 2
    assert "only 3 target image(s) are left" in capsys.readouterr().err


def test_report_sentences_follow_the_numbers():
    from napari_metastructures.core.study.transfer_report import monotone_note, table_lines, verdict

    def row(kind, budget, values):
        return summarise([{"kind": kind, "budget": budget, "seed": i, "dice": v} for i, v in enumerate(values)])[0]

    summary = [row("none", 1, (0.5, 0.6)), row("none", 3, (0.4, 0.45)), row("igtt", 1, (0.7, 0.8)),
               row("igtt", 3, (0.42, 0.5))]
    assert "0.200 above no pre-training" in verdict(summary, "igtt", "none", 1)
    assert "every seed of one lies above" in verdict(summary, "igtt", "none", 1)
    assert "overlap, so 2 seeds do not separate" in verdict(summary, "igtt", "none", 3)
    assert "1: 0.550, 3: 0.425" in monotone_note(summary)
    assert monotone_note([row("none", 1, (0.4,)), row("none", 3, (0.5,))]) == ""
    lines = table_lines(summary, ["none", "igtt"], [1, 3])
    assert lines[2].startswith("| no pre-training") and "0.550 ± 0.050 (0.500-0.600)" in lines[2]
