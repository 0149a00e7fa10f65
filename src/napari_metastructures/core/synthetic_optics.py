"""Simple microscope optics for the synthetic images: noise levels, PSF, illumination, camera.

:func:`render_optics` turns a fluorophore map into photon counts: PSF blur (Gaussian), smooth
uneven illumination, out-of-focus haze, a background level, Poisson shot noise and Gaussian
read noise. :func:`to_uint16` converts counts to a camera image, :func:`measured_snr` scores one.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.interpolate import RectBivariateSpline

#: Peak in-focus signal, in photons, for the named noise levels (more photons, less noise).
NOISE_LEVELS: dict[str, float] = {"low": 300.0, "medium": 60.0, "high": 12.0}


def photons_for(noise_level: str | float) -> float:
    """Peak signal in photons for a noise level name (``"low"``, ``"medium"``, ``"high"``) or a number."""
    if isinstance(noise_level, str):
        try:
            return NOISE_LEVELS[noise_level]
        except KeyError:
            raise ValueError(
                f"noise_level must be one of {sorted(NOISE_LEVELS)} or a positive number, got {noise_level!r}"
            ) from None
    value = float(noise_level)
    if not value > 0:
        raise ValueError(f"noise_level as photons must be positive, got {noise_level!r}")
    return value


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Smooth random field in [0, 1] with features about ``scale`` pixels across."""
    scale = max(float(scale), 1.0)
    ny, nx = (int(np.ceil(n / scale)) + 4 for n in shape)
    spline = RectBivariateSpline(np.arange(ny), np.arange(nx), rng.standard_normal((ny, nx)))
    field = spline(np.arange(shape[0]) / scale + 1.5, np.arange(shape[1]) / scale + 1.5)
    field = field - field.min()
    top = field.max()
    return (field / top if top > 0 else field).astype(np.float32)


def render_optics(
    fluor: np.ndarray,
    rng: np.random.Generator,
    *,
    haze: np.ndarray | None = None,
    photons: float = 60.0,
    psf_sigma: float = 1.2,
    illumination: float = 0.4,
    background: float = 0.08,
    read_noise: float = 1.5,
) -> np.ndarray:
    """Turn a fluorophore map into a noisy microscope image.

    Parameters
    ----------
    fluor : ndarray
        In-focus fluorophore density, about 0..1.
    rng : numpy.random.Generator
        Source of all randomness (illumination field, shot and read noise).
    haze : ndarray, optional
        Out-of-focus light, same scale as ``fluor``; added after the PSF blur.
    photons : float
        Photons collected from a fluorophore density of 1 (sets the noise level).
    psf_sigma : float
        Gaussian PSF sigma in pixels.
    illumination : float
        Strength of uneven illumination: the field spans [1 - illumination, 1].
    background : float
        Flat background level (autofluorescence, offset), in units of ``fluor``.
    read_noise : float
        Camera read noise, standard deviation in photons.

    Returns
    -------
    ndarray
        float32 image in photon counts, non-negative.
    """
    signal = ndi.gaussian_filter(fluor.astype(np.float32), psf_sigma)
    if haze is not None:
        signal = signal + haze
    illum = 1.0 - illumination * smooth_field(fluor.shape, rng, scale=max(fluor.shape) / 2.5)
    expected = (signal * illum + background) * photons
    counts = rng.poisson(np.clip(expected, 0, None)).astype(np.float32)
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, size=counts.shape).astype(np.float32)
    return np.clip(counts, 0, None).astype(np.float32)


def to_uint16(image: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Round a photon-count image to uint16 (times ``gain``), clipping to 0..65535."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * gain), 0, 65535).astype(np.uint16)


def measured_snr(image: np.ndarray, mask: np.ndarray) -> float:
    """(mean foreground - mean background) / std background, a simple SNR of an image."""
    fg = np.asarray(mask) > 0
    img = np.asarray(image, dtype=np.float64)
    bg_std = img[~fg].std()
    return float((img[fg].mean() - img[~fg].mean()) / bg_std) if bg_std > 0 else float("inf")
