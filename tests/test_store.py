"""The run store: built once from the data, it gives every report what it would have computed from
the data itself, and a report reading it loads neither the engines nor statsmodels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.reports import prose, store

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    made = store.open_store(str(SAMPLE), store=folder / "store")
    return made, folder / "store"


def test_a_location_view_is_what_the_report_would_compute_from_the_data(built):
    made, _ = built
    dataset = cx.connect(str(SAMPLE))
    m = made.results.measure
    for location in ("L0001", "L0017", "L0060"):
        here = made.location(location)
        mine = dataset.responses[dataset.responses["location_id"] == location]
        trend, grain = cx.metrics.readable_trend(mine, m, period="Q", min_n=30)
        assert here.grain == grain
        pd.testing.assert_frame_equal(here.trend[trend.columns].reset_index(drop=True),
                                      trend.assign(period=trend["period"].astype(str)).reset_index(drop=True),
                                      check_dtype=False)
        gaps = cx.scorecard.attribute_gaps(dataset.responses, location)
        pd.testing.assert_frame_equal(here.gaps, gaps.reset_index(drop=True), check_dtype=False)
        pd.testing.assert_frame_equal(here.comments, prose.recent_comments(dataset.responses, location, 10, score=m.name),
                                      check_dtype=False)
        assert here.row["location_id"] == location and set(here.brand_trend["period"]) >= set(here.trend["period"])
    with pytest.raises(ValueError, match="not in the data"):
        made.location("L9999")


def test_a_store_reads_back_equal_and_without_the_customer_table(built):
    made, folder = built
    again = store.open_store(store=folder)  # no data needed
    pd.testing.assert_frame_equal(again.results.scorecard, made.results.scorecard)
    for name in store.TABLES:
        pd.testing.assert_frame_equal(getattr(again, name), getattr(made, name))
    assert again.results.customers is None and again.results.retention.model is None
    assert set(again.tables) == set(made.tables) and again.facts == made.facts
    for name, table in made.tables.items():
        pd.testing.assert_frame_equal(again.table(name), table)
    assert again.settings == made.settings and json.loads((folder / "store.json").read_text())["format"] == store.FORMAT
    with pytest.raises(ValueError, match="holds no run store"):
        store.read(folder.parent)


def test_reading_a_store_loads_no_engine_and_no_statsmodels(built):
    """What makes a deep dive's kernel light: the modules a report reading the store imports."""
    _, folder = built
    code = ("import sys; import cxresearch as cx; from cxresearch.reports import prose, plots; "
            f"s = cx.reports.open_store(store={str(folder)!r}); s.location('L0001'); "
            "print(sorted(m for m in ('ibis', 'duckdb', 'pyspark', 'statsmodels', 'scipy', 'seaborn') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_topic_tables_are_what_the_reports_would_compute_from_the_data(built):
    made, _ = built
    dataset = cx.connect(str(SAMPLE))
    m, customers = made.results.measure, cx.reports.brand.brand_results(dataset).customers
    expected = {
        "by_region": cx.metrics.summarize_measure(dataset, m, by="region", min_n=30),
        "by_journey_stage": cx.metrics.summarize_measure(dataset, m, by="journey_stage", min_n=30),
        "consistency": cx.compare.consistency_by(dataset, groups=("region", "format"), metric=m),
        "cohorts": cx.retention.cohort_matrix(dataset),
        "retention_rates": cx.retention.retention_rates(customers, by="cx_group", min_n=30),
        "accounting": dataset.accounting().reset_index(),
        "coverage": cx.metrics.response_coverage(dataset, period="Q", min_n=30)[0]}
    for name, table in expected.items():
        pd.testing.assert_frame_equal(made.table(name), table, check_dtype=False)
    assert made.facts["rejected"] == len(dataset.rejects)
    assert made.facts["span"] == cx.revenue.purchase_span(dataset)
    assert made.facts["with_customer"] == pytest.approx(dataset.responses["customer_id"].notna().mean())
    with pytest.raises(KeyError, match="has no table 'nothing'; it has accounting"):
        made.table("nothing")


def test_without_brand_results_the_store_still_serves_data_quality(tmp_path):
    """When the brand results cannot be computed at all, the data-quality report's tables are still in
    the store; a report that needs the results gets the reason, not a crash."""
    dataset = cx.connect(str(SAMPLE))
    made = store.build(dataset, None, settings={"period": "Q", "min_n": 30}, problem="no score at all")
    made.write(tmp_path / "store")
    assert made.results is None and made.facts["results_problem"] == "no score at all"
    assert made.table("accounting")["read"].sum() == dataset.accounting()["read"].sum()
    again = store.open_store(store=tmp_path / "store", results=False)
    assert again.facts == made.facts
    with pytest.raises(ValueError, match="could not be computed on these data: no score at all"):
        store.open_store(store=tmp_path / "store")
    with pytest.raises(ValueError, match="no brand results"):
        again.location("L0001")


def test_a_topic_table_that_cannot_be_computed_says_why(tmp_path):
    """Responses without any answer (each is rejected, so none is left): the store is built, the
    data-quality tables account for the rejected rows, and the ICC table says why it is missing."""
    data = tmp_path / "data"
    data.mkdir()
    for path in SAMPLE.glob("*.parquet"):
        frame = pd.read_parquet(path)
        if path.stem == "responses":
            frame[["nps", "csat", "ces"]] = float("nan")
        frame.to_parquet(data / path.name)
    made = store.open_store(str(data))
    responses = made.table("accounting").set_index("table").loc["responses"]
    assert responses["accepted"] == 0 and made.facts["rejected"] >= responses["read"] > 0
    with pytest.raises(ValueError, match="consistency could not be computed on these data: ICC needs"):
        made.table("consistency")


def test_the_voice_tables_are_what_cx_text_computes_from_the_data(built):
    """Notebook 06 and the deep dives read what the comments say from the store: the same topics,
    terms of low and high scores, and per-location terms as cx.text on the data."""
    from cxresearch.measures import text

    made, _ = built
    m = made.results.measure
    corpus = text.corpus(cx.connect(str(SAMPLE)))
    found = text.topics(corpus, seed=0, measure=m, period="Q", min_n=30)
    pd.testing.assert_frame_equal(made.table("voice_topics"), found.table)
    pd.testing.assert_frame_equal(made.table("voice_by_location"), found.by_location)
    low = (m.group(corpus.docs[m.name]) == m.groups[0]).fillna(False).to_numpy(bool)
    pd.testing.assert_frame_equal(made.table("voice_low_terms"), text.distinctive_terms(corpus, low, top=15))
    pd.testing.assert_frame_equal(made.terms, text.location_terms(corpus, min_comments=30))
    assert made.facts["voice"]["comments"] == len(corpus) and made.facts["voice"]["language"] == "en"
    mine = made.terms[made.terms["location_id"] == "L0056"]
    pd.testing.assert_frame_equal(made.location("L0056").terms, mine.drop(columns="location_id").reset_index(drop=True))
    assert "expensive" in set(mine["term"])  # its planted topic (truth.json: comment_topics) is price


def test_the_alert_tables_are_what_cx_alerts_computes_from_the_data(built):
    made, _ = built
    found = cx.alerts(cx.connect(str(SAMPLE)), measure=made.results.measure)
    pd.testing.assert_frame_equal(made.table("alert_scan"), found.scan)
    assert made.facts["alerts"]["locations"] == 60 and made.facts["alerts"]["alerts"] == len(found.table)
    here = made.location("L0007")
    assert here.scan["location_id"] == "L0007" and here.alerts.empty == ("L0007" not in set(found.table["location_id"]))
    brand = made.timelines[made.timelines["location_id"] == ""]
    pd.testing.assert_frame_equal(brand.drop(columns="location_id").reset_index(drop=True), found.timeline(None))
