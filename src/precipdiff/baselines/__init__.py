"""Classical baselines the diffusion models must beat (plain numpy/scipy; pysteps for RainFARM).

* :class:`QuantileMapping` — empirical quantile mapping of satellite rates onto the radar
  distribution (the bias-correction baseline).
* :func:`rainfarm_ensemble` — stochastic RainFARM downscaling of coarse fields into an ensemble
  (the downscaling baseline); pysteps is imported only when it runs. :func:`fit_alpha` gives
  its spectral slope from training radar fields.
"""

from precipdiff.baselines.quantile_mapping import QuantileMapping
from precipdiff.baselines.rainfarm import fit_alpha, member_seeds, rainfarm_ensemble

__all__ = ["QuantileMapping", "fit_alpha", "member_seeds", "rainfarm_ensemble"]
