"""Dock widget "Noisy labels": live preview of every noise family on a Labels layer.

The noise is computed in a worker thread (:class:`~._background.LatestJob`); the GUI thread only
shows the result, in one preview layer per widget, updated in place, in its own colour. The layer
pickers refresh when napari calls ``reset_choices`` on the docked widget.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit, PushButton, SpinBox
from psygnal import Signal

from .._tooltips import NOISY_LABELS as TIPS
from ..core.noise import KINDS, kind_parameters, make_noisy, noise_summary
from ..core.validate import IGNORE_VALUE, InputError, check_labels, check_labels_layout
from ._background import LatestJob
from ._forms import ScrollingForm, debounce_timer, layer_picker, monospace_font, show_lines
from ._layers import axes_of, unique_name

if TYPE_CHECKING:
    import napari

DEBOUNCE_MS = 150
#: Classes shown in the matrix read-out; larger matrices are cut.
SHOW_CLASSES = 6
#: Metadata key of the widget's one preview layer (its token).
PREVIEW_KEY = "noise_preview_of"
#: The preview's own colours (class 1, 2, ...), unlike napari's label colours of the ground truth.
PREVIEW_COLORS = ("#ff4fd8", "#ffe14d", "#00e5ff", "#b6ff3b", "#8f7bff", "#ff9d00")
#: Recorded parameters that go into a kept layer's name, with their short form.
NAME_PARAMS = (("p", "p"), ("p_fg_to_bg", "pfb"), ("p_bg_to_fg", "pbf"), ("iterations", "i"), ("ops", ""),
               ("n_classes", "c"))


def _source_colormap(source, top: int, ignore: int):
    """The source's colours for 1..top, with background and the ignore value transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    values = np.arange(1, min(int(top), 1024) + 1)
    colors = source.colormap.map(values) if values.size else []
    table = {int(v): c for v, c in zip(values, colors)}
    table.update({0: "transparent", int(ignore): "transparent", None: "gray"})
    return DirectLabelColormap(color_dict=table)


