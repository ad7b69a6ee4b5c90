"""Fair comparison of locations: shrinkage, funnel limits and the ICC, on worked numbers and known truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from cxresearch import compare


def simulated_locations(rng, k=200, mean=30.0, sd=12.0, n_low=8, n_high=400):
    """k locations with true NPS ~ N(mean, sd) and random sizes; responses drawn per location."""
    truth = np.clip(rng.normal(mean, sd, k), -75, 75)
    n = rng.integers(n_low, n_high, k)
    p_promoter, p_detractor = 0.4 + truth / 200, 0.4 - truth / 200  # 20% passives; NPS = truth
    rows = []
    for i in range(k):  # test data construction only; the code under test is vectorized
        cats = rng.choice([10, 8, 3], size=n[i], p=[p_promoter[i], 1 - p_promoter[i] - p_detractor[i], p_detractor[i]])
        rows.append(pd.DataFrame({"location_id": f"L{i:03d}", "nps": cats}))
    return pd.concat(rows, ignore_index=True), pd.Series(truth, index=[f"L{i:03d}" for i in range(k)])


@pytest.fixture(scope="module")
def brand():
    return simulated_locations(np.random.default_rng(42))


def test_shrinkage_is_closer_to_the_truth_than_raw_estimates(brand):
    responses, truth = brand
    out = compare.shrink(compare.location_estimates(responses)).set_index("location_id")
    t = truth[out.index]
    raw_error = np.sqrt(((out["estimate"] - t) ** 2).mean())
    shrunk_error = np.sqrt(((out["shrunk"] - t) ** 2).mean())
    assert shrunk_error < 0.85 * raw_error
    assert stats.spearmanr(out["shrunk"], t)[0] > stats.spearmanr(out["estimate"], t)[0]
    assert out["tau"].iloc[0] == pytest.approx(12.0, rel=0.25)  # the true between-location sd


def test_shrinkage_pulls_small_locations_hardest(brand):
    out = compare.shrink(compare.location_estimates(brand[0]))
    assert ((out["weight"] > 0) & (out["weight"] < 1)).all()
    assert stats.spearmanr(out["weight"], out["n"])[0] > 0.95
    pulled = (out["estimate"] - out["brand_mean"]).abs() >= (out["shrunk"] - out["brand_mean"]).abs()
    assert pulled.all()
    assert out["rank"].tolist() == sorted(out["rank"]) and out["rank"].iloc[0] == 1


def test_shrinkage_worked_numbers():
    est = pd.DataFrame({"location_id": ["a", "b", "c", "d"], "estimate": [10.0, 20.0, 40.0, 50.0],
                        "se": [5.0, 5.0, 10.0, 10.0], "n": [100, 100, 30, 30]})
    out = compare.shrink(est).set_index("location_id")
    tau2, mu = out["tau"].iloc[0] ** 2, out["brand_mean"].iloc[0]
    # Paule-Mandel: the weighted Q statistic equals its degrees of freedom at tau^2
    w = 1 / (est["se"] ** 2 + tau2)
    assert (w * (est["estimate"] - mu) ** 2).sum() == pytest.approx(3, rel=1e-4)
    assert mu == pytest.approx((w * est["estimate"]).sum() / w.sum(), rel=1e-6)
    b = tau2 / (tau2 + 25)
    assert out.loc["a", "shrunk"] == pytest.approx(mu + b * (10 - mu))
    with pytest.raises(ValueError, match="at least 3"):
        compare.shrink(est.head(2))


def test_funnel_worked_numbers_without_overdispersion():
    est = pd.DataFrame({"location_id": ["a", "b"], "estimate": [30.0, 5.0], "se": [8.0, 8.0], "n": [100, 100]})
    out = compare.funnel(est, brand_value=30.0, per_response_sd=80.0, overdispersion=False)
    assert out.loc[0, "lower_95"] == pytest.approx(30 - 1.959964 * 8, abs=1e-4)
    assert out.loc[0, "upper_998"] == pytest.approx(30 + 3.090232 * 8, abs=1e-4)
    assert out["flag"].tolist() == ["within", "below"] and out["flag_998"].tolist() == ["within", "below"]
    assert out["flag_95"].tolist() == ["within", "below"]
    # Benjamini-Hochberg over the two: p of b = 2 * (1 - Phi(25 / 8)) = 0.00178, its q = 2 * p / 2 = p... times 2/rank
    assert out.loc[1, "p"] == pytest.approx(0.001778, abs=1e-5) and out.loc[1, "q"] == pytest.approx(0.003556, abs=1e-5)


def test_funnel_leaves_small_locations_out_of_the_comparison():
    est = pd.DataFrame({"location_id": ["a", "b", "c"], "estimate": [30.0, -60.0, 5.0], "se": [8.0, 40.0, 8.0],
                        "n": [100, 4, 100]})
    out = compare.funnel(est, brand_value=30.0, per_response_sd=80.0, overdispersion=False, min_n=30)
    assert out["flag"].tolist() == ["within", "too few", "below"] and out["flag_95"].tolist()[1] == "too few"
    assert out.attrs["compared"] == 2 and out.attrs["expected_by_chance"] == pytest.approx(0.1)


def test_funnel_flags_about_5_percent_when_locations_are_alike():
    rng = np.random.default_rng(8)
    responses, _ = simulated_locations(rng, k=400, sd=0.0)
    out = compare.funnel(compare.location_estimates(responses))
    assert out["tau"].iloc[0] == 0.0
    assert 0.02 <= (out["flag_95"] != "within").mean() <= 0.09  # one at a time: about 5% by chance
    assert (out["flag_998"] != "within").mean() <= 0.015
    assert (out["flag"] != "within").sum() <= 2  # with false discoveries controlled: about none of 400 alike


def test_funnel_widens_for_overdispersion_and_still_finds_the_outlier(brand):
    responses, truth = brand
    bad = pd.DataFrame({"location_id": "BAD", "nps": [3] * 300 + [10] * 60})  # true NPS about -67
    out = compare.funnel(compare.location_estimates(pd.concat([responses, bad]))).set_index("location_id")
    assert out["tau"].iloc[0] > 5
    assert out.loc["BAD", "flag_998"] == "below"
    plain = compare.funnel(compare.location_estimates(responses), overdispersion=False)
    assert (plain["flag_95"] != "within").mean() > (out["flag_95"] != "within").mean()


def icc_data(rng, k=150, n=40, between=30.0):
    loc_effect = rng.normal(0, between, k)
    p_prom = np.clip(0.45 + loc_effect / 200, 0.02, 0.95)
    p_det = np.clip(0.25 - loc_effect / 200, 0.02, 0.95)
    rows = [pd.DataFrame({"location_id": i, "region": "N" if i % 2 else "S",
                          "nps": rng.choice([10, 8, 2], n, p=[p_prom[i], 1 - p_prom[i] - p_det[i], p_det[i]])})
            for i in range(k)]
    return pd.concat(rows, ignore_index=True)


def test_icc_worked_numbers_balanced():
    # two groups of two: y = [100, 100] and [-100, 0]; grand mean 25
    n, s, s2 = np.array([2, 2]), np.array([200.0, -100.0]), np.array([20000.0, 10000.0])
    got = compare.icc_from_sums(n, s, s2)
    ms_b = (2 * (100 - 25) ** 2 + 2 * (-50 - 25) ** 2) / 1  # 22500
    ms_w = (0 + 5000) / 2  # 2500
    assert got["icc"] == pytest.approx((ms_b - ms_w) / (ms_b + ms_w))  # n0 = 2
    f = ms_b / ms_w
    f_low = f / stats.f.ppf(0.975, 1, 2)
    assert got["ci_low"] == pytest.approx(max(0, (f_low - 1) / (f_low + 1)))


def test_icc_agrees_with_a_random_intercept_model():
    data = icc_data(np.random.default_rng(1))
    data["y"] = np.select([data["nps"] >= 9, data["nps"] <= 6], [100.0, -100.0], 0.0)
    fit = smf.mixedlm("y ~ 1", data, groups=data["location_id"]).fit(reml=True)
    icc_mixed = float(fit.cov_re.iloc[0, 0]) / (float(fit.cov_re.iloc[0, 0]) + fit.scale)
    got = compare.consistency(data).iloc[0]
    assert got["icc"] == pytest.approx(icc_mixed, abs=0.01)
    assert got["ci_low"] < got["icc"] < got["ci_high"]
    assert got["locations"] == 150 and got["responses"] == 6000


def test_icc_interval_covers_the_true_value():
    """Balanced groups with a known normal ICC of 0.2: Searle's interval covers about 95% of the time."""
    rng = np.random.default_rng(2)
    reps, k, n, hits = 400, 30, 20, 0
    for _ in range(reps):  # each replicate is one vectorized computation
        y = rng.normal(0, np.sqrt(0.2), (k, 1)) + rng.normal(0, np.sqrt(0.8), (k, n))
        got = compare.icc_from_sums(np.full(k, n), y.sum(1), (y**2).sum(1))
        hits += got["ci_low"] <= 0.2 <= got["ci_high"]
    assert 0.92 <= hits / reps <= 0.98


