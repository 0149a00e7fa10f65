"""The study's runner: label types and their parsing, the config, the split and :func:`run_study`."""
from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..metrics import pooled_scores
from ..noise import KINDS, kind_parameters, make_noisy
from ..progress import StopFn
from ..training.supervised import SupervisedConfig, train_supervised
from ..validate import InputError, check_image, check_labels

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
        if key != "ops" and isinstance(params[key], str):
            raise InputError(f"label type {text!r}: {key} must be a number, got {value.strip()!r}.")
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
                          instances: Sequence[np.ndarray] | None = None) -> tuple[list, list]:
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
    #: "epochs": train every label type for ``training.epochs``; "plateau": until its test Dice
    #: stops rising (mean of the last ``patience`` epochs within ``min_delta`` of the ``patience``
    #: before), with ``training.epochs`` as the cap.
    until: str = "epochs"
    patience: int = 5
    min_delta: float = 0.005

    def as_dict(self) -> dict:
        return {"labels": [asdict(s) for s in self.labels], "training": asdict(self.training),
                "split": self.split, "seed": self.seed, "device": self.device, "until": self.until,
                "patience": self.patience, "min_delta": self.min_delta}


def plateaued(dices: Sequence[float], patience: int, min_delta: float) -> bool:
    """True once the mean of the last ``patience`` values is less than ``min_delta`` above the mean
    of the ``patience`` values before them (needs ``2 * patience`` values)."""
    d = np.asarray(dices, float)
    if patience < 1 or d.size < 2 * patience:
        return False
    return bool(d[-patience:].mean() - d[-2 * patience:-patience].mean() < min_delta)


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


def run_study(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], config: StudyConfig | None = None,
              names: Sequence[str] | None = None, instances: Sequence[np.ndarray] | None = None,
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
    if config.until not in ("epochs", "plateau"):
        raise InputError(f"until {config.until!r}: use epochs or plateau.")
    cfg = replace(config.training, preview_every=0)
    rows, summary, examples, stopped = [], [], {"image": te_images[0], "mask": te_masks[0]}, False
    device_used = None
    for spec in config.labels:
        t0 = time.perf_counter()
        noisy, records = noisy_training_labels(spec, [masks[i] for i in train], config.seed, tr_inst)
        flat = [False]

        def halt(flat=flat) -> bool:
            return flat[0] or bool(stop and stop())

        gen = train_supervised(tr_images, noisy, cfg, seed=config.seed, device=config.device,
                               stop=halt, evaluate=scorer)
        step, dices, last = 0, [], None
        while True:
            try:
                r = next(gen)
            except StopIteration as done:
                model, stopped = done.value.model, done.value.stopped is not None and not flat[0]
                break
            for loss in r.extra["step_losses"]:
                step += 1
                rows.append({"labels": spec.name, "epoch": r.epoch, "step": step, "train_loss": loss,
                             "test_dice": None})
            rows.append({"labels": spec.name, "epoch": r.epoch, "step": step, "train_loss": r.loss,
                         "test_dice": r.extra["test_dice"]})
            dices.append(r.extra["test_dice"])
            last = r
            flat[0] = config.until == "plateau" and plateaued(dices, config.patience, config.min_delta)
            yield f"{spec.name:<24} {r.line()}  test Dice {r.extra['test_dice']:.3f}" + (
                " (plateau)" if flat[0] else "")
        device_used = model.config["device"]
        if last is not None:
            examples[spec.name] = {"noisy": noisy[0] if train else None,
                                   "prob": model.predict(te_images[0], device=model.config["device"],
                                                         tile=cfg.tile)}
            summary.append({"labels": spec.name, "kind": spec.kind, "group": spec.group,
                            "final_dice": dices[-1], "best_dice": float(np.nanmax(dices)),
                            "best_epoch": int(np.nanargmax(dices)) + 1, "final_auc": last.extra["test_auc"],
                            "final_accuracy": last.extra["test_accuracy"], "epochs": last.epoch,
                            "plateau": bool(flat[0]),
                            "seconds": time.perf_counter() - t0, "noise": records[0]})
        if stopped:
            break
    return StudyResult(rows, summary, examples, {**config.as_dict(), "device_used": device_used},
                       [names[i] for i in train], [names[i] for i in test], stopped)
