"""Per-member seeds of an ensemble, derived from one run seed: the one rule of the project.

The diffusion chain (:mod:`precipdiff.inference.chain`, evaluation and inference) and the RainFARM
baseline (:mod:`precipdiff.baselines.rainfarm`) both give member ``m`` of a run with ``seed`` the
seed ``member_seeds(seed, M)[m]``, so member ``m`` of either method starts from the same seed.
Plain numpy (no torch, no Kedro).
"""

from __future__ import annotations

import numpy as np


def member_seeds(seed: int, n_members: int) -> list[int]:
    """``n_members`` independent 32-bit seeds: the first words of ``SeedSequence(seed)``'s entropy pool.

    A prefix of a longer list (member ``m``'s seed does not depend on ``n_members``); recorded in
    the inference output as ``member_seed``.
    """
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n_members, dtype=np.uint32)]
