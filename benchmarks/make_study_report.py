"""Generate docs/study.md: the label-type study, the positive-unlabelled loss table and the baselines.

One command::

    python benchmarks/make_study_report.py            # full report (about 20 min on a free 2-core CPU)
    python benchmarks/make_study_report.py --quick    # smoke run into a temporary folder

Data:
- nuclei: the first 24 images of ``../shared/data/nuclei-dsb2018`` with at least 3 % foreground in
  their central 128 x 128 crop (native resolution), with masks and instance labels;
- ER: 24 synthetic ER networks (``core.synthetic.er_network``, 128 x 128, medium noise, seeds 0..23).

Every supervised run uses the same small U-Net and schedule (see ``TRAINING``) and the same seed and
70/30 split; test Dice is scored against the clean (complete) masks of the test images.
"""
from __future__ import annotations

import argparse
import glob
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_metastructures.core import baselines  # noqa: E402
from napari_metastructures.core.atomic import atomic_write_bytes, atomic_write_text  # noqa: E402
from napari_metastructures.core.metrics import pooled_scores  # noqa: E402
from napari_metastructures.core.progress import drain  # noqa: E402
from napari_metastructures.core.study import (  # noqa: E402
    DEFAULT_LABELS,
    StudyConfig,
    figure_dice,
    figure_examples,
    figure_loss,
    paper_check,
    parse_label_specs,
    run_study,
    split_indices,
    summary_table,
)
from napari_metastructures.core.supervised import SupervisedConfig  # noqa: E402
from napari_metastructures.core.synthetic import er_network  # noqa: E402

NUCLEI = ROOT.parent / "shared" / "data" / "nuclei-dsb2018"
SIZE = 128
SEED = 0
TRAINING = SupervisedConfig(arch="unet", encoder="resnet18", encoder_depth=3, decoder_channels=(64, 32, 16),
                            loss="bce", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, batch=8,
                            crop=64, epochs=10, steps_per_epoch=8, tile=128)
PU_LOSSES = ["bce", "weighted-bce", "exponential-unlabelled", "bootstrap-hard", "bootstrap-soft", "dmi"]


def load_nuclei(n: int = 24):
    import tifffile

    images, masks, inst, names = [], [], [], []
    for path in sorted(glob.glob(str(NUCLEI / "images" / "*.tif"))):
        img = tifffile.imread(path)
        h, w = img.shape
        r, c = (h - SIZE) // 2, (w - SIZE) // 2
        cut = (slice(r, r + SIZE), slice(c, c + SIZE))
        mask = tifffile.imread(path.replace("/images/", "/masks/"))[cut]
        if mask.mean() < 0.03:
            continue
        images.append(img[cut].astype(np.float32))
        masks.append((mask > 0).astype(np.uint8))
        inst.append(tifffile.imread(path.replace("/images/", "/labels/"))[cut])
        names.append(Path(path).stem)
        if len(images) == n:
            break
    return names, images, masks, inst


def load_er(n: int = 24):
    pairs = [er_network((SIZE, SIZE), seed=i, noise_level="medium") for i in range(n)]
    return [f"er_{i}" for i in range(n)], [p[0] for p in pairs], [p[1] for p in pairs], None


def save_png(data: bytes, path: Path) -> str:
    atomic_write_bytes(path, data)
    return path.name


def pu_figure(results: dict) -> bytes:
    from matplotlib.figure import Figure

    from napari_metastructures.core.study.report import _png

    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.add_subplot()
    for name, res in results.items():
        pts = [(r["epoch"], r["test_dice"]) for r in res.rows if r["test_dice"] is not None]
        ax.plot(*zip(*pts), marker="o", ms=3, label=name)
    ax.set(xlabel="epoch", ylabel="test Dice (complete masks)", ylim=(0, 1),
           title="Nuclei, 50% of instances annotated")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _png(fig)


