"""The synthetic brand: deterministic, schema-valid, and its published truth is what the data show.

Truth checks compare a realized estimate with the published value within 4 standard errors, using
brands large enough that the tolerance is a few percent of the effect.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cxresearch as cx
from cxresearch import models, retention, schema, synth
from cxresearch.measures.importance import relative_weights
from cxresearch.measures.measure import get as get_measure
from cxresearch.synth.truth import _expected_clipped

ATTRS = [f"attr_{a}" for a in synth.ATTRIBUTES]
HORIZON = pd.Timedelta(days=180)
WINDOW_END = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module")
def small():
    return synth.generate(12, 3000, seed=1)


@pytest.fixture(scope="module")
def surveyed():
    """Every purchase surveyed: enough first-purchase NPS answers to pin retention down to ~0.7 pp."""
    return synth.generate(60, 60_000, seed=5, survey_rate=1.0)


@pytest.fixture(scope="module")
def panel():
    """Many locations with ~100+ purchases per quarter: the revenue and EX panels."""
    return synth.generate(400, 300_000, seed=11, survey_rate=0.02)


def nps(scores: pd.Series) -> float:
    s = scores.dropna().astype(int)
    return 100 * ((s >= 9).mean() - (s <= 6).mean())


def nps_se(scores: pd.Series) -> float:
    s = scores.dropna().astype(int)
    p, d = (s >= 9).mean(), (s <= 6).mean()
    return 100 * np.sqrt((p + d - (p - d) ** 2) / len(s))


def two_way_fe(frame: pd.DataFrame, y: str, x: str, unit: str, period: str) -> tuple[float, float]:
    """Slope of y on x with unit and period fixed effects (balanced panel: double demeaning) and its
    standard error clustered by unit."""
    assert frame.groupby(unit).size().nunique() == 1, "panel must be balanced"

    def within(col):
        v = frame[col]
        return v - frame.groupby(unit)[col].transform("mean") - frame.groupby(period)[col].transform("mean") + v.mean()

    yt, xt = within(y), within(x)
    slope = (xt * yt).sum() / (xt ** 2).sum()
    score = (xt * (yt - slope * xt)).groupby(frame[unit]).sum()
    return slope, np.sqrt((score ** 2).sum()) / (xt ** 2).sum()


def quarter_start(stamps: pd.Series) -> pd.Series:
    periods = stamps.dt.tz_localize(None).dt.to_period("Q").dt.start_time
    return periods.dt.tz_localize("UTC").astype("datetime64[us, UTC]")


# --- determinism ------------------------------------------------------------------------------------

def test_same_seed_gives_identical_tables_and_truth(small):
    again, truth = synth.generate(12, 3000, seed=1)
    for name in schema.TABLE_ORDER:
        pd.testing.assert_frame_equal(small[0].table(name), again.table(name))
    assert truth.to_dict() == small[1].to_dict()


def test_different_seed_gives_different_data(small):
    other, truth = synth.generate(12, 3000, seed=2)
    assert not other.transactions["revenue"].equals(small[0].transactions["revenue"])
    assert not other.locations["region"].equals(small[0].locations["region"])
    assert truth.location_nps["nps"].tolist() != small[1].location_nps["nps"].tolist()


def test_identical_across_processes(small):
    code = ("import pandas as pd; from cxresearch import synth; ds, t = synth.generate(12, 3000, seed=1); "
            "print(sum(int(pd.util.hash_pandas_object(ds.table(n), index=False).sum()) % 10**12 "
            "for n in ('locations', 'customers', 'responses', 'transactions', 'employee_experience')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = sum(int(pd.util.hash_pandas_object(small[0].table(n), index=False).sum()) % 10**12
               for n in schema.TABLE_ORDER)
    assert int(out.stdout.strip()) == here


def digest(ds: cx.CXDataset) -> str:
    """A fingerprint of the tables' values (numpy bytes, so it does not depend on pandas' hashing)."""
    parts = [ds.transactions["revenue"].to_numpy(), ds.responses[["nps", "csat", "ces"]].fillna(-1).to_numpy(dtype="int64"),
             ds.transactions["occurred_at"].astype("int64").to_numpy(), ds.employee_experience["ex_score"].to_numpy()]
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:16]


def test_default_nps_brand_is_unchanged_by_the_measure_option(small):
    """Recorded before `measure=` existed: an NPS brand is generated exactly as it was (the committed
    sample and the notebooks depend on it)."""
    ds, truth = small
    assert {n: len(ds.table(n)) for n in schema.TABLE_ORDER} == {
        "locations": 12, "customers": 3000, "responses": 1455, "transactions": 7461, "employee_experience": 96}
    assert round(float(ds.transactions["revenue"].sum()), 2) == 461396.48
    assert digest(ds) == "90d4644c7e15c685"
    assert truth.retention_gap_pp == pytest.approx(29.417257836915027, rel=1e-12)
    assert truth.brand_nps == pytest.approx(26.276343754033427, rel=1e-12)
    assert truth.ex_nps_points_per_10ex == pytest.approx(4.886682688322691, rel=1e-12)
    assert truth.attribute_r2 == pytest.approx(0.58050869085221, rel=1e-12)
    # the measure-neutral fields repeat the NPS ones
    assert truth.measure == "nps" and truth.parameters["measure"] == "nps"
    assert truth.brand_score == truth.brand_nps and truth.ex_points_per_10ex == truth.ex_nps_points_per_10ex
    assert truth.revenue_pct_per_10 == truth.revenue_pct_per_10nps == pytest.approx(6.0)
    assert truth.revenue_log_per_10 == truth.revenue_log_per_10nps
    again, _ = synth.generate(12, 3000, seed=1, measure="nps")
    pd.testing.assert_frame_equal(again.responses, ds.responses)


def test_survey_rate_changes_only_the_responses(small):
    more, truth = synth.generate(12, 3000, seed=1, survey_rate=0.5)
    pd.testing.assert_frame_equal(more.transactions, small[0].transactions)
    assert len(more.responses) > 2 * len(small[0].responses)
    assert truth.retention_gap_pp == small[1].retention_gap_pp


# --- schema -----------------------------------------------------------------------------------------

def assert_conforms(ds: cx.CXDataset) -> None:
    for name in schema.TABLE_ORDER:
        frame = ds.table(name)
        spec = schema.TABLES[name]
        assert list(frame.columns) == schema.table_columns(name, frame)
        assert frame[spec.key].is_unique and frame[spec.key].notna().all()
        for col in frame.columns:
            c = spec.column(col)
            assert frame[col].dtype == c.dtype, (name, col, frame[col].dtype)
            if c.required:
                assert frame[col].notna().all(), (name, col)
            values = frame[col].dropna()
            if c.low is not None and len(values):
                values = values.astype(float)
                assert values.min() >= c.low and (c.high is None or values.max() <= c.high), (name, col)
    locations = set(ds.locations["location_id"])
    customers = set(ds.customers["customer_id"])
    for name in ("responses", "transactions", "employee_experience"):
        assert set(ds.table(name)["location_id"]) <= locations
    assert set(ds.customers["home_location_id"]) <= locations
    assert set(ds.transactions["customer_id"]) <= customers
    assert set(ds.responses["customer_id"].dropna()) <= customers
    assert ds.responses[["nps", "csat", "ces"]].notna().any(axis=1).all()


def test_tables_conform_to_the_schema(small):
    ds, truth = small
    assert_conforms(ds)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for frame, col in ((ds.transactions, "occurred_at"), (ds.responses, "responded_at")):
        assert frame[col].min() >= start and frame[col].max() < WINDOW_END
    assert set(ds.locations["region"]) <= set(synth.REGIONS)
    assert set(ds.locations["format"]) <= set(synth.FORMATS)
    assert set(ds.customers["segment"]) <= set(synth.SEGMENTS)
    assert ds.transactions["revenue"].gt(0).all()
    assert ds.transactions["channel"].value_counts(normalize=True)["in_store"] > 0.7
    assert ds.responses["journey_stage"].value_counts(normalize=True).idxmax() == "act"
    assert ds.responses["nps"].isna().any() and ds.responses["attr_staff"].isna().any()
    assert ds.responses["comment"].notna().any()
    # every customer's first purchase is at home, on the day first_seen_on says
    first = ds.transactions.groupby("customer_id", sort=False).first()
    customers = ds.customers.set_index("customer_id").loc[first.index]
    assert (first["location_id"] == customers["home_location_id"]).all()
    assert (first["occurred_at"].dt.floor("D") == customers["first_seen_on"]).all()
    # most repeat purchases at home, the others in the home region
    region = ds.locations.set_index("location_id")["region"]
    tx = ds.transactions.merge(ds.customers, on="customer_id")
    assert (tx["location_id"] == tx["home_location_id"]).mean() > 0.85
    assert (region[tx["location_id"]].to_numpy() == region[tx["home_location_id"]].to_numpy()).all()
    ex = ds.employee_experience
    assert len(ex) == 8 * len(ds.locations) and ex["ex_score"].between(0, 100).all()


def test_responses_follow_their_purchase(small):
    ds, _ = small
    tx = ds.transactions.sort_values("occurred_at")
    linked = pd.merge_asof(ds.responses.sort_values("responded_at"), tx, left_on="responded_at",
                           right_on="occurred_at", by="customer_id", suffixes=("", "_purchase"))
    delay = linked["responded_at"] - linked["occurred_at"]
    assert delay.between(pd.Timedelta(0), pd.Timedelta(hours=48)).all()
    assert (linked["location_id"] == linked["location_id_purchase"]).mean() > 0.99
    assert (quarter_start(linked["responded_at"]) == quarter_start(linked["occurred_at"])).all()


@settings(max_examples=6, deadline=None)
@given(locations=st.integers(1, 15), customers=st.integers(1, 400), seed=st.integers(0, 2**32 - 1),
       days=st.integers(1, 500), measure=st.sampled_from(schema.METRICS))
def test_any_small_brand_is_valid(locations, customers, seed, days, measure):
    end = (pd.Timestamp("2024-02-10") + pd.Timedelta(days=days - 1)).date().isoformat()
    ds, truth = synth.generate(locations, customers, start="2024-02-10", end=end, seed=seed, survey_rate=0.5,
                               measure=measure)
    assert_conforms(ds)
    assert len(ds.customers) == customers and len(ds.locations) == locations
    json.dumps(truth.to_dict(), allow_nan=False)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="generate_raw"):
        synth.generate(5, 100, messy=True)
    with pytest.raises(ValueError):
        synth.generate(5, 100, start="2025-01-01", end="2024-01-01")
    with pytest.raises(ValueError, match="return probabilities"):
        synth.generate(5, 100, params=synth.SynthParams(return_prob=(0.99, 0.6, 0.4)))
    with pytest.raises(ValueError, match="measure must be one of"):
        synth.generate(5, 100, measure="stars")


# --- the truth object --------------------------------------------------------------------------------

def test_truth_round_trips_through_json_and_regenerates(small, tmp_path):
    ds, truth = small
    path = truth.save(tmp_path)
    assert path.name == "truth.json"
    loaded = synth.Truth.load(path)
    assert loaded.to_dict() == truth.to_dict()
    pd.testing.assert_frame_equal(loaded.location_quarter_nps, truth.location_quarter_nps)
    again, truth2 = loaded.regenerate()
    pd.testing.assert_frame_equal(again.responses, ds.responses)
    assert truth2.to_dict() == truth.to_dict()


def test_truth_is_internally_consistent(small):
    ds, truth = small
    groups = truth.retention_by_group
    assert 100 * (groups["promoter"] - groups["detractor"]) == pytest.approx(truth.retention_gap_pp)
    assert groups["promoter"] > groups["passive"] > groups["detractor"]
    # the realized-mix return shift dilutes the gap by about 1/n (n: the customer's first-purchase
    # cohort, same home and quarter): one's own group is part of the mix the shift compensates
    first_quarter = ds.customers["first_seen_on"].dt.tz_localize(None).dt.to_period("Q")
    cohort = ds.customers.groupby([ds.customers["home_location_id"], first_quarter])["customer_id"].transform("size")
    dilution = truth.retention_gap_pp_structural * (1 / cohort).mean()
    assert 0.3 < dilution < 3  # ~30 first purchases per cohort in this small brand
    assert abs(truth.retention_gap_pp - (truth.retention_gap_pp_structural - dilution)) < 0.5
    # the region gaps average, by customers, to the overall gap
    home = ds.customers.merge(ds.locations, left_on="home_location_id", right_on="location_id")
    share = home["region"].value_counts(normalize=True)
    assert sum(share[r] * g for r, g in truth.retention_gap_pp_by_region.items()) == pytest.approx(
        truth.retention_gap_pp)
    assert sum(truth.attribute_importance.values()) == pytest.approx(1)
    assert truth.revenue_pct_per_10nps == pytest.approx(100 * np.expm1(truth.revenue_log_per_10nps))
    lq = truth.location_quarter_nps
    assert len(lq) == 9 * len(ds.locations) and (~lq["in_window"]).sum() == len(ds.locations)
    ex = lq[lq["in_window"]].merge(ds.employee_experience, left_on=["location_id", "quarter_start"],
                                   right_on=["location_id", "measured_at"])
    assert len(ex) == len(ds.employee_experience) and (ex["ex_score_x"] == ex["ex_score_y"]).all()
    assert truth.location_nps["transactions"].sum() == len(ds.transactions)


def test_clipped_return_probability_is_exact():
    """The retention truth's E clip(a - S/n, 0, 1) against brute-force enumeration of the cohort mix."""
    from scipy.stats import multinomial

    rho = np.array(synth.SynthParams().return_prob)
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(1, 25))
        p = rng.dirichlet([3, 2, 1.5])
        a = rng.uniform(0.2, 1.9)
        m = n - 1
        counts = [(i, j, m - i - j) for i in range(m + 1) for j in range(m + 1 - i)]
        brute = sum(multinomial.pmf(c, m, p) * np.clip(a - rho @ c / n, 0, 1) for c in counts)
        got = _expected_clipped(np.array([a]), np.array([n]), p[None, :], rho)[0]
        assert got == pytest.approx(brute, abs=1e-9), (n, p, a)


