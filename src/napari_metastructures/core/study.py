"""The label-type study of the meta-structures paper: train on noisy labels, test on clean masks.

For each label type (clean, or a noise family of :mod:`.noise` with its parameters) the study makes
noisy training labels, trains a fresh supervised network with the same schedule and seed
(:func:`.supervised.train_supervised`, BCE and SGD by default), and records the test Dice against
the *clean* test masks after every epoch and the training loss of every step.

:func:`run_study` is a generator of progress lines that returns a :class:`StudyResult`;
:func:`write_study` writes ``results.csv``, ``summary.csv``, the figures and ``report.md``.
"""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Generator, Optional, Sequence

import numpy as np

from .atomic import atomic_write_bytes
from .metrics import pooled_scores
from .noise import KINDS, kind_parameters, make_noisy
from .progress import StopFn
from .training.supervised import SupervisedConfig, train_supervised
from .validate import InputError, check_image, check_labels

#: The paper's label types: clean, randomized (sample, flip), perturbed (dilate, erode, skeleton), random.
DEFAULT_LABELS = "cl,sample:0.1,flip:0.45,dilate,erode,skeleton,random:0.1"
CLEAN_NAMES = ("cl", "clean")
#: Paper's grouping of label types, for the report.
GROUPS = {"clean": "clean", "sample": "randomized", "sample-to-background": "randomized",
          "flip": "randomized", "dilate": "perturbed", "erode": "perturbed", "morph": "perturbed",
          "skeleton": "perturbed", "random": "random", "drop-instances": "incomplete",
          "misannotate": "instance", "misclassify": "instance"}
#: Parameter set by a bare value, as in ``sample:0.1``.
MAIN_PARAMETER = {"dilate": "iterations", "erode": "iterations", "morph": "ops"}


