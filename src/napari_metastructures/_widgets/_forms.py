"""Small pieces shared by the widgets' forms: layer pickers, input checks, layout, message text.

Layer dropdowns are refreshed by napari: a docked widget's ``reset_choices`` is called whenever a
layer is inserted, removed, reordered or renamed, and a magicgui ``Container`` passes that on to
every dropdown in it (a ``choices`` callable is then called again).
"""
from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, Container, PushButton, create_widget

from ..core.device import DeviceError
from ..core.progress import OutOfMemoryAdvice
from ..core.validate import InputError, check_image, check_image_layout


def debounce_timer(form, ms: int, action):
    """A single-shot QTimer owned by ``form`` (it dies with the widget) that runs ``action`` ``ms``
    after its last ``start()``."""
    from qtpy.QtCore import QTimer

    timer = QTimer(form.native)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(action)
    return timer


def image_layers(viewer) -> list:
    """``(name, layer)`` choices: the viewer's Image layers except our outputs (a run's probability
    maps, density maps), which are never training or predict inputs."""
    from napari.layers import Image

    return [(layer.name, layer) for layer in viewer.layers
            if isinstance(layer, Image) and not (layer.metadata.get("probability_of") or "density" in layer.metadata)]


def layer_picker(kind: type, name: str, label: str, nullable: bool = False):
    """A dropdown of the viewer's layers of class ``kind`` (e.g. ``napari.layers.Labels``).

    magicgui's napari type registration fills it from the viewer the widget is docked in (before
    docking, from the current viewer), so it needs no ``choices`` of its own.
    """
    return create_widget(annotation=kind, name=name, label=label, options={"nullable": nullable})


