"""Experiment nodes: parameter overrides, the comparison table of an experiment, its MLflow metrics.

An experiment (``docs/experiments.md``) reuses the training template and the evaluation nodes on
other data, parameters or models; the nodes here only join what those produce into one tidy table
``arm × method × metric`` and render it (Markdown for the README, MLflow run metrics).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from precipdiff.datasets.metrics import metric_history
from precipdiff.reporting.labels import column_name
from precipdiff.model_card import TrainedModel
from precipdiff.verification import select

KEYS = ["grid", "metric", "threshold", "scale"]


def override_params(base: dict, overrides: dict | None) -> dict:
    """``base`` with ``overrides`` merged in: nested dicts merge, any other value replaces.

    >>> override_params({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 5}, "d": [2]})
    {'a': {'b': 5, 'c': 2}, 'd': [2]}
    """
    out = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = override_params(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def compare_arms(params: dict, **arms: pd.DataFrame) -> pd.DataFrame:
    """The experiment's table: rows ``arm, method, grid, metric, threshold, scale, value``.

    ``arms``: tidy metric tables (:func:`precipdiff.pipelines.evaluation.nodes.assemble_metrics`)
    keyed by the arm's label. Kept: the ``params["metrics"]`` (+ ``extra_metrics``) specs (``{metric, grid?, threshold?,
    scale?}``) of the ``params["methods"]`` (all when absent), in the order given.
    """
    methods = params.get("methods")
    parts = []
    for arm, table in arms.items():
        keep = table[table["method"].isin(methods)] if methods else table
        for spec in [*params["metrics"], *params.get("extra_metrics", [])]:
            parts.append(keep[select(keep, spec, "experiments.metrics")].assign(arm=arm))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if out.empty:
        raise ValueError(f"experiment table: none of the metrics {params['metrics']} of the methods {methods} "
                         f"is in the arms {list(arms)}")
    order = {m: i for i, m in enumerate(methods or out["method"].unique())}
    out = out.assign(_m=out["method"].map(order), _a=out["arm"].map({a: i for i, a in enumerate(arms)}))
    out = out.sort_values(["_a", "_m"], kind="stable").drop(columns=["_m", "_a"])
    return out[["arm", "method", *KEYS, "value"]].reset_index(drop=True)


VALIDATION_SCORES = ("crps_fair", "spread_skill_ratio", "psd_ratio")  # psd_ratio: the band farthest from 1


def with_validation_scores(metrics: pd.DataFrame, correction: TrainedModel, downscaling: TrainedModel) -> pd.DataFrame:
    """``metrics`` plus each diffusion model's scores on the VALIDATION tiles of its sampler selection
    (grid ``validation_<stage>``, method ``diffusion_chain``): what chooses between variants
    without looking at the test split (:func:`precipdiff.pipelines.residual_training.select_sampler`)."""
    rows = []
    for model in (correction, downscaling):
        scores = model.card.sampler_selection
        rows += [{"method": "diffusion_chain", "grid": f"validation_{model.card.stage}", "metric": k,
                  "threshold": np.nan, "scale": np.nan, "value": float(scores[k])} for k in VALIDATION_SCORES
                 if k in scores]
    return pd.concat([metrics, pd.DataFrame(rows)], ignore_index=True) if rows else metrics


def wide_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, method), one column per metric (:func:`column_name`), in table order."""
    cols = table.apply(column_name, axis=1)
    wide = table.assign(column=cols).pivot_table(index=["arm", "method"], columns="column", values="value",
                                                 sort=False, dropna=False)
    wide = wide[list(dict.fromkeys(cols))].dropna(how="all")  # (arm, method) pairs the arm does not have
    return wide.reset_index().rename_axis(columns=None)


def markdown_table(table: pd.DataFrame, title: str) -> str:
    """The wide table as Markdown (3 significant digits), for the README and the MLflow run."""
    wide = wide_table(table)
    header = "| " + " | ".join(wide.columns) + " |"
    rule = "|" + "---|" * len(wide.columns)
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float | np.floating) else str(v)  # noqa: E731
    rows = ["| " + " | ".join(fmt(v) for v in r) + " |" for r in wide.itertuples(index=False)]
    return "\n".join([f"### {title}", "", header, rule, *rows, ""])


