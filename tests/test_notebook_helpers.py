"""What the notebooks used to compute in their own cells, now in the library: worked numbers on the
tiny brand of conftest (3 locations, 5 responses, 4 purchases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.reports import prose

from .conftest import write_brand

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture
def tiny(tmp_path):
    return cx.load_dataset(write_brand(tmp_path / "b"))


def test_response_coverage_counts_location_periods_and_the_share_below_min_n(tiny):
    cells, small = cx.metrics.response_coverage(tiny, period="M", min_n=2)
    # L1: R1, R2 in January; L2: R3 in January; L3: R4, R5 in February
    assert cells.to_dict() == {pd.Period("2024-01", "M"): {"L1": 2.0, "L2": 1.0, "L3": 0.0},
                               pd.Period("2024-02", "M"): {"L1": 0.0, "L2": 0.0, "L3": 2.0}}
    assert small == pytest.approx(1 / 3)  # of the three location-months with responses, L2's has one


def test_score_missingness_is_the_share_of_responses_without_each_score(tiny):
    got = cx.metrics.score_missingness(tiny.responses).set_index("score")["share missing"]
    assert got.to_dict() == {"nps": 2 / 5, "csat": 2 / 5, "ces": 2 / 5}


def test_purchase_span_is_counted_on_the_engine(tiny, tmp_path):
    expected = {"transactions": 4, "customers": 3, "first": pd.Timestamp("2024-01-01 12:00"),
                "last": pd.Timestamp("2024-02-01 12:00")}
    assert cx.revenue.purchase_span(tiny) == expected
    with cx.connect(write_brand(tmp_path / "c")) as source:
        assert cx.revenue.purchase_span(source) == expected


def test_consistency_by_stacks_the_brand_and_each_group(tmp_path):
    dataset = cx.load_dataset(SAMPLE)
    table = cx.compare.consistency_by(dataset, groups=("region",))
    assert table["group"].iloc[0] == "brand" and set(table["group"].iloc[1:]) == set(dataset.locations["region"])
    brand = cx.compare.consistency(dataset.responses).iloc[0]
    assert table.iloc[0]["icc"] == brand["icc"] and table.iloc[0]["responses"] == brand["responses"]
    north = dataset.responses[dataset.responses["location_id"].isin(
        dataset.locations.loc[dataset.locations["region"] == "North", "location_id"])]
    assert table.set_index("group").loc["North", "icc"] == pytest.approx(cx.compare.consistency(north).iloc[0]["icc"])


def test_attribute_gaps_compare_a_location_with_the_brand(tiny):
    responses = tiny.responses.copy()
    responses.loc[responses["response_id"] == "R3", "attr_staff"] = 1  # L2's one staff rating
    gaps = cx.scorecard.attribute_gaps(responses, "L1")
    # L1 rated staff 5 and 2 (mean 3.5, a t interval on 1 df), speed 4 and 1 (2.5); the brand's staff
    # ratings are 5, 2, 1 (mean 8/3), its speed ratings L1's: speed is level, staff above, weakest first
    assert gaps["attribute"].tolist() == ["speed", "staff"]
    staff = gaps.set_index("attribute").loc["staff"]
    assert staff[["here", "n"]].tolist() == [3.5, 2] and staff["gap"] == pytest.approx(3.5 - 8 / 3)
    half = 12.7062047 * np.sqrt(4.5 / 2)
    assert (staff["low"], staff["high"]) == pytest.approx((3.5 - half, 3.5 + half))
    assert gaps["verdict"].tolist() == ["within", "within"]  # two ratings each: nothing beyond chance
    elsewhere = cx.scorecard.attribute_gaps(responses, "L3")  # no ratings there: no number, n = 0
    assert elsewhere["n"].tolist() == [0, 0] and elsewhere["here"].isna().all()
    assert elsewhere["verdict"].tolist() == ["too few", "too few"]


def test_attribute_gaps_call_a_weakness_only_beyond_chance():
    """Worked: 100 ratings of 2 and 4 here (mean 3, sd about 1.005) against a brand whose mean is
    raised by 400 ratings of 5 elsewhere: the gap is far beyond a Bonferroni-widened interval."""
    here = pd.DataFrame({"location_id": "A", "attr_speed": [2, 4] * 50, "attr_staff": [4] * 100})
    there = pd.DataFrame({"location_id": "B", "attr_speed": [5] * 400, "attr_staff": [4] * 400})
    gaps = cx.scorecard.attribute_gaps(pd.concat([here, there], ignore_index=True), "A").set_index("attribute")
    assert gaps.loc["speed", "brand"] == pytest.approx((300 + 2000) / 500)
    assert gaps.loc["speed", "verdict"] == "below"
    # staff: every rating 4, no spread at all (a zero-width interval) and level with the brand
    assert gaps.loc["staff", "verdict"] == "within"


def test_redact_removes_e_mail_addresses_and_phone_numbers():
    text = "Call me on +44 (0)20 7946 0958 or write to ana.silva+cx@example.co.uk; order 12 was late"
    assert prose.redact(text) == "Call me on [removed] or write to [removed]; order 12 was late"


def test_recent_comments_are_the_latest_redacted_and_carry_no_customer(tiny):
    responses = tiny.responses.copy()
    responses.loc[responses["response_id"] == "R1", "comment"] = "Great staff, mail me at a@b.com"
    shown = prose.recent_comments(responses, "L1", 1)
    assert shown.to_dict("records") == [{"date": "06 Jan 2024", "channel": "web", "score": 3, "comment": "Slow, and rude"}]
    both = prose.recent_comments(responses, "L1", 5)
    assert both["comment"].tolist() == ["Slow, and rude", "Great staff, mail me at [removed]"]
    assert "customer_id" not in both and prose.recent_comments(responses, "L3", 5).empty


def test_open_report_gives_the_source_and_the_brand_results(tmp_path):
    dataset, results = cx.reports.open_report(str(SAMPLE), cache_dir=tmp_path / "cache")
    assert isinstance(dataset, cx.Source) and len(results.scorecard) == len(dataset.locations)
    again = cx.reports.open_report(str(SAMPLE), cache_dir=tmp_path / "cache")[1]  # read from the run's cache
    pd.testing.assert_frame_equal(again.scorecard, results.scorecard)
    top = results.drivers.iloc[0]
    assert results.importance(top["driver"]) == top["importance"]
    assert np.isnan(results.importance("attr_nothing"))


def test_redact_removes_links_card_numbers_and_customer_ids():
    text = "Card 4111 1111 1111 1111 charged twice, see https://x.example/o?id=9 or www.shop.example; I am C1234"
    assert prose.redact(text, ids={"C1234", "C9"}) == ("Card [removed] charged twice, see [removed] or [removed] I am "
                                                         "[removed]")
    assert prose.redact("C12345 stays, C1234x stays", ids={"C1234"}) == "C12345 stays, C1234x stays"


def test_esc_makes_a_hostile_name_plain_text_in_markdown():
    import mistune

    hostile = "Harbour <img src=x onerror=alert(1)> *_shop_* [x](javascript:alert(1))"
    rendered = mistune.html(prose.esc(hostile))
    assert "<img" not in rendered and "<em>" not in rendered and "<a " not in rendered
    assert "Harbour &lt;img src=x onerror=alert(1)&gt;" in rendered and "*_shop_*" in rendered
    assert prose.esc(None) == "—" and prose.esc("a\nb") == "a b"


def test_table_escapes_cells_captions_and_keeps_only_trusted_markup():
    frame = pd.DataFrame({"name": ["<b>Harbour</b>"], "location_id": ['L"1'], "open": [True], "score": [np.nan]})
    frame["place"] = [prose.location_link(n, i) for n, i in zip(frame["name"], frame["location_id"])]
    html = prose.table(frame, {"place": ("Location", "{}"), "name": ("Raw name", "{}"), "open": ("Open", "{}"),
                               "score": ("Score", "{:.1f}")}, caption="Shops <script>", html_columns=("place",)).data
    assert '<a class="cx-location" href="#location-L&quot;1">&lt;b&gt;Harbour&lt;/b&gt;</a>' in html
    assert "<td>&lt;b&gt;Harbour&lt;/b&gt;</td>" in html  # the same string in a plain column: escaped
    assert "<caption>Shops &lt;script&gt;</caption>" in html and "<b>" not in html
    assert "<td>Yes</td>" in html and "<td>—</td>" in html  # True and a missing value, in words


def test_labels_money_and_people_read_as_words():
    assert prose.label("in_store") == "In store" and prose.label("mall") == "Mall" and prose.label(None) == "—"
    assert prose.label("anchor_channel") == "Channel of the first purchase" and prose.label("<x>") == "&lt;x&gt;"
    assert prose.money(1954.4, "R$", "Q", signed=True) == "+R$ 1,954 per quarter"
    assert prose.money(-120, "€", "M", signed=True) == "-€120 per month"
    assert prose.money(5, "") == "5" and prose.money(float("nan"), "€", "Q") == "—"
    assert prose.per_thousand(0.5, 250) == 2.0 and np.isnan(prose.per_thousand(1, 0))


def test_how_to_read_and_method_notes_are_plain_and_escaped():
    box = prose.how_to_read(cx.measures.measure.get("csat")).data
    assert box.startswith("> **How to read this report.**") and "95% range" in box and "satisf" in box.lower()
    note = prose.method_note("Binomial GLM <logit>", "", title="How this was estimated").data
    assert note == ('<details class="cx-method"><summary>How this was estimated</summary>'
                    "<p>Binomial GLM &lt;logit&gt;</p></details>")
