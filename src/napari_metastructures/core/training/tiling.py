"""Tiled prediction with overlap and blending, for 2D images of any size.

Tiles of ``tile`` x ``tile`` pixels step by ``tile - overlap``; the last tile in each row and column
is moved back so it ends at the image edge. Each tile's output is weighted by a separable ramp that
falls towards the tile border inside the overlap, and the weighted sum is divided by the summed
weights. Memory is the output (plus one weight image) and one batch of tiles, whatever the image size.
Images smaller than a tile are padded by reflection, and the padding is cropped off the result.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..progress import check_stop

#: Tile sides are rounded up to a multiple of this (encoders downsample up to 2**5).
TILE_MULTIPLE = 32


def _positions(length: int, tile: int, stride: int) -> list:
    if length <= tile:
        return [0]
    pos = list(range(0, length - tile, stride))
    pos.append(length - tile)
    return sorted(set(pos))


def _ramp(tile: int, overlap: int) -> np.ndarray:
    """1D blending weights: linear ramp over ``overlap`` pixels at each end, 1 in the middle."""
    x = np.arange(tile, dtype=np.float32) + 0.5
    if overlap <= 0:
        return np.ones(tile, np.float32)
    return np.minimum(1.0, np.minimum(x, tile - x) / overlap).astype(np.float32)


def tile_size(tile: int, shape: tuple) -> int:
    """The tile side actually used: a multiple of 32, no larger than needed for ``shape``."""
    need = max(shape[-2:])
    t = min(int(tile), int(np.ceil(need / TILE_MULTIPLE)) * TILE_MULTIPLE)
    return max(TILE_MULTIPLE, int(np.ceil(t / TILE_MULTIPLE)) * TILE_MULTIPLE)


def predict_tiled(net, image2d_normalized: np.ndarray, tile: int = 256, overlap: int = 32,
                  batch_size: int = 4, device="cpu", stop=None) -> np.ndarray:
    """Run ``net`` over a normalised 2D image in overlapping tiles and blend the outputs.

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(B, 1, t, t)`` to logits ``(B, C, t, t)``. It is put in eval mode.
    image2d_normalized : ndarray
        2D float image, already normalised as in training.
    tile, overlap : int
        Tile side (rounded up to a multiple of 32) and overlap between neighbouring tiles.
    batch_size : int
        Tiles per forward pass.
    device : str or torch.device
        Where to run; CUDA runs under autocast (float16).
    stop : callable, optional
        Polled before every batch of tiles; when it returns True, :class:`StopRequested` is raised.

    Returns
    -------
    ndarray
        float32 probabilities: ``(H, W)`` (sigmoid) for one output channel, else ``(C, H, W)`` (softmax).
    """
    import torch

    img = np.asarray(image2d_normalized, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"predict_tiled needs a 2D image, got shape {img.shape}")
    h, w = img.shape
    t = tile_size(tile, img.shape)
    overlap = int(min(max(0, overlap), t // 2))
    if h < t or w < t:
        from .data import pad_to

        img = pad_to(img, t)
    ph, pw = img.shape
    stride = max(1, t - overlap)
    ys, xs = _positions(ph, t, stride), _positions(pw, t, stride)
    ramp = _ramp(t, overlap)
    weight_tile = np.outer(ramp, ramp)
    dev = torch.device(device)
    net.eval()
    out = None
    weight = np.zeros((ph, pw), np.float32)
    corners = [(y, x) for y in ys for x in xs]
    amp = (torch.autocast("cuda", dtype=torch.float16) if dev.type == "cuda"
           else contextlib.nullcontext())
    with torch.inference_mode(), amp:
        for start in range(0, len(corners), max(1, int(batch_size))):
            check_stop(stop)
            chunk = corners[start:start + batch_size]
            batch = np.stack([img[y:y + t, x:x + t] for y, x in chunk])[:, None]
            logits = net(torch.from_numpy(batch).to(dev)).float()
            prob = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
            prob = prob.cpu().numpy()
            if out is None:
                out = np.zeros((prob.shape[1], ph, pw), np.float32)
            for (y, x), p in zip(chunk, prob):
                out[:, y:y + t, x:x + t] += p * weight_tile
                weight[y:y + t, x:x + t] += weight_tile
    out /= weight[None]
    out = out[:, :h, :w]
    np.clip(out, 0.0, 1.0, out=out)
    return np.ascontiguousarray(out[0] if out.shape[0] == 1 else out)
