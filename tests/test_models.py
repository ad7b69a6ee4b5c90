"""Models recover the synthetic brand's published truth; degenerate input gets a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import cxresearch as cx
from cxresearch import models, retention
from cxresearch.measures.importance import relative_weights_from_cov
from cxresearch.models import panel

SEEDS = (1, 2, 3)


@pytest.fixture(scope="module", params=SEEDS)
def brand(request):
    """A brand big enough that a location-quarter NPS is more signal than survey noise (CI-quick: ~2 s)."""
    dataset, truth = cx.synth.generate(100, 400_000, seed=request.param, survey_rate=0.6)
    return dataset, truth, retention.customer_table(dataset, horizon_days=180)


def test_retention_gap_recovers_the_truth(brand):
    """Within 3 standard errors of the truth per brand (a 95% interval misses 1 brand in 20 by design;
    benchmarks/recovery.py measures its coverage over 400 brands)."""
    dataset, truth, table = brand
    effect = models.retention_effect(table)
    assert abs(effect.estimate - truth.retention_gap_pp) < 3 * effect.se
    assert effect.ci_low == pytest.approx(effect.estimate - 1.984217 * effect.se)  # t with 99 degrees of freedom
    assert effect.unit == "percentage points" and effect.n["locations"] == 100
    assert "Observational" in effect.caveats and "leave-one-location-out jackknife" in effect.method
    assert "top:segment=value" in effect.extra["interactions"] and "allowed to differ by" in effect.method


def test_retention_gap_by_region(brand):
    dataset, truth, table = brand
    effect = models.retention_effect(table, by="region")
    per_region = effect.details.set_index("region")
    for region, true_gap in truth.retention_gap_pp_by_region.items():
        row = per_region.loc[region]
        assert abs(row["gap_pp"] - true_gap) < 4 * (row["ci_high"] - row["ci_low"]) / 3.92


def test_revenue_effect_beats_the_naive_and_uncorrected_estimates(brand):
    """Per brand the within-location, noise-corrected estimate is far closer to the truth than the
    naive cross-location one. (Its interval's coverage over 200 brands per measure is measured by
    benchmarks/recovery.py, so no per-brand coverage assert.)"""
    dataset, truth, _ = brand
    effect = models.revenue_effect(dataset, n_boot=100)
    naive = effect.details.set_index("estimate")["pct_per_10"]
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
                   .details.iloc[1]["pct_per_10"] for s in SEEDS[:1]]
    assert uncorrected[0] < 0.7 * np.mean(truths)  # survey noise alone halves the naive within-location slope


def test_score_interval_is_the_set_where_the_clustered_score_test_accepts():
    """Worked check: the closed-form interval's ends are where the statistic |sum s_g| / sqrt(k sum s_g^2),
    s_g = a_g - b r_g, crosses the t quantile (found here by brute force on a grid), and the
    confidence draws reproduce it."""
    rng = np.random.default_rng(5)
    r = rng.uniform(0.5, 1.5, 40)
    a = 0.3 * r + rng.normal(0, 0.4, 40)
    parts = {"a": a, "r": r, "clusters": 40, "inflate": 40 / 39, "estimate": a.sum() / r.sum()}
    low, high = panel._score_interval(parts, 0.95)
    grid = np.linspace(-2, 2, 4_001)
    stat = np.array([abs((a - b * r).sum()) / np.sqrt(40 / 39 * ((a - b * r) ** 2).sum()) for b in grid])
    accepted = grid[stat <= stats.t.ppf(0.975, 39)]
    assert low < parts["estimate"] < high
    assert abs(accepted.min() - low) < 2e-3 and abs(accepted.max() - high) < 2e-3
    draws = panel._confidence_draws(parts, 200_000, seed=1)
    assert np.allclose(np.quantile(draws, [0.025, 0.975]), [low, high], atol=0.01)


def test_revenue_effect_says_when_the_data_cannot_bound_it():
    """No signal in the measure within locations (pure survey noise): not an interval from -inf to
    +inf on a page, but a plain reason."""
    rng = np.random.default_rng(0)
    rows = [{"location_id": f"L{g}", "period": p, "revenue": float(np.exp(rng.normal(10, 0.1))),
             "cx_lag": float(rng.normal(30, 10)), "cx_var_lag": 100.0, "cx_n_lag": 50}
            for g in range(30) for p in range(4)]
    with pytest.raises(ValueError, match="barely varies|too imprecise to bound"):
        models.revenue_effect(pd.DataFrame(rows))


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
    assert t["locations_changed"] >= 45 and t["mean_gain"] > 0
    assert t["revenue_gain_ci_low"] < t["revenue_gain"] < t["revenue_gain_ci_high"]
    assert t["retained_gain_ci_low"] < t["retained_gain"] < t["retained_gain_ci_high"]
    assert (scenario.locations.loc[scenario.locations["gain"] == 0, "revenue_gain"] == 0).all()
    assert "Raise every location below the brand median" in str(scenario)


# --- worked numbers and degenerate input -----------------------------------------------------------

def test_relative_weights_worked_example():
    """Two uncorrelated predictors: relative weights equal the squared correlations with the target."""
    cov = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.3], [0.6, 0.3, 1.0]])
    raw, r2 = relative_weights_from_cov(cov)
    assert raw == pytest.approx([0.36, 0.09]) and r2 == pytest.approx(0.45)


def test_errors_in_variables_correction_on_known_noise():
    rng = np.random.default_rng(4)
    true_x = rng.normal(0, 1, 200_000)
    noise_var = np.full(true_x.size, 1.0)  # reliability 0.5: the naive slope is halved
    x = true_x + rng.normal(0, 1, true_x.size)
    y = 0.3 * true_x + rng.normal(0, 0.5, true_x.size)
    corrected, naive, reliability = panel._errors_in_x_slope(y - y.mean(), x - x.mean(), noise_var)
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
    with pytest.raises(ValueError, match="every promoter customer came back .* cannot be estimated"):  # separation
        models.retention_effect(small_table(["promoter", "detractor"] * 5, [True, False] * 5))


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
    dataset, _ = cx.synth.generate(12, 60_000, seed=2, survey_rate=0.6)  # (smaller, the link cannot be bounded)
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


# --- interval routines: worked numbers ------------------------------------------------------------

def small_panel(locations=9, periods=5, seed=6):
    """An unbalanced location x period panel with persistent EX, unequal cell sizes and noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"location_id": np.repeat([f"L{i}" for i in range(locations)], periods),
                          "period": np.tile([f"2024Q{q}" for q in range(1, periods + 1)], locations)})
    frame = frame.drop(index=[3, 17, 30]).reset_index(drop=True)
    frame["nps_n"] = rng.integers(20, 300, len(frame))
    frame["ex"] = 60 + rng.normal(0, 6, len(frame)) + frame["location_id"].str[1:].astype(int)
    frame["nps"] = (0.4 * frame["ex"] + 3 * frame["location_id"].str[1:].astype(int)
                    + rng.normal(0, 60 / np.sqrt(frame["nps_n"])) + rng.normal(0, 2, len(frame)))
    return frame


