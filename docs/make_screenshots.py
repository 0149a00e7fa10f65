"""Regenerate the widget screenshots in docs/figures/ (used by docs/widgets.md).

Run under an X server, e.g.::

    xvfb-run -a python docs/make_screenshots.py

It opens the synthetic ER sample, runs the "iGTT segmentation" and the "Train from rough labels"
widgets for a few epochs on the CPU (seed 0), and saves each window mid-run and after the run as a
small PNG (downscaled and palette-quantised to stay under 300 KB).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "figures"
SIZE = (1400, 900)
SCALE = 0.8  # of the window size, for the saved PNG


def pump(app, condition, timeout_s: float = 1800.0) -> None:
    """Run the Qt event loop until ``condition()`` holds."""
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError("timed out waiting for the widget")
        app.processEvents()
        time.sleep(0.005)


def settle(app, seconds: float = 0.5) -> None:
    end = time.perf_counter() + seconds
    pump(app, lambda: time.perf_counter() > end)


def save(viewer, name: str) -> Path:
    """Screenshot the whole window, downscale, quantise to 128 colours and save."""
    from PIL import Image

    pixels = viewer.screenshot(canvas_only=False, flash=False)
    img = Image.fromarray(pixels[..., :3])
    img = img.resize((int(img.width * SCALE), int(img.height * SCALE)), Image.LANCZOS)
    path = OUT / name
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}: {img.width}x{img.height}, {path.stat().st_size / 1024:.0f} KB")
    return path


def run_and_capture(app, viewer, panel, mid_epoch: int, mid_name: str, done_name: str) -> None:
    epochs: list = []
    finished: list = []
    panel.epoch_done.connect(lambda r: epochs.append(r.epoch))
    panel.run_finished.connect(finished.append)
    panel.run()
    pump(app, lambda: len(epochs) >= mid_epoch or finished)
    settle(app)
    save(viewer, mid_name)
    pump(app, lambda: bool(finished))
    settle(app)
    save(viewer, done_name)


def igtt_viewer(size=SIZE):
    """A viewer with the ER sample (truth hidden) and the iGTT widget docked, set for a short CPU run."""
    import napari

    from napari_metastructures._widgets.igtt import IgttWidget

    viewer = napari.Viewer()
    viewer.window.resize(*size)
    viewer.open_sample("napari-metastructures", "er_network")
    viewer.layers["ER network ground truth"].visible = False
    widget = IgttWidget(viewer)
    viewer.window.add_dock_widget(widget, name="iGTT segmentation")
    widget.images.value = [viewer.layers["ER network (synthetic)"]]
    widget.epochs.value = 8
    widget.steps.value = 16  # a short demo run on a CPU
    viewer.reset_view()
    return viewer, widget


def igtt_shots(app) -> None:
    viewer, widget = igtt_viewer()
    run_and_capture(app, viewer, widget.panel, 3, "widget_igtt_running.png", "widget_igtt_done.png")
    viewer.close()


def rough_shots(app) -> None:
    import napari

    from napari_metastructures._widgets.noisy_labels import _source_colormap
    from napari_metastructures._widgets.rough_labels import RoughLabelsWidget
    from napari_metastructures.core.noise import sample_labels
    from napari_metastructures.core.validate import IGNORE_VALUE

    viewer = napari.Viewer()
    viewer.window.resize(*SIZE)
    viewer.open_sample("napari-metastructures", "er_network")
    truth = viewer.layers["ER network ground truth"]
    truth.visible = False
    # what the "Noisy labels" widget makes with family "sample", p = 0.1: IGNORE_VALUE = not sampled
    sampled = sample_labels(np.asarray(truth.data), 0.1, seed=0)
    viewer.add_labels(sampled, name="ER network ground truth_sample", opacity=0.8,
                      colormap=_source_colormap(truth, 1, IGNORE_VALUE))  # transparent, as the widget shows it
    widget = RoughLabelsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train from rough labels")
    widget.image.value = viewer.layers["ER network (synthetic)"]
    widget.label_layer.value = viewer.layers["ER network ground truth_sample"]
    widget.epochs.value = 10
    widget.preview_every.value = 2
    widget.encoder_depth.value = 3
    widget.crop.value = 128
    widget.steps.value = 8
    viewer.reset_view()
    run_and_capture(app, viewer, widget.panel, 4, "widget_rough_running.png", "widget_rough_done.png")
    viewer.close()


def noisy_and_density_shots(app) -> None:
    """Noisy labels (one flip preview above the truth) and the density of truth and a 10 % sample."""
    import napari

    from napari_metastructures._widgets.density import DensityWidget
    from napari_metastructures._widgets.noisy_labels import NoisyLabelsWidget

    viewer = napari.Viewer()
    viewer.window.resize(*SIZE)
    viewer.open_sample("napari-metastructures", "er_network")
    truth = viewer.layers["ER network ground truth"]
    noisy = NoisyLabelsWidget(viewer)
    viewer.window.add_dock_widget(noisy, name="Noisy labels")
    noisy.live.value = False
    noisy.source.value = truth
    noisy.family.value, noisy.p.value = "flip", 0.3
    shown: list = []
    noisy.previewed.connect(shown.append)
    noisy.preview()
    pump(app, lambda: bool(shown))
    noisy.keep()
    shown.clear()
    noisy.family.value, noisy.p.value = "sample", 0.1
    noisy.preview()
    pump(app, lambda: bool(shown))
    viewer.reset_view()
    settle(app)
    save(viewer, "widget_noisy.png")
    viewer.window.remove_dock_widget("all")
    for layer in list(viewer.layers):
        layer.visible = False
    density = DensityWidget(viewer)
    viewer.window.add_dock_widget(density, name="Meta-structure density")
    density.live.value = False
    kept = viewer.layers["ER network ground truth_flip_p0.3_seed0"]
    density.layers.value = [truth, kept]
    density.reference.value = truth
    density.bandwidth.value = 10
    updated: list = []
    density.updated.connect(updated.append)
    density.update_maps()
    pump(app, lambda: bool(updated))
    viewer.canvas.grid.enabled = True  # the two maps side by side, one contrast range
    viewer.reset_view()
    settle(app)
    save(viewer, "widget_density.png")
    viewer.close()


def all_docked_shot(app) -> None:
    """All four widgets docked at once on a 1400 x 900 window: Run rows must stay in view."""
    import napari

    viewer = napari.Viewer()
    viewer.window.resize(*SIZE)
    viewer.open_sample("napari-metastructures", "er_network")
    docks = [viewer.window.add_plugin_dock_widget("napari-metastructures", name)[1]
             for name in ("Noisy labels", "Meta-structure density", "Train from rough labels", "iGTT segmentation")]
    viewer.reset_view()
    pump(app, lambda: all(d.panel.run_button.enabled for d in docks[2:]), 120)  # PyTorch loads; Run turns on
    settle(app)
    save(viewer, "widget_all_docked.png")
    viewer.close()


def grab_screen(app, name: str, box=None) -> Path:
    """The whole X screen (popup menus are windows of their own), cropped to ``box`` (x, y, w, h)."""
    from PIL import Image

    shot = app.primaryScreen().grabWindow(0)
    if box is not None:
        shot = shot.copy(*box)
    path = OUT / name
    tmp = path.with_suffix(".raw.png")
    shot.save(str(tmp))
    img = Image.open(tmp).convert("RGB")
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    tmp.unlink()
    print(f"{path}: {img.width}x{img.height}, {path.stat().st_size / 1024:.0f} KB")
    return path


def menu_shot(app) -> None:
    """napari's Layers > Segment menu with our two training widgets."""
    import napari

    viewer = napari.Viewer()
    viewer.window.resize(*SIZE)
    qt = viewer.window._qt_window
    qt.move(0, 0)
    settle(app, 1.0)
    bar = qt.menuBar()
    layers = next(a for a in bar.actions() if a.text().replace("&", "") == "Layers")
    layers.menu().popup(bar.mapToGlobal(bar.actionGeometry(layers).bottomLeft()))
    settle(app)
    segment = next(a for a in layers.menu().actions() if a.text().replace("&", "") == "Segment")
    layers.menu().setActiveAction(segment)
    segment.menu().popup(layers.menu().mapToGlobal(layers.menu().actionGeometry(segment).topRight()))
    settle(app, 1.0)
    right = segment.menu().geometry().right()
    bottom = max(layers.menu().geometry().bottom(), segment.menu().geometry().bottom())
    grab_screen(app, "menu_layers_segment.png", (0, 0, min(SIZE[0], right + 40), min(SIZE[1], bottom + 30)))
    segment.menu().close()
    layers.menu().close()
    viewer.close()