def test_icc_by_region():
    out = compare.consistency(icc_data(np.random.default_rng(3)), by="region")
    assert set(out["region"]) == {"N", "S"} and (out["icc"] > 0).all()
    with pytest.raises(ValueError, match="at least 2 groups"):
        compare.icc_from_sums([5], [1.0], [1.0])


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_on_the_synthetic_brand_shrinkage_ranks_closer_to_true_quality(seed):
    """Locations that differ a lot in size (traffic_sd=1: from a handful of responses to hundreds) are
    where raw means mislead: small locations land at both ends by chance. With similar sizes the
    ranks barely move (the estimates still get closer)."""
    import dataclasses

    import cxresearch as cx

    params = dataclasses.replace(cx.synth.SynthParams(), traffic_sd=1.0)
    dataset, truth = cx.synth.generate(n_locations=150, n_customers=15000, seed=seed, params=params)
    out = compare.shrink(compare.location_estimates(dataset.responses)).set_index("location_id")
    true_nps = truth.location_nps.set_index("location_id")["nps"].reindex(out.index)
    raw_rank = stats.spearmanr(out["estimate"], true_nps)[0]
    shrunk_rank = stats.spearmanr(out["shrunk"], true_nps)[0]
    assert shrunk_rank > raw_rank + 0.02
    rank_error = lambda values: (values.rank() - true_nps.rank()).abs().mean()  # noqa: E731
    assert rank_error(out["shrunk"]) < rank_error(out["estimate"])
    assert np.sqrt(((out["shrunk"] - true_nps) ** 2).mean()) < 0.7 * np.sqrt(((out["estimate"] - true_nps) ** 2).mean())


