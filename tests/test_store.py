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
