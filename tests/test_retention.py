"""Retention outcomes: anchors, scores, censoring (never counted as lost), rates, cohorts, tiers; revenue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch import retention as rt
from cxresearch.measures.revenue import revenue_summary


def stamp(text):
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def small():
    """Four customers, worked by hand (data end 2024-12-20, horizon 180 days):
    A buys 01-01, 03-01, 12-01: retained (60 days). B buys once on 01-05: lost (window complete).
    C buys 06-01 and 12-20: not within 180 days (202): lost. D buys once on 11-01: censored.
    """
    locations = pd.DataFrame({"location_id": ["L1", "L2"], "region": ["N", "S"], "format": ["mall", "street"]})
    tx = pd.DataFrame({"transaction_id": [f"T{i}" for i in range(7)],
                       "customer_id": ["A", "A", "A", "B", "C", "C", "D"],
                       "location_id": ["L1", "L2", "L1", "L2", "L1", "L1", "L2"],
                       "occurred_at": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-12-01", "2024-01-05",
                                                      "2024-06-01", "2024-12-20", "2024-11-01"], utc=True),
                       "revenue": [10, 20, 30, 5, 7, 8, 9.0], "channel": "in_store"})
    responses = pd.DataFrame({"response_id": ["R1", "R2", "R3", "R4", "R5"], "location_id": ["L1", "L2", "L1", "L2", "L2"],
                              "customer_id": ["A", "B", "C", "A", "D"],
                              "responded_at": pd.to_datetime(["2024-01-03", "2024-01-06", "2024-06-02", "2024-03-02",
                                                              "2024-12-15"], utc=True),
                              "nps": [10, 3, 8, 5, 9]})
    customers = pd.DataFrame({"customer_id": list("ABCD"), "segment": ["x", "y", "x", "y"]})
    return cx.CXDataset(locations=locations, transactions=tx, responses=responses, customers=customers)


def test_first_purchase_anchor_by_hand(small):
    t = rt.customer_table(small, horizon_days=180).set_index("customer_id")
    assert t["retained"].tolist()[:3] == [True, False, False] and pd.isna(t.loc["D", "retained"])
    assert t["censored"].tolist() == [False, False, False, True]
    assert t.loc["A", "days_to_next"] == 60 and t.loc["C", "days_to_next"] == 202
    assert t["nps"].tolist()[:3] == [10, 3, 8] and pd.isna(t.loc["D", "nps"])  # D's response is 44 days later
    assert t["nps_group"].tolist()[:3] == ["promoter", "detractor", "passive"]
    assert (t.loc["A", "horizon_purchases"], t.loc["A", "horizon_revenue"]) == (1, 20.0)
    assert (t.loc["A", "purchases"], t.loc["A", "revenue"]) == (3, 60.0)
    assert t.loc["A", "region"] == "N" and t.loc["B", "segment"] == "y"


def test_a_customer_near_the_end_of_data_is_never_counted_as_lost(small):
    for horizon in (30, 90, 180, 365):
        t = rt.customer_table(small, horizon_days=horizon)
        near_end = t["anchor_at"] + pd.Timedelta(days=horizon) > t["end_of_data"]
        assert t.loc[near_end, "retained"].isna().all() and t.loc[near_end, "censored"].all()
        assert t.loc[~near_end, "retained"].notna().all()


def test_an_unfinished_window_is_censored_even_after_an_early_return(small):
    """Counting early returners but not the rest of an unfinished window would inflate the rate."""
    t = rt.customer_table(small, horizon_days=365).set_index("customer_id")
    assert t.loc["A", "censored"] and pd.isna(t.loc["A", "retained"])  # window ends 2024-12-31, after the data
    assert t.loc["A", "days_to_next"] == 60  # the survival information is kept


def test_as_of_cuts_the_data(small):
    t = rt.customer_table(small, horizon_days=180, as_of="2024-02-15").set_index("customer_id")
    assert list(t.index) == ["A", "B"] and t["censored"].all()


def test_response_anchor_gives_one_row_per_response(small):
    t = rt.customer_table(small, horizon_days=180, anchor="response").set_index("response_id")
    assert len(t) == 5
    assert t.loc["R1", "retained"] and t.loc["R1", "days_to_next"] == 58
    assert not t.loc["R4", "retained"]  # A after 03-02: next purchase 12-01, 274 days
    assert t.loc["R5", "censored"]
    with pytest.raises(ValueError, match="anchor must be"):
        rt.customer_table(small, anchor="visit")


def test_retention_rates_leave_censored_rows_out(small):
    t = rt.customer_table(small, horizon_days=180)
    out = rt.retention_rates(t, by="region", min_n=1).set_index("region")
    assert (out.loc["N", "n"], out.loc["N", "retained"], out.loc["N", "rate"]) == (2, 1, 0.5)
    assert (out.loc["S", "n"], out.loc["S", "censored"], out.loc["S", "rate"]) == (1, 1, 0.0)
    hidden = rt.retention_rates(t, by="region", min_n=5)
    assert hidden["suppressed"].all() and hidden["rate"].isna().all() and hidden["retained"].isna().all()


def test_retention_rate_recovers_a_known_probability():
    """Customers return after an exponential gap: P(return within 90 days) = 1 - exp(-90/mean)."""
    rng = np.random.default_rng(0)
    n = 20000
    first = stamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 360, n), unit="D")
    gap = pd.to_timedelta(rng.exponential(120, n), unit="D")
    ids = [f"C{i}" for i in range(n)]
    tx = pd.DataFrame({"transaction_id": [f"T{i}" for i in range(2 * n)], "customer_id": ids * 2, "location_id": "L1",
                       "occurred_at": np.concatenate([first, first + gap]), "revenue": 1.0})
    ds = cx.CXDataset(locations=pd.DataFrame({"location_id": ["L1"]}), transactions=tx)
    t = rt.customer_table(ds, horizon_days=90, as_of="2024-12-31")
    out = rt.retention_rates(t, by=[]).iloc[0]
    truth = 1 - np.exp(-90 / 120)
    se = np.sqrt(truth * (1 - truth) / out["n"])
    assert abs(out["rate"] - truth) < 4 * se  # a fixed draw, so a tolerance that is not a coin flip
    assert out["ci_high"] - out["ci_low"] == pytest.approx(2 * 1.96 * se, rel=0.05)
    assert out["censored"] == t["censored"].sum() > 0


def test_cohort_matrix_missing_not_zero_after_the_end(small):
    m = rt.cohort_matrix(small.transactions)
    assert m.loc[pd.Period("2024-01", "M"), "customers"] == 2
    assert m.loc[pd.Period("2024-01", "M"), 2] == 0.5 and m.loc[pd.Period("2024-01", "M"), 11] == 0.5
    assert m.loc[pd.Period("2024-06", "M"), 6] == 1.0 and pd.isna(m.loc[pd.Period("2024-06", "M"), 7])
    assert m.loc[pd.Period("2024-11", "M"), 1] == 0.0 and pd.isna(m.loc[pd.Period("2024-11", "M"), 2])
    assert (m[0] == 1.0).all()


def test_loyalty_tiers_follow_the_seed_thresholds(small):
    t = rt.customer_table(small)
    tiers = rt.loyalty_tiers(t, by=[]).set_index("tier")
    assert tiers["customers"].to_dict() == {"one-time (1)": 2, "returning (2)": 1, "watch (3-4)": 1, "care (5+)": 0}
    assert tiers["share"].sum() == pytest.approx(1)


def test_revenue_summary(small):
    out = revenue_summary(small.transactions, by="location_id", period="Q").set_index(["location_id", "period"])
    q1 = out.loc[("L1", pd.Period("2024Q1", "Q"))]
    assert (q1["revenue"], q1["transactions"], q1["customers"]) == (10.0, 1, 1)
    l2q1 = out.loc[("L2", pd.Period("2024Q1", "Q"))]
    assert (l2q1["revenue"], l2q1["transactions"], l2q1["revenue_per_customer"], l2q1["aov"]) == (25.0, 2, 12.5, 12.5)
    # t interval of (20, 5): mean 12.5, sd 10.607, se 7.5, t(.975,1) = 12.706 -> clipped at 0 below
    assert l2q1["aov_ci_high"] == pytest.approx(12.5 + 12.7062 * 7.5, abs=1e-3) and l2q1["aov_ci_low"] == 0
    assert out["revenue"].sum() == small.transactions["revenue"].sum()


def test_a_brand_without_surveys_still_has_its_customer_table(tmp_path):
    """Purchases alone (an accepted kind of export) give outcomes with missing scores, on the engine
    and in memory, not a KeyError for the absent responses table."""
    from .conftest import write_brand

    folder = write_brand(tmp_path / "b", responses=None)
    dataset = cx.load_dataset(folder)
    with cx.connect(folder) as source:
        on_engine = rt.customer_table(source)
        with pytest.raises(ValueError, match="needs responses"):
            rt.customer_table(source, anchor="response")
    pd.testing.assert_frame_equal(on_engine, rt.customer_table(dataset))
    assert on_engine["nps"].isna().all() and on_engine["purchases"].tolist() == [2, 1, 1]


def test_repeat_counts_by_hand(small):
    """Per location and month of the purchase: occasions old enough to know (bought 180 days or more
    before the data end, 2024-12-20) and those whose customer came back within 180 days, anywhere.
    A 01-01 (L1) came back on 03-01; A 03-01 (L2) not until 12-01 (275 days); B 01-05 (L2) never;
    C 06-01 (L1) on 12-20 (202 days: no); the December and November purchases are too recent."""
    from cxresearch.engine.reductions import repeat_counts

    got = repeat_counts(cx.as_source(small), ["location_id"], "M", horizon_days=180)
    got = got.assign(period=got["period"].astype(str)).set_index(["location_id", "period"])
    expected = {("L1", "2024-01"): (1, 1), ("L2", "2024-01"): (1, 0), ("L2", "2024-03"): (1, 0),
                ("L1", "2024-06"): (1, 0), ("L1", "2024-12"): (0, 0), ("L2", "2024-11"): (0, 0)}
    assert {k: (int(r.eligible), int(r.came_back)) for k, r in got.iterrows()} == expected


def test_repeat_counts_agree_with_pandas_on_the_sample():
    """The engine's two window functions against a plain pandas reference: occasions at least 24 hours
    apart, each one's next occasion within 90 days, on the bundled sample brand."""
    from pathlib import Path

    from cxresearch.engine.reductions import repeat_counts

    source = cx.connect(str(Path(__file__).resolve().parents[1] / "data" / "sample"))
    got = repeat_counts(source, ["location_id"], "M", horizon_days=90, min_gap_hours=24)
    tx = source.fetch("transactions").sort_values(["customer_id", "occurred_at"], kind="stable")
    previous = tx.groupby("customer_id")["occurred_at"].shift()
    starts = tx[previous.isna() | ((tx["occurred_at"] - previous).dt.total_seconds() >= 86400)].copy()
    following = starts.groupby("customer_id")["occurred_at"].shift(-1)
    starts["eligible"] = starts["occurred_at"] + pd.Timedelta(days=90) <= tx["occurred_at"].max()
    starts["came_back"] = starts["eligible"] & ((following - starts["occurred_at"]) <= pd.Timedelta(days=90))
    starts["period"] = starts["occurred_at"].dt.tz_localize(None).dt.to_period("M")
    expected = starts.groupby(["location_id", "period"], observed=True)[["eligible", "came_back"]].sum().reset_index()
    merged = got.merge(expected.astype({"location_id": str}), on=["location_id", "period"], suffixes=("", "_pandas"),
                       how="outer")
    assert len(merged) == len(got) == len(expected) and got["eligible"].sum() > 10_000
    assert (merged["eligible"] == merged["eligible_pandas"]).all() and (merged["came_back"] == merged["came_back_pandas"]).all()