def baseline_rows(images, masks, test, study_clean, quick: bool, log) -> list:
    """Otsu, local, Sato + Otsu, DFC, iGTT with/without EMS and the supervised U-Net on the test images."""
    te_img, te_msk = [images[i] for i in test], [masks[i] for i in test]
    rows = []

    def add(name, fn, probs=False, note=""):
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as err:  # a baseline that fails is reported, not fatal
            rows.append({"method": name, "error": f"{type(err).__name__}: {err}"[:120]})
            log(f"  {name}: FAILED {err}")
            return
        secs = time.perf_counter() - t0
        s = pooled_scores(None, te_msk, probs=out) if probs else pooled_scores(out, te_msk)
        rows.append({"method": name, "dice": s["dice"], "auc": s["auc"], "acc": s["accuracy"], "seconds": secs,
                     "note": note})
        log(f"  {name}: Dice {s['dice']:.3f}  {secs:.1f}s")

    add("Otsu", lambda: [baselines.otsu_threshold(im) for im in te_img])
    add("local Gaussian", lambda: [baselines.local_threshold(im) for im in te_img])
    add("Sato + Otsu", lambda: [baselines.sato_otsu(im) for im in te_img])
    it = 5 if quick else 100
    add("DFC", lambda: [baselines.dfc_segment(im, max_iter=it, device="cpu") for im in te_img],
        note=f"max_iter {it}")

    def igtt(use_ems: bool):
        from napari_metastructures.core.igtt.engine import IgttConfig
        from napari_metastructures.core.igtt.engine import run as igtt_run

        cfg = IgttConfig.preset("fast", use_ems=use_ems, epochs=2 if quick else 8, max_steps=2 if quick else 12,
                                crop=64, preview_every=0)
        result = igtt_run(te_img, cfg, seed=SEED, device="cpu")
        return result.outputs if result.outputs is not None else [result.model.predict(im, device="cpu")
                                                                  for im in te_img]

    note = "fast preset, 64-px crops, 8 epochs x at most 12 batches" if not quick else "smoke"
    add("iGTT (EMS)", lambda: igtt(True), probs=True, note=note)
    add("iGTT (no EMS)", lambda: igtt(False), probs=True, note=note)
    if study_clean is not None:
        s = study_clean
        rows.append({"method": "supervised U-Net, clean labels", "dice": s["final_dice"], "auc": s["final_auc"],
                     "acc": s["final_accuracy"], "seconds": s["seconds"],
                     "note": "trained on the training split; time includes per-epoch testing"})
    return rows


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.{digits}f}"


def baseline_table(rows: list) -> str:
    lines = ["| method | Dice | AUC | ACC | wall time (s, CPU) | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | — | — | — | — | failed: {r['error']} |")
        else:
            lines.append(f"| {r['method']} | {fmt(r['dice'])} | {fmt(r['auc'])} | {fmt(r['acc'])} | "
                         f"{r['seconds']:.1f} | {r.get('note', '')} |")
    return "\n".join(lines)


def label_study(tag, names, images, masks, inst, quick, figs: Path, log):
    cfg = StudyConfig(labels=parse_label_specs(DEFAULT_LABELS), training=TRAINING, split=0.7, seed=SEED,
                      device="cpu")
    log(f"== label-type study: {tag}")
    res = drain(run_study(images, masks, cfg, names=names, instances=inst), log)
    files = {
        "dice": save_png(figure_dice(res, f"{tag}: test Dice vs clean masks"), figs / f"study_{tag}_dice.png"),
        "loss": save_png(figure_loss(res, f"{tag}: training loss"), figs / f"study_{tag}_loss.png"),
        "examples": save_png(figure_examples(res), figs / f"study_{tag}_examples.png"),
    }
    return res, files


