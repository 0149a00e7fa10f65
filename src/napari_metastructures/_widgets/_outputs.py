"""The output layers of a run panel: one mask and one probability layer per input, updated in place."""
from __future__ import annotations

import uuid

from ..core.validate import MAX_CLASSES
from ._layers import FrozenLayer, unique_name, upsert_layer

#: Metadata key that marks a layer as made by one panel (its token).
TOKEN_KEY = "output_of_panel"
#: Colours of a run's mask classes 1, 2, ... (cyan first): never napari's label-1 colour of the
#: ground truth, nor the orange of the noisy-labels preview.
OUTPUT_COLORS = ("#00d7ff", "#ffd800", "#ff5ad2", "#7bff5a", "#a58bff", "#ff8a4d")


def output_colormap(n_classes: int = 1):
    """Background transparent, classes 1..n in :data:`OUTPUT_COLORS` (cycled)."""
    from napari.utils.colormaps import DirectLabelColormap

    table = {v: OUTPUT_COLORS[(v - 1) % len(OUTPUT_COLORS)] for v in range(1, max(1, int(n_classes)) + 1)}
    table.update({0: "transparent", None: "gray"})
    return DirectLabelColormap(color_dict=table)


class OutputLayers:
    """The ``<image><suffix>`` mask and ``<image><suffix>_prob`` layers a panel writes.

    Its layers carry ``metadata[TOKEN_KEY]``, a token of this panel: it recognises them by that
    token, not by identity (npe2 hands widgets a proxy viewer whose layers are new objects at every
    access). "Clear previous results" removes only its earlier results *of the same images*.
    Probability layers carry ``metadata["probability_of"]`` (the mask's name), which keeps them out
    of the widgets' image choices.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    suffix : str
    """

    def __init__(self, viewer, suffix: str) -> None:
        self.viewer, self.suffix = viewer, suffix
        self.token = uuid.uuid4().hex

    def _mine(self, layer) -> bool:
        return (layer.metadata or {}).get(TOKEN_KEY) == self.token

    def is_ours(self, name: str) -> bool:
        """True when layer ``name`` exists and was made here."""
        return name in self.viewer.layers and self._mine(self.viewer.layers[name])

    def names(self, inputs: list, reuse: bool) -> list:
        """``(mask name, probability name)`` per input.

        With ``reuse``, the other layers made here for the same inputs are removed and our own
        layers of the plain names are kept, to be updated in place (fast); results of other images
        stay. Other names get a free ``[2]``, ``[3]``... suffix.
        """
        base = [(f"{f.name}{self.suffix}", f"{f.name}{self.suffix}_prob") for f in inputs]
        if reuse:
            self.clear(keep={name for pair in base for name in pair}, sources={f.name for f in inputs})
        out = []
        for mask, _prob in base:
            if not (reuse and self.is_ours(mask)):
                mask = unique_name(self.viewer, mask)
            prob = f"{mask}_prob"
            if not (reuse and self.is_ours(prob)):
                prob = unique_name(self.viewer, prob)
            out.append((mask, prob))
        return out

    def write(self, mask_name: str, prob_name: str, mask, prob, frozen: FrozenLayer, meta: dict):
        """Update (or add) the probability and mask layers; returns the mask layer.

        An existing layer only gets new data and metadata (no scale/translate/style writes: they
        cost ~50 ms of napari events per update, and the user's display settings stay).
        """
        from napari.layers import Image, Labels

        def put(name, data, kind, metadata, **style):
            layer = self.viewer.layers[name] if name in self.viewer.layers else None
            if isinstance(layer, kind) and layer.data.shape == data.shape and layer.data.dtype == data.dtype:
                layer.data, layer.metadata = data, metadata
                return layer
            geometry = frozen.geometry()
            return upsert_layer(self.viewer, name, data, kind="labels" if kind is Labels else "image",
                                scale=geometry.pop("scale"), translate=geometry.pop("translate"),
                                metadata=metadata, **geometry, **style)

        meta = {**meta, TOKEN_KEY: self.token}
        put(prob_name, prob, Image, {**meta, "probability_of": mask_name}, colormap="magma",
            contrast_limits=(0.0, 1.0), blending="additive", visible=False)
        return put(mask_name, mask, Labels, meta, opacity=0.6, colormap=output_colormap(MAX_CLASSES))

    def set_metadata(self, mask_name: str, prob_name: str, meta: dict) -> None:
        """Give both layers (where they still exist) new metadata."""
        meta = {**meta, TOKEN_KEY: self.token}
        for name, metadata in ((mask_name, meta), (prob_name, {**meta, "probability_of": mask_name})):
            if name in self.viewer.layers:
                self.viewer.layers[name].metadata = metadata

    def drop(self, pairs: list) -> None:
        """Remove the named layers."""
        for names in pairs:
            for name in names:
                if name in self.viewer.layers:
                    self.viewer.layers.remove(name)

    def clear(self, keep=frozenset(), sources=None) -> None:
        """Remove the layers made here (only those of ``sources``, input names, when given), except
        those named in ``keep``."""
        doomed = [layer.name for layer in self.viewer.layers if self._mine(layer) and layer.name not in keep
                  and (sources is None or (layer.metadata or {}).get("source") in sources)]
        for name in doomed:
            self.viewer.layers.remove(name)