# --- the truth is what the data show ------------------------------------------------------------------

def first_purchase_outcomes(ds: cx.CXDataset) -> pd.DataFrame:
    """Per uncensored customer: retained within 180 days of the first purchase, and the NPS answer
    given about that first purchase (responses are linked to the customer's latest purchase before)."""
    tx = ds.transactions.sort_values(["customer_id", "occurred_at"], kind="stable")
    tx["nth"] = tx.groupby("customer_id").cumcount()
    first = tx[tx["nth"] == 0].set_index("customer_id")["occurred_at"]
    second = tx[tx["nth"] == 1].set_index("customer_id")["occurred_at"].reindex(first.index)
    out = pd.DataFrame({"first": first, "retained": (second - first) <= HORIZON})
    out = out[out["first"] + HORIZON <= WINDOW_END]
    answers = ds.responses.dropna(subset=["nps"]).sort_values("responded_at")
    linked = pd.merge_asof(answers, tx.sort_values("occurred_at")[["customer_id", "occurred_at", "nth"]],
                           left_on="responded_at", right_on="occurred_at", by="customer_id")
    linked = linked[linked["nth"] == 0].drop_duplicates("customer_id").set_index("customer_id")
    out = out.join(linked["nps"].astype(int), how="inner")
    out["group"] = np.select([out["nps"] >= 9, out["nps"] <= 6], ["promoter", "detractor"], "passive")
    cells = ds.customers.merge(ds.locations, left_on="home_location_id", right_on="location_id")
    cells = cells.set_index("customer_id")[["region", "format", "segment"]]
    return out.join(cells)


