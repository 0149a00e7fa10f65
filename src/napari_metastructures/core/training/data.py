"""Training data shared by iGTT and supervised training: normalisation, slicing and random crops.

- :func:`normalize` maps 8-bit, 16-bit or float intensities to about [0, 1] with robust percentiles.
- :func:`subtract_background` removes slowly varying out-of-focus haze (a wide Gaussian of the image).
- :func:`local_contrast` and :func:`significance_gate` even out bright and dim regions without
  raising the noise of empty ones.
- :func:`preprocess` runs both from a small JSON-friendly spec that a saved model carries, so that
  prediction on new images repeats exactly what training saw.
- :func:`as_slices` turns 3D stacks and time-lapses into 2D slices (all axes but the last two);
  :func:`blocks` into the volumes that are normalised and thresholded as one.
- :class:`CropSampler` draws random crops with flips and 90-degree rotations, padding small images
  by reflection up to the crop size.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi


def normalize(image: np.ndarray, low: float = 1.0, high: float = 99.8, clip: bool = False) -> np.ndarray:
    """Percentile-normalise an image to float32 so that ``low``/``high`` percentiles map to 0/1.

    Parameters
    ----------
    image : ndarray
        Any real dtype (uint8, uint16, float...).
    low, high : float
        Percentiles mapped to 0 and 1.
    clip : bool
        Clip the result to [0, 1].

    Returns
    -------
    ndarray
        float32 array of the same shape. A constant image maps to zeros.
    """
    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, [low, high])
    if not hi > lo:  # nearly constant: fall back to the full range
        lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return np.zeros(x.shape, np.float32)
    out = (x - np.float32(lo)) / np.float32(hi - lo)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out.astype(np.float32, copy=False)


def _plane_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the last two axes only (each 2D plane alone)."""
    return ndi.gaussian_filter(x, [0] * (x.ndim - 2) + [float(sigma)] * 2, mode="reflect", truncate=3.0)


def subtract_background(image: np.ndarray, sigma: float, exclude_foreground: bool = True,
                        dilation: int = 4, clip: bool = True) -> np.ndarray:
    """Remove out-of-focus haze and uneven background, per 2D plane; clipped at 0 unless ``clip=False``.

    The background is a wide Gaussian (``sigma`` px) of each plane. With ``exclude_foreground``
    it is re-estimated from background pixels only (normalised convolution): pixels above Otsu's
    threshold of the first background-subtracted, lightly smoothed image, dilated by ``dilation``
    px in-plane, are left out. So large bright objects (nuclei) are not hollowed out by their own
    blur, while haze, which is smooth and wide, is still removed. Otsu's threshold is taken over
    the whole array: for a z-stack, one threshold for the volume, so a plane with no structure
    keeps all its pixels as background instead of losing its brighter half of the noise.
    """
    x = np.asarray(image, dtype=np.float32)
    background = _plane_blur(x, sigma)
    if exclude_foreground:
        from skimage.filters import threshold_otsu

        smooth = _plane_blur(np.maximum(x - background, 0.0), 1.0)
        if smooth.max() > smooth.min():
            fg = smooth > threshold_otsu(smooth)
            if dilation:
                cross = ndi.generate_binary_structure(2, 1).reshape((1,) * (x.ndim - 2) + (3, 3))
                fg = ndi.binary_dilation(fg, structure=cross, iterations=int(dilation))
            w = (~fg).astype(np.float32)
            num, den = _plane_blur(x * w, sigma), _plane_blur(w, sigma)
            # where no background pixel is near, keep the plain estimate
            background = np.where(den > 1e-3, num / np.maximum(den, 1e-3), background)
    out = x - background
    return (np.maximum(out, 0.0) if clip else out).astype(np.float32)