def brute_force_wild_t(frame, b0, draws):
    """Restricted wild cluster bootstrap t statistics by refitting WLS with location and period dummies."""
    import statsmodels.formula.api as smf

    data = frame.assign(x=frame["ex"] / 10)
    full = smf.wls("nps ~ x + C(location_id) + C(period)", data, weights=data["nps_n"])
    X, w = full.exog, full.weights
    slope = list(full.exog_names).index("x")
    dummies = np.delete(X, slope, axis=1)
    restricted = sm.WLS(data["nps"].to_numpy() - b0 * data["x"].to_numpy(), dummies, weights=w).fit()
    fitted, u0 = restricted.fittedvalues + b0 * data["x"].to_numpy(), restricted.resid
    codes = pd.factorize(data["location_id"])[0]
    return np.array([cr0_t(sm.WLS(fitted + v[codes] * u0, X, weights=w), codes, b0, slope) for v in draws])


def cr0_t(model, codes, b0, slope):
    """t statistic of the slope against b0 with the plain (CR0) location-clustered standard error; a
    small-sample factor would multiply the original and every bootstrap t alike and cancel."""
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": codes, "use_correction": False})
    return (np.asarray(fit.params)[slope] - b0) / np.asarray(fit.bse)[slope]


def test_fe_panel_wls_matches_statsmodels_with_dummies():
    import statsmodels.formula.api as smf

    frame = small_panel()
    fit = panel._fe_panel_wls(frame["nps"].to_numpy(), frame["ex"].to_numpy() / 10, frame["location_id"],
                               frame["period"], frame["nps_n"].to_numpy(float))
    codes = pd.factorize(frame["location_id"])[0]
    ref = smf.wls("nps ~ I(ex / 10) + C(location_id) + C(period)", frame, weights=frame["nps_n"]).fit(
        cov_type="cluster", cov_kwds={"groups": codes})
    assert fit["estimate"] == pytest.approx(ref.params["I(ex / 10)"], rel=1e-10)
    # same cluster-robust meat; statsmodels' CR1 factor counts the 9 absorbed location dummies as parameters
    n, g, k = len(frame), 9, 5
    ours = fit["se"] ** 2 / (g / (g - 1) * (n - 1) / (n - k))
    theirs = ref.bse["I(ex / 10)"] ** 2 / (g / (g - 1) * (n - 1) / (n - ref.df_model - 1))
    assert ours == pytest.approx(theirs, rel=1e-8)


