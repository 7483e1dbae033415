"""Stochastic Gaussian fields with a power-law spectrum, built in Fourier space.

The construction follows the non-parametric/parametric noise generators of pysteps
(Pulkkinen et al. 2019, ``pysteps.noise.fftgenerators``): white noise is filtered in Fourier space
by ``|k|^(-beta/2)`` so that the radially averaged power spectrum falls as ``|k|^(-beta)``.
"""

from __future__ import annotations

import numpy as np


def wavenumber_grid(shape: tuple[int, int]) -> np.ndarray:
    """Radial wavenumber ``|k|`` in cycles per pixel for an FFT of ``shape`` (rfft layout)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(ky**2 + kx**2)


def powerlaw_filter(shape: tuple[int, int], beta: float, k_min: float | None = None) -> np.ndarray:
    """Amplitude filter ``|k|^(-beta/2)`` (PSD ∝ ``|k|^-beta``), flat below ``k_min`` and zero at k = 0.

    ``k_min`` (cycles/pixel, default one cycle per domain) caps the largest scales so the
    variance is finite.
    """
    k = wavenumber_grid(shape)
    k_min = k_min if k_min is not None else 1.0 / max(shape)
    amp = np.maximum(k, k_min) ** (-beta / 2.0)
    amp[0, 0] = 0.0
    return amp


def normalise(field: np.ndarray, axes: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """Zero mean, unit standard deviation over ``axes``."""
    field = field - field.mean(axis=axes, keepdims=True)
    return field / np.maximum(field.std(axis=axes, keepdims=True), 1e-12)


def powerlaw_field(
    shape: tuple[int, int], beta: float, rng: np.random.Generator, n: int | None = None
) -> np.ndarray:
    """One (or ``n``) standardised Gaussian field(s) with PSD ∝ ``|k|^-beta`` (pysteps-style)."""
    size = shape if n is None else (n, *shape)
    white = np.fft.rfft2(rng.standard_normal(size))
    field = np.fft.irfft2(white * powerlaw_filter(shape, beta), s=shape)
    return normalise(field)


def unit_field(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """One power-law field (PSD ∝ ``|k|^-beta``) min-max scaled to [0, 1] (terrain / location maps)."""
    z = powerlaw_field(shape, beta, rng)
    return (z - z.min()) / (z.max() - z.min())


def shift_spectrum(spec: np.ndarray, shape: tuple[int, int], dy: float, dx: float) -> np.ndarray:
    """Translate a field by ``(dy, dx)`` pixels (periodic) by a phase ramp in Fourier space."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    return spec * np.exp(-2j * np.pi * (ky * dy + kx * dx))
