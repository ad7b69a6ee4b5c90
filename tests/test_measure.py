"""Any CX score as the brand's measure: NPS, CSAT (stars) or CES, in its own points, end to end.

Worked numbers for each measure's value, groups and bounds; the default choice; a CSAT-only brand
through the scorecard, the models and the brand results; and the degenerate cases real data bring
(a model that fails in any way is a stated reason, never a crash)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch import models
from cxresearch.measures import compare, importance, measure
from cxresearch.measures import metrics as mx
from cxresearch.measures import retention as rt
from cxresearch.reports import brand as brand_mod
from tests.conftest import write_brand

SAMPLE = "data/sample"


@pytest.fixture(scope="module")
def csat_only():
    """The sample brand with its NPS and CES answers removed: a brand that collects only CSAT."""
    dataset = cx.load_dataset(SAMPLE)
    responses = dataset.responses.assign(nps=pd.NA, ces=pd.NA)
    responses = responses[responses["csat"].notna()].astype({"nps": "Int8", "ces": "Int8"}).reset_index(drop=True)
    return cx.CXDataset(locations=dataset.locations, customers=dataset.customers, responses=responses,
                        transactions=dataset.transactions, employee_experience=dataset.employee_experience)


def test_each_measure_value_in_points_by_hand():
    counts = pd.DataFrame({"nps_promoters": [6.0], "nps_passives": [2.0], "nps_detractors": [2.0],
                           "csat_top": [8.0], "csat_n": [10.0], "ces_easy": [3.0], "ces_n": [4.0]})
    nps = measure.get("nps").estimates(counts).iloc[0]
    assert nps["value"] == pytest.approx(40.0) and nps["n"] == 10
    csat = measure.get("csat").estimates(counts).iloc[0]
    low, high = mx.wilson_interval([8], [10])
    assert csat["value"] == pytest.approx(80.0) and csat["ci_low"] == pytest.approx(100 * low[0])
    assert csat["ci_high"] == pytest.approx(100 * high[0]) and csat["se"] == pytest.approx(100 * np.sqrt(.8 * .2 / 10))
    ces = measure.get("ces").estimates(counts).iloc[0]
    assert ces["value"] == pytest.approx(75.0) and ces["n"] == 4


def test_groups_answers_and_contributions():
    stars = pd.Series([1, 2, 3, 4, 5, None], dtype="Int8")
    m = measure.get("csat")
    groups = m.group(stars)
    assert groups.tolist()[:5] == ["dissatisfied", "dissatisfied", "neutral", "satisfied", "satisfied"]
    assert pd.isna(groups.iloc[5])
    assert m.contributions(stars).tolist()[:5] == [0, 0, 0, 100, 100] and pd.isna(m.contributions(stars).iloc[5])
    assert (m.answers(0), m.answers(1), m.answers(2)) == ("1-2", "3", "4-5")
    nps = measure.get("nps")
    assert nps.contributions(pd.Series([0, 6, 7, 8, 9, 10])).tolist() == [-100, -100, 0, 0, 100, 100]
    assert (nps.answers(0), nps.answers(2), nps.people(2)) == ("0-6", "9-10", "promoters")
    assert measure.get("ces").answers(2) == "5-7" and m.format(85.4) == "85%" and nps.format(31.2) == "+31"


def test_the_default_measure_is_nps_where_present_else_csat(csat_only):
    assert measure.choose(cx.load_dataset(SAMPLE)).name == "nps"
    assert measure.choose(csat_only).name == "csat"
    assert measure.choose(csat_only, "csat").name == "csat"
    with pytest.raises(ValueError, match="no response has a nps answer"):
        measure.choose(csat_only, "nps")
    with pytest.raises(ValueError, match="unknown measure"):
        measure.get("stars")


def test_shrinkage_and_funnel_keep_within_the_measure_bounds(csat_only):
    est = compare.location_estimates(csat_only, "csat")
    assert est.attrs["measure"] == "csat" and est["estimate"].between(0, 100).all()
    shrunk, funnel = compare.shrink(est), compare.funnel(est)  # the measure comes with the estimates
    assert shrunk["shrunk_ci_high"].max() <= 100 and shrunk["shrunk_ci_low"].min() >= 0
    assert funnel["upper_998"].max() <= 100 and funnel["lower_998"].min() >= 0


def test_a_csat_only_brand_gets_every_result_in_csat_terms(csat_only):
    results = brand_mod.brand_results(csat_only, seed=0)
    assert results.measure.name == "csat"
    card = results.scorecard
    assert card.attrs["measure"] == "csat" and card["value"].dropna().between(0, 100).all()
    assert card["shrunk"].notna().all() and card["level"].max() == 1  # CES is not collected: gate 2 cannot be passed
    assert card["next_step"].str.contains("CES is not collected").all()
    assert results.retention is not None and "satisfied customers vs dissatisfied customers" in results.retention.name
    assert "came back" in results.retention.caveats  # the base rate beside the gap
    assert results.revenue is not None and "CSAT" in results.revenue.name
    assert results.what_if is not None and results.what_if.measure == "csat"
    for effect in (results.retention, results.revenue, results.survival):
        assert "NPS" not in effect.name + effect.method + effect.caveats
    sentence = cx.reports.prose.brand_sentence(results.brand, results.measure)
    assert "Not measured by this brand: likelihood to recommend, customer effort." in sentence
    assert "suppressed" not in sentence


def test_the_retention_gap_on_stars_recovers_a_planted_gap():
    """Customers with 4-5 stars come back with probability 0.30, with 1-2 stars 0.10: the gap is 20 points."""
    rng = np.random.default_rng(3)
    n = 20_000
    stars = rng.choice([1, 2, 3, 4, 5], size=n, p=[.15, .1, .15, .3, .3])
    p = np.select([stars >= 4, stars <= 2], [0.30, 0.10], 0.2)
    table = pd.DataFrame({"customer_id": np.arange(n).astype(str), "anchor_location_id": rng.integers(0, 50, n).astype(str),
                          "csat": pd.array(stars, dtype="Int8"), "nps": pd.array([pd.NA] * n, dtype="Int8"),
                          "retained": pd.array(rng.random(n) < p, dtype="boolean"), "censored": False})
    effect = models.retention_effect(table, covariates=())
    assert effect.ci_low < 20 < effect.ci_high and abs(effect.estimate - 20) < 2.5
    assert effect.extra["measure"] == "csat" and effect.extra["base_rate"] == pytest.approx(
        table["retained"].astype(float).mean())


def test_any_failure_of_one_model_is_a_stated_reason_and_the_rest_still_run(monkeypatch):
    def broken(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(models, "revenue_effect", broken)
    results = brand_mod.brand_results(cx.load_dataset(SAMPLE), seed=0)
    assert results.revenue is None and "division by zero" in results.problems["revenue"]
    assert results.retention is not None and results.drivers is not None
    # the what-if still projects retained customers; its revenue half is not projected, not made up
    assert results.what_if.locations["revenue_gain"].isna().all() and results.what_if.total["retained_gain"] > 0


def test_relative_weights_give_a_constant_predictor_no_weight():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = x[:, 0] + rng.normal(size=200)
    cov = np.cov(np.column_stack([x[:, 0], np.zeros(200), y]), rowvar=False)  # a category absent from a resample
    raw, r2 = importance.relative_weights_from_cov(cov)
    assert raw[1] == 0 and raw[0] == pytest.approx(r2) and r2 > 0.3


def test_drivers_without_attribute_ratings_use_the_categories(csat_only):
    responses = csat_only.responses.drop(columns=[c for c in csat_only.responses if c.startswith("attr_")])
    plain = cx.CXDataset(locations=csat_only.locations, responses=responses, transactions=csat_only.transactions)
    out = brand_mod._drivers(plain, measure.get("csat"), seed=0)
    assert set(out["driver"]) >= {"channel", "region"} and out["importance"].sum() == pytest.approx(1)


def test_the_trend_skips_a_period_that_has_just_begun():
    stamps = (["2024-02-01"] * 40 + ["2024-05-01"] * 40 + ["2024-08-01"] * 4)
    responses = pd.DataFrame({"location_id": "L1", "responded_at": pd.to_datetime(stamps, utc=True),
                              "nps": pd.array([10] * 40 + [0] * 40 + [10] * 4, dtype="Int8")})
    t = mx.trend(responses, "nps", by=None, period="Q", min_n=30).iloc[0]
    assert (str(t["period_from"]), str(t["period_to"])) == ("2024Q1", "2024Q2") and t["change"] == -200
    with pytest.raises(ValueError, match=r"two periods with at least 50 answers \(Q\)"):
        mx.trend(responses, "nps", by=None, period="Q", min_n=50)


def test_an_empty_score_column_says_so():
    assert "no answers" in str(cx.nps(pd.Series([], dtype="Int8")))
    assert "no answers" in str(cx.csat(pd.Series([None], dtype="Int8")))


LINKED_TRANSACTIONS = """transaction_id,customer_id,location_id,occurred_at,revenue,channel
T1,C1,L1,2024-01-01T12:00:00Z,20,web
T2,C1,L2,2024-01-01T14:00:00Z,5,web
T3,C1,L1,2024-04-01T12:00:00Z,30,web
T4,C2,L2,2024-01-02T12:00:00Z,10,web
T5,C2,L2,2024-01-20T12:00:00Z,10,web
T6,C3,L3,2024-12-31T12:00:00Z,1,web
"""
LINKED_RESPONSES = """response_id,location_id,responded_at,customer_id,channel,csat,transaction_id
R1,L1,2024-02-20T10:00:00Z,C1,email,2,T2
R2,L1,2024-01-03T10:00:00Z,C1,email,5,T3
R3,L2,2024-01-25T10:00:00Z,C2,email,1,T5
R4,L2,2024-01-03T10:00:00Z,C2,email,5,
"""


def test_the_anchor_score_is_the_response_to_that_purchase_and_a_split_checkout_is_not_a_return(tmp_path):
    folder = write_brand(tmp_path / "linked", transactions=LINKED_TRANSACTIONS, responses=LINKED_RESPONSES)
    table = rt.customer_table(cx.connect(str(folder)), horizon_days=180, min_gap_hours=24).set_index("customer_id")
    # C1: R1 names T2, an order of the same checkout as T1 (two hours later), so it rates the first purchase even
    # though it came 50 days later; R2, earlier and inside the window, names a later purchase and is not taken
    assert table.loc["C1", "csat"] == 2
    assert table.loc["C1", "next_purchase_at"] == pd.Timestamp("2024-04-01T12:00:00Z")  # T2 is not a return
    assert (table.loc["C1", "purchases"], table.loc["C1", "occasions"]) == (3, 2)
    # C2: R3 rates T5, a later purchase; R4 names none and falls in the window: the time rule applies
    assert table.loc["C2", "csat"] == 5 and bool(table.loc["C2", "retained"])
    tiers = rt.loyalty_tiers(table.reset_index(), by=[]).set_index("tier")["customers"]
    assert tiers["returning (2)"] == 2 and tiers["one-time (1)"] == 1
    no_gap = rt.customer_table(cx.connect(str(folder)), min_gap_hours=0).set_index("customer_id")
    assert no_gap.loc["C1", "next_purchase_at"] == pd.Timestamp("2024-01-01T14:00:00Z")  # the old rule, for contrast


def test_a_panel_that_is_all_survey_noise_is_not_estimated_and_says_why():
    """Twelve small locations: the quarter-to-quarter movement of each one's NPS is within its survey noise
    (the pooled per-answer variance over n), so no slope can be told apart from noise."""
    dataset, _ = cx.synth.generate(12, 3000, seed=2)
    with pytest.raises(ValueError, match="barely varies within locations beyond survey noise"):
        models.revenue_effect(dataset, n_boot=20)