def experiment_metrics(table: pd.DataFrame) -> dict:
    """MLflow run metrics ``<arm>.<method>.<metric…>`` (kedro-mlflow metric-history format; the
    catalog prefixes ``experiments.<name>``)."""
    out = {}
    for row in table.itertuples():
        key = f"{row.arm}.{row.method}.{column_name(row)}"
        key = key.replace("@", "_at_").replace("/", "_px").replace(" (0.1°)", "_coarse")
        key = key.replace(" (val. ", "_validation_").replace(")", "")
        out[key] = row.value
    return metric_history(out)


# ---- held_out: regions held out of training ------------------------------------------------------
HELD_OUT_METRICS = ("crps_fair", "rmse", "spread_skill_ratio", "psd_ratio_3km", "psd_ratio_5km", "psd_ratio_10km")


def renamed_method(hourly: pd.DataFrame, names: dict) -> pd.DataFrame:
    """Per-hour sums with methods renamed (``{old: new}``), so two arms' chains can be paired."""
    return hourly.assign(method=hourly["method"].replace(names))


def held_out_table(params: dict, **intervals: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, model, metric) of the held-out experiment, at 1 km on the region's test box-hours:
    ``model`` ``all_regions`` (the run's models) or ``held_out`` (trained without the region) with
    ``estimate [ci_low, ci_high]``, and ``held_out_vs_all`` the paired ratio held-out / all-regions."""
    rows = []
    for arm, table in intervals.items():
        region = params[arm]["region"]
        t = table[(table["stratum"] == "all") & (table["grid"] == "fine")]
        for model, method in (("all_regions", "diffusion_chain"), ("held_out", "diffusion_chain_held_out")):
            v = t[(t["method"] == method) & (t["kind"] == "value") & t["metric"].isin(HELD_OUT_METRICS)]
            rows += [{"arm": arm, "region": region, "model": model, "metric": r.metric, "estimate": r.estimate,
                      "ci_low": r.ci_low, "ci_high": r.ci_high, "n_hours": r.n_hours} for r in v.itertuples()]
        p = t[(t["method"] == "diffusion_chain_held_out") & (t["versus"] == "diffusion_chain")
              & (t["kind"] == "ratio")]
        rows += [{"arm": arm, "region": region, "model": "held_out_vs_all", "metric": r.metric, "estimate": r.estimate,
                  "ci_low": r.ci_low, "ci_high": r.ci_high, "n_hours": r.n_hours} for r in p.itertuples()]
    return pd.DataFrame(rows)


def held_out_markdown(table: pd.DataFrame, title: str) -> str:
    """The held-out table as Markdown: per region, each model's scores and the paired ratio."""
    from precipdiff.reporting.intervals import cell

    metrics = [m for m in HELD_OUT_METRICS if m in set(table["metric"])]
    header = "| region | model | " + " | ".join(metrics) + " | box-hours |"
    lines = [f"### {title}", "", header, "|" + "---|" * (len(metrics) + 3)]
    for (region, model), g in table.groupby(["region", "model"], sort=False):
        g = g.set_index("metric")
        cells = [cell(*g.loc[m, ["estimate", "ci_low", "ci_high"]]) if m in g.index else "–" for m in metrics]
        lines.append(f"| {region} | {model.replace('_', ' ')} | " + " | ".join(cells) + f" | {int(g['n_hours'].iloc[0])} |")
    return "\n".join([*lines, ""])


def held_out_metrics(table: pd.DataFrame) -> dict:
    """MLflow run metrics ``<region>.<model>.<metric>`` with ``_low``/``_high``."""
    out = {}
    for r in table.itertuples():
        for suffix, value in (("", r.estimate), ("_low", r.ci_low), ("_high", r.ci_high)):
            out[f"{r.region}.{r.model}.{r.metric}{suffix}"] = value
    return metric_history(out)
