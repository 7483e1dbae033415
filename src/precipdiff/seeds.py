"""Per-member seeds of an ensemble, derived from one run seed: the one rule of the project.

Also the keys of hours and box-hours (:func:`sample_keys`), which seed the latents of a sample.

The diffusion chain (:mod:`precipdiff.inference.chain`, evaluation and inference) and the RainFARM
baseline (:mod:`precipdiff.baselines.rainfarm`) both give member ``m`` of a run with ``seed`` the
seed ``member_seeds(seed, M)[m]``, so member ``m`` of either method starts from the same seed.
Plain numpy (no torch, no Kedro).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: box numbers shift a sample key by this much: hour keys (hours since 1970) stay far below it
BOX_KEY_STRIDE = 2**32


def member_seeds(seed: int, n_members: int) -> list[int]:
    """``n_members`` independent 32-bit seeds: the first words of ``SeedSequence(seed)``'s entropy pool.

    A prefix of a longer list (member ``m``'s seed does not depend on ``n_members``); recorded in
    the inference output as ``member_seed``.
    """
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n_members, dtype=np.uint32)]


def hour_keys(times) -> list[int]:
    """Integer key of each hour for the latents: whole hours since 1970-01-01T00 UTC."""
    hours = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).asi8 // 3_600_000_000_000
    return [int(h) for h in hours]


def sample_keys(times, box_numbers=None) -> list[int]:
    """Key of each box-hour: its hour key plus ``box_number × 2**32``, so the hours of the one box of a
    one-box run (number 0) keep their hour keys and no two box-hours share a key. The key seeds a
    sample's latents (its members depend only on the run seed, the member and the key) and names the
    sample's row in the per-hour score sums (the bootstrap unit)."""
    hours = hour_keys(times)
    if box_numbers is None:
        return hours
    return [h + int(b) * BOX_KEY_STRIDE for h, b in zip(hours, np.asarray(box_numbers))]