def _converged_section(path: Path) -> str:
    """The block written by make_convergence_report.py, if ``path`` holds one."""
    start, end = "<!-- converged:start -->", "<!-- converged:end -->"
    text = path.read_text() if path.is_file() else ""
    return text[text.index(start):text.index(end) + len(end)] if start in text and end in text else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run into a temporary folder")
    parser.add_argument("--out", default=str(ROOT / "docs" / "study.md"))
    args = parser.parse_args(argv)
    global TRAINING
    t_start = time.perf_counter()
    n = 24
    if args.quick:
        TRAINING = replace(TRAINING, epochs=2, steps_per_epoch=2)
        n = 6
        args.out = str(Path(tempfile.mkdtemp(prefix="study_quick_")) / "study.md")
    out = Path(args.out)
    figs = out.parent / "figures"
    log = lambda text: print(text, flush=True)  # noqa: E731
    import torch

    torch.set_num_threads(2)

    nuc = load_nuclei(n)
    er = load_er(n)
    nuc_res, nuc_figs = label_study("nuclei", *nuc, args.quick, figs, log)
    er_res, er_figs = label_study("er", *er, args.quick, figs, log)

    log("== positive-unlabelled losses: nuclei, drop-instances:0.5")
    pu = {}
    clean = next(s for s in nuc_res.summary if s["labels"] == "cl")
    for loss in PU_LOSSES:
        extra = {"warmup_epochs": 2} if loss == "dmi" else {}
        cfg = StudyConfig(labels=parse_label_specs("drop-instances:0.5"),
                          training=replace(TRAINING, loss=loss, **extra), split=0.7, seed=SEED, device="cpu")
        pu[f"50% of instances, {loss}"] = drain(run_study(nuc[1], nuc[2], cfg, names=nuc[0], instances=nuc[3]), log)
    cfg = StudyConfig(labels=parse_label_specs("sample:0.5"), training=TRAINING, split=0.7, seed=SEED, device="cpu")
    pn = drain(run_study(nuc[1], nuc[2], cfg, names=nuc[0]), log)
    pu_rows = {**pu, "50% of pixels P+N, bce": pn}
    complete = SimpleNamespace(rows=[r for r in nuc_res.rows if r["labels"] == "cl"])
    pu_png = save_png(pu_figure({"complete masks, bce": complete, **pu_rows}), figs / "study_pu_dice.png")
    pu_lines = ["| training labels, loss | final Dice | best Dice (epoch) | final AUC | final ACC | s |",
                "|---|---|---|---|---|---|",
                f"| complete masks, bce | {clean['final_dice']:.3f} | {clean['best_dice']:.3f} "
                f"({clean['best_epoch']}) | "
                f"{clean['final_auc']:.3f} | {clean['final_accuracy']:.3f} | {clean['seconds']:.0f} |"]
    for name, res in pu_rows.items():
        s = res.summary[0]
        pu_lines.append(f"| {name} | {s['final_dice']:.3f} | {s['best_dice']:.3f} ({s['best_epoch']}) | "
                        f"{s['final_auc']:.3f} | {s['final_accuracy']:.3f} | {s['seconds']:.0f} |")
    pu_best = max(pu.items(), key=lambda kv: kv[1].summary[0]["final_dice"])

    log("== baselines")
    tables = {}
    for tag, data, res in (("nuclei", nuc, nuc_res), ("er", er, er_res)):
        _, test = split_indices(len(data[1]), 0.7, SEED)
        cl = next(s for s in res.summary if s["labels"] == "cl")
        log(f"-- {tag}")
        tables[tag] = baseline_rows(data[1], data[2], test, cl, args.quick, log)

    total = time.perf_counter() - t_start
    t = TRAINING
    doc = [
        "# The label-type study, losses for incomplete labels, and baselines", "",
        "Generated by `python benchmarks/make_study_report.py` (do not edit by hand). "
        f"Total run time {total / 60:.1f} min on {platform.machine()} CPU ({torch.get_num_threads()} threads, "
        "a machine shared with other jobs: wall times are indicative only). No GPU was available to this run.", "",
        "## Setup", "",
        f"- **nuclei**: {len(nuc[0])} images of `nuclei-dsb2018` (the paper's NUC data; central {SIZE} x {SIZE} "
        "crops at native resolution with at least 3 % foreground), complete masks and instance labels.",
        f"- **ER**: {len(er[0])} synthetic ER networks (`er_network`, {SIZE} x {SIZE}, medium noise), "
        "ground-truth masks.",
        f"- Split 70/30 with seed {SEED} (nuclei: {len(nuc_res.train_names)} train, {len(nuc_res.test_names)} test).",
        f"- Every run: a fresh U-Net ({t.encoder}, encoder depth {t.encoder_depth}, decoder {t.decoder_channels}, "
        f"random init), {t.optimizer.upper()} lr {t.lr} momentum {t.momentum} weight decay {t.weight_decay}, "
        f"{t.epochs} epochs x {t.steps_per_epoch} batches of {t.batch} random {t.crop}-px crops with flips and "
        "rotations, same seed for every label type. Unsampled pixels (`sample`) are ignored by the loss.",
        "- Test Dice: probability > 0.5 (honest protocol, never the oracle), pixels pooled over the test images, "
        "against the clean / complete masks. This is far smaller than the paper's setup (its networks train for "
        "100+ epochs on full images): read differences of a few hundredths as noise.", "",
        "## 1. Label types (the paper's Figures 1, 2 and 5)", "",
        "Label types: `cl` clean; randomized `sample:0.1` (10 % of pixels kept, rest ignored) and `flip:0.45` "
        "(45 % of pixels flipped); perturbed `dilate`, `erode` (one 3x3 step) and `skeleton`; `random:0.1` "
        "(random labels, 10 % foreground).", "",
        "### Nuclei", "", summary_table(nuc_res.summary), "", paper_check(nuc_res.summary), "",
        f"![nuclei Dice](figures/{nuc_figs['dice']}) ![nuclei loss](figures/{nuc_figs['loss']})", "",
        f"![nuclei examples](figures/{nuc_figs['examples']})", "",
        "### Synthetic ER", "", summary_table(er_res.summary), "", paper_check(er_res.summary), "",
        f"![ER Dice](figures/{er_figs['dice']}) ![ER loss](figures/{er_figs['loss']})", "",
        f"![ER examples](figures/{er_figs['examples']})", "",
        "The paper's finding is clean ~ randomized > perturbed > random. The sentences under each table are "
        "computed from the numbers above (group means of the final test Dice).", "",
        "## 2. Incomplete labels: which loss copes (positive-unlabelled setting)", "",
        "Training labels: `drop-instances:0.5` of the nuclei (each nucleus kept with probability 0.5, from the "
        "instance labels; dropped nuclei become 0, i.e. unlabelled, not ignored). Scored against the complete "
        "masks. Beside them: the complete masks, and 50 % of pixels sampled at random with the rest ignored "
        "(P+N: as many labelled pixels, but no systematic miss). Losses (`core/losses.py`): plain BCE; "
        "class-weighted logistic (classes balanced per batch); exponential loss on the unlabelled pixels "
        "(logistic on labelled foreground, bounded `(1 - (1 - p)^gamma) / gamma` with gamma = 1 on 0-pixels); "
        "hard (beta 0.8) and soft (beta 0.95) bootstrapping (Reed et al. 2014); L_DMI (Xu et al. 2019), started "
        "with 2 epochs of BCE as Xu et al. do, because L_DMI alone is blind to the sign of the prediction.", "",
        "\n".join(pu_lines), "",
        f"Best loss on incomplete labels here: **{pu_best[0]}** (final Dice {pu_best[1].summary[0]['final_dice']:.3f}, "
        f"complete masks {clean['final_dice']:.3f}).", "",
        f"![PU losses](figures/{pu_png})", "",
        "## 3. Baselines on the test images", "",
        "Classical thresholds have no probability, so no AUC. iGTT and DFC are unsupervised and run on the test "
        "images themselves (their normal use); the supervised U-Net row is the `cl` run of section 1. iGTT runs "
        "the `fast` preset with a capped schedule to fit this report's time budget (see the note column), so it "
        "is below what the engine reaches with its defaults; DFC is capped at the iterations shown.", "",
        "### Nuclei", "", baseline_table(tables["nuclei"]), "",
        "### Synthetic ER", "", baseline_table(tables["er"]), "",
    ]
    text = "\n".join(doc)
    kept = _converged_section(out)
    if kept:  # section 4 comes from make_convergence_report.py: keep it
        text = text.rstrip("\n") + "\n\n" + kept + "\n"
    atomic_write_text(out, text)
    log(f"wrote {out} in {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