def standardized_rate(outcomes: pd.DataFrame, mix: pd.Series, group: str) -> tuple[float, float]:
    """Retention of `group`, averaged over covariate cells with the customers' cell shares, and its SE."""
    mine = outcomes[outcomes["group"] == group].groupby(["region", "format", "segment"])["retained"]
    rate, n = mine.mean(), mine.size()
    weight = mix.reindex(rate.index)
    weight = weight / weight.sum()
    return float((weight * rate).sum()), float(np.sqrt((weight ** 2 * rate * (1 - rate) / n).sum()))


def test_realized_retention_gap_matches_truth(surveyed):
    ds, truth = surveyed
    outcomes = first_purchase_outcomes(ds)
    assert len(outcomes) > 30_000
    home = ds.customers.merge(ds.locations, left_on="home_location_id", right_on="location_id")
    mix = home.groupby(["region", "format", "segment"]).size() / len(home)
    rates = {g: standardized_rate(outcomes, mix, g) for g in synth.GROUPS}
    for g in synth.GROUPS:
        assert abs(rates[g][0] - truth.retention_by_group[g]) < 4 * rates[g][1], (g, rates[g])
    gap = 100 * (rates["promoter"][0] - rates["detractor"][0])
    se = 100 * np.hypot(rates["promoter"][1], rates["detractor"][1])
    assert se < 1.0
    assert abs(gap - truth.retention_gap_pp) < 4 * se, (gap, se, truth.retention_gap_pp)