def activity_shot(app) -> None:
    """An iGTT run in napari's activity dock (bottom right), with its Cancel button."""
    viewer, widget = igtt_viewer()
    epochs: list = []
    widget.panel.epoch_done.connect(lambda r: epochs.append(r.epoch))
    pump(app, lambda: widget.panel.run_button.enabled, 120)
    widget.panel.run()
    viewer.window._status_bar._toggle_activity_dock(True)
    pump(app, lambda: len(epochs) >= 2)
    settle(app)
    qt = viewer.window._qt_window
    dialog = qt._activity_dialog
    room = dialog.parentWidget().width()
    dialog.setGeometry(10, dialog.y(), room - 20, dialog.height())  # wide enough for the Cancel button
    settle(app)
    top_left = dialog.mapToGlobal(dialog.rect().topLeft())
    save(viewer, "widget_activity_dock.png")  # the window (the dock is a child of it)
    print("activity dialog at", top_left.x(), top_left.y(), dialog.width(), dialog.height())
    widget.panel.stop()
    pump(app, lambda: not widget.panel.running)
    viewer.close()


def gif_shot(app) -> None:
    """docs/figures/igtt_streaming.gif: the mask streaming in epoch by epoch (README; < 2 MB)."""
    import imageio.v3 as iio
    from PIL import Image

    viewer, widget = igtt_viewer((1200, 760))
    pump(app, lambda: widget.panel.run_button.enabled, 120)
    frames: list = []

    def grab(*_):
        settle(app, 0.3)
        pixels = viewer.screenshot(canvas_only=False, flash=False)[..., :3]
        img = Image.fromarray(pixels)
        frames.append(np.asarray(img.resize((img.width // 2, img.height // 2), Image.LANCZOS)))

    settle(app)
    grab()
    epochs: list = []
    finished: list = []
    widget.panel.epoch_done.connect(lambda r: epochs.append(r.epoch))
    widget.panel.run_finished.connect(finished.append)
    widget.panel.run()
    seen = 0
    while not finished:
        pump(app, lambda n=seen: len(epochs) > n or bool(finished))
        if len(epochs) > seen:
            seen = len(epochs)
            grab()
    grab()
    viewer.close()
    path = OUT / "igtt_streaming.gif"
    durations = [1200] + [700] * (len(frames) - 2) + [2500]
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=durations, loop=0)
    print(f"{path}: {len(frames)} frames, {path.stat().st_size / 1024:.0f} KB")


def main() -> None:
    from napari.qt import get_qapp

    OUT.mkdir(parents=True, exist_ok=True)
    app = get_qapp()
    import sys

    which = sys.argv[1:] or ["igtt", "rough", "labels", "docked"]
    if "labels" in which:
        noisy_and_density_shots(app)
    if "docked" in which:
        all_docked_shot(app)
    if "igtt" in which:
        igtt_shots(app)
    if "rough" in which:
        rough_shots(app)
    if "menu" in which:
        menu_shot(app)
    if "activity" in which:
        activity_shot(app)
    if "gif" in which:
        gif_shot(app)


if __name__ == "__main__":
    main()
