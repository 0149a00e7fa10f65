"""The transfer study (issue 14): do features learned from wrong labels help on a new structure?

The second seed paper's Table 1, on microscopy. A network is pre-trained on a *source* set
(nuclei) with one kind of label, then fine-tuned on a small labelled budget of a *target* set of
another structure (ER networks) with one shared schedule, and scored on held-out target images.

Pre-training kinds (:data:`PRETRAIN_KINDS`):

- ``none``: no pre-training (random weights, the floor);
- ``complete``: the clean masks;
- ``misannotate``: instance misannotation, the annotation drawn on the wrong object: each instance
  is, with probability 0.5, moved to a random place (its shape is kept). On one-category masks the
  library's ``misannotate`` changes nothing, so this study moves instances instead;
- ``misclassify``: instance misclassification with random classes: every instance gets one of two
  classes at random (a 3-class network: background and two random "categories");
- ``random``: random labels, each pixel foreground with probability 0.1;
- ``pu``: 50 % of the instances (the rest left as background: positive-unlabelled);
- ``igtt``: iGTT on the source images, no labels.

Only the encoder is transferred (``init part = encoder``): the decoder and head start fresh, so a
3-class pre-training and a 1-class target fit alike. ImageNet weights are not used (no download).
"""
from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..metrics import pooled_scores
from ..noise import make_noisy
from ..training.supervised import SupervisedConfig, train_supervised
from ..validate import InputError

PRETRAIN_KINDS = ("none", "complete", "misannotate", "misclassify", "random", "pu", "igtt")

#: The network and optimiser of every run: a small U-Net that trains in seconds on a CPU.
NET = dict(arch="unet", encoder="resnet18", encoder_depth=3, decoder_channels=(64, 32, 16), optimizer="sgd",
           lr=0.05, momentum=0.9, weight_decay=1e-4, batch=8, crop=64, tile=128)


def _pretrain_default() -> SupervisedConfig:
    return SupervisedConfig(loss="auto", epochs=20, steps_per_epoch=8, **NET)


def _finetune_default() -> SupervisedConfig:
    return SupervisedConfig(loss="bce", epochs=10, steps_per_epoch=8, **NET)


@dataclass
class TransferConfig:
    """Schedules and sizes of the transfer study."""

    kinds: tuple = PRETRAIN_KINDS
    budgets: tuple = (1, 3, 10)
    seeds: tuple = (0, 1, 2)
    pretrain: SupervisedConfig = field(default_factory=_pretrain_default)
    finetune: SupervisedConfig = field(default_factory=_finetune_default)
    igtt_epochs: int = 6
    part: str = "encoder"
    device: str = "cpu"

    def check(self) -> TransferConfig:
        unknown = [k for k in self.kinds if k not in PRETRAIN_KINDS]
        if unknown:
            raise InputError(f"pre-training kind(s) {', '.join(unknown)}: use {', '.join(PRETRAIN_KINDS)}.")
        if not self.budgets or min(self.budgets) < 1:
            raise InputError(f"budgets {self.budgets}: give whole numbers of labelled images, at least 1.")
        return self

    def as_dict(self) -> dict:
        out = asdict(self)
        out["kinds"], out["budgets"], out["seeds"] = list(self.kinds), list(self.budgets), list(self.seeds)
        return out


def misplace_instances(mask: np.ndarray, instances: np.ndarray, p: float = 0.5, seed: int = 0) -> np.ndarray:
    """Instance misannotation on one-category masks: each instance, with probability ``p``, is removed
    and its shape drawn at a random position (wrapping around the edges) instead."""
    rng = np.random.default_rng(seed)
    out = (np.asarray(mask) > 0).astype(np.uint8)
    ids = [int(i) for i in np.unique(instances) if i != 0]
    for i in ids:
        if rng.random() >= p:
            continue
        where = np.nonzero(instances == i)
        out[where] = 0
        shift = [int(rng.integers(0, n)) for n in out.shape]
        out[tuple((w + s) % n for w, s, n in zip(where, shift, out.shape))] = 1
    return out


