"""Model selection: should the evaluated diffusion pair take the registry alias (``champion``)?

Pure functions (no MLflow): :func:`decide` is the rule, :func:`selection_decision` builds the
whole decision dict that :class:`~precipdiff.pipelines.evaluation.registry.ModelSelectionDataset`
applies to the registry (tags on the candidate versions, then the alias if ``promote``).

**Nothing is chosen on the test split.** The score is the **validation** ``crps_fair`` (mm/h, lower
is better) of the full chain at 1 km on ``selection.validation_hours`` evenly spaced validation
hours (table grid ``validation``: ``diffusion_chain`` vs ``champion_chain``, same hours, same noise
seeds; :func:`~precipdiff.pipelines.evaluation.nodes.score_selection`). The test scores only go
to the version tags (``eval.<metric>``), reported, never compared. The chain is deterministic
given its settings and hours, so the champion's validation score need not be recomputed when its
version tags hold one of the same setup (:func:`setup_fingerprint`, tag ``eval.validation_setup``):
:func:`tagged_score` returns it.
"""

from __future__ import annotations

import hashlib
import json
import math

import pandas as pd

MODES = ("if_better", "always", "never")


def decide(mode: str, candidate: float, champion: float | None, same_models: bool,
           min_improvement: float = 0.0) -> tuple[bool, str]:
    """``(promote, reason)``.

    Parameters
    ----------
    mode : {"if_better", "always", "never"}
        ``evaluation.selection.mode``.
    candidate, champion : float
        Scores (lower is better); ``champion`` None when the registry has no champion yet.
    same_models : bool
        The candidate pair already holds the alias.
    min_improvement : float
        The candidate must beat the champion by more than this (score units).
    """
    if mode not in MODES:
        raise ValueError(f"evaluation.selection.mode must be one of {MODES}, got {mode!r}")
    if mode == "never":
        return False, "selection.mode is 'never'"
    if same_models:
        return False, "the evaluated models already hold the alias"
    if mode == "always":
        return True, "selection.mode is 'always'"
    if champion is None:
        return True, "no champion yet"
    if not math.isfinite(candidate):
        return False, f"the candidate score is not finite ({candidate})"
    if not math.isfinite(champion) or candidate < champion - min_improvement:
        return True, f"better: {candidate:.4f} < {champion:.4f} - {min_improvement:g}"
    return False, f"not better: {candidate:.4f} >= {champion:.4f} - {min_improvement:g}"


def setup_fingerprint(hours: pd.DataFrame, params: dict) -> str:
    """Hash of everything a chain score depends on besides the models: the (validation) hours (keys
    and radar means, so changed data count), ``evaluation.chain``, the clip rate and the selection metric."""
    payload = {"hours": [int(k) for k in hours["hour_key"]],
               "radar_mm_h": [round(float(x), 4) for x in hours["radar_mean_mm_h"]],
               "chain": params["chain"], "max_rate_mm_h": params["scores"]["max_rate_mm_h"],
               "metric": params["selection"]["metric"]}
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def pair_label(versions: dict) -> str:
    """``"correction=2,downscaling=1"``: the model pair a score belongs to (tag ``eval.pair``)."""
    return ",".join(f"{stage}={versions[stage]}" for stage in sorted(versions))


VALIDATION = "validation"  # the grid of the selection's scores, and the prefix of their tags (eval.validation_*)


def tagged_score(tags: dict[str, dict], versions: dict, fingerprint: str, metric: str) -> float | None:
    """The champion pair's ``eval.validation_<metric>`` if every stage's version carries the score of
    this very pair (``eval.validation_pair``; a version can be shared by several pairs) with this
    setup (``eval.validation_setup``), else None."""
    values = set()
    for stage_tags in tags.values():
        if stage_tags.get(f"eval.{VALIDATION}_setup") != fingerprint \
                or stage_tags.get(f"eval.{VALIDATION}_pair") != pair_label(versions):
            return None
        values.add(stage_tags.get(f"eval.{VALIDATION}_{metric}"))
    try:
        value = float(values.pop()) if len(values) == 1 else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and math.isfinite(value) else None


def score(metrics: pd.DataFrame, method: str, metric: str, grid: str = "fine") -> float:
    """One value of the tidy table (NaN if absent)."""
    sel = (metrics["method"] == method) & (metrics["metric"] == metric) & (metrics["grid"] == grid)
    return float(metrics.loc[sel, "value"].iloc[0]) if sel.any() else math.nan


def selection_decision(validation: pd.DataFrame, candidate_versions: dict, champion: dict, params: dict,
                       fingerprint: str = "", reported: pd.DataFrame | None = None) -> dict:
    """The decision and the model-version tags that explain it (JSON-serialisable).

    ``validation``: the selection's scores (grid ``validation``, :func:`~.nodes.score_selection`),
    the only scores the rule reads; ``reported``: the test metrics, copied to the tags
    (``eval.<m>`` for ``tag_metrics``) and nothing else. ``params`` is ``evaluation.selection``;
    ``fingerprint`` (:func:`setup_fingerprint` of the validation hours) goes to the tags.
    """
    metric, champ_versions = params["metric"], dict(champion["versions"])
    has_champion = all(v is not None for v in champ_versions.values())
    same = has_champion and candidate_versions == champ_versions
    cand = score(validation, "diffusion_chain", metric, VALIDATION)
    champ = cand if same else score(validation, "champion_chain", metric, VALIDATION)
    promote, reason = decide(params["mode"], cand, champ if has_champion else None, same,
                             float(params.get("min_improvement", 0.0)))
    if promote and any(v is None for v in candidate_versions.values()):
        promote, reason = False, f"the evaluated models are not registered ({candidate_versions})"
    test = reported if reported is not None else validation.iloc[:0]
    tags = {f"eval.{m}": _fmt(score(test, "diffusion_chain", m)) for m in params["tag_metrics"]}  # test: reported
    reused = score(validation, "champion_chain", "score_reused_from_tags", VALIDATION) == 1.0
    if math.isfinite(cand):  # the candidate's validation score, for reuse when it is the champion
        tags.update({f"eval.{VALIDATION}_setup": fingerprint, f"eval.{VALIDATION}_pair": pair_label(candidate_versions),
                     f"eval.{VALIDATION}_{metric}": _fmt(cand)})
    tags.update({f"eval.champion_{VALIDATION}_{metric}": _fmt(champ if has_champion else math.nan),
                 "eval.champion_versions": str(champ_versions), "eval.decision": "promoted" if promote else "kept",
                 "eval.reason": reason})
    return {"alias": champion["alias"], "mode": params["mode"], "metric": metric, "grid": VALIDATION,
            "promote": promote, "reason": reason, "candidate": {"versions": candidate_versions, "score": cand},
            "champion": {"versions": champ_versions, "score": champ if has_champion else None,
                         "score_from": "same models" if same else "version tags" if reused else "re-scored"},
            "registered_models": dict(champion["registered_models"]), "tags": tags}


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.6g}"
