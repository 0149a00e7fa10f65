""""Train from rough labels" with the viewer's defaults (``SupervisedConfig.fast()``): does a 10 %
sample of the truth train as well as the clean truth (the paper's claim), in minutes on a CPU?

On the bundled ER and mitochondria samples (512 x 512, seed 0), each trained on the clean mask and
on a 10 % sample of it (255 = not sampled, left out of the loss). Baseline of each row, in the same
run: the same widget defaults trained on the clean labels. ``--quick`` runs the ER sample only.
"""
from __future__ import annotations

import time

import numpy as np
from _common import Row


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    return 2.0 * float((pred & truth).sum()) / max(1.0, float(pred.sum() + truth.sum()))


def run(quick: bool = False) -> list[Row]:
    from napari_metastructures._sample_data import er_network, mitochondria
    from napari_metastructures.core.noise import sample_labels
    from napari_metastructures.core.progress import drain
    from napari_metastructures.core.training.supervised import SupervisedConfig, train_supervised

    rows = []
    for name, sample in (("ER", er_network), ("mitochondria", mitochondria))[: 1 if quick else 2]:
        (image, _, _), (mask, _, _) = sample()
        truth = mask > 0
        scores, seconds = {}, {}
        for kind, labels in (("clean", truth.astype(np.uint8)),
                             ("10 % sample", sample_labels(truth.astype(np.uint8), 0.1, seed=0))):
            t0 = time.perf_counter()
            result = drain(train_supervised([image], [labels], SupervisedConfig.fast(), seed=0, device="cpu"))
            scores[kind] = _dice(result.model.predict(image, device="cpu") > 0.5, truth)
            seconds[kind] = time.perf_counter() - t0
        rows.append(Row(f"rough labels, {name} sample: Dice from a 10 % sample", scores["10 % sample"], "",
                        "Dice from the clean labels", scores["clean"], "ratio > 0.97", "cpu",
                        f"training {seconds['10 % sample']:.0f} s (clean {seconds['clean']:.0f} s), "
                        "widget defaults"))
    return rows


if __name__ == "__main__":
    import sys

    from _common import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
