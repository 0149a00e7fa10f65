"""Batch prediction (issue 13): files per second serial against ``--workers 2``, and the client's
peak memory for 200 small files against 20 (it should stay flat: one file in memory at a time).

Images: synthetic ER fields (``core.synthetic.er_network``, 12-bit-like uint16). Model: the fast
preset's U-Net (resnet18, depth 3, decoder 64/32/16) with random weights; prediction cost does not
depend on the weights. Every command runs in a fresh process, as a user would start it; memory is
that process's peak resident set (``ru_maxrss``), Dask workers not included.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Row

_PEAK = ("import resource, sys; from napari_metastructures.cli import main; code = main(sys.argv[1:]); "
         "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")


def _model(path: Path) -> Path:
    from napari_metastructures.core.training.model import TrainedModel, build_model

    dec = (64, 32, 16)
    net = build_model(encoder_depth=3, decoder_channels=dec).eval()
    config = {"kind": "supervised", "preprocess": {},
              "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1, "classes": 1,
                        "decoder_channels": list(dec)}}
    return TrainedModel(net, config).save(path)


def _images(folder: Path, n: int, size: int) -> Path:
    from napari_metastructures.core.synthetic import er_network
    from napari_metastructures.io import write_tiff

    folder.mkdir(parents=True, exist_ok=True)
    base, _ = er_network((size, size), seed=0, noise_level="medium")
    rng = np.random.default_rng(0)
    for i in range(n):  # shifted copies with fresh noise: same cost, different pixels
        img = np.roll(base, (7 * i, 3 * i), axis=(0, 1)) * 3000 + rng.normal(0, 40, base.shape)
        write_tiff(folder / f"field{i:03d}.tif", np.clip(img, 0, 4095).astype(np.uint16), scale=(0.1, 0.1))
    return folder


def _steady_rate(out: Path, warm: int) -> float:
    """Files per second once running: over the files after the first ``warm`` to finish
    (each worker's first file also pays its start-up), from ``run.json``'s ``finished_s``."""
    times = sorted(f["finished_s"] for f in json.loads((out / "run.json").read_text())["files"])
    return (len(times) - warm) / (times[-1] - times[warm - 1])


def _median_file_s(out: Path) -> float:
    """Median seconds one file took where it ran (read, segment, write), from ``run.json``."""
    import statistics

    return statistics.median(f["seconds"] for f in json.loads((out / "run.json").read_text())["files"])


def _predict(model: Path, folder: Path, out: Path, *extra) -> tuple[float, float]:
    """(seconds, peak MiB) of one ``metastructures predict`` process."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, "predict", "--model", str(model), str(folder),
                           "--out", str(out), "--device", "cpu", *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"predict failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads((out / "run.json").read_text())
    assert report["summary"]["done"] == report["summary"]["total"], report["summary"]
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB"))
    return seconds, peak_kb / 1024


def run(quick: bool = False) -> list:
    n_speed, size = (8, 256) if quick else (24, 512)
    few, many = (10, 50) if quick else (20, 200)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = _model(tmp / "model.pt")
        speed = _images(tmp / "speed", n_speed, size)
        serial, _ = _predict(model, speed, tmp / "o_serial")
        workers, _ = _predict(model, speed, tmp / "o_w2", "--workers", "2")
        same = all((tmp / "o_serial" / p.name).read_bytes() == p.read_bytes()
                   for p in (tmp / "o_w2").glob("*_mask.tif"))
        note = f"{n_speed} files {size}^2, whole command incl. start-up; masks identical: {same}"
        rows.append(Row(f"predict --workers 2: files/s, {size}^2", n_speed / workers, "/s", "serial (same files)",
                        n_speed / serial, "> serial", "cpu", note))
        rows.append(Row(f"predict --workers 2: files/s once running, {size}^2", _steady_rate(tmp / "o_w2", 2),
                        "/s", "serial, once running", _steady_rate(tmp / "o_serial", 1), "> serial", "cpu",
                        "after each worker's first file (start-up, model load)"))
        rows.append(Row(f"predict: s per file on a 1-thread worker, {size}^2", _median_file_s(tmp / "o_w2"), "s",
                        "serial, all cores", _median_file_s(tmp / "o_serial"), "", "cpu",
                        "median of read + segment + write; the input of docs/scale-out.md's model"))
        small_few = _images(tmp / "few", few, 128)
        small_many = _images(tmp / "many", many, 128)
        t_few, peak_few = _predict(model, small_few, tmp / "o_few")
        t_many, peak_many = _predict(model, small_many, tmp / "o_many")
        rows.append(Row(f"predict: peak client memory, {many} files 128^2", peak_many, "MiB",
                        f"same, {few} files", peak_few, "ratio ~1 (flat)", "cpu",
                        f"{t_many:.1f} s vs {t_few:.1f} s"))
        rows.append(Row(f"predict: s per file, {many} files 128^2", (t_many - t_few) / (many - few), "s",
                        f"start-up ({few} files, minus files)", t_few - few * (t_many - t_few) / (many - few),
                        "", "cpu", "marginal cost per file vs fixed start-up"))
    return rows