def test_realized_nps_matches_truth_per_location_quarter(surveyed):
    ds, truth = surveyed
    answers = ds.responses.dropna(subset=["nps"])
    assert abs(nps(answers["nps"]) - truth.brand_nps) < 4 * nps_se(answers["nps"])
    answers = answers.assign(quarter_start=quarter_start(answers["responded_at"]))
    cells = answers.groupby(["location_id", "quarter_start"])["nps"].agg([nps, nps_se]).reset_index()
    cells = cells.merge(truth.location_quarter_nps, on=["location_id", "quarter_start"], suffixes=("", "_true"))
    z = (cells["nps"] - cells["nps_true"]) / cells["nps_se"]
    assert len(z) == 8 * 60
    assert abs(z.mean()) < 4 / np.sqrt(len(z)) and 0.85 < z.std() < 1.15


def test_location_nps_ranks_locations(surveyed):
    ds, truth = surveyed
    sample = ds.responses.sample(frac=0.1, random_state=0)  # ~250 answers per location, like a real brand
    raw = sample.groupby("location_id")["nps"].agg(nps)
    true = truth.location_nps.set_index("location_id")["nps"].reindex(raw.index)
    assert np.corrcoef(raw, true)[0, 1] > 0.85
    assert truth.location_nps["nps"].std() > 8  # locations really differ


