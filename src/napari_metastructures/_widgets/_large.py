"""Large and lazy layers in a run: train on a sample of blocks, preview and predict without
full-size arrays in memory.

A layer is read *in blocks* when it is lazy (dask, zarr...) or when its float32 probability map
would be larger than :data:`..core.lazy.OUTPUT_LIMIT` (1 GiB). Then:

* training reads a seeded, evenly spread sample of blocks (2D planes, or ZYX volumes when the
  engine treats stacks as volumes) of at most a pixel budget, one block at a time, in the worker
  (:func:`training_blocks`); a volume larger than the budget gives a centred slab of its planes;
* previews are placed into numpy arrays when the output is small, else into lazy (dask) arrays of
  one chunk per plane that return the trained planes' preview or zeros (:func:`place_previews`);
* Predict writes into :func:`..core.lazy.output_array`: numpy when small, else a zarr store beside
  the input's file (or a temporary one) shown as a lazy layer (:func:`predict_large`).
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.lazy import OUTPUT_LIMIT, block_indices, is_lazy, nbytes, plane_chunks, read_block, sample_blocks

#: Default pixel budget (megapixels of 2**20 px) of the blocks a large layer trains on: 16 Mpx, four 2k x 2k
#: planes; every epoch predicts them all, and the engine keeps a few float32 copies of them.
TRAIN_BUDGET_MPX = 16


def fits(shape) -> bool:
    """True when a float32 map of ``shape`` stays in memory (at most ``OUTPUT_LIMIT`` bytes)."""
    return nbytes(shape, np.float32) <= OUTPUT_LIMIT


def reads_in_blocks(data) -> bool:
    """True for a layer a run reads one block at a time: lazy, or too large for in-memory outputs."""
    return is_lazy(data) or not fits(np.shape(data))


@dataclass(frozen=True)
class Block:
    """One training block: ``lead`` indexes the leading axes (:func:`..core.lazy.block_indices`);
    ``planes``, for a volume, the z planes taken (None: all)."""

    lead: tuple
    planes: tuple | None = None

    def read(self, data) -> np.ndarray:
        if self.planes is None:
            return read_block(data, self.lead)
        return np.stack([read_block(data, self.lead + (z,)) for z in self.planes])

    def plane_indices(self, shape, block_ndim: int) -> list:
        """The full leading index of each of the block's 2D planes, in order."""
        if block_ndim == 2:
            return [self.lead]
        depth = self.planes if self.planes is not None else range(int(shape[len(self.lead)]))
        return [self.lead + (int(z),) for z in depth]

    def record(self) -> list:
        """JSON-friendly: the leading indices, then ``"z0-z1"`` (or a list) for a slab of planes."""
        out = list(self.lead)
        if self.planes is not None:
            p = self.planes
            out.append(f"{p[0]}-{p[-1]}" if list(p) == list(range(p[0], p[-1] + 1)) else list(p))
        return out


