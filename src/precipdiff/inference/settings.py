"""How the chain samples (``evaluation.chain``, ``inference.chain``): :class:`ChainSettings`, checked
when built. Torch-free, so ``precipdiff downscale`` checks a request before importing torch or
starting Kedro."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from precipdiff.sampler_settings import PRECISIONS, SamplerSettingError, check_sampler
from precipdiff.seeds import member_seeds


class ChainSettingError(ValueError):
    """A chain setting that cannot work; the message names it (``<where>.<key>``), what was expected and found."""

    def __init__(self, key: str, value, expected: str, where: str = "ChainSettings"):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{where}.{key}: expected {expected}; got {value!r}")

    def at(self, where: str) -> "ChainSettingError":
        """The same error named under the parameter block ``where`` (e.g. ``inference.chain``)."""
        return ChainSettingError(self.key, self.value, self.expected, where)


@dataclass(frozen=True)
class ChainSettings:
    """How the chain samples: ``evaluation.chain`` and ``inference.chain`` (:meth:`from_params`, same keys)."""

    n_members: int = 8
    seed: int = 0
    sampler: dict | None = None  # edm_sampler keyword overrides (nn.sampler.SAMPLER_KEYS); None / {} = each model's own
    tile: int = 256  # tile side (cells, on either grid); domains up to this size run untiled
    overlap: int = 32  # overlap between neighbouring tiles (cells), the width of the cross-fade
    batch_size: int = 8  # samples (member × hour × tile) denoised together
    device: str = "auto"
    member_seeds: tuple[int, ...] | None = None  # explicit per-member seeds; override seed and n_members
    precision: str = "auto"  # auto: bf16 autocast on CUDA and bf16-native CPUs, fp32 elsewhere | fp32 | bf16
    compile: bool = False  # torch.compile the U-Net (worth it on CUDA for long runs)

    def __post_init__(self):
        def bad(key: str, value, expected: str):
            raise ChainSettingError(key, value, expected)

        if self.member_seeds is None and self.n_members < 1:
            bad("n_members", self.n_members, "a number of members >= 1 (or member_seeds)")
        if self.member_seeds is not None and len(self.member_seeds) < 1:
            bad("member_seeds", self.member_seeds, "a non-empty list of seeds (or null)")
        if self.precision not in PRECISIONS:
            bad("precision", self.precision, f"one of {PRECISIONS}")
        if not 0 <= self.overlap < self.tile:
            bad("overlap", self.overlap, f"0 <= overlap < tile (tile = {self.tile} cells)")
        if self.batch_size < 1:
            bad("batch_size", self.batch_size, "an integer >= 1")
        try:
            check_sampler(self.sampler or {})
        except SamplerSettingError as exc:
            raise ChainSettingError(exc.key, exc.value, exc.expected) from None

    @classmethod
    def from_params(cls, params: Mapping | None, where: str = "chain") -> "ChainSettings":
        """The one builder from parameters (``evaluation.chain``, ``inference.chain``): the keys are the
        field names, all optional (the defaults above); ``null`` sampler keys mean the model's own.

        Raises ``ValueError`` naming ``<where>.<key>`` for an unknown key or a value that cannot work.
        """
        given = dict(params or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {names}")
        sampler = {k: v for k, v in (given.get("sampler") or {}).items() if v is not None}
        seeds = given.get("member_seeds")
        casts = {"n_members": int, "seed": int, "tile": int, "overlap": int, "batch_size": int, "device": str,
                 "precision": str, "compile": bool}
        kwargs = {k: casts[k](v) for k, v in given.items() if k in casts and v is not None}
        try:
            return cls(**kwargs, sampler=sampler, member_seeds=None if seeds is None else tuple(int(s) for s in seeds))
        except ChainSettingError as exc:
            raise exc.at(where) from None

    def seeds(self) -> list[int]:
        """The per-member seeds: ``member_seeds`` if given, else derived from ``seed``."""
        if self.member_seeds is not None:
            return [int(s) for s in self.member_seeds]
        return member_seeds(self.seed, self.n_members)
