"""The live plot of a training run: loss and foreground % per epoch.

matplotlib is already a dependency (pyqtgraph would add one). The figure is drawn with the Agg canvas
in the training thread; the GUI thread only shows the finished image (~1 ms), far below the 100 ms
stall budget (measured in benchmarks/bench_widget_responsiveness.py).
"""
from __future__ import annotations

import threading

import numpy as np
from magicgui.widgets import Container

from .._tooltips import COMMON

EMPTY_NOTE = "loss and foreground %\nappear here per epoch"


class EpochPlot(Container):
    """Loss (left axis, blue) and foreground % (right axis, orange) per epoch.

    The figure is drawn with matplotlib's Agg canvas by :meth:`render`, which the training thread
    calls after each epoch; the GUI thread only shows the finished image (:meth:`show`, ~1 ms).
    Drawing the tick text takes 20-100 ms, too long for the GUI thread. matplotlib itself is
    imported and the figure built at the first :meth:`render` (importing it took 1-2 s when the
    widget docked); until then the box shows a line of text in the theme's colours.
    """

    def __init__(self, fg_label: str = "foreground %", theme: str | None = None) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QLabel

        super().__init__(labels=False)
        self._fg_label = fg_label
        self._figure_lock = threading.Lock()
        self.figure = None  # built by the first render()
        self.view = QLabel()
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setFixedHeight(165)
        self.view.setToolTip(COMMON["plot"])
        self.native.layout().addWidget(self.view)
        self.points: list = []
        self.colours = _theme_colours(theme)
        self.reset()

    def _build_figure(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(3.3, 1.6), dpi=100)
        figure.subplots_adjust(left=0.17, right=0.83, top=0.95, bottom=0.22)  # fixed: no layout engine
        self.ax = figure.add_subplot()
        self.ax2 = self.ax.twinx()
        for ax, colour, label in ((self.ax, "#5ab4f0", "loss"), (self.ax2, "#f5a442", self._fg_label)):
            ax.tick_params(labelsize=7)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))  # few labels: text is most of the cost
            ax.set_ylabel(label, color=colour, fontsize=7)
        self.ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=1))
        self.ax.set_xlabel("epoch", fontsize=7)
        (self.loss_line,) = self.ax.plot([], [], "-o", ms=2, color="#5ab4f0")
        (self.fg_line,) = self.ax2.plot([], [], "-o", ms=2, color="#f5a442")
        self._empty_note = self.ax.text(0.5, 0.5, EMPTY_NOTE, transform=self.ax.transAxes, ha="center",
                                        va="center", fontsize=7)
        self._agg = FigureCanvasAgg(figure)
        self.figure = figure
        self._paint_figure()

    def _paint_figure(self) -> None:
        """Paint the figure in the current theme's background and text colours."""
        bg, ink = self.colours
        self.figure.set_facecolor(bg)
        for ax in (self.ax, self.ax2):
            ax.set_facecolor(bg)
            ax.tick_params(colors=ink)
            for spine in ax.spines.values():
                spine.set_color(ink)
        self.ax.xaxis.label.set_color(ink)
        self._empty_note.set_color(ink)

    def set_theme(self, theme: str | None, redraw: bool = True) -> None:
        """Follow a change of napari's theme. ``redraw`` draws at once, on the GUI thread (rare and
        asked for); pass False while a run draws in its thread, and its next epoch shows it."""
        self.colours = _theme_colours(theme)
        self._paint_box()
        if self.figure is not None:
            with self._figure_lock:
                self._paint_figure()
        if redraw and self.points:  # without points the box already shows its text, repainted above
            self.show(self.render(self.points))

    def follow_theme(self, viewer, busy) -> None:
        """Repaint when ``viewer``'s theme changes; while ``busy()`` (a run draws in its thread)
        the next epoch's drawing shows it."""
        events = getattr(viewer, "events", None)
        if hasattr(events, "theme"):
            events.theme.connect(lambda event: self.set_theme(event.value, redraw=not busy()))

    def render(self, points: list) -> np.ndarray:
        """RGBA image of the plot of ``(epoch, loss, fraction)`` points (one thread at a time)."""
        with self._figure_lock:
            if self.figure is None:
                self._build_figure()
            return self._draw(points)

    def _draw(self, points: list) -> np.ndarray:
        e, loss, fg = (list(c) for c in zip(*points)) if points else ([], [], [])
        self.loss_line.set_data(e, loss)
        self.fg_line.set_data(e, [100.0 * f for f in fg])
        for ax in (self.ax, self.ax2):
            ax.relim()
            ax.autoscale_view()
            ax.tick_params(labelleft=bool(points) and ax is self.ax, labelright=bool(points) and ax is self.ax2,
                           labelbottom=bool(points))  # no made-up axis values before the first epoch
        if points:  # whole epochs on the x axis, also after the first one (not 0.95 ... 1.05)
            self.ax.set_xlim(0.5, max(e) + 0.5)
        self._empty_note.set_visible(not points)
        self._agg.draw()
        return np.array(self._agg.buffer_rgba())

    def show(self, rgba: np.ndarray, points: list | None = None) -> None:
        """Show a rendered image (GUI thread)."""
        from qtpy.QtGui import QImage, QPixmap

        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.view.setPixmap(QPixmap.fromImage(image))
        if points is not None:
            self.points = list(points)

    def reset(self) -> None:
        """Empty the plot: a line of text in the theme's colours (nothing drawn with matplotlib)."""
        self.points = []
        self.view.clear()
        self.view.setText(EMPTY_NOTE)
        self._paint_box()

    def _paint_box(self) -> None:
        bg, ink = self.colours
        self.view.setStyleSheet(f"background-color: {bg}; color: {ink}; font-size: 9px;")


def _theme_colours(theme: str | None) -> tuple[str, str]:
    """napari theme ``theme``'s background and text colours (the dark theme's for an unknown one)."""
    bg, ink = "#262930", "#f0f1f2"
    try:
        from napari.utils.theme import get_theme

        t = get_theme(theme or "dark")
        bg, ink = t.background.as_hex(), t.text.as_hex()
    except Exception:  # unknown theme: keep the dark defaults
        pass
    return bg, ink