@dataclass
class LabelSpec:
    """One label type: ``name`` as written (e.g. ``sample:0.1``), the noise ``kind`` and its params."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        return GROUPS.get(self.kind, self.kind)


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_label_spec(text: str) -> LabelSpec:
    """Parse ``kind[:value][:key=value...]``, e.g. ``cl``, ``sample:0.1``, ``dilate:2``, ``flip:p_fg_to_bg=0.3``."""
    parts = [p.strip() for p in str(text).strip().split(":")]
    kind = parts[0].lower()
    if kind in CLEAN_NAMES:
        if len(parts) > 1:
            raise InputError(f"label type {text!r}: clean labels take no parameters.")
        return LabelSpec(str(text).strip(), "clean")
    if kind not in KINDS:
        raise InputError(f"label type {text!r}: unknown kind {kind!r}; use cl or one of {', '.join(KINDS)}.")
    takes = kind_parameters(kind)
    params = {}
    for part in parts[1:]:
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip().replace("-", "_")
        else:
            key, value = MAIN_PARAMETER.get(kind, "p"), part
        if key not in takes:
            raise InputError(f"label type {text!r}: {kind} does not take {key!r} (it takes {', '.join(takes)}).")
        params[key] = _number(value.strip())
    return LabelSpec(str(text).strip(), kind, params)


def parse_label_specs(text) -> list:
    """Parse a comma-separated list (or a list of strings) of label types; names must be unique."""
    items = [t for t in (text.split(",") if isinstance(text, str) else list(text)) if str(t).strip()]
    specs = [parse_label_spec(t) for t in items]
    names = [s.name for s in specs]
    if not specs:
        raise InputError("no label types given.")
    if len(set(names)) != len(names):
        raise InputError(f"label types repeat: {', '.join(names)}.")
    return specs


def split_indices(n: int, split: float = 0.7, seed: int = 0) -> tuple[list, list]:
    """Seeded train/test split of ``n`` items: ``round(split * n)`` for training, at least one each."""
    if n < 2:
        raise InputError(f"the study needs at least 2 images (one to train, one to test), got {n}.")
    if not 0 < split < 1:
        raise InputError(f"split must lie strictly between 0 and 1, got {split}.")
    order = np.random.default_rng(seed).permutation(n)
    k = min(n - 1, max(1, int(round(split * n))))
    return sorted(order[:k].tolist()), sorted(order[k:].tolist())


def noisy_training_labels(spec: LabelSpec, masks: Sequence[np.ndarray], seed: int = 0,
                          instances: Optional[Sequence[np.ndarray]] = None) -> tuple[list, list]:
    """Noisy labels for each training mask (image i uses seed ``seed + i``) and their parameter records."""
    out, records = [], []
    for i, mask in enumerate(masks):
        if spec.kind == "clean":
            out.append(np.asarray(mask))
            records.append({"kind": "clean"})
            continue
        params = dict(spec.params)
        if instances is not None and "instances" in kind_parameters(spec.kind):
            params["instances"] = instances[i]
        noisy, record = make_noisy(mask, spec.kind, seed=seed + i, **params)
        out.append(noisy)
        records.append(record)
    return out, records


@dataclass
class StudyConfig:
    """What the study runs: label types, the training schedule shared by all, the split and seed."""

    labels: list = field(default_factory=lambda: parse_label_specs(DEFAULT_LABELS))
    training: SupervisedConfig = field(default_factory=SupervisedConfig)
    split: float = 0.7
    seed: int = 0
    device: str = "auto"

    def as_dict(self) -> dict:
        return {"labels": [asdict(s) for s in self.labels], "training": asdict(self.training),
                "split": self.split, "seed": self.seed, "device": self.device}


@dataclass
class StudyResult:
    """Rows of ``results.csv``, one summary per label type, example predictions and the config."""

    rows: list
    summary: list
    examples: dict
    config: dict
    train_names: list
    test_names: list
    stopped: bool = False


def _test_scorer(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], tile: int) -> Callable:
    def score(model) -> dict:
        probs = [model.predict(im, device=model.config.get("device", "cpu"), tile=tile) for im in images]
        s = pooled_scores(None, masks, probs=probs)
        return {"test_dice": s["dice"], "test_auc": s["auc"], "test_accuracy": s["accuracy"]}
    return score


def run_study(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], config: Optional[StudyConfig] = None,
              names: Optional[Sequence[str]] = None, instances: Optional[Sequence[np.ndarray]] = None,
              stop: StopFn = None) -> Generator[str, None, StudyResult]:
    """Run the label-type study; yield one progress line per epoch and return a :class:`StudyResult`.

    Parameters
    ----------
    images, masks : sequences of 2D arrays
        Images and their clean binary masks (nonzero = foreground).
    config : StudyConfig
    names : sequence of str, optional
        Image names for the record (default ``image_<i>``).
    instances : sequence of arrays, optional
        Instance labels for the instance noise kinds (default: connected components).
    stop : callable, optional
        Polled every batch; the study ends after the current label type with what it has.
    """
    config = config or StudyConfig()
    images, masks = list(images), list(masks)
    if len(images) != len(masks):
        raise InputError(f"{len(images)} images but {len(masks)} masks.")
    names = list(names) if names is not None else [f"image_{i}" for i in range(len(images))]
    masks = [(check_labels(m, name=f"mask {n}") > 0).astype(np.uint8) for m, n in zip(masks, names)]
    for im, m, n in zip(images, masks, names):
        check_image(im, name=f"image {n}", max_ndim=2)
        if np.shape(im) != np.shape(m):
            raise InputError(f"mask {n}: shape {np.shape(m)} does not match its image {np.shape(im)}.")
    train, test = split_indices(len(images), config.split, config.seed)
    tr_images = [images[i] for i in train]
    te_images, te_masks = [images[i] for i in test], [masks[i] for i in test]
    tr_inst = None if instances is None else [instances[i] for i in train]
    scorer = _test_scorer(te_images, te_masks, config.training.tile)
    cfg = replace(config.training, preview_every=0)
    rows, summary, examples, stopped = [], [], {"image": te_images[0], "mask": te_masks[0]}, False
    device_used = None
    for spec in config.labels:
        t0 = time.perf_counter()
        noisy, records = noisy_training_labels(spec, [masks[i] for i in train], config.seed, tr_inst)
        gen = train_supervised(tr_images, noisy, cfg, seed=config.seed, device=config.device,
                               stop=stop, evaluate=scorer)
        step, dices, last = 0, [], None
        while True:
            try:
                r = next(gen)
            except StopIteration as done:
                model, stopped = done.value.model, done.value.stopped is not None
                break
            for loss in r.extra["step_losses"]:
                step += 1
                rows.append({"labels": spec.name, "epoch": r.epoch, "step": step, "train_loss": loss,
                             "test_dice": None})
            rows.append({"labels": spec.name, "epoch": r.epoch, "step": step, "train_loss": r.loss,
                         "test_dice": r.extra["test_dice"]})
            dices.append(r.extra["test_dice"])
            last = r
            yield f"{spec.name:<24} {r.line()}  test Dice {r.extra['test_dice']:.3f}"
        device_used = model.config["device"]
        if last is not None:
            examples[spec.name] = {"noisy": noisy[0] if train else None,
                                   "prob": model.predict(te_images[0], device=model.config["device"],
                                                         tile=cfg.tile)}
            summary.append({"labels": spec.name, "kind": spec.kind, "group": spec.group,
                            "final_dice": dices[-1], "best_dice": float(np.nanmax(dices)),
                            "best_epoch": int(np.nanargmax(dices)) + 1, "final_auc": last.extra["test_auc"],
                            "final_accuracy": last.extra["test_accuracy"], "epochs": last.epoch,
                            "seconds": time.perf_counter() - t0, "noise": records[0]})
        if stopped:
            break
    return StudyResult(rows, summary, examples, {**config.as_dict(), "device_used": device_used},
                       [names[i] for i in train], [names[i] for i in test], stopped)


# ------------------------------------------------------------------------------------- outputs
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
                   "epochs", "seconds")


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
            shown = np.where(noisy == 255, 0.5, np.clip(noisy, 0, 1)).astype(np.float32)  # grey = ignored
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
    parts = [f"Mean final test Dice by group: " + ", ".join(f"{g} {mean[g]:.3f}" for g in groups) + "."]
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
        "config": atomic_write_bytes(out / "config.json", json.dumps(
            {**result.config, "train": result.train_names, "test": result.test_names,
             "noise": {s["labels"]: s["noise"] for s in result.summary}}, indent=2, default=str).encode()),
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
