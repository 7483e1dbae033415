"""Bootstrap intervals of the evaluation: strata, paired rows, the MLflow metric names, the tables."""

import numpy as np
import pandas as pd
import pytest

from precipdiff import verification as v
from precipdiff.pipelines.evaluation.intervals import confidence_intervals, interval_metrics, strata
from precipdiff.reporting.intervals import markdown, paired_table, value_table

PARAMS = {"intervals": {"level": 0.9, "n_boot": 300, "block_hours": 2, "seed": 0, "wettest_fraction": 0.25,
                        "metrics": ["crps_fair", "rmse", "spread_skill_ratio"],
                        "psd_bands_km": {"psd_ratio_5km": [4.0, 6.0]},
                        "paired": {"methods": ["diffusion_chain"], "metrics": ["crps_fair"]}}}


def _hours(n: int) -> pd.DataFrame:
    times = pd.date_range("2022-10-25T01:00", periods=n, freq="4h")
    return pd.DataFrame({"time": times, "hour_key": (times.asi8 // 3_600_000_000_000).astype(int),
                         "radar_mean_mm_h": np.arange(n, dtype=float)[::-1]})


def _hourly(hours: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n, keys = len(hours), hours["hour_key"].to_numpy()
    obs = rng.gamma(0.5, 2.0, (n, 24, 24))
    ens = obs[:, None] + rng.normal(0, 1.0, (n, 4, 24, 24))
    stats = {("radar", "fine"): (obs, obs), ("diffusion_chain", "fine"): (ens, obs),
             ("regression_chain", "fine"): (obs + 1.0, obs)}
    accs = {}
    for key, (f, y) in stats.items():
        accs[key] = v.HourlyStats(pixel_km=1.0)
        accs[key].accum(f, y, keys)
    return v.hourly_table(accs)


def test_strata_are_all_hours_and_the_wettest_share_in_time_order():
    hours = _hours(12).sample(frac=1.0, random_state=1)
    s = strata(hours, 0.25)
    assert list(s["all"]) == sorted(s["all"]) and len(s["all"]) == 12
    assert list(s["wettest"]) == list(_hours(12)["hour_key"][:3])  # radar mean decreases with time
    with pytest.raises(ValueError, match="wettest_fraction"):
        strata(hours, 0)


def test_intervals_hold_every_score_and_the_paired_rows():
    hours = _hours(16)
    out = confidence_intervals(hours, PARAMS, _hourly(hours))
    value = out[(out["kind"] == "value") & (out["stratum"] == "all")].set_index(["method", "metric"])
    assert ("regression_chain", "spread_skill_ratio") not in value.index  # deterministic: no spread
    np.testing.assert_allclose(value.loc[("regression_chain", "crps_fair"), "estimate"], 1.0)  # MAE of +1
    np.testing.assert_allclose(value.loc[("regression_chain", "crps_fair"), ["ci_low", "ci_high"]], 1.0)
    row = value.loc[("diffusion_chain", "crps_fair")]
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    diff = out[(out["kind"] == "difference") & (out["stratum"] == "all") & (out["versus"] == "regression_chain")]
    np.testing.assert_allclose(diff["estimate"], row["estimate"] - 1.0)
    assert set(out["stratum"]) == {"all", "wettest"} and set(out.loc[out["stratum"] == "wettest", "n_hours"]) == {4}
    assert "psd_ratio_5km" in set(value.reset_index()["metric"])
    names = interval_metrics(out)
    assert "all.fine.diffusion_chain.crps_fair_low" in names
    assert "all.fine.diffusion_chain_vs_regression_chain.crps_fair_difference_high" in names
    table = paired_table(out, "diffusion_chain")
    assert "regression_chain" in table.index and "*" in table.loc["regression_chain", "CRPS fair Δ"]
    assert markdown(value_table(out)).startswith("| method | CRPS fair | RMSE |")
