"""cx.alerts: the segment statistic against worked numbers, planted incidents found with their start
and cause, a quiet brand raising none, and a brand-wide dip called shared."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.measures import alerts as module

PLANTED = ((5, "2024-03", 3, 15.0, "price"), (12, "2024-09", 3, 15.0, "cleanliness"), (25, "2025-02", 3, 15.0, "speed"))


def brand(incidents=(), seed=21, measure="nps"):
    params = dataclasses.replace(cx.synth.SynthParams(), incidents=incidents)
    return cx.synth.generate(40, 100_000, start="2023-01-01", end="2025-12-31", seed=seed, params=params,
                             measure=measure)


def _in_incidents(responses, incidents) -> np.ndarray:
    month = pd.to_datetime(responses["responded_at"]).dt.tz_localize(None).dt.to_period("M").astype(str)
    inside = np.zeros(len(responses), dtype=bool)
    for i in incidents:
        inside |= ((responses["location_id"] == i["location_id"]) & (month >= i["start"]) & (month <= i["end"])).to_numpy()
    return inside


@pytest.mark.slow
@pytest.mark.parametrize("measure", ["nps", "csat"])
def test_an_incident_changes_only_the_answers_of_its_months(measure):
    """With and without incidents, the same seed gives the same answers outside them; inside, a CSAT
    brand's top-2-box share falls by about the points asked (10), and its purchases do not move."""
    sizes = ((5, "2024-03", 3, 10.0, "price"), (12, "2024-09", 3, 10.0, "cleanliness"), (25, "2025-02", 3, 10.0, "speed"))
    quiet, _ = brand((), measure=measure)
    loud, truth = brand(sizes, measure=measure)
    a, b = quiet.responses, loud.responses
    inside = _in_incidents(b, truth.incidents)
    same = a[measure].fillna(-1).to_numpy() == b[measure].fillna(-1).to_numpy()
    assert same[~inside].all() and not same[inside].all()
    pd.testing.assert_frame_equal(quiet.transactions, loud.transactions)
    assert [i["drop"] for i in truth.incidents] == [10.0] * 3 and {i["measure"] for i in truth.incidents} == {measure}
    if measure == "csat":
        fall = 100 * ((a[measure][inside] >= 4).mean() - (b[measure][inside] >= 4).mean())
        assert 6 < fall < 14, fall


def test_an_impossible_incident_is_refused():
    with pytest.raises(ValueError, match="not possible there"):
        brand(((5, "2024-03", 3, 150.0, "price"),), measure="csat")


def test_the_segment_z_matches_the_worked_numbers():
    # three periods of 10 answers, means 0, 0, -30, per-answer variance 400; segment = the last period:
    # diff = -30 - 0, se = sqrt(400 (1/10 + 1/20)) = 7.746, z = (30 - margin 5) / se = 3.2275
    n = np.array([[10.0, 10.0, 10.0]])
    s = np.array([[0.0, 0.0, -300.0]])
    z, diff = module._segment_z(n, s, np.array([400.0]), np.array([2]), np.array([2]), 5.0, 5)
    assert diff[0, 0] == pytest.approx(-30.0)
    assert z[0, 0] == pytest.approx(25 / math.sqrt(60), rel=1e-12)
    z, _ = module._segment_z(n, s, np.array([400.0]), np.array([2]), np.array([2]), 5.0, 11)
    assert np.isnan(z[0, 0])  # fewer than min_n answers during the segment: not tested


def test_the_scan_of_a_quiet_series_is_calibrated():
    """Under no change, the share of locations whose p-value is below 5% is about 5% or less."""
    rng = np.random.default_rng(3)
    n = rng.poisson(30, (2000, 24)).astype(float)
    s = np.sqrt(n) * 80 * rng.standard_normal(n.shape)
    sq = n * 80.0**2 + s**2 / np.maximum(n, 1)
    found = module._scan(n, s, sq, 0.0, 20, 6, np.random.default_rng(0), 20)
    share = np.mean(found["p"] < 0.05)
    assert 0.01 < share < 0.08, share


@pytest.fixture(scope="module")
def planted():
    dataset, truth = brand(PLANTED)
    said = cx.text.corpus(dataset)
    return dataset, truth, cx.alerts(dataset, comments=said, topics=cx.text.topics(said, seed=0))