def training_blocks(shape, volume: bool, selection, budget_px: int, seed: int) -> list:
    """The blocks a large layer trains on: a seeded sample within ``budget_px`` pixels
    (:func:`..core.lazy.sample_blocks`), only of the first-axis indices in ``selection`` (None: all)."""
    shape = tuple(int(n) for n in shape)
    block_ndim = 3 if volume and len(shape) >= 3 else 2
    if selection is not None and len(shape) == block_ndim:  # one volume: the selection picks its planes
        picked = [Block((), tuple(int(z) for z in selection))]
    else:
        pool = block_indices(shape, block_ndim)
        if selection is not None:
            pool = [idx for idx in pool if idx[0] in set(selection)]
        picked = [Block(idx) for idx in sample_blocks(shape, block_ndim, budget_px, seed, only=pool)]
    plane_px = shape[-1] * shape[-2]
    if block_ndim == 3 and len(picked) == 1:  # a volume over the budget: a centred slab of its planes
        block = picked[0]
        depth = list(block.planes) if block.planes is not None else list(range(shape[len(block.lead)]))
        n = max(1, int(budget_px) // plane_px)
        if len(depth) > n:
            start = (len(depth) - n) // 2
            picked = [Block(block.lead, tuple(depth[start:start + n]))]
    return picked


def block_ndim_of(blocks: list, shape) -> int:
    """2 for plane blocks, 3 for volume blocks."""
    b = blocks[0]
    return 2 if len(b.lead) == len(shape) - 2 and b.planes is None else 3


def describe(blocks: list, shape) -> str:
    """``"2 of 8192 planes (0, 4096)"``: which blocks train, for the status line."""
    ndim = block_ndim_of(blocks, shape)
    total = len(block_indices(shape, ndim))
    first = blocks[0]
    if ndim == 3 and first.planes is not None:
        where = f"of volume {first.lead}" if first.lead else "of the volume"
        return f"z planes {first.record()[-1]} {where} ({len(first.planes)} of {shape[len(first.lead)]})"
    if total == 1:
        return "the whole image"
    what = "planes" if ndim == 2 else "volumes"
    shown = ", ".join(str(b.lead[0] if len(b.lead) == 1 else b.lead) for b in blocks[:6])
    return f"{len(blocks)} of {total} {what} ({shown}{', …' if len(blocks) > 6 else ''})"


def training_images(frozen: list, selections: list, plans: list) -> tuple:
    """``(images, axes)`` for the engine, read here (call it in the worker): the whole (selected)
    image of an in-memory input (plan None), else one array per block of its plan."""
    images, axes = [], []
    for f, sel, plan in zip(frozen, selections, plans):
        if plan is None:
            images.append(f.data if sel is None else f.data[sel])
            axes.append(f.axes)
            continue
        for block in plan:
            arr = block.read(f.data)
            images.append(arr)
            axes.append(f.axes[-arr.ndim:] if f.axes else None)
    return images, axes


def lazy_planes(shape, dtype, planes: dict):
    """A dask array of ``shape``, one chunk per 2D plane: ``planes[index]`` where given, else 0.

    Each call makes a new graph name, so napari's chunk cache never shows an older preview.
    """
    import dask.array as da

    shape, lead = tuple(int(n) for n in shape), len(shape) - 2
    one = plane_chunks(shape)

    def chunk(block_id=None):
        plane = planes.get(tuple(block_id[:lead]))
        return np.zeros(one, dtype) if plane is None else np.asarray(plane, dtype).reshape(one)

    return da.map_blocks(chunk, dtype=dtype, chunks=da.core.normalize_chunks(one, shape),
                         meta=np.empty((0,) * len(shape), dtype), name=f"metastructures-preview-{uuid.uuid4().hex}")


def empty_outputs(frozen) -> tuple:
    """Zero (mask, probability) placeholders of ``frozen``'s shape: numpy when small, else lazy."""
    shape = np.shape(frozen.data)
    if fits(shape):
        return np.zeros(shape, np.uint8), np.zeros(shape, np.float32)
    return lazy_planes(shape, np.uint8, {}), lazy_planes(shape, np.float32, {})


def place_previews(shape, blocks: list, previews: list, split) -> tuple:
    """(mask, probability) of the whole layer from the blocks' previews (``split(prob, shape)`` gives
    a block's mask and probability): numpy when small, else lazy arrays (no full-size allocation)."""
    ndim = block_ndim_of(blocks, shape)
    masks, probs = {}, {}
    for block, prob in zip(blocks, previews):
        mask, fg = split(prob, np.shape(prob))
        for i, idx in enumerate(block.plane_indices(shape, ndim)):
            masks[idx], probs[idx] = (mask, fg) if ndim == 2 else (mask[i], fg[i])
    if not fits(shape):
        dtype = next(iter(masks.values())).dtype if masks else np.uint8
        return lazy_planes(shape, dtype, masks), lazy_planes(shape, np.float32, probs)
    mask = np.zeros(shape, next(iter(masks.values())).dtype if masks else np.uint8)
    fg = np.zeros(shape, np.float32)
    for idx in masks:
        mask[idx], fg[idx] = masks[idx], probs[idx]
    return mask, fg


def store_paths(frozen, suffix: str) -> tuple:
    """``(mask store, probability store)`` beside the layer's source file when it has one in a
    writable folder (``<stem><suffix>.zarr``, ``<stem><suffix>_prob.zarr``), else ``(None, None)``:
    temporary stores."""
    if not frozen.source_path:
        return None, None
    source = Path(frozen.source_path)
    folder = source.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return None, None
    stem = source.name
    for end in (".zarr", ".tiff", ".tif", ".ome", ".nd2", ".czi", ".lif"):
        stem = stem[: -len(end)] if stem.lower().endswith(end) else stem
    stem += suffix + (f"_level{frozen.level}" if frozen.level else "")
    return folder / f"{stem}.zarr", folder / f"{stem}_prob.zarr"


def predict_large(model, frozen, suffix: str, device: str, to_mask, stop=None, **options):
    """Predict a layer read in blocks into :func:`..core.lazy.output_array` outputs.

    Returns ``(mask, probability, info)``: numpy when small, else dask arrays over finished zarr
    stores; ``info`` names the stores (``{}`` for numpy). Stores are removed when the prediction
    stops (:class:`..core.progress.StopRequested`, re-raised) or fails.
    """
    from ..core.lazy import finish_store, is_temporary, open_store, output_array, remove_store

    shape = tuple(int(n) for n in np.shape(frozen.data))
    mask_path, prob_path = store_paths(frozen, suffix)
    prob = output_array(shape, np.float32, limit=OUTPUT_LIMIT, store=prob_path)
    # the mask goes where the map goes (-1: always zarr)
    mask = output_array(shape, np.uint8, limit=OUTPUT_LIMIT if isinstance(prob, np.ndarray) else -1, store=mask_path)
    try:
        if model.classes == 1:
            model.predict(frozen.data, device=device, stop=stop, axes=frozen.axes, out=prob, **options)
            for idx in block_indices(shape, 2):
                mask[idx] = to_mask(read_block(prob, idx))
        else:  # multi-class: plane by plane, the mask is the argmax, the map 1 - p(first class)
            for idx in block_indices(shape, 2):
                p = model.predict(read_block(frozen.data, idx), device=device, stop=stop)
                mask[idx], prob[idx] = to_mask(p), 1.0 - p[0]
    except BaseException:
        remove_store(prob)
        remove_store(mask)
        raise
    if isinstance(prob, np.ndarray):
        return mask, prob, {}
    import dask.array as da

    done = [finish_store(a) for a in (mask, prob)]
    info = {"mask_store": str(done[0]), "prob_store": str(done[1]), "temporary": is_temporary(done[0])}
    return da.from_zarr(open_store(done[0])), da.from_zarr(open_store(done[1])), info