def test_wild_cluster_bootstrap_t_statistics_equal_brute_force_refits():
    """The closed-form t*(b0) of every draw equals refitting the bootstrap sample with all dummies."""
    frame = small_panel()
    fit = panel._fe_panel_wls(frame["nps"].to_numpy(), frame["ex"].to_numpy() / 10, frame["location_id"],
                               frame["period"], frame["nps_n"].to_numpy(float))
    draws = panel.WEBB_WEIGHTS[np.random.default_rng(1).integers(0, 6, size=(12, 9))]
    parts = panel._wild_cluster_parts(fit, draws)
    for b0 in (fit["estimate"] - 1.5, 2.0):
        spread = np.sqrt(parts["q2"] - 2 * b0 * parts["q1"] + b0**2 * parts["q0"])
        closed = (parts["num1"] - b0 * parts["num0"]) / spread
        assert closed == pytest.approx(brute_force_wild_t(frame, b0, draws), rel=1e-8)


def test_wild_cluster_interval_is_where_the_bootstrap_test_stops_rejecting():
    frame = small_panel()
    fit = panel._fe_panel_wls(frame["nps"].to_numpy(), frame["ex"].to_numpy() / 10, frame["location_id"],
                               frame["period"], frame["nps_n"].to_numpy(float))
    low, high = models.wild_cluster_interval(fit, level=0.9, n_boot=99, seed=3)
    draws = panel.WEBB_WEIGHTS[np.random.default_rng(3).integers(0, 6, size=(99, 9))]  # the same draws
    step = 1e-3 * fit["se"]

    import statsmodels.formula.api as smf

    original = smf.wls("nps ~ x + C(location_id) + C(period)", frame.assign(x=frame["ex"] / 10), weights=frame["nps_n"])
    codes, slope = pd.factorize(frame["location_id"])[0], list(original.exog_names).index("x")

    def p_value(b0):
        t = cr0_t(original, codes, b0, slope)
        return np.mean(np.abs(brute_force_wild_t(frame, b0, draws)) >= abs(t))

    assert low < fit["estimate"] < high
    assert p_value(low - step) <= 0.1 < p_value(low + step)
    assert p_value(high + step) <= 0.1 < p_value(high - step)


def test_ex_effect_interval_is_seeded_and_says_what_it_is():
    frame = small_panel().rename(columns={"nps": "cx", "nps_n": "cx_n"})  # the panel's columns for any measure
    one, again = models.ex_effect(frame, n_boot=999, seed=4), models.ex_effect(frame, n_boot=999, seed=4)
    assert (one.ci_low, one.ci_high) == (again.ci_low, again.ci_high)
    assert one.ci_low < one.estimate < one.ci_high and one.n == {"locations": 9, "periods": 5, "location_periods": 42}
    assert "wild cluster bootstrap" in one.method and "Webb" in one.method and "9 locations" in one.caveats
    assert one.summary().startswith("NPS change per +10 points of employee experience")