def test_key_driver_regression_recovers_attribute_weights(surveyed):
    ds, truth = surveyed
    rows = ds.responses.dropna(subset=["nps", *ATTRS])
    x = np.column_stack([np.ones(len(rows))] + [rows[a].astype(float) for a in ATTRS])
    y = rows["nps"].astype(float).to_numpy()
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    se = np.sqrt(np.diag(resid.var() * np.linalg.inv(x.T @ x)))[1:]
    expected = np.array([truth.attribute_weights[a] for a in ATTRS])
    assert np.all(np.abs(coef[1:] - expected) < 4 * se + 0.01), (coef[1:], expected, se)
    latent = np.array([truth.attribute_weights_latent[a] for a in ATTRS])
    assert np.all(np.argsort(coef[1:]) == np.argsort(latent))  # same order of importance
    shares = relative_weights(x[:, 1:], y)
    importance = np.array([truth.attribute_importance[a] for a in ATTRS])
    assert np.abs(shares - importance).max() < 0.02


def revenue_panel(ds: cx.CXDataset, truth: synth.Truth) -> pd.DataFrame:
    tx = ds.transactions.assign(quarter_start=quarter_start(ds.transactions["occurred_at"]))
    revenue = tx.groupby(["location_id", "quarter_start"])["revenue"].sum().reset_index()
    lq = truth.location_quarter_nps
    frame = revenue.merge(lq[lq["in_window"]], on=["location_id", "quarter_start"], validate="1:1")
    return frame.assign(log_revenue=np.log(frame["revenue"]), nps_previous_10=frame["nps_previous"] / 10)


