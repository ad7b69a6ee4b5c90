"""Models recover the synthetic brand's published truth; degenerate input gets a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch import models, retention

SEEDS = (1, 2, 3)


@pytest.fixture(scope="module", params=SEEDS)
def brand(request):
    """A brand big enough that a location-quarter NPS is more signal than survey noise (CI-quick: ~2 s)."""
    dataset, truth = cx.synth.generate(100, 400_000, seed=request.param, survey_rate=0.6)
    return dataset, truth, retention.customer_table(dataset, horizon_days=180)


def test_retention_gap_interval_contains_the_truth(brand):
    dataset, truth, table = brand
    effect = models.retention_effect(table)
    assert effect.ci_low <= truth.retention_gap_pp <= effect.ci_high
    assert effect.unit == "percentage points" and effect.n["locations"] == 100
    assert "Observational" in effect.caveats and "clustered by location" in effect.method


def test_retention_gap_by_region(brand):
    dataset, truth, table = brand
    effect = models.retention_effect(table, by="region")
    per_region = effect.details.set_index("region")
    for region, true_gap in truth.retention_gap_pp_by_region.items():
        row = per_region.loc[region]
        assert abs(row["gap_pp"] - true_gap) < 4 * (row["ci_high"] - row["ci_low"]) / 3.92


def test_revenue_effect_beats_the_naive_and_uncorrected_estimates(brand):
    """Per brand the within-location, noise-corrected estimate is far closer to the truth than the
    naive cross-location one. (Its 95% interval covers the truth in about 92% of 200 brands, short
    of the 93-97% target: see benchmarks/recovery.py and issue 4; so no per-brand coverage assert.)"""
    dataset, truth, _ = brand
    effect = models.revenue_effect(dataset, n_boot=100)
    naive = effect.details.set_index("estimate")["pct_per_10nps"]
    assert abs(naive.iloc[2] - truth.revenue_pct_per_10nps) > 2 * abs(effect.estimate - truth.revenue_pct_per_10nps)
    assert effect.ci_low < effect.estimate < effect.ci_high
    assert effect.extra["reliability"] > 0.3


def test_revenue_effect_is_centred_on_the_truth_across_brands():
    estimates, truths = [], []
    for seed in SEEDS:
        dataset, truth = cx.synth.generate(100, 400_000, seed=seed, survey_rate=0.6)
        estimates.append(models.revenue_effect(dataset, n_boot=20).estimate)
        truths.append(truth.revenue_pct_per_10nps)
    # sd of one brand's estimate is about 1.1 points (recovery benchmark), so of a mean of 3 about 0.65
    assert abs(np.mean(estimates) - np.mean(truths)) < 2.0
    uncorrected = [models.revenue_effect(cx.synth.generate(100, 400_000, seed=s, survey_rate=0.6)[0], n_boot=2)
                   .details.iloc[1]["pct_per_10nps"] for s in SEEDS[:1]]
    assert uncorrected[0] < 0.7 * np.mean(truths)  # survey noise alone halves the naive within-location slope


def test_ex_effect_interval_contains_the_truth(brand):
    dataset, truth, _ = brand
    effect = models.ex_effect(dataset)
    assert effect.ci_low <= truth.ex_nps_points_per_10ex <= effect.ci_high


def test_key_drivers_recover_the_true_importance(brand):
    dataset, truth, _ = brand
    out = models.drivers(dataset.responses, n_boot=50).set_index("driver")
    for attribute, share in truth.attribute_importance.items():
        assert abs(out.loc[attribute, "importance"] - share) < 0.01
    assert out["importance"].idxmax() == max(truth.attribute_importance, key=truth.attribute_importance.get)
    assert out["importance"].sum() == pytest.approx(1)
    assert (out["ci_low"] <= out["importance"]).all() and (out["importance"] <= out["ci_high"]).all()


def test_survival_cross_check_agrees_in_direction(brand):
    _, _, table = brand
    hazard = models.survival_check(table, max_customers=50_000)
    assert hazard.ci_low > 1  # promoters come back sooner, as the retention gap says


def test_what_if_carries_both_uncertainties(brand):
    dataset, truth, table = brand
    rev, ret = models.revenue_effect(dataset, n_boot=100), models.retention_effect(table)
    scenario = models.what_if(dataset, rev, ret, scenario="median")
    t = scenario.total
    assert t["locations_changed"] >= 45 and t["mean_nps_gain"] > 0
    assert t["revenue_gain_ci_low"] < t["revenue_gain"] < t["revenue_gain_ci_high"]
    assert t["retained_gain_ci_low"] < t["retained_gain"] < t["retained_gain_ci_high"]
    assert (scenario.locations.loc[scenario.locations["nps_gain"] == 0, "revenue_gain"] == 0).all()
    assert "Raise every location below the brand median" in str(scenario)


# --- worked numbers and degenerate input -----------------------------------------------------------

def test_relative_weights_worked_example():
    """Two uncorrelated predictors: relative weights equal the squared correlations with the target."""
    cov = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.3], [0.6, 0.3, 1.0]])
    raw, r2 = models.relative_weights_from_cov(cov)
    assert raw == pytest.approx([0.36, 0.09]) and r2 == pytest.approx(0.45)


def test_errors_in_variables_correction_on_known_noise():
    rng = np.random.default_rng(4)
    true_x = rng.normal(0, 1, 200_000)
    noise_var = np.full(true_x.size, 1.0)  # reliability 0.5: the naive slope is halved
    x = true_x + rng.normal(0, 1, true_x.size)
    y = 0.3 * true_x + rng.normal(0, 0.5, true_x.size)
    corrected, naive, reliability = models._errors_in_x_slope(y - y.mean(), x - x.mean(), noise_var)
    assert naive == pytest.approx(0.15, abs=0.01) and corrected == pytest.approx(0.3, abs=0.01)
    assert reliability == pytest.approx(0.5, abs=0.01)


def test_two_way_demeaning_matches_dummies():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"unit": np.repeat(np.arange(30), 6), "time": np.tile(np.arange(6), 30)})
    frame = frame.sample(150, random_state=1).reset_index(drop=True)  # unbalanced
    frame["x"] = rng.normal(size=len(frame)) + frame["unit"] * 0.1
    frame["y"] = 2 * frame["x"] + frame["unit"] * 0.5 - frame["time"] + rng.normal(size=len(frame))
    import statsmodels.formula.api as smf
    dummies = smf.ols("y ~ x + C(unit) + C(time)", frame).fit().params["x"]
    d = models.two_way_demean(frame, ["y", "x"], "unit", "time")
    assert float(d["x"] @ d["y"] / (d["x"] @ d["x"])) == pytest.approx(dummies, rel=1e-8)


def small_table(groups, retained, censored=None, locations=None):
    n = len(groups)
    return pd.DataFrame({
        "anchor_location_id": locations if locations is not None else [f"L{i % 3}" for i in range(n)],
        "nps": [10 if g == "promoter" else 8 if g == "passive" else 3 for g in groups],
        "nps_group": pd.Categorical(groups, categories=["detractor", "passive", "promoter"], ordered=True),
        "retained": pd.array(retained, dtype="boolean"),
        "censored": censored if censored is not None else [False] * n, "region": "N", "format": "mall"})


def test_retention_effect_needs_detractors_and_known_outcomes():
    with pytest.raises(ValueError, match="no detractor"):
        models.retention_effect(small_table(["promoter", "passive"] * 10, [True, False] * 10))
    with pytest.raises(ValueError, match="censored"):
        models.retention_effect(small_table(["promoter", "detractor"] * 5, [None] * 10, censored=[True] * 10))
    with pytest.raises(ValueError, match="at least two locations"):
        models.retention_effect(small_table(["promoter", "detractor"] * 5, [True, False] * 5, locations=["L1"] * 10))


def test_panel_models_need_locations_and_periods():
    dataset, _ = cx.synth.generate(1, 300, seed=1)
    with pytest.raises(ValueError, match="at least 3 locations"):
        models.revenue_effect(dataset)
    with pytest.raises(ValueError, match="at least 3 locations"):
        models.ex_effect(dataset)
    one_quarter, _ = cx.synth.generate(10, 2000, start="2024-01-01", end="2024-03-31", seed=1)
    with pytest.raises(ValueError, match="consecutive periods"):
        models.revenue_effect(one_quarter)


def test_a_location_without_responses_is_left_out_not_a_crash():
    dataset, _ = cx.synth.generate(12, 3000, seed=2)
    silent = dataset.locations["location_id"].iloc[0]
    dataset.responses = dataset.responses[dataset.responses["location_id"] != silent].reset_index(drop=True)
    effect = models.revenue_effect(dataset, n_boot=20)
    assert effect.n["locations"] == 11


def test_drivers_need_data_and_drivers():
    with pytest.raises(ValueError, match="no drivers"):
        models.drivers(pd.DataFrame({"nps": [1, 2]}), attributes=[])
    with pytest.raises(ValueError, match="at least 100 complete responses"):
        models.drivers(pd.DataFrame({"nps": [1, 2], "attr_staff": [1, 2], "location_id": ["a", "b"]}))


def test_effect_reads_as_a_sentence():
    effect = models.Effect(name="Gap", estimate=12.34, ci_low=10.0, ci_high=14.5, unit="percentage points",
                           n={"customers": 1200}, method="m", caveats="Observational.")
    assert str(effect) == "Gap: +12.3 percentage points (95% CI +10.0 to +14.5; 1,200 customers). Observational."
