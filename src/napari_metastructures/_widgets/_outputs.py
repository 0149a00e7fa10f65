"""The output layers of a run panel: one mask and one probability layer per input, updated in place."""
from __future__ import annotations

from ._layers import FrozenLayer, unique_name, upsert_layer


class OutputLayers:
    """The ``<image><suffix>`` mask and ``<image><suffix>_prob`` layers a panel writes.

    It remembers the layers it made, so "clear previous results" removes only those. Probability
    layers carry ``metadata["probability_of"]`` (the mask's name), which keeps them out of the
    widgets' image choices.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    suffix : str
    """

    def __init__(self, viewer, suffix: str) -> None:
        self.viewer, self.suffix = viewer, suffix
        self.made: list = []

    def is_ours(self, name: str) -> bool:
        """True when layer ``name`` exists and was made here."""
        return name in self.viewer.layers and any(m is self.viewer.layers[name] for m in self.made)

    def names(self, inputs: list, reuse: bool) -> list:
        """``(mask name, probability name)`` per input.

        With ``reuse``, every other layer made here is removed and our own layers of the plain names
        are kept, to be updated in place (fast); other names get a free ``[2]``, ``[3]``... suffix.
        """
        base = [(f"{f.name}{self.suffix}", f"{f.name}{self.suffix}_prob") for f in inputs]
        if reuse:
            self.clear(keep={name for pair in base for name in pair})
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
            return upsert_layer(self.viewer, name, data, kind="labels" if kind is Labels else "image",
                                scale=frozen.scale, translate=frozen.translate, metadata=metadata, **style)

        layers = [put(prob_name, prob, Image, {**meta, "probability_of": mask_name}, colormap="magma",
                      contrast_limits=(0.0, 1.0), blending="additive", visible=False),
                  put(mask_name, mask, Labels, meta, opacity=0.6)]
        self.made += [layer for layer in layers if all(layer is not m for m in self.made)]
        return layers[1]

    def set_metadata(self, mask_name: str, prob_name: str, meta: dict) -> None:
        """Give both layers (where they still exist) new metadata."""
        for name, metadata in ((mask_name, meta), (prob_name, {**meta, "probability_of": mask_name})):
            if name in self.viewer.layers:
                self.viewer.layers[name].metadata = metadata

    def drop(self, pairs: list) -> None:
        """Remove the named layers."""
        for names in pairs:
            for name in names:
                if name in self.viewer.layers:
                    layer = self.viewer.layers[name]
                    self.made = [m for m in self.made if m is not layer]
                    self.viewer.layers.remove(layer)

    def clear(self, keep=frozenset()) -> None:
        """Remove every layer made here, except those named in ``keep``."""
        kept = []
        for layer in self.made:
            if layer in self.viewer.layers and layer.name in keep:
                kept.append(layer)
            elif layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.made = kept
