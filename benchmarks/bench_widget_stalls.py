"""GUI stalls of the label widgets on a 2048 x 2048 label image, and of docking each widget.

The same 10 ms QTimer probe as ``bench_widget_responsiveness`` records the longest gap between its
ticks on the GUI thread:

- a sweep over every noise family in "Noisy labels" (live preview on), waiting for each preview
  (the first preview, which adds the layer, is reported apart: napari's own cost, once per widget);
- a bandwidth slider drag in "Meta-structure density" (20 values, one every 30 ms, as a drag sends
  them), until the last bandwidth's maps are shown;
- docking each of the four widgets; the first training widget starts importing PyTorch and
  matplotlib in a background thread, and the stall while that runs is a row of its own (the import
  of torch's C extension holds Python's lock; the other docks wait for it to finish).

Baseline of the two sweeps, in the same run: the same computation called on the GUI thread, as the
widgets did before they used a worker (the stall a user would have seen). Goal: no stall over 100 ms.
"""
from __future__ import annotations

import time

import numpy as np
from _common import Row
from bench_widget_responsiveness import PROBE_MS, Probe, ensure_display, wait

SIDE = 2048


def _labels(side: int) -> np.ndarray:
    from napari_metastructures.core.synthetic import er_network

    return (er_network((side, side), seed=0)[1] > 0).astype(np.uint8)


def measure(quick: bool) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_metastructures._widgets import density as density_mod
    from napari_metastructures._widgets import noisy_labels as noisy_mod
    from napari_metastructures._widgets._workers import LOADED
    from napari_metastructures.core.noise import KINDS

    side = 512 if quick else SIDE
    viewer = napari.Viewer()
    viewer.window.resize(1400, 900)
    app = QApplication.instance()
    layer = viewer.add_labels(_labels(side), name="gt")
    probe, out = Probe(), {}

    docks = {}
    for key, loader in (("Noisy labels", lambda: noisy_mod.NoisyLabelsWidget),
                        ("Meta-structure density", lambda: density_mod.DensityWidget),
                        ("iGTT segmentation", _igtt_class), ("Train from rough labels", _rough_class)):
        wait(app, lambda: True, 1)
        probe.start()
        widget = loader()(viewer)
        viewer.window.add_dock_widget(widget, name=key, tabify=True)
        wait(app, lambda: True, 1)
        out[f"dock {key}"] = probe.stop()
        docks[key] = widget
        if key == "iGTT segmentation":  # PyTorch and matplotlib load in the background: measured apart
            probe.start()
            t0 = time.perf_counter()
            wait(app, LOADED.is_set, 300)
            out["torch load"], out["torch load s"] = probe.stop(), time.perf_counter() - t0

    noisy = docks["Noisy labels"]
    noisy.source.value = layer
    families = KINDS[:3] if quick else KINDS
    shown: list = []
    noisy.previewed.connect(shown.append)
    sync_ms, per_family = [], {}
    for i, family in enumerate(families):
        probe.start()
        shown.clear()
        noisy.family.value = family  # live: debounced, then computed in the worker
        wait(app, lambda: bool(shown), 300)  # noqa: B023 (polled now)
        gaps = probe.stop()
        if i == 0:  # the first preview adds the layer (napari's own cost, once per widget), apart
            out["noise first"] = gaps
        else:
            per_family[family] = gaps
    out["noise sweep"] = np.concatenate(list(per_family.values()))
    out["noise worst"] = max(per_family, key=lambda f: per_family[f].max())
    for family in families:  # the baseline: the same work on the GUI thread
        noisy.family.value = family
        t0 = time.perf_counter()
        noisy_mod.compute_preview(layer.data, layer.name, family, 0, noisy.parameters(), 255)
        sync_ms.append((time.perf_counter() - t0) * 1e3)
    out["noise sync"] = np.array(sync_ms)
    noisy.live.value = False

    dens = docks["Meta-structure density"]
    updated: list = []
    dens.updated.connect(updated.append)
    dens.layers.value = [layer]
    wait(app, lambda: bool(updated), 300)
    values = list(range(5, 105, 5))
    probe.start()
    for h in values:  # a drag: one value every 30 ms
        dens.bandwidth.value = h
        t_next = time.perf_counter() + 0.03
        wait(app, lambda: time.perf_counter() > t_next, 5)  # noqa: B023
    wait(app, lambda: bool(updated) and updated[-1] and updated[-1][0].metadata["density"]["bandwidth"] == values[-1],
         300)
    out["density sweep"] = probe.stop()
    t0 = time.perf_counter()
    density_mod.compute_maps([(layer.name, layer.data)], None, values[-1], "box")
    out["density sync"] = np.array([(time.perf_counter() - t0) * 1e3])
    out["families"] = len(families)
    viewer.close()
    return out


def _igtt_class():
    from napari_metastructures._widgets.igtt import IgttWidget

    return IgttWidget


def _rough_class():
    from napari_metastructures._widgets.rough_labels import RoughLabelsWidget

    return RoughLabelsWidget


def run(quick: bool = False) -> list[Row]:
    xvfb = ensure_display()
    try:
        r = measure(quick)
    finally:
        if xvfb is not None:
            xvfb.terminate()
    side = 512 if quick else SIDE
    rows = [
        Row(name=f"noise first preview {side}^2 (adds the layer): longest stall",
            figure=float(r["noise first"].max()), unit="ms", baseline_name=f"probe interval ({PROBE_MS} ms)",
            baseline=float(PROBE_MS), goal="report", note="napari's add_labels, once per widget"),
        Row(name=f"noise family sweep {side}^2 ({r['families'] - 1} families): longest stall",
            figure=float(r["noise sweep"].max()), unit="ms", baseline_name="same families on the GUI thread",
            baseline=float(r["noise sync"].max()), goal="< 100 ms",
            note=f"worst family {r['noise worst']}; GUI-thread median {np.median(r['noise sync']):.0f} ms; "
                 f"probe interval {PROBE_MS} ms"),
        Row(name=f"density bandwidth drag {side}^2 (20 values): longest stall",
            figure=float(r["density sweep"].max()), unit="ms", baseline_name="one update on the GUI thread",
            baseline=float(r["density sync"].max()), goal="< 100 ms"),
    ]
    for key in ("Noisy labels", "Meta-structure density", "iGTT segmentation", "Train from rough labels"):
        gaps = r[f"dock {key}"]
        rows.append(Row(name=f"dock '{key}': longest stall", figure=float(gaps.max()), unit="ms",
                        baseline_name=f"probe interval ({PROBE_MS} ms)", baseline=float(PROBE_MS), goal="report"))
        if key == "iGTT segmentation":
            rows.append(Row(name="PyTorch loading in the background: longest stall",
                            figure=float(r["torch load"].max()), unit="ms",
                            baseline_name=f"probe interval ({PROBE_MS} ms)", baseline=float(PROBE_MS),
                            goal="report", note=f"{r['torch load s']:.1f} s until Run is on"))
    return rows


if __name__ == "__main__":
    import sys

    from _common import format_table

    table = run(quick="--quick" in sys.argv)
    print(format_table(table))