@pytest.mark.slow
def test_planted_incidents_are_found_with_their_start_and_cause(planted):
    dataset, truth, found = planted
    table = found.table.set_index("location_id")
    for incident in truth.incidents:
        assert incident["location_id"] in table.index, (incident, found.summary())
        alert = table.loc[incident["location_id"]]
        start = abs((np.datetime64(alert["start_period"]) - np.datetime64(incident["start"])).astype(int))
        assert start <= 1, (alert["start_period"], incident["start"])
        assert alert["cause"] == incident["attribute"]
        assert alert["change"] < 0 and alert["shared"] == "local"
        assert incident["attribute"] in alert["why"] and "fell" in alert["why"]
    assert len(set(table.index) - {i["location_id"] for i in truth.incidents}) <= 1
    first = truth.incidents[0]["location_id"]
    alert = table.loc[first]
    parts = found.breakdown[found.breakdown["location_id"] == first]
    for _, by in parts.groupby("dimension"):  # the decomposition adds up to the change (levels on both sides)
        assert (by["within"] + by["mix"]).sum() == pytest.approx(alert["change"], abs=2.0)
    money = found.business[found.business["location_id"] == first]
    assert set(money["what"]) == {"transactions", "customers", "revenue", "came back within 180 days"}
    assert (money["periods_during"] == 3).all()
    back = money.set_index("what").loc["came back within 180 days"]  # against the counts, by hand
    from cxresearch.engine.reductions import repeat_counts

    counts = repeat_counts(cx.as_source(dataset), ["location_id"], "M", 180)
    counts = counts[(counts["location_id"].astype(str) == first) & (counts["eligible"] > 0)]
    during = counts["period"].astype(str).between("2024-03", "2024-05")
    assert back["n_during"] == counts.loc[during, "eligible"].sum() and back["unit"] == "points"
    assert back["during"] == pytest.approx(100 * counts.loc[during, "came_back"].sum() / back["n_during"])
    assert back["change_low"] < 0 < back["change_high"]  # (the planted incidents do not change purchases)
    causes = found.causes[found.causes["location_id"] == first]
    assert causes.iloc[0]["attribute"] == "price" and causes.iloc[0]["change_high"] < 0
    assert "alert(s) among 40 locations" in found.summary()


@pytest.mark.slow
def test_the_comments_during_an_incident_name_its_cause(planted):
    """Customers write about the attribute that fell: where an alert has 30 or more comments during
    it, a word of that attribute's complaints is among the three its comments used most more often,
    beyond chance, and `why` quotes it; each alert's topic shares add up to (nearly) one on each side."""
    _, truth, found = planted
    for incident in truth.incidents:
        words = found.terms[found.terms["location_id"] == incident["location_id"]]
        if words.empty or words["comments_during"].iloc[0] < 30:
            continue
        top = words.head(3)
        planted_words = set(cx.synth.COMMENT_TOPIC_TERMS[incident["attribute"]])
        assert any(set(t.split()) & planted_words for t in top["term"]), (incident, top)
        assert top["q"].iloc[0] < 0.05 and top["share_during"].iloc[0] > top["share_outside"].iloc[0]
        why = found.table.set_index("location_id").loc[incident["location_id"], "why"]
        assert f'"{top["term"].iloc[0]}"' in why and "more often than in its other months" in why
    assert (found.terms.groupby("location_id")["comments_during"].first() >= 30).sum() >= 2  # tested at least twice
    for _, shares in found.topics.groupby("location_id"):  # (a comment with no topic's words counts in none)
        assert 0.95 <= shares["share_during"].sum() <= 1 + 1e-9 and 0.95 <= shares["share_outside"].sum() <= 1 + 1e-9


@pytest.mark.slow
def test_planted_incidents_in_a_csat_brand_are_found_with_their_cause():
    """Falls of 10 points of top-2-box share for a quarter, at about 100 answers a quarter."""
    dataset, truth = brand(tuple((n, s, k, 10.0, a) for n, s, k, _, a in PLANTED), measure="csat")
    found = cx.alerts(dataset)
    assert found.measure == "csat"
    table = found.table.set_index("location_id")
    for incident in truth.incidents:
        assert incident["location_id"] in table.index, (incident, found.summary())
        alert = table.loc[incident["location_id"]]
        assert alert["cause"] == incident["attribute"] and "CSAT" in alert["why"] and "NPS" not in alert["why"]
    assert len(set(table.index) - {i["location_id"] for i in truth.incidents}) <= 1


@pytest.mark.slow
def test_a_quiet_brand_raises_no_alert():
    dataset, _ = brand(())
    assert len(cx.alerts(dataset).table) <= 1


@pytest.mark.slow
def test_a_brand_wide_dip_is_not_called_a_store_problem():
    everywhere = tuple((i, "2024-06", 3, 15.0, "price") for i in range(1, 41))
    dataset, _ = brand(everywhere)
    table = cx.alerts(dataset).table
    assert len(table) >= 10
    assert (table["shared"] != "local").mean() >= 0.9
    assert table["why"].str.contains("not this location's alone").mean() >= 0.9


@pytest.mark.slow
def test_the_reports_show_a_planted_incident(tmp_path):
    """The suite on a brand with one incident: the alerts page and the executive summary name it,
    with its cause, and its location's deep dive shows it."""
    from cxresearch.cli import main

    dataset, truth = brand(PLANTED[:1])
    folder = dataset.to_dir(tmp_path / "data")
    assert main(["run", "--data", str(folder), "--out", str(tmp_path / "out"), "--locations", "L0005", "--quiet",
                 "--only", "00_executive_summary,07_alerts,10_location_deep_dive"]) == 0
    pages = tmp_path / "out" / "latest" / "html"
    alerts_page = (pages / "07_alerts.html").read_text()
    assert "changed beyond chance" in alerts_page and "rated price" in alerts_page
    assert "since" in alerts_page or "2024-03" in alerts_page
    assert "rated price" in (pages / "00_executive_summary.html").read_text()
    assert "rated price" in (pages / "10_location_deep_dive-L0005.html").read_text()