def test_oracle_revenue_panel_recovers_truth(panel):
    ds, truth = panel
    frame = revenue_panel(ds, truth)
    assert len(frame) == 8 * 400
    slope, se = two_way_fe(frame, "log_revenue", "nps_previous_10", "location_id", "quarter_start")
    assert se < 0.15 * truth.revenue_log_per_10nps
    assert abs(slope - truth.revenue_log_per_10nps) < 4 * se, (slope, se, truth.revenue_log_per_10nps)
    # the confounding is there: across locations, NPS and revenue move together far more than causally
    by_location = frame.groupby("location_id")[["log_revenue", "nps_previous_10"]].mean()
    naive = np.polyfit(by_location["nps_previous_10"], by_location["log_revenue"], 1)[0]
    assert naive > 2 * truth.revenue_log_per_10nps


def test_oracle_ex_panel_recovers_truth(panel):
    ds, truth = panel
    lq = truth.location_quarter_nps
    frame = lq[lq["in_window"]].assign(ex_10=lambda f: f["ex_score"] / 10)
    slope, se = two_way_fe(frame, "nps", "ex_10", "location_id", "quarter_start")
    assert abs(slope - truth.ex_nps_points_per_10ex) < 4 * se, (slope, se, truth.ex_nps_points_per_10ex)
    assert se < 0.1 * truth.ex_nps_points_per_10ex


# --- messy raw exports -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def messy():
    raw, truth = synth.generate_raw(20, 3000, seed=3, messy=True)
    clean, _ = synth.generate_raw(20, 3000, seed=3)
    return raw, clean, truth


