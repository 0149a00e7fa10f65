"""Dock widget "Meta-structure density": per-class density maps of Labels layers, live.

The maps and comparisons are computed in a worker thread (:class:`~._background.LatestJob`); the
GUI thread only shows them. The layer pickers refresh when napari calls ``reset_choices`` on the
docked widget.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Select, Slider
from psygnal import Signal

from .._tooltips import DENSITY as TIPS
from ..core.density import KERNELS, compare_to_reference, density_map, label_classes
from ..core.validate import IGNORE_VALUE, InputError, check_labels, check_labels_layout
from ._background import LatestJob
from ._forms import ScrollingForm, debounce_timer, layer_picker, monospace_font, show_lines
from ._layers import axes_of, layer_pixel_size, upsert_layer

if TYPE_CHECKING:
    import napari

DEBOUNCE_MS = 200
COLORMAP = "magma"


def density_layer_name(labels_name: str, cls: int, n_shown: int = 1) -> str:
    """``<labels> density`` for the one foreground class, else ``<labels> density c<k>``."""
    return f"{labels_name} density" if n_shown == 1 and cls == 1 else f"{labels_name} density c{cls}"


def format_comparison(name: str, result: dict | None, problem: str | None = None) -> str:
    """One layer's block of the panel: matrix, rank and similarity, or why there is none."""
    if problem:
        return f"{name}: {problem}"
    q = np.asarray(result["transition_matrix"])
    plain = result.get("plain_correlation")
    lines = [f"{name}:", f"  similarity {result['similarity']:.3f}"
             + ("" if plain is None else f" (plain r {plain:.3f})") + f"  rank {result['rank']}"]
    for i, row in enumerate(q[:6]):
        cells = " ".join("   -  " if not np.isfinite(v) else f"{v:6.3f}" for v in row[:6])
        lines.append(f"  Q[{i}, :] {cells}" + (" ..." if q.shape[1] > 6 else ""))
    return "\n".join(lines)


#: Under the comparisons, two lines (the footer is pinned; more would squash the form above).
LEGEND = ("similarity: 1 = kept, 0 = lost (label noise\n"
          "corrected); plain r: as drawn; rank < classes: lost")


def _compare(ref: np.ndarray, labels: np.ndarray, name: str, h: int, kernel: str) -> str:
    try:
        result = compare_to_reference(ref, labels, h, kernel, ignore_value=IGNORE_VALUE)
    except InputError as err:
        return format_comparison(name, None, str(err))
    except Exception as err:  # noqa: BLE001 -- shown on the panel, never a traceback
        return format_comparison(name, None, f"{type(err).__name__}: {err}")
    return format_comparison(name, result)


def compute_maps(items: list, reference, h: int, kernel: str) -> dict:
    """Density maps of the foreground classes, and comparisons with the reference (worker thread).

    Parameters
    ----------
    items : list of (name, array)
    reference : (name, array) or None

    Returns
    -------
    dict with ``maps`` (list of (name, classes, maps)), ``messages`` and ``blocks`` (panel text).
    """
    out: dict = {"maps": [], "messages": [], "blocks": []}
    ref = None
    if reference is not None:
        try:
            ref = check_labels(reference[1], name=reference[0])
            label_classes(ref, IGNORE_VALUE, name=reference[0])
        except InputError as err:
            out["messages"].append(f"reference: {err}")
            ref = None
    for name, data in items:
        try:
            labels = check_labels(data, name=name)
            classes = label_classes(labels, IGNORE_VALUE, name=name)
            shown = [c for c in classes if c > 0] or list(classes)  # background is the complement
            maps = density_map(labels, h, kernel, classes=shown, ignore_value=IGNORE_VALUE, name=name,
                               edges="inside")  # no dark border on screen
        except InputError as err:
            out["messages"].append(str(err))
            continue
        except Exception as err:  # noqa: BLE001 -- never a traceback in the viewer
            out["messages"].append(f"{name}: density failed: {type(err).__name__}: {err}")
            continue
        out["maps"].append((name, shown, maps))
        if ref is not None:
            out["blocks"].append(f"{name}: the reference" if name == reference[0]
                                 else _compare(ref, labels, name, h, kernel))
    return out


