"""Metrics: worked numbers for every formula, properties, interval coverage by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

import cxresearch.measures.metrics as m

# --- worked numbers ---------------------------------------------------------------------------------

def test_nps_worked_example():
    r = m.nps([10] * 50 + [7] * 30 + [0] * 20)
    assert (r.nps, r.n, r.promoters, r.passives, r.detractors) == (30.0, 100, 50, 30, 20)
    assert r.se == pytest.approx(7.81, abs=0.005)  # 100*sqrt((.5+.2-.09)/100)
    assert (r.share_promoters, r.share_passives, r.share_detractors) == (0.5, 0.3, 0.2)
    # adjusted Wald: (50.75 - 20.75)/103 = 29.126; se_adj = 100*sqrt((.49272+.20146-.08483)/103) = 7.6902
    assert r.ci_low == pytest.approx(29.126 - 1.959964 * 7.6902, abs=0.01)
    assert r.ci_high == pytest.approx(29.126 + 1.959964 * 7.6902, abs=0.01)


def test_nps_small_sample_interval_stays_on_the_scale():
    r = m.nps([10, 9, 10, 10, 9])
    assert r.nps == 100.0
    # pseudo-counts: p=5.75/8, d=.75/8 -> centre 62.5, half 1.96*100*sqrt((.8125-.390625)/8)=45.01
    assert r.ci_low == pytest.approx(62.5 - 45.008, abs=0.01)
    assert r.ci_high == 100.0


def test_nps_ignores_and_counts_missing_and_rejects_off_scale():
    r = m.nps(pd.Series([9, None, 3, np.nan], dtype="float64"))
    assert (r.n, r.missing, r.nps) == (2, 2, 0.0)
    with pytest.raises(ValueError, match="whole numbers from 0 to 10"):
        m.nps([11, 3])
    with pytest.raises(ValueError, match="whole numbers"):
        m.nps([7.5])


def test_nps_level_changes_the_width():
    narrow, wide = m.nps([10] * 40 + [3] * 20, level=0.8), m.nps([10] * 40 + [3] * 20, level=0.99)
    assert wide.ci_high - wide.ci_low > narrow.ci_high - narrow.ci_low
    with pytest.raises(ValueError, match="level"):
        m.nps([10], level=95)


def test_wilson_worked_numbers_and_agreement_with_statsmodels():
    low, high = m.wilson_interval([0], [10])
    assert low[0] == 0 and high[0] == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)  # 0.2775
    for k, n in [(81, 263), (1, 7), (29, 30), (500, 1000)]:
        ours = m.wilson_interval([k], [n])
        theirs = proportion_confint(k, n, method="wilson")
        assert (ours[0][0], ours[1][0]) == pytest.approx(theirs, abs=1e-9)


def test_difference_of_shares_matches_newcombes_worked_numbers():
    """Newcombe (1998), Table II, method 10 (hybrid Wilson): 56/70 - 48/80 = 0.2 (0.0524 to 0.3339);
    0/10 - 0/20 = 0 (-0.1611 to 0.2775)."""
    from cxresearch.measures.intervals import proportion_difference

    d = proportion_difference(48, 80, 56, 70)
    assert d["change"] == pytest.approx(0.2)
    assert (d["low"], d["high"]) == (pytest.approx(0.0524, abs=5e-5), pytest.approx(0.3339, abs=5e-5))
    assert d["z"] == pytest.approx(0.2 / np.sqrt(104 / 150 * 46 / 150 * (1 / 80 + 1 / 70)))
    d = proportion_difference(0, 20, 0, 10)
    assert (d["low"], d["high"]) == (pytest.approx(-0.1611, abs=5e-5), pytest.approx(0.2775, abs=5e-5))
    assert np.isnan(proportion_difference(0, 0, 3, 10)["change"])


def test_csat_top_two_box():
    r = m.csat([5, 4, 3, 2, 1, 5, None])
    assert (r.share, r.n, r.successes, r.missing) == (0.5, 6, 3, 1)
    assert (r.ci_low, r.ci_high) == pytest.approx(proportion_confint(3, 6, method="wilson"), abs=1e-9)
    assert m.csat([7, 6, 5, 1], scale=7, top_box=2).share == 0.5
    assert m.csat([5, 4, 4, 1], top_box=1).share == 0.25
    with pytest.raises(ValueError):
        m.csat([6])


def test_ces_mean_and_share_easy():
    r = m.ces([1, 2, 3, 4, 5, 6, 7])
    # mean 4, sd sqrt(28/6), se .8165, t(.975, 6) = 2.4469
    assert r.mean == 4.0
    assert (r.mean_ci_low, r.mean_ci_high) == pytest.approx((4 - 2.446912 * 0.816497, 4 + 2.446912 * 0.816497), abs=1e-4)
    assert r.share_easy == pytest.approx(3 / 7)
    tiny = m.ces([7, 1])
    assert 1 <= tiny.mean_ci_low and tiny.mean_ci_high <= 7  # clipped to the scale


def test_proportion_checks_its_input():
    assert m.proportion(30, 40).share == 0.75
    with pytest.raises(ValueError):
        m.proportion(41, 40)


# --- properties -------------------------------------------------------------------------------------

counts = st.tuples(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400)).filter(lambda c: sum(c) > 0)


@given(st.lists(counts, min_size=1, max_size=20))
def test_nps_properties(groups):
    p, a, d = (np.array(x) for x in zip(*groups))
    r = m.nps_from_counts(p, a, d)
    assert ((r.nps >= -100) & (r.nps <= 100)).all()
    assert np.allclose(r.share_promoters + r.share_passives + r.share_detractors, 1)
    assert ((r.ci_low >= -100) & (r.ci_high <= 100) & (r.ci_low < r.ci_high)).all()
    assert (r.se >= 0).all()


@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(0, 10), st.integers(1, 5)), min_size=1, max_size=200),
       st.integers(1, 40))
def test_suppression_never_leaks_a_value(rows, min_n):
    frame = pd.DataFrame(rows, columns=["location_id", "nps", "csat"])
    out = m.summarize(frame, by="location_id", metrics=("nps", "csat"), min_n=min_n)
    assert out["responses"].sum() == len(frame)
    for metric in ("nps", "csat"):
        hidden = out[out[f"{metric}_n"] < min_n]
        assert hidden[f"{metric}_suppressed"].all()
        assert hidden[[metric, f"{metric}_ci_low", f"{metric}_ci_high", f"{metric}_se"]].isna().all().all()
        shown = out[out[f"{metric}_n"] >= min_n]
        assert shown[metric].notna().all() and not shown[f"{metric}_suppressed"].any()


# --- coverage by simulation -----------------------------------------------------------------------

@pytest.mark.parametrize("p_promoter,p_detractor", [(0.5, 0.2), (0.3, 0.4), (0.8, 0.05), (0.95, 0.02)])
@pytest.mark.parametrize("n", [10, 30, 200])
def test_nps_interval_covers_the_truth_about_95_percent(p_promoter, p_detractor, n):
    rng = np.random.default_rng(20261123 + n)
    draws = rng.multinomial(n, [p_promoter, 1 - p_promoter - p_detractor, p_detractor], size=6000)
    r = m.nps_from_counts(draws[:, 0], draws[:, 1], draws[:, 2])
    truth = 100 * (p_promoter - p_detractor)
    coverage = ((r.ci_low <= truth) & (truth <= r.ci_high)).mean()
    assert 0.925 <= coverage <= 0.99, coverage


def test_plain_wald_undercovers_where_the_adjusted_interval_does_not():
    """Why the adjusted interval: at 95% promoters and n=20 the plain Wald interval covers far less."""
    rng = np.random.default_rng(3)
    draws = rng.multinomial(20, [0.95, 0.03, 0.02], size=6000)
    r = m.nps_from_counts(draws[:, 0], draws[:, 1], draws[:, 2])
    wald = ((r.nps - 1.96 * r.se <= 93) & (93 <= r.nps + 1.96 * r.se)).mean()
    adjusted = ((r.ci_low <= 93) & (93 <= r.ci_high)).mean()
    assert wald < 0.8 < 0.93 < adjusted


@pytest.mark.parametrize("p", [0.5, 0.9, 0.97])
@pytest.mark.parametrize("n", [10, 30, 100])
def test_wilson_interval_coverage(p, n):
    rng = np.random.default_rng(int(p * 100) + n)
    k = rng.binomial(n, p, size=6000)
    low, high = m.wilson_interval(k, np.full(k.shape, n))
    coverage = ((low <= p) & (p <= high)).mean()
    assert 0.92 <= coverage <= 0.99, coverage


# --- grouped summaries and trends -------------------------------------------------------------------

@pytest.fixture
def responses():
    rng = np.random.default_rng(5)
    n = 3000
    return pd.DataFrame({
        "location_id": rng.choice(["A", "B", "C"], n),
        "channel": pd.Categorical(rng.choice(["in_store", "web", None], n)),
        "responded_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 366, n), unit="D"),
        "nps": pd.array(rng.integers(0, 11, n), dtype="Int8"),
        "csat": pd.array(np.where(rng.random(n) < 0.7, rng.integers(1, 6, n), None), dtype="Int8"),
        "ces": pd.array(np.where(rng.random(n) < 0.4, rng.integers(1, 8, n), None), dtype="Int8"),
    })


def test_summarize_matches_the_single_sample_functions(responses):
    out = m.summarize(responses, by="location_id").set_index("location_id")
    for loc, group in responses.groupby("location_id"):
        one, sat, eff = m.nps(group["nps"]), m.csat(group["csat"]), m.ces(group["ces"])
        row = out.loc[loc]
        assert (row["nps"], row["nps_ci_low"], row["nps_ci_high"], row["nps_n"]) == pytest.approx(
            (one.nps, one.ci_low, one.ci_high, one.n))
        assert (row["csat"], row["csat_ci_low"], row["csat_n"]) == pytest.approx((sat.share, sat.ci_low, sat.n))
        assert (row["ces"], row["ces_ci_high"], row["ces_n"]) == pytest.approx((eff.mean, eff.mean_ci_high, eff.n))


def test_summarize_keeps_rows_with_a_missing_group_value(responses):
    out = m.summarize(responses, by="channel", metrics="nps")
    assert out["responses"].sum() == len(responses) and out["channel"].isna().sum() == 1


def test_summarize_by_period(responses):
    out = m.summarize(responses, by=["location_id"], period="Q", metrics="nps")
    assert len(out) == 12 and set(out["period"].astype(str)) == {"2024Q1", "2024Q2", "2024Q3", "2024Q4"}
    monthly = m.summarize(responses, period="M", metrics="nps")
    assert monthly["responses"].sum() == len(responses) and len(monthly) == 12


def test_summarize_errors_clearly(responses):
    with pytest.raises(ValueError, match="unknown metric"):
        m.summarize(responses, metrics="nsp")
    with pytest.raises(KeyError, match="region"):
        m.summarize(responses, by="region")


def test_trend_difference_and_mover_interval():
    base = pd.Timestamp("2024-01-15", tz="UTC")
    early = pd.DataFrame({"responded_at": base, "nps": [10] * 40 + [0] * 40})
    late = pd.DataFrame({"responded_at": base + pd.Timedelta(days=95), "nps": [10] * 60 + [0] * 20})
    data = pd.concat([early, late]).assign(location_id="A")
    out = m.trend(data, by="location_id", period="Q").iloc[0]
    first, second = m.nps(early["nps"]), m.nps(late["nps"])
    assert out["change"] == pytest.approx(50.0)
    assert out["change_ci_low"] == pytest.approx(50 - np.hypot(second.nps - second.ci_low, first.ci_high - first.nps))
    assert out["change_ci_high"] == pytest.approx(50 + np.hypot(second.ci_high - second.nps, first.nps - first.ci_low))
    assert out["significant"] and str(out["period_from"]) == "2024Q1"


def test_trend_suppresses_small_cells_and_needs_two_periods(responses):
    last_two = tuple(str(p) for p in sorted(m.period_of(responses["responded_at"], "Q").unique())[-2:])
    out = m.trend(responses, by="location_id", period="Q", min_n=10_000, periods=last_two)
    assert out["suppressed"].all() and out["change"].isna().all() and not out["significant"].any()
    with pytest.raises(ValueError, match="two periods"):
        m.trend(responses.assign(responded_at=pd.Timestamp("2024-02-01", tz="UTC")), period="Q")


def test_trend_interval_covers_zero_change_about_95_percent():
    """Two periods with the same true NPS: 'significant' should fire about 5% of the time."""
    rng = np.random.default_rng(11)
    groups, n = 2000, 60
    draws = rng.multinomial(n, [0.45, 0.35, 0.2], size=(2, groups))
    rows = []
    for period, stamp in enumerate(["2024-02-01", "2024-05-01"]):
        for cat, score in enumerate([10, 8, 3]):
            counts = draws[period, :, cat]
            rows.append(pd.DataFrame({"location_id": np.repeat(np.arange(groups), counts), "nps": score,
                                      "responded_at": pd.Timestamp(stamp, tz="UTC")}))
    out = m.trend(pd.concat(rows), by="location_id", period="Q", min_n=1)
    assert 0.03 <= out["significant"].mean() <= 0.075