def button_row(*buttons: PushButton) -> Container:
    """Buttons side by side, without margins."""
    row = Container(widgets=list(buttons), layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    return row


def parse_slices(text: str, n: int, name: str = "slices") -> list | None:
    """``"all"`` or ``""`` -> None; ``"0-4, 7"`` -> ``[0, 1, 2, 3, 4, 7]`` (checked against ``n``)."""
    text = (text or "").strip().lower()
    if text in ("", "all"):
        return None
    picked: list = []
    for part in text.replace(" ", "").split(","):
        lo, dash, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise InputError(f"{name}: cannot read {part!r}; write 'all' or e.g. '0-4,7'.") from None
        if a > b or b >= n:
            raise InputError(f"{name}: {part!r} is outside 0-{n - 1} (the first axis has {n} slices).")
        picked += [i for i in range(a, b + 1) if i not in picked]
    return picked


def image_problem(layer, crop: int, cache: dict | None = None, level: int = 0) -> str:
    """Why ``layer`` cannot be a training image ("" if it can). Results are cached per data array.

    A lazy array is checked by its shape and dtype only, with no size limit (it is read one block
    at a time); the crop must fit the multiscale ``level`` that will be used.
    """
    from napari.layers import Image

    if not isinstance(layer, Image):
        return f"layer '{layer.name}' is a {type(layer).__name__} layer; pick an Image layer."
    if layer.rgb:
        return f"layer '{layer.name}' is RGB; split its channels (layer menu > Split RGB) and pick one."
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[min(max(int(level), 0), len(data) - 1)]
    key = (id(layer.data), data.shape, str(data.dtype))
    if cache is not None and key in cache:
        problem = cache[key]
    else:
        try:  # in-memory data is checked whole; a lazy array only by its shape and dtype (no pixel reads
            # on the GUI thread: the engine checks its pixels in the worker)
            if isinstance(data, np.ndarray):
                check_image(data, name=f"layer '{layer.name}'")
            else:
                check_image_layout(data, name=f"layer '{layer.name}'", max_bytes=np.iinfo(np.int64).max)
            problem = ""
        except InputError as err:
            problem = str(err)
        if cache is not None:
            cache.clear()  # keep one entry per widget
            cache[key] = problem
    if not problem and min(data.shape[-2:]) < crop:
        h, w = data.shape[-2:]
        at = f" at resolution level {level}" if getattr(layer, "multiscale", False) and level else ""
        problem = (f"layer '{layer.name}' is {h}x{w} px{at}, smaller than the {crop}-px training crop; "
                   "lower 'crop' under Advanced" + (" or pick a finer level." if at else "."))
    return problem


def collapsible(title: str, content: Container) -> Container:
    """A "show <title>" check box above ``content``, which is hidden until it is ticked."""
    toggle = CheckBox(text=f"show {title.lower()} settings", value=False)
    content.visible = False
    content.margins = (12, 0, 0, 0)
    toggle.changed.connect(lambda on: setattr(content, "visible", bool(on)))
    outer = Container(widgets=[toggle, content], labels=False)
    outer.margins = (0, 0, 0, 0)
    outer.toggle, outer.content = toggle, content
    return outer


class ScrollingForm(Container):
    """A form in a vertical scroll area, so a tall widget fits a small screen, with an optional
    footer pinned below it (never scrolled away, never squashed by other docks).

    napari docks ``widget.native``, which is the *inner* widget of a magicgui
    ``Container(scrollable=True)`` (its scroll area is lost), so the scroll area is built here.
    The form's widgets live in ``self.form``; the footer's in ``self.footer``.
    """

    def __init__(self, widgets: list, footer: Container | None = None) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QFrame, QScrollArea

        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.form = Container(widgets=widgets)
        self.form.native.layout().addStretch(1)  # rows stay together at the top of a tall dock
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.form.native)
        scroll.setMinimumWidth(self.form.native.minimumSizeHint().width() + 16)
        scroll.setMinimumHeight(48)  # a row or two of the form stay visible beside other docks
        self.native.layout().addWidget(scroll, 1)
        self.scroll_area = scroll
        self.footer = footer
        if footer is not None:
            from qtpy.QtWidgets import QSizePolicy

            footer.margins = (9, 4, 9, 4)
            # never squeezed below what it needs to show (the scroll area gives way instead)
            footer.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
            self.native.layout().addWidget(footer.native, 0)
            # no fixed minimum here: the layout's own (scroll area minimum + the footer as it is now,
            # warning line included) keeps Run, progress and warnings in view

    def reset_choices(self, *_) -> None:
        self.form.reset_choices()
        if self.footer is not None:
            self.footer.reset_choices()

    def fit_footer(self) -> None:
        """Make the footer as tall as its rows need now (word-wrapped read-outs included): Qt's
        layouts under-size nested word-wrapped labels, which cut the last lines of a read-out."""
        if self.footer is None:
            return
        box = self.footer.native
        width = max(box.width(), self.native.width()) - 18
        need = 0
        for widget in self.footer:
            native = widget.native
            if not native.isVisible() and not native.isVisibleTo(box):
                continue
            h = native.heightForWidth(width) if native.hasHeightForWidth() else -1
            need += max(h, native.sizeHint().height(), native.minimumHeight())
        spacing = max(box.layout().spacing(), 0)
        margins = box.layout().contentsMargins()
        box.setMinimumHeight(need + spacing * (len(self.footer) - 1) + margins.top() + margins.bottom())


def show_lines(label, text: str) -> None:
    """Set a read-out ``Label`` to ``text``, tall enough for every line at its font."""
    label.value = text
    lines = text.count("\n") + 1 if text else 0
    label.native.setMinimumHeight(int((lines + 1) * label.native.fontMetrics().lineSpacing()) if lines else 0)


def monospace_font():
    """The system's fixed-width font, for matrix read-outs (set as a font, so its metrics are right)."""
    from qtpy.QtGui import QFontDatabase

    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def user_message(err: BaseException, what: str) -> str:
    """A notification text: our own errors verbatim, anything else with its type."""
    if isinstance(err, (InputError, OutOfMemoryAdvice, DeviceError)):
        return str(err)
    return f"{what} failed ({type(err).__name__}: {err}); see the log for details."


def fmt_seconds(s: float) -> str:
    s = int(round(max(0.0, s)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
