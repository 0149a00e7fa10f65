"""The study's outputs: ``results.csv``, ``summary.csv``, ``config.json``, the figures and ``report.md``."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import jsonsafe
from ..atomic import atomic_write_bytes
from ..validate import IGNORE_VALUE
from .runner import StudyResult


def _csv_bytes(rows: list, columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row[k], float)
                                                              else row[k])) for k in columns})
    return buf.getvalue().encode()


RESULT_COLUMNS = ("labels", "epoch", "step", "train_loss", "test_dice")
SUMMARY_COLUMNS = ("labels", "group", "final_dice", "best_dice", "best_epoch", "final_auc", "final_accuracy",
                   "epochs", "plateau", "seconds")


def _png(fig, dpi: int = 80) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_dice(result: StudyResult, title: str = "") -> bytes:
    """Test Dice against clean masks per epoch, one line per label type (the paper's Figure 1)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    for s in result.summary:
        pts = [(r["epoch"], r["test_dice"]) for r in result.rows
               if r["labels"] == s["labels"] and r["test_dice"] is not None]
        ax.plot(*zip(*pts), marker="o", ms=3, label=s["labels"])
    ax.set(xlabel="epoch", ylabel="test Dice (clean masks)", ylim=(0, 1), title=title or "Test Dice per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _png(fig)


def figure_loss(result: StudyResult, title: str = "") -> bytes:
    """Training loss per step, one line per label type (the paper's Figure 2)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    for s in result.summary:
        steps = [r for r in result.rows if r["labels"] == s["labels"]]
        # step rows come before each epoch row; keep only the per-step losses
        per_step = [r for r in steps if r["test_dice"] is None]
        ax.plot([r["step"] for r in per_step], [r["train_loss"] for r in per_step], lw=0.8, label=s["labels"])
    ax.set(xlabel="step", ylabel="training loss", title=title or "Training loss per step")
    if all(r["train_loss"] > 0 for r in result.rows):  # L_DMI can be negative
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _png(fig)


def figure_examples(result: StudyResult) -> bytes:
    """A test image, its clean mask, and per label type the training labels and test prediction
    (in the spirit of the paper's Figure 5)."""
    from matplotlib.figure import Figure

    labels = [s["labels"] for s in result.summary]
    n = len(labels) + 1
    fig = Figure(figsize=(1.3 * n, 2.8))
    axes = fig.subplots(2, n, squeeze=False)
    img = np.asarray(result.examples["image"], np.float32)
    lo, hi = np.percentile(img, [1, 99.8])
    axes[0, 0].imshow(img, cmap="gray", vmin=lo, vmax=hi)
    axes[0, 0].set_title("test image", fontsize=7)
    axes[1, 0].imshow(result.examples["mask"], cmap="gray", vmin=0, vmax=1)
    axes[1, 0].set_title("clean mask", fontsize=7)
    fig.suptitle("top: training labels of one image (grey = ignored); bottom: prediction on a test image",
                 fontsize=6)
    for j, name in enumerate(labels, start=1):
        ex = result.examples[name]
        if ex["noisy"] is not None:
            noisy = np.asarray(ex["noisy"])
            shown = np.where(noisy == IGNORE_VALUE, 0.5, np.clip(noisy, 0, 1)).astype(np.float32)  # grey = ignored
            axes[0, j].imshow(shown, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"{name}\n(train label)", fontsize=6)
        axes[1, j].imshow(ex["prob"] > 0.5, cmap="gray", vmin=0, vmax=1)
        axes[1, j].set_title("test prediction", fontsize=6)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return _png(fig, dpi=64)


def summary_table(summary: list) -> str:
    """Markdown table of final and best test Dice per label type."""
    lines = ["| labels | group | final Dice | best Dice (epoch) | final AUC | s |", "|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['labels']} | {s['group']} | {s['final_dice']:.3f} | {s['best_dice']:.3f} "
                     f"({s['best_epoch']}) | {s['final_auc']:.3f} | {s['seconds']:.0f} |")
    return "\n".join(lines)


#: The paper's finding as tiers: clean ~ randomized > perturbed > random.
TIERS = {"clean": 0, "randomized": 0, "perturbed": 1, "random": 2}


def paper_check(summary: list) -> str:
    """Plain sentences comparing the groups' mean final Dice with the paper's ordering."""
    by_group: dict = {}
    for s in summary:
        by_group.setdefault(s["group"], []).append(s["final_dice"])
    mean = {g: float(np.mean(v)) for g, v in by_group.items() if g in TIERS}
    groups = sorted(mean, key=lambda g: TIERS[g])
    parts = ["Mean final test Dice by group: " + ", ".join(f"{g} {mean[g]:.3f}" for g in groups) + "."]
    if "clean" in mean and "randomized" in mean:
        gap = mean["clean"] - mean["randomized"]
        parts.append(f"Clean minus randomized: {gap:+.3f} (the paper: about equal).")
    for a, b in (("randomized", "perturbed"), ("perturbed", "random"), ("clean", "perturbed")):
        if a in mean and b in mean:
            holds = mean[a] > mean[b]
            parts.append(f"{a} > {b}: {'yes' if holds else 'NO'} ({mean[a]:.3f} vs {mean[b]:.3f}).")
    return " ".join(parts)


def write_study(result: StudyResult, out_dir, title: str = "Label-type study") -> dict:
    """Write results.csv, summary.csv, config.json, the figures and report.md to ``out_dir`` (atomically).

    Returns
    -------
    dict
        File role -> path.
    """
    out = Path(out_dir)
    files = {
        "results": atomic_write_bytes(out / "results.csv", _csv_bytes(result.rows, RESULT_COLUMNS)),
        "summary": atomic_write_bytes(out / "summary.csv", _csv_bytes(result.summary, SUMMARY_COLUMNS)),
        "config": atomic_write_bytes(out / "config.json", jsonsafe.dumps(
            {**result.config, "train": result.train_names, "test": result.test_names,
             "noise": {s["labels"]: s["noise"] for s in result.summary}}, indent=2).encode()),
    }
    if result.summary:
        files["fig_dice"] = atomic_write_bytes(out / "fig1_test_dice.png", figure_dice(result))
        files["fig_loss"] = atomic_write_bytes(out / "fig2_train_loss.png", figure_loss(result))
        files["fig_examples"] = atomic_write_bytes(out / "fig5_examples.png", figure_examples(result))
    t = result.config["training"]
    report = [
        f"# {title}", "",
        f"Trained on {len(result.train_names)} images, tested on {len(result.test_names)} against their clean "
        f"masks. Every label type: a fresh {t['arch']} ({t['encoder']}, depth {t['encoder_depth']}, decoder "
        f"{t.get('decoder_channels') or 'default'}), loss {t['loss']}, {t.get('optimizer', 'sgd').upper()} lr "
        f"{t['lr']} momentum {t['momentum']}, {t['epochs']} epochs of batch {t['batch']} "
        f"on {t['crop']}-px crops, seed {result.config['seed']}, device {result.config.get('device_used')}. "
        "Test Dice thresholds the probability at 0.5 (honest protocol) and pools pixels over test images.",
        "", summary_table(result.summary), "", paper_check(result.summary) if result.summary else "", "",
        "![test Dice per epoch](fig1_test_dice.png)", "", "![training loss per step](fig2_train_loss.png)", "",
        "![examples](fig5_examples.png)", "",
        "Files: `results.csv` (per step and per epoch), `summary.csv`, `config.json` (noise parameters, split).",
    ]
    if result.stopped:
        report.insert(2, "**Stopped early: the tables hold the label types finished so far.**\n")
    files["report"] = atomic_write_bytes(out / "report.md", "\n".join(report).encode())
    return {k: str(v) for k, v in files.items()}