def noise_level(image: np.ndarray) -> float:
    """Robust standard deviation of the pixel noise: MAD of the residual of a light in-plane blur.

    The residual ``x - G_1(x)`` keeps about 0.8 of white noise's amplitude; structures cover few of
    the pixels, so the median absolute deviation reflects the noise, not the signal. Pooled over
    all planes of an nD array. Measure it before any clipping: on an image clipped at 0 most
    background residuals are 0 and the estimate falls to about a third.
    """
    x = np.asarray(image, dtype=np.float32)
    r = (x - _plane_blur(x, 1.0)).ravel()
    if r.size > 1_000_000:  # a regular subsample is plenty for a median
        r = r[:: r.size // 1_000_000]
    return float(_residual_sd(r))


def _residual_sd(r: np.ndarray, axis: int | None = None):
    """White noise's standard deviation from the MAD of its ``x - G_1(x)`` residual (0.8 of it)."""
    return 1.4826 * np.median(np.abs(r - np.median(r, axis=axis, keepdims=True)), axis=axis) / 0.8


#: Side (px) of the blocks of :func:`background_noise`, and the quantile of their noise it takes.
NOISE_BLOCK, NOISE_QUANTILE = 16, 0.1


def background_noise(image: np.ndarray) -> float:
    """Standard deviation of the noise where there is no structure: the 10th percentile of the
    :func:`noise_level` of 16 x 16 px blocks (per plane, pooled over planes).

    :func:`noise_level` over the whole image assumes structures cover few pixels. Dense ER (40-70 %
    of a crop inside a cell) and sharp sampling leak structure into its residual, and shot noise is
    larger on bright structure, so it reads 2-6x the noise of the dark gaps between tubules, the
    noise a significance test should use. The quietest blocks hold that noise. On white noise it
    reads about 0.98 of the truth; images smaller than one block fall back to :func:`noise_level`.
    """
    x = np.asarray(image, dtype=np.float32)
    planes = x.reshape((-1,) + x.shape[-2:])
    h, w = (planes.shape[1] // NOISE_BLOCK) * NOISE_BLOCK, (planes.shape[2] // NOISE_BLOCK) * NOISE_BLOCK
    if h == 0 or w == 0:
        return noise_level(x)
    r = (planes - _plane_blur(planes, 1.0))[:, :h, :w]
    b = r.reshape(len(planes), h // NOISE_BLOCK, NOISE_BLOCK, w // NOISE_BLOCK, NOISE_BLOCK)
    b = b.transpose(0, 1, 3, 2, 4).reshape(-1, NOISE_BLOCK * NOISE_BLOCK)
    return float(np.quantile(_residual_sd(b, axis=1), NOISE_QUANTILE))


def significance_gate(residual: np.ndarray, noise: float, low: float, high: float,
                      sigma: float = 2.0) -> np.ndarray:
    """Weights in [0, 1]: 0 where the in-plane smoothed signal is within ``low`` standard deviations
    of pure noise, 1 beyond ``high``, linear between.

    ``residual`` is the background-subtracted image before clipping (background about 0). Smoothing
    white noise of standard deviation ``noise`` with a Gaussian of ``sigma`` px leaves ``noise``
    times the kernel's L2 norm, so ``z = G_sigma(residual) / that`` is a significance. Empty planes
    of a z-stack and the dark outside of a cell get weight 0, so local contrast cannot raise their
    noise to the level of structure.
    """
    delta = np.zeros((6 * int(np.ceil(sigma)) + 1,) * 2, np.float32)
    delta[delta.shape[0] // 2, delta.shape[1] // 2] = 1.0
    norm = float(np.sqrt((_plane_blur(delta, sigma) ** 2).sum()))
    z = _plane_blur(np.asarray(residual, np.float32), sigma) / max(noise * norm, 1e-12)
    return np.clip((z - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def local_contrast(image: np.ndarray, sigma: float, floor: float = 3.0, noise: float | None = None) -> np.ndarray:
    """Divide by the local mean brightness so that dim and bright regions of a cell look alike.

    ``x / (G_sigma(x) + floor * noise)``, per 2D plane, on a background-free image (x >= 0). Bright
    perinuclear ER and tubules 10-50x dimmer at the cell's edge come out within a few-fold of each
    other; the floor keeps dark areas from being raised to the level of structure. ``noise``
    defaults to :func:`noise_level` of ``image`` itself (the first engine's estimate, kept for models
    saved with it).
    """
    x = np.asarray(image, dtype=np.float32)
    if noise is None:
        if x.ndim > 2:  # the first engine measured every plane alone
            return np.stack([local_contrast(s, sigma, floor) for s in as_slices(x)]).reshape(x.shape)
        noise = noise_level(x)
    mean = _plane_blur(x, sigma)
    eps = max(float(floor) * float(noise), 1e-6)
    return (x / (np.maximum(mean, 0.0) + np.float32(eps))).astype(np.float32)


def preprocess(image: np.ndarray, spec: dict | None = None, part: str = "input"):
    """Apply a preprocessing spec to a 2D image or one volume: background subtraction, local
    contrast, normalisation.

    ``spec`` keys: ``low`` (1), ``high`` (99.8), ``clip`` (False), ``background_sigma`` (None = off),
    ``background_exclude`` (True: see :func:`subtract_background`), ``local_sigma`` (None = off),
    ``local_floor`` (3) and ``noise`` (``"clipped"``: the first engine's noise estimate, after the
    background is removed; ``"raw"``: before, see :func:`noise_level`) for :func:`local_contrast`,
    ``gate`` (None, or ``[low, high]`` significances: :func:`significance_gate`) and ``gate_input``
    (True: the gate also weights the network's input; False: only the image that scores threshold
    candidates). An nD input is one volume: percentiles, the noise and Otsu's threshold are pooled
    over it; filters are in-plane.

    ``part``: ``"input"`` (what the network sees), ``"score"`` (what judges candidates) or ``"both"``
    (a tuple, computed once).
    """
    spec = dict(spec or {})
    x = np.asarray(image, dtype=np.float32)
    low, high, clip = spec.get("low", 1.0), spec.get("high", 99.8), bool(spec.get("clip", False))
    sigma, raw_noise, gate = spec.get("background_sigma"), spec.get("noise") == "raw", spec.get("gate")
    noise = weight = None
    if sigma:
        x = normalize(x, low, high)  # scale-free before filtering
        if raw_noise:
            noise = noise_level(x)
            gate_noise = background_noise(x) if gate and spec.get("gate_noise") == "blocks" else noise
        x = subtract_background(x, float(sigma), bool(spec.get("background_exclude", True)), clip=False)
        if gate and noise is not None:
            weight = significance_gate(x, gate_noise, float(gate[0]), float(gate[1]))
        x = np.maximum(x, 0.0)
    if spec.get("local_sigma"):
        x = local_contrast(np.maximum(x, 0.0), float(spec["local_sigma"]), float(spec.get("local_floor", 3.0)),
                           noise)
    if weight is None or not spec.get("local_sigma"):
        out = normalize(x, low, high, clip)
        return (out, out) if part == "both" else out
    gated = normalize(x * weight, low, high, clip)
    if spec.get("gate_input", True):
        return (gated, gated) if part == "both" else gated
    plain = normalize(x, low, high, clip) if part != "score" else None
    return {"input": plain, "score": gated, "both": (plain, gated)}[part]


SCOPES = ("auto", "volume", "slice")


def volume_scope(scope: str | None, ndim: int, axes: str | None = None) -> bool:
    """Whether an image is normalised and thresholded as volumes (its last three axes) rather than
    as loose 2D slices. ``auto``: yes for 3D and up, unless ``axes`` says the third-last axis is
    not Z (a 2D time-lapse ``TYX`` keeps one threshold per frame, so bleaching does no harm).
    ``None`` (models saved before volumes existed): slices."""
    if scope in (None, "slice") or ndim < 3:
        return False
    if scope == "volume":
        return True
    return not axes or len(axes) != ndim or axes[-3].upper() == "Z"


def blocks(image: np.ndarray, volume: bool) -> list:
    """The units that are preprocessed and thresholded together: whole volumes (the last three
    axes; leading axes such as time split them) when ``volume``, else 2D slices. Their 2D slices,
    in order, are :func:`as_slices` of ``image``."""
    arr = np.asarray(image)
    if not volume or arr.ndim < 3:
        return as_slices(arr)
    flat = arr.reshape((-1,) + arr.shape[-3:])
    return [flat[i] for i in range(flat.shape[0])]


def as_slices(image: np.ndarray) -> list:
    """Split an nD image (n >= 2) into a list of 2D views over its last two axes."""
    arr = np.asarray(image)
    if arr.ndim < 2:
        raise ValueError(f"needs at least 2D data, got shape {arr.shape}")
    if arr.ndim == 2:
        return [arr]
    flat = arr.reshape((-1,) + arr.shape[-2:])
    return [flat[i] for i in range(flat.shape[0])]


def pad_to(array: np.ndarray, size: int, mode: str = "reflect", constant: float = 0) -> np.ndarray:
    """Pad the last two axes of ``array`` at the end up to at least ``size`` (reflect by default)."""
    h, w = array.shape[-2:]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return array
    widths = [(0, 0)] * (array.ndim - 2) + [(0, ph), (0, pw)]
    if mode == "constant":
        return np.pad(array, widths, mode="constant", constant_values=constant)
    if min(h, w) < 2:
        return np.pad(array, widths, mode="edge")
    return np.pad(array, widths, mode=mode)


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/90-degree rotations (``k`` in 0..7) over the last two axes."""
    out = np.rot90(array, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return out


class CropSampler:
    """Random crops with flips and 90-degree rotations from one or many 2D images.

    Parameters
    ----------
    images : sequence of 2D float arrays
        Already normalised images, any sizes. Images smaller than ``crop`` are padded by reflection.
    targets : sequence of arrays or None
        Per image, an array whose last two axes match the image (``(H, W)`` or ``(C, H, W)``), or
        None for unlabelled training. Replace them between epochs with :meth:`set_targets`.
    crop : int
        Square crop size.
    seed : int or numpy Generator
        Seeds every random choice.
    augment : bool
        Apply the 8 flips/rotations.
    target_pad : float or None
        Targets are padded by reflection when None, else with this constant (e.g. an ignore value).

    Images are drawn with probability proportional to their area, so every pixel is equally likely.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        targets: Sequence[np.ndarray] | None = None,
        crop: int = 256,
        seed=0,
        augment: bool = True,
        target_pad: float | None = None,
    ) -> None:
        if len(images) == 0:
            raise ValueError("CropSampler needs at least one image")
        self.crop = int(crop)
        self.augment = augment
        self.target_pad = target_pad
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.images = [pad_to(np.asarray(im, np.float32), self.crop) for im in images]
        self.shapes = [tuple(np.shape(im)[-2:]) for im in images]
        areas = np.array([s[0] * s[1] for s in self.shapes], np.float64)
        self.p = areas / areas.sum()
        self.targets = None
        if targets is not None:
            self.set_targets(targets)

    def set_targets(self, targets: Sequence[np.ndarray]) -> None:
        """Replace the targets (same count and spatial shapes as the images)."""
        if len(targets) != len(self.images):
            raise ValueError(f"{len(targets)} targets for {len(self.images)} images")
        padded = []
        for t, shape in zip(targets, self.shapes):
            t = np.asarray(t)
            if tuple(t.shape[-2:]) != shape:
                raise ValueError(f"target shape {t.shape} does not match image shape {shape}")
            mode = "reflect" if self.target_pad is None else "constant"
            padded.append(pad_to(t, self.crop, mode, 0 if self.target_pad is None else self.target_pad))
        self.targets = padded

    def sample(self, batch_size: int):
        """Draw ``batch_size`` crops.

        Returns
        -------
        x : ndarray
            float32, shape ``(B, 1, crop, crop)``.
        y : ndarray or None
            Target crops stacked, shape ``(B, crop, crop)`` or ``(B, C, crop, crop)``.
        """
        c = self.crop
        xs, ys = [], []
        for _ in range(batch_size):
            i = int(self.rng.choice(len(self.images), p=self.p))
            im = self.images[i]
            r = int(self.rng.integers(0, im.shape[-2] - c + 1))
            s = int(self.rng.integers(0, im.shape[-1] - c + 1))
            k = int(self.rng.integers(0, 8)) if self.augment else 0
            xs.append(dihedral(im[r:r + c, s:s + c], k))
            if self.targets is not None:
                ys.append(dihedral(self.targets[i][..., r:r + c, s:s + c], k))
        x = np.ascontiguousarray(np.stack(xs)[:, None], dtype=np.float32)
        y = np.ascontiguousarray(np.stack(ys)) if ys else None
        return x, y

    def steps_per_epoch(self, batch_size: int, coverage: float = 1.0, minimum: int = 1) -> int:
        """Batches needed to draw about ``coverage`` times the total pixel count."""
        pixels = sum(h * w for h, w in self.shapes)
        return max(minimum, int(np.ceil(coverage * pixels / (batch_size * self.crop**2))))
