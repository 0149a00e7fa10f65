"""``metastructures view``: open napari with the plugin's widgets docked and a sample loaded."""
from __future__ import annotations

import argparse

PLUGIN = "napari-metastructures"
WIDGETS = ["iGTT segmentation", "Noisy labels", "Meta-structure density", "Train from rough labels"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="open napari with the Meta-Structures widgets and a sample image")
    p.add_argument("--sample", default="er_network", help="sample key to load (default: er_network)")
    p.add_argument("--widgets", default=",".join(WIDGETS), help="comma-separated widget names to dock")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the whole window and exit")
    p.add_argument("--size", default="1500x950", help="window size WxH for the screenshot")
    p.set_defaults(func=run)


def open_viewer(sample: str, widgets: list[str]):
    """Return a napari viewer with ``sample`` loaded and ``widgets`` docked (tabbed)."""
    import napari

    viewer = napari.Viewer(title="napari-metastructures")
    if sample:
        viewer.open_sample(PLUGIN, sample)
    docks = []
    for name in widgets:
        dock, _ = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=bool(docks))
        docks.append(dock)
    if docks:  # show the first widget's tab once the window has laid out its docks
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        docks[0].raise_()
    return viewer


def run(args: argparse.Namespace) -> int:
    import napari

    widgets = [w.strip() for w in args.widgets.split(",") if w.strip()]
    viewer = open_viewer(args.sample, widgets)
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        width, height = (int(v) for v in args.size.lower().split("x"))
        viewer.window.resize(width, height)
        for _ in range(20):
            QApplication.processEvents()
        viewer.reset_view()
        QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False)
        print(f"wrote {args.screenshot}")
        viewer.close()
        return 0
    napari.run()
    return 0