def _preview_colormap(top: int, ignore: int):
    """The preview's own colours for 1..top, with background and the ignore value transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    table = {v: PREVIEW_COLORS[(v - 1) % len(PREVIEW_COLORS)] for v in range(1, min(int(top), 1024) + 1)}
    table.update({0: "transparent", int(ignore): "transparent", None: "gray"})
    return DirectLabelColormap(color_dict=table)


def kept_name(record: dict) -> str:
    """``<source>_<family>`` with its parameters and seed, e.g. ``gt_flip_p0.2_seed3``."""
    parts = [f"{record['source']}_{record['kind']}"]
    for key, short in NAME_PARAMS:
        value = record.get(key)
        if value is not None and not isinstance(value, bool):
            parts.append(f"{short}{value:g}" if isinstance(value, float) else f"{short}{value}")
    parts.append(f"seed{record['seed']}" if record.get("seed") is not None else "kept")
    return "_".join(parts)


def compute_preview(data, name: str, kind: str, seed: int, params: dict, ignore_value: int) -> dict:
    """The noisy labels, their record and summary (runs in the worker thread: reads the pixels)."""
    clean = check_labels(data, name=name)
    if params.get("instances") is not None:
        params = {**params, "instances": np.asarray(params["instances"])}
    noisy, record = make_noisy(clean, kind, seed=seed, **params)
    ignore = record.get("ignore_value", ignore_value)
    summary = noise_summary(clean, noisy, n_classes=params.get("n_classes"), ignore_value=ignore)
    top = int(noisy.max()) if noisy.size else 0
    colormap = _preview_colormap(top, ignore)
    colormap.map(np.zeros(2, noisy.dtype))  # napari compiles its mapping (numba, ~1.5 s once) here, not in the GUI
    return {"noisy": noisy, "record": record, "summary": summary, "ignore": int(ignore), "top": top,
            "colormap": colormap, "changed": not np.array_equal(clean, noisy)}


def format_summary(summary: dict) -> str:
    """Matrix, rank and error rate as monospaced text."""
    q = summary["transition_matrix"]
    m = min(len(q), SHOW_CLASSES)
    head = "Q[fg/bg]" if summary.get("binarised") else "Q[clean, noisy]"
    lines = [f"{head:<15}  " + "".join(f"{j:>7}" for j in range(m)) + (" ..." if len(q) > m else "")]
    lines += [f"{i:>15}  " + " ".join("   -  " if v is None else f"{v:6.3f}" for v in q[i][:m]) for i in range(m)]
    err = summary["error_rate"]
    lines.append(f"rank {summary['rank']}   pixel error {'-' if err is None else f'{100 * err:.2f}%'}"
                 f"   ignored {100 * summary['ignored_fraction']:.1f}%")
    return "\n".join(lines)


class NoisyLabelsWidget(ScrollingForm):
    """Pick a Labels layer and a noise family; see the noisy labels and their transition matrix.

    Attributes
    ----------
    previewed : Signal
        Emitted with the preview layer (or None after a failure) when a computed preview lands.
    """

    previewed = Signal(object)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:  # npe2 injects the viewer
        import uuid

        from napari.layers import Labels

        self._viewer = viewer
        self._token = uuid.uuid4().hex
        self._seen_state = None  # what the last change looked like (see _on_change)
        self._result = None  # last good preview: dict(data, meta, source, kind, scale, translate, state)
        self._keep_when_ready = False
        self._job = LatestJob(self._show, self._failed)
        self.source = ComboBox(name="source", label="labels", choices=self._source_choices, nullable=True)
        self.family = ComboBox(name="family", choices=KINDS, value="flip")
        self.p = FloatSpinBox(name="p", min=0.0, max=1.0, step=0.01, value=0.2)
        self.separate = CheckBox(name="separate", text="separate fg/bg rates")
        self.p_fg_to_bg = FloatSpinBox(name="p_fg_to_bg", label="p fg->bg", min=0.0, max=1.0, step=0.01, value=0.2)
        self.p_bg_to_fg = FloatSpinBox(name="p_bg_to_fg", label="p bg->fg", min=0.0, max=1.0, step=0.01, value=0.05)
        self.exact = CheckBox(name="exact", text="exact counts")
        self.iterations = SpinBox(name="iterations", min=1, max=50, value=1)
        self.ops = LineEdit(name="ops", value="de")
        self.n_classes = SpinBox(name="n_classes", label="classes", min=0, max=255, value=0)
        self.target = SpinBox(name="target", label="target class", min=1, max=65534, value=1)
        self.instances = layer_picker(Labels, name="instances", label="instances", nullable=True)
        self.ignore_value = SpinBox(name="ignore_value", label="ignore value", min=1, max=65535, value=IGNORE_VALUE)
        self.per_frame = CheckBox(name="per_frame", text="per 2D frame", value=True)
        self.seed = SpinBox(name="seed", min=0, max=2**31 - 1, value=0)
        self.live = CheckBox(name="live", text="live preview", value=True)
        self.run_button = PushButton(name="run_button", text="Run")
        self.keep_button = PushButton(name="keep_button", text="Keep")
        self.status = Label(name="status")
        self.summary = Label(name="summary")
        self._params = {  # core parameter name -> widget
            "p": self.p, "p_fg_to_bg": self.p_fg_to_bg, "p_bg_to_fg": self.p_bg_to_fg, "exact": self.exact,
            "iterations": self.iterations, "ops": self.ops, "n_classes": self.n_classes,
            "target": self.target, "instances": self.instances, "ignore_value": self.ignore_value,
            "spatial_ndim": self.per_frame,
        }
        inputs = [self.source, self.family, self.p, self.separate, self.p_fg_to_bg, self.p_bg_to_fg,
                  self.exact, self.iterations, self.ops, self.n_classes, self.target, self.instances,
                  self.ignore_value, self.per_frame, self.seed, self.live]
        footer = Container(widgets=[self.run_button, self.keep_button, self.status, self.summary], labels=False)
        super().__init__(widgets=inputs, footer=footer)  # the settings scroll; buttons and read-out stay
        for widget in [*inputs, self.run_button, self.keep_button]:
            widget.tooltip = TIPS.get(widget.name, "")
        self.summary.native.setFont(monospace_font())
        self.status.native.setWordWrap(True)
        self.native.destroyed.connect(self._job.close)

        self._timer = debounce_timer(self, DEBOUNCE_MS, self.preview)
        for widget in inputs:
            widget.changed.connect(self._on_change)
        self.run_button.changed.connect(self.preview)
        self.keep_button.changed.connect(self.keep)
        self._pick_default_source()
        self._on_change(schedule=False)  # no layer appears until the user changes something
        self._timer.stop()

    def _pick_default_source(self) -> None:
        """Start on the active Labels layer, else the top one."""
        from napari.layers import Labels

        active = self._viewer.layers.selection.active
        labels = [layer for _, layer in self._source_choices() if isinstance(layer, Labels)]
        if isinstance(active, Labels):
            self.source.value = active
        elif labels:
            self.source.value = labels[-1]

    # ------------------------------------------------------------------ choices and state
    def _source_choices(self, _widget=None):
        """Labels and Image layers (an Image gets a message saying to pick Labels)."""
        from napari.layers import Image, Labels

        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, (Labels, Image))]

    def problem(self) -> str | None:
        """Why the chosen layer cannot be used, or None."""
        from napari.layers import Labels

        layer = self.source.value
        if layer is None:
            return "Add or pick a Labels layer."
        if not isinstance(layer, Labels):
            return (f"{layer.name} is an {type(layer).__name__} layer, not Labels; pick a Labels layer "
                    "(or convert it: right-click > Convert to Labels).")
        if layer.multiscale:
            return f"{layer.name} is multiscale; noisy labels need a single-scale Labels layer."
        try:  # in-memory labels are checked whole (~5 ms at 2048^2); lazy ones only by shape and dtype
            if isinstance(layer.data, np.ndarray):
                check_labels(layer.data, name=layer.name)
            else:
                check_labels_layout(layer.data, name=layer.name)
        except InputError as err:
            return str(err)
        return None

    def _state(self) -> tuple:
        """What a preview depends on; a refresh of the layer lists leaves it unchanged."""
        takes = set(kind_parameters(self.family.value))
        params = [w for name, w in self._params.items() if name in takes]
        values = [w.value for w in (self.family, self.separate, self.seed, *params)]
        # layers by name: npe2's proxy hands out a new wrapper object on each access
        return tuple(v.name if hasattr(v, "data") else v for v in (self.source.value, *values))

    def _on_change(self, _value=None, schedule: bool = True) -> None:
        """Show the family's parameters, validate the layer, and schedule a preview."""
        takes = set(kind_parameters(self.family.value))
        separate = "p_fg_to_bg" in takes and self.separate.value
        layer = self.source.value
        for name, widget in self._params.items():
            widget.visible = name in takes
        self.separate.visible = "p_fg_to_bg" in takes
        self.p.visible = "p" in takes and not separate
        self.p_fg_to_bg.visible = self.p_bg_to_fg.visible = separate
        self.per_frame.visible = "spatial_ndim" in takes and layer is not None and layer.ndim > 2
        self.seed.visible = "seed" in takes
        problem = self.problem()
        for button in (self.run_button, self.keep_button):
            button.enabled = problem is None
            button.tooltip = problem or TIPS.get(button.name, "")
        self.status.value = problem or ""
        if problem:
            self._set_summary("")  # no matrix of an earlier source stays on screen
        state = self._state()
        if state == self._seen_state:
            schedule = False  # e.g. the dock refreshed its choices: nothing the preview uses changed
        self._seen_state = state
        if problem is None and self.live.value and schedule:
            self._timer.start()

    def parameters(self) -> dict:
        """Core parameters of the chosen family from the controls (None = the core's default)."""
        takes = kind_parameters(self.family.value)
        params = {name: w.value for name, w in self._params.items() if name in takes}
        if "p_fg_to_bg" in params:
            if self.separate.value:
                params["p"] = None
            else:
                params["p_fg_to_bg"] = params["p_bg_to_fg"] = None
        if "n_classes" in params:
            params["n_classes"] = params["n_classes"] or None
        if "spatial_ndim" in params:
            layer = self.source.value
            params["spatial_ndim"] = 2 if params["spatial_ndim"] and layer is not None and layer.ndim > 2 else None
        if params.get("instances") is not None:
            params["instances"] = params["instances"].data  # read in the worker
        return params

    def _set_summary(self, text: str) -> None:
        """The matrix read-out, tall enough for every line at the dock's font."""
        show_lines(self.summary, text)

    def preview_layer(self):
        """The widget's preview layer, or None (found by its token: npe2 proxies hand out new objects)."""
        for layer in self._viewer.layers:
            if (layer.metadata or {}).get(PREVIEW_KEY) == self._token:
                return layer
        return None

    # ---------------------------------------------------------------------------- actions
    def preview(self, _value=None) -> None:
        """Compute the noisy labels in a worker; they land in the preview layer (see ``previewed``)."""
        self._timer.stop()
        problem = self.problem()
        if problem:
            self.status.value = problem
            self._keep_when_ready = False
            return
        layer, kind = self.source.value, self.family.value
        params = self.parameters()
        info = {"state": self._state(), "source": layer.name, "kind": kind,
                "instances": self.instances.value.name if params.get("instances") is not None else None,
                "scale": tuple(layer.scale), "translate": tuple(layer.translate), "layer": layer,
                "axes": axes_of(layer)}
        self.status.value = f"computing {kind} on {layer.name}…"
        self._job.submit(compute_preview, layer.data, layer.name, kind, int(self.seed.value), params,
                         int(self.ignore_value.value), tag=info)

    def _show(self, out: dict, info: dict) -> None:
        """A computed preview: into the one preview layer, replaced in place, drawn on top."""
        record = out["record"]
        if info["instances"] is not None:
            record["instances"] = info["instances"]
        record["source"] = info["source"]
        meta = {"noise": record, PREVIEW_KEY: self._token}
        name = f"{info['source']}_{info['kind']} (preview)"
        layer, colormap = self.preview_layer(), out["colormap"]
        if layer is not None and (layer.data.shape != out["noisy"].shape or layer.name != name):
            if layer.data.shape != out["noisy"].shape:
                self._viewer.layers.remove(layer)
                layer = None
            else:
                layer.name = unique_name(self._viewer, name)
        if layer is None:
            layer = self._viewer.add_labels(out["noisy"], name=unique_name(self._viewer, name), metadata=meta,
                                            scale=info["scale"], translate=info["translate"], colormap=colormap,
                                            **info["axes"])
        else:
            layer.data, layer.metadata, layer.colormap = out["noisy"], meta, colormap
            layer.scale, layer.translate, layer.visible = info["scale"], info["translate"], True
            index = self._viewer.layers.index(layer)
            if index != len(self._viewer.layers) - 1:  # stay above kept layers and the ground truth
                self._viewer.layers.move(index, len(self._viewer.layers))
        self._result = dict(data=out["noisy"], meta={"noise": dict(record)}, source=info["source"], kind=info["kind"],
                            scale=info["scale"], translate=info["translate"], state=info["state"], axes=info["axes"],
                            colormap=_source_colormap(info["layer"], out["top"], out["ignore"]))
        self.status.value = (f"preview: {layer.name}" if out["changed"] else
                             f"preview: {layer.name} is the same as {info['source']}: {info['kind']} changes "
                             "nothing on these labels (does it need instance labels, or more classes?)")
        self._set_summary(format_summary(out["summary"]))
        self.fit_footer()
        if self._keep_when_ready and info["state"] == self._state():
            self._keep_when_ready = False
            self.keep()
        self.previewed.emit(layer)

    def _failed(self, err: BaseException, info: dict) -> None:
        """A preview failed: say why on the status line; the last good preview stays."""
        self._keep_when_ready = False
        text = str(err)
        if not isinstance(err, InputError):
            text = f"{info['kind']} failed: {type(err).__name__}: {err}"
        self.status.value = text if text.startswith(info["source"]) else f"{info['source']}: {text}"
        self.previewed.emit(None)

    def keep(self, _value=None):
        """Freeze the current preview as a new Labels layer with its parameters and seed.

        Returns the kept layer, or None when the preview of the current settings is still being
        computed: it is then kept as soon as it lands.
        """
        res = self._result
        if res is None or res["state"] != self._state() or self._timer.isActive():
            self._keep_when_ready = True
            self.preview()
            return None
        kept = self._viewer.add_labels(
            np.array(res["data"], copy=True), name=unique_name(self._viewer, kept_name(res["meta"]["noise"])),
            scale=res["scale"], translate=res["translate"], metadata={"noise": dict(res["meta"]["noise"])},
            colormap=res["colormap"], **res["axes"],
        )
        preview = self.preview_layer()
        if preview is not None:
            preview.visible = False  # it shows the same labels; the next preview shows it again
        self.status.value = f"kept as {kept.name}"
        return kept
