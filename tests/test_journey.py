"""Journey: touchpoints and multichannel reach, the 5A funnel, and the transparent maturity rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch import journey


@pytest.fixture
def path():
    responses = pd.DataFrame({
        "response_id": [f"R{i}" for i in range(6)], "location_id": "L1",
        "customer_id": ["A", "A", "B", "C", "C", None], "responded_at": pd.Timestamp("2024-01-01", tz="UTC"),
        "journey_stage": ["aware", "act", "ask", "act", "advocate", "act"],
        "channel": ["web", "in_store", "app", "in_store", "social", "web"], "nps": [9, 9, 3, 8, 10, 5]})
    tx = pd.DataFrame({"transaction_id": ["T1", "T2", "T3"], "customer_id": ["A", "B", "D"], "location_id": "L1",
                       "occurred_at": pd.Timestamp("2024-01-02", tz="UTC"), "revenue": 1.0,
                       "channel": ["in_store", "app", "web"]})
    return cx.CXDataset(locations=pd.DataFrame({"location_id": ["L1"]}), responses=responses, transactions=tx)


def test_touchpoints_count_responses_and_purchases(path):
    per = journey.touchpoints(path).set_index("customer_id")
    assert per["touchpoints"].to_dict() == {"A": 3, "B": 2, "C": 2, "D": 1}
    assert per["channels"].to_dict() == {"A": 2, "B": 1, "C": 2, "D": 1}


def test_channel_reach_share_with_interval(path):
    out = journey.channel_reach(path, min_n=1).iloc[0]
    assert (out["customers"], out["multichannel_share"], out["touchpoints_per_customer"]) == (4, 0.5, 2.0)
    assert out["multichannel_ci_low"] < 0.5 < out["multichannel_ci_high"]
    assert journey.channel_reach(path, min_n=5)["multichannel_share"].isna().all()


def test_stage_funnel_counts_customers_reaching_each_stage(path):
    out = journey.stage_funnel(path.responses)
    assert out["customers"].tolist() == [3, 3, 3, 2, 1]  # furthest stages: A act, B ask, C advocate
    assert out["conversion"].tolist()[1:] == pytest.approx([1, 1, 2 / 3, 1 / 2])
    assert out.attrs["responses_without_stage"] == 1  # the anonymous response


def test_stage_funnel_by_location():
    responses = pd.DataFrame({"customer_id": ["A", "B", "C"], "location_id": ["L1", "L1", "L2"],
                              "journey_stage": pd.Categorical(["act", "aware", "advocate"],
                                                              categories=cx.schema.JOURNEY_STAGES, ordered=True)})
    out = journey.stage_funnel(responses, by="location_id").set_index(["location_id", "stage"])["customers"]
    assert out.loc["L1"].tolist() == [2, 1, 1, 1, 0] and out.loc["L2"].tolist() == [1, 1, 1, 1, 1]


def test_maturity_levels_are_cumulative_gates():
    card = pd.DataFrame({"location_id": list("abcdef"), "responses": [0, 50, 50, 50, 50, 10],
                         "ces_easy_share": [np.nan, .4, .6, .6, .6, .9], "csat": [np.nan, .8, .6, .8, .8, .9],
                         "channels": [0, 4, 4, 4, 4, 5], "shrunk": [np.nan, 10, 20, 30, 40, 60],
                         "declining": [False, False, False, False, False, False],
                         "funnel_flag": ["within", "within", "within", "within", "above", "above"]})
    out = journey.maturity_levels(card).set_index("location_id")
    assert out["level"].tolist() == [0, 1, 2, 4, 5, 1]  # f: great scores, but too few responses to measure
    assert out.loc["e", "level_name"] == "breakthrough" and out.loc["b", "level_name"] == "communication"
    assert out.loc["c", "next_step"].startswith("feedback from 3+ channels")
    declining = journey.maturity_levels(card.assign(declining=True)).set_index("location_id")
    assert declining.loc["e", "level"] == 3
    no_effort = journey.maturity_levels(card, measured={"ces": False}).set_index("location_id")
    assert no_effort["level"].tolist() == [0, 1, 1, 1, 1, 1]  # a gate on a score nobody collects cannot be passed
    assert "not collected" in no_effort.loc["e", "next_step"] and "suppress" not in no_effort.loc["e", "next_step"]
