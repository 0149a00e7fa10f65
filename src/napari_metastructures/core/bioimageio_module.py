"""A self-contained torch module for bioimage.io packages: our preprocessing, the network, a sigmoid.

:class:`PackagedModel` maps a raw 2D image ``(B, 1, H, W)`` to foreground probabilities ``(B, 1, H, W)``.
It repeats in torch what :func:`~.training.data.preprocess` does in numpy and scipy for one 2D plane
(percentile normalisation, haze removal with Otsu foreground exclusion, the significance gate, local
contrast), so a program that only runs TorchScript (deepImageJ, ilastik, QuPath) feeds the network
what it was trained on. It is compiled with ``torch.jit.script``; the network inside is traced.

Not repeated: the per-image calibration of iGTT models (the output is the network's sigmoid), tiling
(one pass over the whole image, padded at the end to a multiple of 32), and volume statistics (every
plane is normalised alone).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Height and width are padded up to a multiple of this before the network (encoders downsample 2**5).
MULTIPLE = 32


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """numpy's default (linear) percentile of all of ``x``, without torch.quantile's size limit."""
    flat = x.reshape(-1)
    n = flat.numel()
    pos = q / 100.0 * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    a = torch.kthvalue(flat, lo + 1).values
    b = torch.kthvalue(flat, hi + 1).values
    return a + (b - a) * (pos - lo)


def symmetric_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Indices of ``range(-r, n + r)`` folded into ``[0, n)`` as scipy's ``mode="reflect"`` does."""
    idx = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    """scipy.ndimage's 1D Gaussian weights for ``truncate=3.0``."""
    r = int(3.0 * sigma + 0.5)
    t = torch.arange(-r, r + 1, device=device, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return (w / w.sum()).to(torch.float32)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of a 2D ``(H, W)`` tensor as ``scipy.ndimage.gaussian_filter(mode="reflect", truncate=3)``."""
    if sigma <= 0:
        return x
    w = gaussian_kernel(sigma, x.device)
    r = (w.numel() - 1) // 2
    h, wd = x.shape[0], x.shape[1]
    rows = x.index_select(0, symmetric_index(h, r, x.device))  # (h + 2r, W)
    rows = F.conv1d(rows.t().unsqueeze(1), w.view(1, 1, -1)).squeeze(1).t()  # over H
    cols = rows.index_select(1, symmetric_index(wd, r, x.device))
    return F.conv1d(cols.unsqueeze(1), w.view(1, 1, -1)).squeeze(1)  # over W


def normalize(x: torch.Tensor, low: float, high: float, clip: bool) -> torch.Tensor:
    """:func:`~.training.data.normalize`: percentiles ``low``/``high`` to 0/1 (min/max when flat)."""
    lo, hi = percentile(x, low), percentile(x, high)
    if not bool(hi > lo):
        lo, hi = x.min(), x.max()
    if not bool(hi > lo):
        return torch.zeros_like(x)
    out = (x - lo) / (hi - lo)
    return out.clamp(0.0, 1.0) if clip else out


def noise_level(x: torch.Tensor) -> torch.Tensor:
    """:func:`~.training.data.noise_level`: MAD of the residual of a 1-px blur, scaled to a standard deviation."""
    r = (x - blur(x, 1.0)).reshape(-1)
    if r.numel() > 1_000_000:
        r = r[:: r.numel() // 1_000_000]
    med = percentile(r, 50.0)
    return 1.4826 * percentile((r - med).abs(), 50.0) / 0.8


def _median_rows(b: torch.Tensor) -> torch.Tensor:
    """numpy's median of each row (the mean of the two middle values for an even length)."""
    n = b.shape[1]
    lo = torch.kthvalue(b, (n + 1) // 2, dim=1).values
    hi = torch.kthvalue(b, n // 2 + 1, dim=1).values
    return 0.5 * (lo + hi)


def background_noise(x: torch.Tensor) -> torch.Tensor:
    """:func:`~.training.data.background_noise` of one plane: the 10th percentile of 16 x 16 blocks' noise."""
    block = 16
    h, w = (x.shape[0] // block) * block, (x.shape[1] // block) * block
    if h == 0 or w == 0:
        return noise_level(x)
    r = (x - blur(x, 1.0))[:h, :w]
    b = r.reshape(h // block, block, w // block, block).permute(0, 2, 1, 3).reshape(-1, block * block)
    mad = _median_rows((b - _median_rows(b).unsqueeze(1)).abs())
    return 1.4826 * percentile(mad, 10.0) / 0.8


def otsu(x: torch.Tensor) -> torch.Tensor:
    """skimage's ``threshold_otsu`` (256 bins over the value range) of a non-constant tensor."""
    lo, hi = x.min(), x.max()
    counts = torch.histc(x, bins=256, min=float(lo), max=float(hi)).double()
    edges = torch.linspace(float(lo), float(hi), 257, dtype=torch.float64, device=x.device)
    centers = (edges[:-1] + edges[1:]) / 2
    w1 = torch.cumsum(counts, 0)
    w2 = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0])
    m1 = torch.cumsum(counts * centers, 0) / w1
    m2 = torch.flip(torch.cumsum(torch.flip(counts * centers, [0]), 0) / torch.flip(w2, [0]), [0])
    var = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    var = torch.nan_to_num(var, nan=-1.0)
    return centers[int(torch.argmax(var))].to(x.dtype)


def dilate_cross(mask: torch.Tensor, iterations: int) -> torch.Tensor:
    """``scipy.ndimage.binary_dilation`` with the 4-connected cross, ``iterations`` times, border 0."""
    m = mask.to(torch.float32)
    for _ in range(iterations):
        p = F.pad(m.unsqueeze(0), [1, 1, 1, 1]).squeeze(0)
        m = torch.maximum(torch.maximum(torch.maximum(p[1:-1, 1:-1], p[:-2, 1:-1]), torch.maximum(p[2:, 1:-1],
                                                                                                 p[1:-1, :-2])),
                          p[1:-1, 2:])
    return m > 0.5


def subtract_background(x: torch.Tensor, sigma: float, exclude: bool, dilation: int) -> torch.Tensor:
    """:func:`~.training.data.subtract_background` with ``clip=False``: the image minus its haze."""
    background = blur(x, sigma)
    if exclude:
        smooth = blur(torch.clamp(x - background, min=0.0), 1.0)
        if bool(smooth.max() > smooth.min()):
            fg = smooth > otsu(smooth)
            if dilation > 0:
                fg = dilate_cross(fg, dilation)
            w = (~fg).to(torch.float32)
            num, den = blur(x * w, sigma), blur(w, sigma)
            background = torch.where(den > 1e-3, num / torch.clamp(den, min=1e-3), background)
    return x - background


def significance_gate(residual: torch.Tensor, noise: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """:func:`~.training.data.significance_gate` with its 2-px smoothing."""
    sigma = 2.0
    size = 6 * int(math.ceil(sigma)) + 1
    delta = torch.zeros(size, size, device=residual.device)
    delta[size // 2, size // 2] = 1.0
    norm = torch.sqrt((blur(delta, sigma) ** 2).sum())
    z = blur(residual, sigma) / torch.clamp(noise * norm, min=1e-12)
    return torch.clamp((z - low) / max(high - low, 1e-6), 0.0, 1.0)


class Preprocess(torch.nn.Module):
    """:func:`~.training.data.preprocess` ``(part="input")`` for one 2D plane, from the model's spec."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.low, self.high = float(spec.get("low", 1.0)), float(spec.get("high", 99.8))
        self.clip = bool(spec.get("clip", False))
        self.background_sigma = float(spec.get("background_sigma") or 0.0)
        self.background_exclude = bool(spec.get("background_exclude", True))
        self.local_sigma = float(spec.get("local_sigma") or 0.0)
        self.local_floor = float(spec.get("local_floor", 3.0))
        self.raw_noise = spec.get("noise") == "raw"
        gate = spec.get("gate")
        self.gate = bool(gate)
        self.gate_low, self.gate_high = (float(gate[0]), float(gate[1])) if gate else (0.0, 1.0)
        self.gate_input = bool(spec.get("gate_input", True))
        self.gate_blocks = spec.get("gate_noise") == "blocks"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32)
        noise = torch.zeros(1, device=x.device)
        has_noise = False
        weight = torch.ones_like(x)
        has_weight = False
        if self.background_sigma > 0:
            x = normalize(x, self.low, self.high, False)
            gate_noise = noise
            if self.raw_noise:
                noise, has_noise = noise_level(x), True
                gate_noise = background_noise(x) if self.gate and self.gate_blocks else noise
            x = subtract_background(x, self.background_sigma, self.background_exclude, 4)
            if self.gate and has_noise:
                weight, has_weight = significance_gate(x, gate_noise, self.gate_low, self.gate_high), True
            x = torch.clamp(x, min=0.0)
        if self.local_sigma > 0:
            x = torch.clamp(x, min=0.0)
            if not has_noise:
                noise = noise_level(x)
            eps = torch.clamp(self.local_floor * noise, min=1e-6)
            x = x / (torch.clamp(blur(x, self.local_sigma), min=0.0) + eps)
        if has_weight and self.local_sigma > 0 and self.gate_input:
            x = x * weight
        return normalize(x, self.low, self.high, self.clip)


class PackagedModel(torch.nn.Module):
    """Raw image ``(B, 1, H, W)`` -> sigmoid probability ``(B, 1, H, W)``, each image preprocessed alone."""

    def __init__(self, preprocess: torch.nn.Module, net: torch.nn.Module) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w, m = image.shape[-2], image.shape[-1], 32  # MULTIPLE (TorchScript reads no globals)
        planes = [self.preprocess(image[i, 0]) for i in range(image.shape[0])]
        x = torch.stack(planes).unsqueeze(1)
        ph, pw = (m - h % m) % m, (m - w % m) % m
        if ph > 0 or pw > 0:  # as pad_to: reflect at the end (needs H, W > 32, which the package declares)
            x = F.pad(x, [0, pw, 0, ph], mode="reflect")
        return torch.sigmoid(self.net(x))[:, :, :h, :w]


def script_model(net, spec: dict, example: torch.Tensor):
    """TorchScript of :class:`PackagedModel` for ``net`` (traced on ``example``, ``(1, 1, h, w)``
    preprocessed, h and w multiples of 32) and the preprocessing ``spec``."""
    net = net.eval().to("cpu")
    with torch.no_grad():
        traced = torch.jit.trace(net, example.contiguous(), check_trace=False)
    return torch.jit.script(PackagedModel(torch.jit.script(Preprocess(spec)), traced))