class DensityWidget(ScrollingForm):
    """Pick Labels layers and a bandwidth; see each class's density and compare to a reference.

    Attributes
    ----------
    updated : Signal
        Emitted with the list of density layers when a computed update lands.
    """

    updated = Signal(object)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:  # npe2 injects the viewer
        from napari.layers import Labels

        self._viewer = viewer
        self._job = LatestJob(self._show, self._failed)
        self.layers = Select(name="layers", label="labels", choices=self._layer_choices)
        self.layers.native.setMaximumHeight(100)
        self.reference = layer_picker(Labels, name="reference", label="reference", nullable=True)
        self.bandwidth = Slider(name="bandwidth", label="bandwidth h (px)", min=0, max=200, value=10)
        self.kernel = ComboBox(name="kernel", choices=KERNELS, value="box")
        self.live = CheckBox(name="live", text="live update", value=True)
        self.run_button = PushButton(name="run_button", text="Update")
        self.status = Label(name="status")
        self.panel = Label(name="panel")
        inputs = [self.layers, self.reference, self.bandwidth, self.kernel, self.live]
        footer = Container(widgets=[self.run_button, self.status, self.panel], labels=False)  # no bare row names
        super().__init__(widgets=inputs, footer=footer)  # the settings scroll; Update and the read-out stay
        for widget in [*inputs, self.run_button, self.panel]:
            widget.tooltip = TIPS.get(widget.name, "")
        self.panel.native.setFont(monospace_font())
        self.status.native.setWordWrap(True)
        self.native.destroyed.connect(self._job.close)

        self._timer = debounce_timer(self, DEBOUNCE_MS, self.update_maps)
        for widget in inputs:
            widget.changed.connect(self._on_change)
        self.run_button.changed.connect(self.update_maps)

    # ------------------------------------------------------------------ choices and state
    def _layer_choices(self, _widget=None):
        """The viewer's Labels layers."""
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Labels)]

    @staticmethod
    def layer_problem(layer) -> str | None:
        """Why ``layer`` has no density maps, or None (no pixel reads: values are checked in the worker)."""
        from napari.layers import Labels

        if not isinstance(layer, Labels):
            return (f"{layer.name} is an {type(layer).__name__} layer, not Labels; pick a Labels layer "
                    "(or convert it: right-click > Convert to Labels).")
        if layer.multiscale:
            return f"{layer.name} is multiscale; density maps need a single-scale Labels layer."
        try:
            check_labels_layout(layer.data, name=layer.name)
        except InputError as err:
            return str(err)
        return None

    def _on_change(self, _value=None) -> None:
        if self.live.value:
            self._timer.start()

    # ---------------------------------------------------------------------------- actions
    def update_maps(self, _value=None) -> None:
        """Compute every chosen layer's class densities in a worker (see ``updated``)."""
        self._timer.stop()
        chosen = list(self.layers.value)
        if not chosen:
            self.status.value = "Pick one or more Labels layers."
            return
        h, kernel, ref = int(self.bandwidth.value), self.kernel.value, self.reference.value
        messages, items = [], []
        ref_problem = self.layer_problem(ref) if ref is not None else None
        if ref_problem:
            messages.append(f"reference: {ref_problem}")
        for layer in chosen:
            problem = self.layer_problem(layer)
            if problem:
                messages.append(problem)
            else:
                items.append((layer.name, layer.data))
        geometry = {layer.name: (tuple(layer.scale), tuple(layer.translate), axes_of(layer)) for layer in chosen}
        sizes = {layer.name: layer_pixel_size(layer) for layer in chosen}
        tag = {"h": h, "kernel": kernel, "pixel_sizes": sizes, "messages": messages, "geometry": geometry,
               "has_ref": ref is not None}
        self.status.value = f"computing {len(items)} density map(s), h = {h}…" if items else "\n".join(messages)
        self._job.submit(compute_maps, items, None if ref is None or ref_problem else (ref.name, ref.data),
                         h, kernel, tag=tag)

    def _show(self, out: dict, tag: dict) -> None:
        h, kernel = tag["h"], tag["kernel"]
        top = max((float(m.max()) for _, _, maps in out["maps"] for m in maps if m.size), default=1.0)
        layers = []
        for name, classes, maps in out["maps"]:
            scale, translate, axes = tag["geometry"][name]
            for cls, dmap in zip(classes, maps):
                um = tag["pixel_sizes"].get(name)
                meta = {"density": {"source": name, "bandwidth": h, "kernel": kernel, "normalize": "fraction",
                                    "bandwidth_um": None if um is None else round(h * um, 4),
                                    "edges": "inside", "ignore_value": IGNORE_VALUE, "class": int(cls)}}
                layers.append(upsert_layer(
                    self._viewer, density_layer_name(name, cls, len(classes)), dmap, "image", scale=scale,
                    translate=translate, metadata=meta, colormap=COLORMAP,
                    contrast_limits=(0.0, top if top > 0 else 1.0), **axes))
        messages = tag["messages"] + out["messages"]
        self.status.value = "\n".join(messages) if messages else (
            f"{len(layers)} map(s), h = {h} px{_in_um(h, tag['pixel_sizes'])}, {kernel}; contrast 0-{top:.2f} for all")
        show_lines(self.panel, "\n".join([*out["blocks"], LEGEND]) if out["blocks"] else (
            "" if tag["has_ref"] else "Pick a reference to compare the layers with."))
        self.fit_footer()
        self.updated.emit(layers)

    def _failed(self, err: BaseException, tag: dict) -> None:
        self.status.value = "\n".join([*tag["messages"], f"density failed: {type(err).__name__}: {err}"])
        self.updated.emit([])


def _in_um(h: int, sizes: dict) -> str:
    """`` = 0.65 µm`` when the layers share one pixel size, else ""."""
    known = {None if v is None else round(v, 6) for v in sizes.values()}
    size = known.pop() if len(known) == 1 else None
    return "" if size is None else f" = {h * size:.3g} µm"
