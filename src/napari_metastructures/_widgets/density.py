"""Dock widget "Meta-structure density": per-class density maps of Labels layers, live.

The layer pickers refresh when napari calls ``reset_choices`` on the docked widget.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Select, Slider

from .._tooltips import DENSITY as TIPS
from ..core.density import KERNELS, compare_to_reference, density_map, label_classes
from ..core.validate import IGNORE_VALUE, InputError, check_labels
from ._forms import debounce_timer, layer_picker
from ._layers import upsert_layer

if TYPE_CHECKING:
    import napari

DEBOUNCE_MS = 200
COLORMAP = "magma"


def density_layer_name(labels_name: str, cls: int) -> str:
    return f"{labels_name}_density_c{cls}"


def format_comparison(name: str, result: dict | None, problem: str | None = None) -> str:
    """One layer's block of the panel: matrix, rank and similarity, or why there is none."""
    if problem:
        return f"{name}: {problem}"
    q = np.asarray(result["transition_matrix"])
    lines = [f"{name}:  similarity {result['similarity']:.3f}   rank {result['rank']}"]
    for i, row in enumerate(q[:6]):
        cells = " ".join("   -  " if not np.isfinite(v) else f"{v:6.3f}" for v in row[:6])
        lines.append(f"  Q[{i}, :] {cells}" + (" ..." if q.shape[1] > 6 else ""))
    return "\n".join(lines)


class DensityWidget(Container):
    """Pick Labels layers and a bandwidth; see each class's density and compare to a reference."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:  # npe2 injects the viewer
        from napari.layers import Labels

        self._viewer = viewer
        self.layers = Select(name="layers", label="labels", choices=self._layer_choices)
        self.reference = layer_picker(Labels, name="reference", label="reference", nullable=True)
        self.bandwidth = Slider(name="bandwidth", label="bandwidth h", min=0, max=200, value=10)
        self.kernel = ComboBox(name="kernel", choices=KERNELS, value="box")
        self.live = CheckBox(name="live", text="live update", value=True)
        self.run_button = PushButton(name="run_button", text="Update")
        self.status = Label(name="status")
        self.panel = Label(name="panel")
        inputs = [self.layers, self.reference, self.bandwidth, self.kernel, self.live]
        super().__init__(widgets=[*inputs, self.run_button, self.status, self.panel])
        for widget in [*inputs, self.run_button, self.panel]:
            widget.tooltip = TIPS.get(widget.name, "")
        self.panel.native.setStyleSheet("font-family: monospace;")
        self.status.native.setWordWrap(True)

        self._timer = debounce_timer(self, DEBOUNCE_MS, self.update_maps)
        for widget in inputs:
            widget.changed.connect(self._on_change)
        self.run_button.changed.connect(self.update_maps)

    # ------------------------------------------------------------------ choices and state
    def _is_output(self, layer) -> bool:
        return "density" in layer.metadata and "_density_c" in layer.name

    def _layer_choices(self, _widget=None):
        """Labels and Image layers (an Image gets a message), without our own density maps."""
        from napari.layers import Image, Labels

        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, (Labels, Image)) and not self._is_output(layer)]

    @staticmethod
    def layer_problem(layer) -> str | None:
        """Why ``layer`` has no density maps, or None."""
        from napari.layers import Labels

        if not isinstance(layer, Labels):
            return (f"{layer.name} is an {type(layer).__name__} layer, not Labels; pick a Labels layer "
                    "(or convert it: right-click > Convert to Labels).")
        if layer.multiscale:
            return f"{layer.name} is multiscale; density maps need a single-scale Labels layer."
        try:
            label_classes(check_labels(layer.data, name=layer.name), IGNORE_VALUE, name=layer.name)
        except InputError as err:
            return str(err)
        return None

    def _on_change(self, _value=None) -> None:
        if self.live.value:
            self._timer.start()

    # ---------------------------------------------------------------------------- actions
    def update_maps(self, _value=None) -> list:
        """Compute every chosen layer's class densities now; returns the density layers."""
        self._timer.stop()
        chosen = list(self.layers.value)
        if not chosen:
            self.status.value = "Pick one or more Labels layers."
            return []
        h, kernel = int(self.bandwidth.value), self.kernel.value
        out, messages, blocks = [], [], []
        ref = self.reference.value
        ref_problem = self.layer_problem(ref) if ref is not None else None
        if ref_problem:
            messages.append(f"reference: {ref_problem}")
        for layer in chosen:
            problem = self.layer_problem(layer)
            if problem:
                messages.append(problem)
                continue
            try:
                labels = np.asarray(layer.data)
                classes = label_classes(labels, IGNORE_VALUE)
                maps = density_map(labels, h, kernel, classes=classes, ignore_value=IGNORE_VALUE, name=layer.name)
            except InputError as err:
                messages.append(str(err))
                continue
            except Exception as err:  # noqa: BLE001 -- never a traceback in the viewer
                messages.append(f"{layer.name}: density failed: {type(err).__name__}: {err}")
                continue
            meta = {"density": {"source": layer.name, "bandwidth": h, "kernel": kernel,
                                "normalize": "fraction", "ignore_value": IGNORE_VALUE}}
            for cls, dmap in zip(classes, maps):
                meta_c = {"density": {**meta["density"], "class": int(cls)}}
                top = float(dmap.max()) if dmap.size else 1.0
                out.append(upsert_layer(
                    self._viewer, density_layer_name(layer.name, cls), dmap, "image",
                    scale=tuple(layer.scale), translate=tuple(layer.translate), metadata=meta_c,
                    colormap=COLORMAP, contrast_limits=(0.0, top if top > 0 else 1.0),
                ))
            if ref is not None and not ref_problem:
                blocks.append(self._compare(ref, layer, h, kernel))
        self.status.value = "\n".join(messages) if messages else f"{len(out)} density map(s), h = {h}, {kernel}"
        self.panel.value = "\n".join(blocks) if blocks else (
            "" if ref is not None else "Pick a reference to compare the layers with.")
        return out

    @staticmethod
    def _compare(ref, layer, h: int, kernel: str) -> str:
        try:
            result = compare_to_reference(np.asarray(ref.data), np.asarray(layer.data), h, kernel,
                                          ignore_value=IGNORE_VALUE)
        except InputError as err:
            return format_comparison(layer.name, None, str(err))
        except Exception as err:  # noqa: BLE001
            return format_comparison(layer.name, None, f"{type(err).__name__}: {err}")
        return format_comparison(layer.name, result)
