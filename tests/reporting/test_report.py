"""The HTML report reads as plain language and fits a 1,280 px page (issue #24, item 6)."""

from __future__ import annotations

import re

import pandas as pd
import plotly.graph_objects as go

from precipdiff.reporting.report import _selection_html, build_report, describe_sampler, describe_versions

NAMES = {"correction": "precipdiff-correction", "downscaling": "precipdiff-downscaling"}


def selection(champion: dict, score=None, promote=True) -> dict:
    return {"alias": "champion", "mode": "if_better", "metric": "crps_fair", "promote": promote,
            "reason": "no champion yet" if score is None else "lower test CRPS", "registered_models": NAMES,
            "candidate": {"versions": {"correction": "3", "downscaling": "4"}, "score": 0.2278},
            "champion": {"versions": champion, "score": score, "score_from": "re-scored"}}


def test_versions_and_samplers_in_words():
    assert describe_versions({"correction": "3", "downscaling": "4"}, NAMES) == \
        "precipdiff-correction v3 and precipdiff-downscaling v4"
    assert describe_versions({"correction": None, "downscaling": None}, NAMES) == "none"
    assert describe_versions({"correction": "1", "downscaling": None}, NAMES) == \
        "precipdiff-correction v1 and no downscaling model"
    assert describe_sampler({"num_steps": 18, "solver": "heun", "sigma_max": 80.0, "sigma_min": 0.002, "rho": 7.0,
                             "S_churn": 0.0}) == "Heun 18 steps from σ_max 80 to σ_min 0.002 (ρ 7), no churn"
    assert describe_sampler({"num_steps": 5, "solver": "euler", "S_churn": 2.5}) == "Euler 5 steps, churn 2.5"


def test_the_model_selection_prints_no_python_values():
    first = _selection_html(selection({"correction": None, "downscaling": None}))
    assert "no model held the alias before" in first and "precipdiff-correction v3 and precipdiff-downscaling v4" in first
    later = _selection_html(selection({"correction": "1", "downscaling": "2"}, 0.3, promote=True))
    assert "the champion, precipdiff-correction v1 and precipdiff-downscaling v2, scores 0.3000 mm/h" in later
    for text in (first, later):
        assert not re.search(r"[{}]|None|'correction'", text), text


def test_tables_and_figures_sit_in_boxes_that_fit_the_page():
    metrics = pd.DataFrame({"method": ["diffusion_chain"], "grid": ["fine"], "metric": ["crps_fair"],
                            "threshold": [float("nan")], "scale": [float("nan")], "value": [0.2]})
    hours = pd.DataFrame({"time": pd.to_datetime(["2022-10-01T01"]), "radar_mean_mm_h": [1.0],
                          "radar_wet_fraction": [0.5], "sample": [True]})
    wide = go.Figure(go.Scatter(y=[1, 2]), layout={"width": 1600, "height": 300})  # 5 panels: drawn at page width
    maps = go.Figure(go.Scatter(y=[1, 2]), layout={"width": 2430, "height": 300})  # 7 panels: kept, scrolls
    narrow = go.Figure(go.Scatter(y=[1, 2]), layout={"width": 500, "height": 300})
    page = build_report(metrics, selection({"correction": None, "downscaling": None}), hours,
                        {"wide": wide, "maps": maps, "narrow": narrow}, {"summary": "s"})
    assert "max-width:1232px" in page and ".box{max-width:100%;overflow-x:auto" in page
    body = page.split("<body>")[1]
    assert body.count('<div class="box"><table') == body.count("<table") == 3  # 1 km, 0.1° and hours: all boxed
    assert body.count('<div class="box"><div>') == 3  # every figure in a box
    assert '"width":1600' not in body and '"width":2430' in body and '"width":500' in body
    assert wide.layout.width == 1600  # the figure (also a catalog dataset) is left as it is