def test_verdicts_worked_numbers_and_the_interval_that_agrees():
    est = pd.DataFrame({"location_id": list("abcd"), "estimate": [30.0, 5.0, 32.0, 90.0], "se": [8.0, 8.0, 8.0, 30.0],
                        "n": [100, 100, 100, 10]})
    out = compare.verdicts(est, brand_value=30.0, min_n=30)
    assert out["verdict"].tolist() == ["within", "below", "within", "too few"]
    # b: z = -25/8, p = 0.001778; BH over the 3 compared: q = 3 p / 1 = 0.00533 <= 0.05; one flagged of three,
    # so the ranges are at 1 - 0.05 x 1/3 = 98.33%, z = 2.394
    assert out.loc[1, "q"] == pytest.approx(3 * 0.0017770, rel=1e-3)
    assert out.attrs["verdict_level"] == pytest.approx(1 - 0.05 / 3)
    assert out.loc[1, "verdict_ci_high"] == pytest.approx(5 + 2.39398 * 8, abs=1e-3)


def test_every_verdict_agrees_with_the_range_shown_beside_it(brand):
    responses, _ = brand
    out = compare.verdicts(compare.location_estimates(responses), min_n=30)
    shown = out[out["verdict"] != "too few"]
    above = shown["verdict_ci_low"] > shown["brand_value"]
    below = shown["verdict_ci_high"] < shown["brand_value"]
    assert ((shown["verdict"] == "above") == above).all() and ((shown["verdict"] == "below") == below).all()
    assert shown["verdict"].isin(["above", "below"]).sum() > 10  # true spread of 12 points: many really differ


def test_verdicts_flag_about_none_of_many_alike_locations():
    rng = np.random.default_rng(8)
    responses, _ = simulated_locations(rng, k=400, sd=0.0)
    out = compare.verdicts(compare.location_estimates(responses))
    assert (out["verdict"] != "within").sum() <= 2


def test_flagged_locations_are_on_the_side_the_truth_says(brand):
    responses, truth = brand
    out = compare.verdicts(compare.location_estimates(responses), min_n=30).set_index("location_id")
    flagged = out[out["verdict"].isin(["above", "below"])]
    true_side = np.where(truth.reindex(flagged.index) > flagged["brand_value"], "above", "below")
    assert (flagged["verdict"] != true_side).mean() <= 0.05  # the false-discovery rate the verdict promises