def test_clean_raw_frames_are_strings(messy):
    _, clean, truth = messy
    assert truth.messy_counts  # the messy truth has counts ...
    for name, frame in clean.items():
        assert all(str(dtype) == "str" for dtype in frame.dtypes), name
    assert clean["transactions"]["occurred_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()


def test_messy_counts_match_the_injected_rows(messy):
    raw, clean, truth = messy
    counts = truth.messy_counts
    for name, frame in raw.items():
        c = counts[name]
        key = schema.TABLES[name].key
        assert len(frame) == c["rows"] == len(clean[name]) + c["rejected"]
        assert c["rejected"] == sum(c["defects"].values())
        extra = frame[~frame[key].isin(clean[name][key])]
        kinds = c["defects"]
        assert frame[key].duplicated().sum() == kinds.get("duplicate_exact", 0) + kinds.get("duplicate_conflict", 0)
        assert frame.duplicated().sum() == kinds.get("duplicate_exact", 0)
        assert len(extra) == c["rejected"] - kinds.get("duplicate_exact", 0) - kinds.get("duplicate_conflict", 0)
    responses, r = raw["responses"], counts["responses"]["defects"]
    extra = responses[~responses["response_id"].isin(clean["responses"]["response_id"])]
    assert (extra["nps"] == "11").sum() == r["nps_out_of_range"]
    assert (extra["csat"] == "0").sum() == r["csat_out_of_range"]
    assert (extra["ces"] == "9").sum() == r["ces_out_of_range"]
    assert extra[["nps", "csat", "ces"]].isna().all(axis=1).sum() == r["no_score"]
    assert extra["responded_at"].isna().sum() == r["missing_timestamp"]
    assert (~extra["location_id"].isin(clean["locations"]["location_id"])).sum() == r["unknown_location_id"]
    tx, t = raw["transactions"], counts["transactions"]["defects"]
    extra = tx[~tx["transaction_id"].isin(clean["transactions"]["transaction_id"])]
    assert extra["revenue"].str.startswith("-").sum() == t["negative_revenue"]
    assert pd.to_numeric(extra["revenue"], errors="coerce").isna().sum() == t["non_numeric_revenue"]
    assert extra["occurred_at"].isna().sum() == t["missing_timestamp"]


def test_messy_optional_blanks_are_counted(messy):
    raw, clean, truth = messy
    for name, frame in raw.items():
        key = schema.TABLES[name].key
        kept = frame.drop_duplicates(key, keep="first")
        kept = kept[kept[key].isin(clean[name][key])].reset_index(drop=True)
        assert kept[key].equals(clean[name][key])
        blanked = kept.isna() & clean[name].notna()
        assert int(blanked.to_numpy().sum()) == truth.messy_counts[name]["missing_optional"]
        assert not (kept.notna() & clean[name].isna()).to_numpy().any()
        assert ((kept == clean[name]) | kept.isna()).to_numpy().all()  # otherwise unchanged


def test_ingest_rejects_exactly_the_injected_rows(messy, tmp_path):
    raw, _, truth = messy
    synth.write_raw(raw, tmp_path)
    ds = cx.load_dataset(tmp_path)
    accounting = ds.accounting()
    for name, c in truth.messy_counts.items():
        assert accounting.loc[name, "read"] == c["rows"]
        assert accounting.loc[name, "rejected"] == c["rejected"], name
        assert accounting.loc[name, "accepted"] == c["accepted"]
    clean, _ = synth.generate(20, 3000, seed=3)
    for name in schema.TABLE_ORDER:
        key = schema.TABLES[name].key
        pd.testing.assert_series_equal(ds.table(name)[key], clean.table(name)[key])


# --- brands measured by CSAT (star ratings) or CES ------------------------------------------------------

@pytest.fixture(scope="module")
def csat_small():
    return synth.generate(12, 3000, seed=1, measure="csat")


@pytest.fixture(scope="module")
def csat_brand():
    """A moderate CSAT-only brand: about 500 answers per location-quarter (CI-quick: ~3 s)."""
    dataset, truth = synth.generate(60, 150_000, seed=21, survey_rate=0.6, measure="csat")
    return dataset, truth, retention.customer_table(dataset, horizon_days=180, min_gap_hours=0)  # as the truth counts


@pytest.mark.parametrize("measure", ["csat", "ces"])
def test_a_csat_or_ces_brand_asks_only_its_measure(measure, small):
    ds, truth = synth.generate(12, 3000, seed=1, measure=measure)
    assert_conforms(ds)
    answers = ds.responses[["nps", "csat", "ces"]].notna()
    assert answers[measure].all() and not answers.drop(columns=measure).any().any()
    assert set(ds.responses[measure].astype(int)) == set(range(get_measure(measure).scale[0], get_measure(measure).scale[1] + 1))
    # the same seed gives the same locations and EX (independent streams); purchases follow the measure
    pd.testing.assert_frame_equal(ds.locations, small[0].locations)
    pd.testing.assert_frame_equal(ds.employee_experience, small[0].employee_experience)
    assert truth.measure == measure and truth.parameters["measure"] == measure
    groups = get_measure(measure).groups
    assert list(truth.retention_by_group) == [groups[2], groups[1], groups[0]]  # top, middle, bottom


def test_csat_truth_is_in_csat_units(csat_small, tmp_path):
    ds, truth = csat_small
    groups = truth.retention_by_group
    assert 100 * (groups["satisfied"] - groups["dissatisfied"]) == pytest.approx(truth.retention_gap_pp)
    assert groups["satisfied"] > groups["neutral"] > groups["dissatisfied"]
    assert 0 < truth.brand_score < 100 and 0 < truth.ex_points_per_10ex < truth.brand_score
    assert truth.revenue_pct_per_10 == pytest.approx(synth.SynthParams().revenue_pct("csat")) == pytest.approx(15.0)
    assert truth.revenue_log_per_10 == pytest.approx(math.log1p(truth.revenue_pct_per_10 / 100))
    for name in ("brand_nps", "revenue_log_per_10nps", "revenue_pct_per_10nps", "ex_nps_points_per_10ex"):
        assert math.isnan(getattr(truth, name)), name  # a CSAT brand has no NPS
    assert {"csat", "csat_persistent"} <= set(truth.location_nps) and "nps" not in truth.location_nps
    assert {"csat", "csat_previous"} <= set(truth.location_quarter_nps)
    assert truth.location_nps["csat"].between(0, 100).all()
    # saved, loaded and regenerated exactly
    loaded = synth.Truth.load(truth.save(tmp_path))
    assert loaded.to_dict() == truth.to_dict() and math.isnan(loaded.brand_nps)
    again, _ = loaded.regenerate()
    pd.testing.assert_frame_equal(again.responses, ds.responses)
    # the effect can be set in the measure's own points
    _, custom = synth.generate(6, 300, seed=1, measure="csat", params=synth.SynthParams(revenue_pct_per_10=8.0))
    assert custom.revenue_pct_per_10 == pytest.approx(8.0)


def test_a_truth_saved_before_measures_existed_still_loads():
    truth = synth.Truth.load(Path(__file__).resolve().parents[1] / "data" / "sample" / "truth.json")
    assert truth.measure == "nps" and truth.brand_score == truth.brand_nps
    assert truth.revenue_pct_per_10 == truth.revenue_pct_per_10nps


def test_messy_csat_brand_conflicts_in_csat():
    raw, truth = synth.generate_raw(10, 1500, seed=2, messy=True, measure="csat")
    clean, _ = synth.generate_raw(10, 1500, seed=2, measure="csat")
    responses = raw["responses"]
    duplicated = responses[responses["response_id"].duplicated(keep=False)]
    changed = duplicated.groupby("response_id")["csat"].nunique()
    assert (changed == 2).sum() == truth.messy_counts["responses"]["defects"]["duplicate_conflict"]
    assert duplicated["nps"].isna().all()


def test_realized_csat_matches_truth(csat_brand):
    ds, truth, _ = csat_brand
    top = (ds.responses["csat"].astype(int) >= 4).astype(float)
    se = 100 * top.std() / np.sqrt(len(top))
    assert abs(100 * top.mean() - truth.brand_score) < 4 * se
    cells = ds.responses.assign(top=100 * top, quarter_start=quarter_start(ds.responses["responded_at"]))
    cells = cells.groupby(["location_id", "quarter_start"])["top"].agg(["mean", "size"]).reset_index()
    cells = cells.merge(truth.location_quarter_nps, on=["location_id", "quarter_start"])
    z = (cells["mean"] - cells["csat"]) / np.sqrt(cells["csat"] * (100 - cells["csat"]) / cells["size"])
    assert len(z) == 8 * 60
    assert abs(z.mean()) < 4 / np.sqrt(len(z)) and 0.85 < z.std() < 1.15


def test_models_recover_the_csat_truth(csat_brand):
    """With measure="csat" the retention gap (satisfied vs dissatisfied) and the revenue effect per +10
    points of the top-2-box share fall within 3 standard errors of the truth."""
    ds, truth, table = csat_brand
    ret = models.retention_effect(table, measure="csat")
    assert abs(ret.estimate - truth.retention_gap_pp) < 3 * ret.se, (ret.estimate, ret.se, truth.retention_gap_pp)
    assert ret.se < 0.05 * truth.retention_gap_pp
    rev = models.revenue_effect(ds, measure="csat", n_boot=50, seed=0)
    assert abs(rev.estimate - truth.revenue_pct_per_10) < 3 * rev.se, (rev.estimate, rev.se, truth.revenue_pct_per_10)
    assert rev.extra["measure"] == "csat" and rev.se < 0.5 * truth.revenue_pct_per_10


def test_planted_comment_topics_change_what_is_written_and_nothing_else(small):
    """truth.comment_topics names the locations whose unhappy customers single out one attribute;
    their comments say it more often than elsewhere, and without the plant every other column of
    every table is the same."""
    ds, truth = small
    assert truth.comment_topics and set(truth.comment_topics) <= set(ds.locations["location_id"])
    assert len(truth.comment_topics) == round(0.15 * 12)
    params = dataclasses.replace(synth.SynthParams(), comment_topic_share=0.0)
    plain, plain_truth = synth.generate(12, 3000, seed=1, params=params)
    assert plain_truth.comment_topics == {}
    for name in ("responses", "transactions", "customers"):
        a, b = getattr(ds, name), getattr(plain, name)
        kept = [c for c in a.columns if c != "comment"]
        pd.testing.assert_frame_equal(a[kept], b[kept])
    r, p = ds.responses, plain.responses
    assert (r["comment"].isna() == p["comment"].isna()).all()
    unhappy = r["comment"].notna() & (r["nps"] <= 8)
    for location, topic in truth.comment_topics.items():
        words = synth.COMMENT_TOPIC_TERMS[topic]
        here = unhappy & (r["location_id"] == location)
        said = r.loc[here, "comment"].str.lower().str.contains("|".join(words)).mean()
        before = p.loc[here, "comment"].str.lower().str.contains("|".join(words)).mean()
        assert said > before, (location, topic, said, before)