def test_retention_gap_worked_example_with_interactions():
    """Group x format interactions make the model saturated, so the gap is the hand-computed
    standardized difference: 120/300 x (30/40 - 10/40) + 180/300 x (40/80 - 12/40) = 32 points (the
    additive logit, one gap on the log-odds scale, gives 32.2). Interactions need 10+ retained and
    10+ lost customers in 10+ locations."""
    groups, retained, formats = [], [], []
    for fmt, counts in {"mall": {"promoter": (30, 40), "passive": (20, 40), "detractor": (10, 40)},
                        "street": {"promoter": (40, 80), "passive": (29, 60), "detractor": (12, 40)}}.items():
        for group, (kept, total) in counts.items():
            groups += [group] * total
            retained += [True] * kept + [False] * (total - kept)
            formats += [fmt] * total
    table = small_table(groups, retained, locations=[f"L{i % 12}" for i in range(len(groups))]).assign(format=formats)
    effect = models.retention_effect(table, covariates=("format",))
    assert effect.estimate == pytest.approx(32.0, abs=1e-6)
    assert effect.extra["interactions"] == ["middle:format=street", "top:format=street"]
    assert "allowed to differ by format" in effect.method and effect.ci_low < 32 < effect.ci_high
    thin = models.retention_effect(table.iloc[::5], covariates=("format",))  # under 10 lost customers per group
    assert thin.extra["interactions"] == [] and "allowed to differ" not in thin.method
    few = table.assign(anchor_location_id=[f"L{i % 4}" for i in range(len(table))])  # a format in under 10 locations
    assert models.retention_effect(few, covariates=("format",)).extra["interactions"] == []


def test_retention_jackknife_equals_refitting_without_each_location():
    """The one-step jackknife standard error against the definition: refit the model without each
    location in turn, recompute the gap over the customers left, sqrt((G-1)/G sum (gap_-g - mean)^2)."""
    from cxresearch.measures.measure import get
    from cxresearch.models import retention as fits

    rng = np.random.default_rng(5)
    n = 6000
    location = rng.integers(0, 25, n)
    group = rng.choice(["promoter", "passive", "detractor"], n, p=[0.5, 0.3, 0.2])
    fmt = np.where(location < 12, "mall", "street")  # 13 street locations: interactions kept without any one
    odds = (-1.0 + 0.8 * (group == "promoter") + 0.3 * (group == "passive") + 0.4 * (fmt == "street")
            + rng.normal(0, 0.3, 25)[location])
    table = small_table(list(group), list(rng.random(n) < 1 / (1 + np.exp(-odds))),
                        locations=[f"L{i:02d}" for i in location]).assign(format=fmt)
    effect = models.retention_effect(table, covariates=("format",))

    def gap_of(part):
        data = part.assign(cx_group=fits.coded_groups(part, get("nps")))
        cells = fits._cells(data, ["anchor_location_id", "cx_group", "format"])
        x, interactions = fits._interacted_design(cells, ["format"], "anchor_location_id")
        endog = np.column_stack([cells["sum"], cells["size"] - cells["sum"]])
        model = sm.GLM(endog, x, family=sm.families.Binomial()).fit()
        return 100 * fits._ame_gap(model, x, cells["size"].to_numpy(dtype=float), interactions)[0]

    without = np.array([gap_of(table[table["anchor_location_id"] != loc]) for loc in sorted(set(table["anchor_location_id"]))])
    exact = np.sqrt(24 / 25 * ((without - without.mean()) ** 2).sum())
    assert effect.se == pytest.approx(exact, rel=0.01)
    assert effect.extra["interactions"] == ["middle:format=street", "top:format=street"]
    assert effect.ci_high - effect.estimate == pytest.approx(2.063899 * effect.se)  # t with 24 degrees of freedom
    assert effect.extra["se_cr1"] != pytest.approx(effect.se, rel=0.01)