def pretrain_labels(kind: str, masks: Sequence, instances: Sequence | None, seed: int = 0) -> list:
    """The source set's training labels for a supervised pre-training ``kind`` (instances: connected
    components of the masks when None)."""
    from scipy import ndimage

    out = []
    for i, mask in enumerate(masks):
        mask = (np.asarray(mask) > 0).astype(np.uint8)
        inst = ndimage.label(mask)[0] if instances is None else np.asarray(instances[i])
        if kind == "complete":
            out.append(mask)
        elif kind == "misannotate":
            out.append(misplace_instances(mask, inst, 0.5, seed + i))
        elif kind == "misclassify":
            out.append(make_noisy(mask, "misclassify", seed=seed + i, p=1.0, n_classes=3, instances=inst)[0])
        elif kind == "random":
            out.append(make_noisy(mask, "random", seed=seed + i, p=0.1)[0])
        elif kind == "pu":
            out.append(make_noisy(mask, "drop-instances", seed=seed + i, p=0.5, instances=inst)[0])
        else:
            raise InputError(f"pre-training kind {kind!r} takes no labels.")
    return out


def pretrain(kind: str, images, masks, instances, config: TransferConfig, path: Path, seed: int = 0) -> dict:
    """Pre-train one network of ``kind`` on the source set and save it to ``path``; returns its record."""
    t0 = time.perf_counter()
    if kind == "none":
        return {"kind": kind, "path": None, "seconds": 0.0}
    if kind == "igtt":
        from ..igtt.config import IgttConfig
        from ..igtt.engine import run as igtt_run

        p = config.pretrain
        cfg = IgttConfig.preset("fast", arch=p.arch, encoder=p.encoder, encoder_depth=p.encoder_depth,
                                decoder_channels=tuple(p.decoder_channels), epochs=config.igtt_epochs,
                                crop=p.crop, batch_size=p.batch, max_steps=p.steps_per_epoch, tile=p.tile)
        result = igtt_run(list(images), cfg, seed=seed, device=config.device)
        extra = {"structure": (result.model.config.get("structure") or {}).get("structure")}
    else:
        labels = pretrain_labels(kind, masks, instances, seed)
        from ..progress import drain

        result = drain(train_supervised(list(images), labels, config.pretrain, seed=seed, device=config.device))
        extra = {"classes": result.model.config["model"]["classes"]}
    result.model.save(path)
    return {"kind": kind, "path": str(path), "seconds": time.perf_counter() - t0,
            "epochs": len(result.model.history), **extra}


def finetune_score(init: str | None, images, masks, test_images, test_masks, config: TransferConfig,
                   seed: int) -> dict:
    """Fine-tune from ``init`` (a model file, or None) on ``images``/``masks``; pooled test Dice."""
    from ..progress import drain

    t0 = time.perf_counter()
    cfg = replace(config.finetune, preview_every=0)
    start = None if init is None else (init, config.part)
    model = drain(train_supervised(list(images), list(masks), cfg, seed=seed, device=config.device,
                                   init=start)).model
    probs = [model.predict(im, device=config.device, tile=cfg.tile) for im in test_images]
    scores = pooled_scores(None, list(test_masks), probs=probs)
    return {"dice": float(scores["dice"]), "auc": float(scores["auc"]), "seconds": time.perf_counter() - t0}


def run_transfer(source, target, test, config: TransferConfig, folder) -> Generator[str, None, dict]:
    """The whole study; yields progress lines and returns ``{"pretrain": [...], "rows": [...]}``.

    ``source`` = (images, masks, instances) for pre-training; ``target`` = a function
    ``(budget, seed) -> (images, masks)`` giving the labelled budget of fine-tuning seed ``seed``;
    ``test`` = (images, masks) of the held-out target images. Models go to ``folder``.
    """
    config.check()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records, rows = [], []
    for kind in config.kinds:
        rec = pretrain(kind, *source, config, folder / f"pretrained_{kind}.pt")
        records.append(rec)
        yield f"pre-trained {kind}: {rec['seconds']:.0f} s"
        for budget in config.budgets:
            for seed in config.seeds:
                images, masks = target(budget, seed)
                got = finetune_score(rec["path"], images, masks, *test, config, seed)
                rows.append({"kind": kind, "budget": budget, "seed": seed, **got})
                yield (f"  {kind:<12} budget {budget:>2} seed {seed}: test Dice {got['dice']:.3f} "
                       f"({got['seconds']:.0f} s)")
    return {"pretrain": records, "rows": rows, "config": config.as_dict()}


def summarise(rows: list) -> list:
    """Mean, standard deviation, min and max of test Dice per (kind, budget)."""
    out = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        for budget in dict.fromkeys(r["budget"] for r in rows):
            d = np.array([r["dice"] for r in rows if r["kind"] == kind and r["budget"] == budget], float)
            if d.size:
                out.append({"kind": kind, "budget": budget, "mean": float(d.mean()), "sd": float(d.std(ddof=0)),
                            "min": float(d.min()), "max": float(d.max()), "n": int(d.size)})
    return out
