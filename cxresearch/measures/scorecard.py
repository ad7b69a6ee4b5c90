"""The location scorecard: every location's CX numbers side by side, fairly compared.

One row per location with raw and shrunk NPS (intervals, n, suppression), rank, funnel flag,
CSAT, the share of easy CES answers, feedback channels, the latest trend and the CX maturity
level. Built from the library's pieces so notebooks and reports read one table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.measures import compare, journey
from cxresearch.measures import metrics as mx
from cxresearch.schema import ATTRIBUTE_PREFIX

__all__ = ["attribute_gaps", "location_scorecard"]


def location_scorecard(dataset, min_n: int = mx.DEFAULT_MIN_N, period: str = "Q", level: float = 0.95) -> pd.DataFrame:
    """One row per location: NPS (raw and shrunk, with intervals), rank, funnel flags, CSAT, CES, trend, maturity.

    Raw values of locations with fewer than `min_n` responses are suppressed (shown as missing);
    their shrunk estimates remain, since partial pooling is exactly what makes small samples usable.
    """
    responses = dataset.responses
    summary = mx.summarize(responses, by="location_id", min_n=min_n, level=level)
    estimates = compare.location_estimates(responses)
    shrunk = compare.shrink(estimates, level=level)[["location_id", "shrunk", "shrunk_ci_low", "shrunk_ci_high",
                                                     "weight", "rank"]]
    funnel = compare.funnel(estimates)[["location_id", "flag", "flag_998", "lower_95", "upper_95", "lower_998",
                                        "upper_998", "estimate", "brand_value", "per_response_sd", "tau"]]
    funnel = funnel.rename(columns={"brand_value": "funnel_brand_value", "per_response_sd": "funnel_sd", "tau": "funnel_tau"})
    easy = mx.score_counts(responses, ["location_id"], ["ces"])
    easy = easy.assign(ces_easy_share=easy["ces_easy"] / easy["ces_n"].replace(0, np.nan))[["location_id", "ces_easy_share"]]
    channels = responses.groupby("location_id", observed=True)["channel"].nunique().rename("channels").reset_index()
    card = (dataset.locations[["location_id", "name", "region", "format"]]
            .merge(summary, on="location_id", how="left")
            .merge(shrunk, on="location_id", how="left")
            .merge(funnel.rename(columns={"flag": "funnel_flag", "flag_998": "funnel_flag_998", "estimate": "nps_raw"}),
                   on="location_id", how="left")
            .merge(easy, on="location_id", how="left").merge(channels, on="location_id", how="left"))
    card = card.merge(_latest_trend(responses, period, min_n, level), on="location_id", how="left")
    card["responses"] = card["responses"].fillna(0).astype("int64")
    card["channels"] = card["channels"].fillna(0).astype("int64")
    ready = card.rename(columns={"responses": "n", "shrunk": "nps_shrunk"})
    levels = journey.maturity_levels(ready, min_n=min_n)
    card[["level", "level_name", "next_step"]] = levels[["level", "level_name", "next_step"]].to_numpy()
    card["level"] = card["level"].astype("int64")
    return card.rename(columns={"shrunk": "nps_shrunk"}).sort_values("rank").reset_index(drop=True)


def _latest_trend(responses, period, min_n, level) -> pd.DataFrame:
    """Change of NPS between the last two periods per location (empty columns if only one period)."""
    columns = ["location_id", "nps_change", "nps_change_ci_low", "nps_change_ci_high", "nps_declining", "nps_improving"]
    try:
        trend = mx.trend(responses, "nps", by="location_id", period=period, min_n=min_n, level=level)
    except ValueError:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame({"location_id": trend["location_id"], "nps_change": trend["change"],
                         "nps_change_ci_low": trend["change_ci_low"], "nps_change_ci_high": trend["change_ci_high"],
                         "nps_declining": trend["significant"] & (trend["change"] < 0),
                         "nps_improving": trend["significant"] & (trend["change"] > 0)})


def attribute_gaps(responses: pd.DataFrame, location_id: str) -> pd.DataFrame:
    """One location's attribute ratings (attr_*, 1-5) against the brand's: per attribute its mean here
    with a t interval and n, the brand's mean and the gap, weakest first."""
    mine = responses[responses["location_id"] == location_id]
    rows = []
    for attribute in [c for c in responses.columns if c.startswith(ATTRIBUTE_PREFIX)]:
        values = mine[attribute]
        here = mx.mean_from_moments([values.sum()], [(values.astype(float) ** 2).sum()], [values.notna().sum()]).iloc[0]
        rows.append({"attribute": attribute.removeprefix(ATTRIBUTE_PREFIX), "here": here["mean"], "low": here["ci_low"],
                     "high": here["ci_high"], "n": here["n"], "brand": responses[attribute].astype(float).mean()})
    columns = ["attribute", "here", "low", "high", "n", "brand"]
    gaps = pd.DataFrame(rows, columns=columns)
    return gaps.assign(gap=gaps["here"] - gaps["brand"]).sort_values("gap")
