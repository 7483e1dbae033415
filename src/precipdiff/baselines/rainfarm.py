"""Ensemble RainFARM downscaling (Rebora et al. 2006) of coarse fields, via pysteps.

Each member of each field is one call to ``pysteps.downscaling.rainfarm.downscale`` (pysteps
1.21: ``downscale(precip, ds_factor, alpha=None, threshold=None, return_alpha=False,
kernel_type=None, spectral_fusion=False)``). pysteps draws its noise from the *global* numpy
generator, so each call runs under ``np.random.seed`` of its own seed and the caller's global
state is restored afterwards (not thread-safe: do not run two calls in threads at once).

Seeds: member m of a run with ``seed`` gets ``member_seeds(seed, M)[m]`` (:mod:`precipdiff.seeds`,
the diffusion chain's rule too); its field at time t is
drawn with ``SeedSequence([member_seed, t0 + t])``, so a member does not depend on the number of
members, and a long series downscaled in chunks (passing each chunk's ``t0``) equals one call.

Mean preservation: with ``kernel_type=None`` (default) and ``threshold=None`` RainFARM sets
fine = noise * coarse / block_mean(noise), so every coarse cell's mean is preserved exactly,
at the price of jumps at the coarse-cell borders (seam ratio ~1.7 on the synthetic data, see
:mod:`precipdiff.verification.artefacts`). A smoothing kernel (``"gaussian"``/``"tophat"``)
removes the seams (ratio ~1.0) but preserves the mean only approximately (domain mean within a
few %, single cells not at all), and ``threshold`` breaks it.

Spectral slope ``alpha``: None estimates it per time from the coarse field (pysteps), once for all
members; on small or nearly dry domains the estimate is noisy (0 to 2 on 10 x 10 coarse cells
of the synthetic data, whose radar spectrum has slope ~2.9), so for production pass
:func:`fit_alpha` of the training radar. Dry (all zero) fields give zeros. NaN coarse cells are
filled with 0 for the call and the factor x factor block of each NaN cell is NaN in the output.
"""

from __future__ import annotations

import numpy as np

from precipdiff.seeds import member_seeds

__all__ = ["rainfarm_ensemble", "member_seeds", "fit_alpha"]

ALPHA_FALLBACK = 2.0  # used when alpha cannot be estimated (e.g. a constant field); arbitrary


def fit_alpha(fields, pixel_km: float = 1.0, min_km: float = 2.0, max_km: float = np.inf) -> float:
    """RainFARM slope ``alpha`` from training fields (..., H, W): minus the log-log slope of their
    mean RAPSD between ``min_km`` and ``max_km``.

    pysteps' noise has a 2-D power spectrum |F(k)|^2 ~ k^-alpha; a ring average keeps that slope.
    Fields with NaN are skipped (:class:`precipdiff.verification.MeanPSD`).
    """
    from precipdiff.verification.spectral import MeanPSD, psd_slope

    acc = MeanPSD(pixel_km)
    acc.accum(fields)
    out = acc.compute()
    return -psd_slope(out["psd"], out["wavelength_km"], min_km, max_km)


def rainfarm_ensemble(
    coarse,
    factor: int = 10,
    n_members: int = 8,
    seed: int = 0,
    alpha=None,
    kernel_type: str | None = None,
    spectral_fusion: bool = False,
    threshold: float | None = None,
    t0: int = 0,
    return_info: bool = False,
):
    """Downscale coarse rates (T, h, w) by an integer ``factor`` into an ensemble.

    Parameters
    ----------
    coarse : array_like
        Coarse rates, shape (T, h, w) or (h, w), mm/h; NaN = missing.
    factor : int
        Downscaling factor per axis (10 for 0.1 deg -> 0.01 deg).
    n_members : int
        Ensemble size M.
    seed : int
        Run seed; see the module docstring for how member seeds derive from it.
    alpha : None, float or array of shape (T,)
        2-D spectral slope of the noise; None estimates it per field.
    kernel_type, spectral_fusion, threshold
        Passed to pysteps ``downscale`` (see the module docstring for their effect on the mean;
        pysteps' spectral fusion assumes square fields).
    t0 : int
        Index of the first field in the whole series (for chunked runs; enters the seeds).
    return_info : bool
        Also return ``{"member_seeds": [...], "alpha": (T,) array}``.

    Returns
    -------
    ndarray
        Shape (T, M, h * factor, w * factor), float64, mm/h (and the info dict if asked).
    """
    c = np.asarray(coarse, dtype=np.float64)
    c = c[None] if c.ndim == 2 else c
    if c.ndim != 3 or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"rainfarm_ensemble: need coarse (T, h, w) and int factor >= 1; got "
                         f"shape {np.shape(coarse)}, factor {factor!r}")  # fmt: skip
    t_len, h, w = c.shape
    seeds = member_seeds(seed, n_members)
    alphas = np.broadcast_to(np.asarray(np.nan if alpha is None else alpha, dtype=float), (t_len,))
    out = np.zeros((t_len, n_members, h * factor, w * factor))
    used_alpha = np.full(t_len, np.nan)
    opts = {"kernel_type": kernel_type, "spectral_fusion": spectral_fusion, "threshold": threshold}
    for t in range(t_len):  # loop over fields and members; each call is vectorised over pixels
        field = np.nan_to_num(c[t], nan=0.0)
        if not np.any(field > 0):
            continue  # dry field: zeros
        a = alphas[t] if np.isfinite(alphas[t]) else _estimate_alpha(field, factor)
        used_alpha[t] = a
        for m, ms in enumerate(seeds):
            out[t, m] = _downscale_seeded(field, factor, a, [ms, t0 + t], opts)
    nan_blocks = np.kron(np.isnan(c), np.ones((factor, factor))).astype(bool)
    out[np.broadcast_to(nan_blocks[:, None], out.shape)] = np.nan
    info = {"member_seeds": seeds, "alpha": used_alpha}
    return (out, info) if return_info else out


def _estimate_alpha(field: np.ndarray, factor: int) -> float:
    """pysteps' estimate of the spectral slope of ``field``; fallback if it is not finite."""
    from pysteps.downscaling.rainfarm import downscale

    try:
        with _global_seed([0]):  # the estimate is deterministic; the noise drawn is discarded
            _, a = downscale(field, factor, return_alpha=True)
    except (ValueError, TypeError, np.linalg.LinAlgError):
        return ALPHA_FALLBACK
    return float(a) if np.isfinite(a) else ALPHA_FALLBACK


def _downscale_seeded(field, factor, alpha, entropy, opts) -> np.ndarray:
    from pysteps.downscaling.rainfarm import downscale

    with _global_seed(entropy):
        return downscale(field, factor, alpha=alpha, **opts)


class _global_seed:
    """Seed numpy's global generator from ``SeedSequence(entropy)``; restore it on exit."""

    def __init__(self, entropy):
        self.seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def __enter__(self):
        self.state = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc):
        np.random.set_state(self.state)
