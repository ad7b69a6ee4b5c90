"""The location scorecard: every location's CX numbers side by side, fairly compared.

One row per location in the brand's measure (NPS, CSAT or CES, `cxresearch.measures.measure`):
the raw value with its interval and n (suppressed below `min_n`), the shrunk value and rank, the
funnel verdict (false discoveries controlled across locations), the latest trend and the CX
maturity level; beside them every score the data have (NPS, CSAT, CES) as `summarize` gives them,
the share of easy CES answers and the feedback channels. Built from the library's pieces so
notebooks and reports read one table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.measures import compare, journey
from cxresearch.measures import metrics as mx
from cxresearch.measures.measure import MEASURES, choose
from cxresearch.schema import ATTRIBUTE_PREFIX, METRICS

__all__ = ["attribute_gaps", "location_scorecard"]


def location_scorecard(dataset, min_n: int = mx.DEFAULT_MIN_N, period: str = "Q", level: float = 0.95,
                       measure=None) -> pd.DataFrame:
    """One row per location: the measure raw and shrunk (with intervals), rank, funnel verdict, trend, maturity.

    Parameters
    ----------
    dataset : Source or CXDataset
    min_n : int, default 30
        Raw values of locations with fewer answers are suppressed (missing), and such locations get
        the verdict "too few" (never above or below); their shrunk values remain, since partial
        pooling is what makes small samples usable.
    period : str, default "Q"
        The period of the latest trend (the last two periods with at least `min_n` answers brand-wide).
    level : float, default 0.95
    measure : {"nps", "csat", "ces"} or Measure, optional
        The brand's measure; by default NPS where the data have it, else CSAT, else CES.

    Returns
    -------
    DataFrame
        location_id, name, region, format, responses; value, value_ci_low, value_ci_high, value_n
        (the measure in its points); shrunk, shrunk_ci_low, shrunk_ci_high, weight, rank (by shrunk
        value, among the locations with at least `min_n` answers; missing for the others); the
        verdict `funnel_flag` (above / within / below the brand beyond chance, or too few;
        `compare.verdicts`: Benjamini-Hochberg at 5%, funnel_q) with verdict_ci_low and
        verdict_ci_high, the interval that agrees with it (at verdict_level), and brand_value; the
        over-dispersed funnel (unusual for the location's size): funnel_flag_95, funnel_flag_998 and
        the limits; change, change_ci_low, change_ci_high, declining, improving;
        level, level_name, next_step; and nps, csat, ces with their intervals, ces_easy_share, channels.
        ``.attrs['measure']`` names the measure.
    """
    chosen = choose(dataset, measure)
    counts = mx.score_counts(dataset, ["location_id"], METRICS)
    summary = mx.summarize_counts(counts, ["location_id"], METRICS, min_n=min_n, level=level)
    headline = mx._table_from_estimates(counts, ["location_id"], "value", chosen.estimates(counts, level), min_n)
    estimates = compare.estimates_from_counts(counts, chosen)
    card = (dataset.locations[["location_id", "name", "region", "format"]]
            .merge(summary, on="location_id", how="left")
            .merge(headline.drop(columns=["responses", "value_se", "value_suppressed"]), on="location_id", how="left")
            .merge(_comparisons(estimates, chosen, min_n, level), on="location_id", how="left"))
    card["ces_easy_share"] = card["location_id"].map(
        counts.set_index("location_id").eval("ces_easy / ces_n").replace([np.inf], np.nan))
    channels = _channels(dataset)
    card["channels"] = card["location_id"].map(channels).fillna(0).astype("int64")
    card = card.merge(_latest_trend(dataset, chosen, period, min_n, level), on="location_id", how="left")
    card["responses"] = card["responses"].fillna(0).astype("int64")
    card["value_n"] = card["value_n"].fillna(0).astype("int64")
    card["funnel_flag"] = card["funnel_flag"].fillna("too few")
    levels = journey.maturity_levels(card, min_n=min_n, measured=_measured(counts))
    card[["level", "level_name", "next_step"]] = levels[["level", "level_name", "next_step"]].to_numpy()
    card["level"] = card["level"].astype("int64")
    card = card.sort_values(["rank", "location_id"], na_position="last").reset_index(drop=True)
    card.attrs["measure"] = chosen.name
    return card


def _comparisons(estimates, measure, min_n, level) -> pd.DataFrame:
    """Shrunk values, rank and funnel verdicts per location with answers (none when fewer than 3 have)."""
    columns = ["location_id", "shrunk", "shrunk_ci_low", "shrunk_ci_high", "weight", "rank", "funnel_flag", "funnel_q",
               "verdict_ci_low", "verdict_ci_high", "verdict_level", "brand_value",
               "funnel_flag_95", "funnel_flag_998", "lower_95", "upper_95", "lower_998", "upper_998", "raw",
               "funnel_brand_value", "funnel_sd", "funnel_tau"]
    if len(estimates[estimates["se"] > 0]) < 3:
        return pd.DataFrame(columns=columns)
    shrunk = compare.shrink(estimates, measure, level=level)[["location_id", "shrunk", "shrunk_ci_low",
                                                               "shrunk_ci_high", "weight", "rank"]]
    verdict = compare.verdicts(estimates, measure, min_n=min_n).rename(columns={"verdict": "funnel_flag", "q": "funnel_q"})
    funnel = compare.funnel(estimates, measure, min_n=min_n).rename(columns={
        "flag_95": "funnel_flag_95", "flag_998": "funnel_flag_998", "estimate": "raw",
        "brand_value": "funnel_brand_value", "per_response_sd": "funnel_sd", "tau": "funnel_tau"})
    out = (shrunk.merge(verdict[["location_id"] + columns[6:12]], on="location_id", how="outer")
           .merge(funnel[["location_id"] + columns[12:]], on="location_id", how="outer"))
    compared = out["location_id"].isin(estimates.loc[estimates["n"] >= min_n, "location_id"])
    out["rank"] = out["shrunk"].where(compared).rank(ascending=False, method="min").astype("Int64")
    return out[columns]


def _channels(dataset) -> pd.Series:
    """Distinct feedback channels per location."""
    responses = dataset.responses
    return responses.groupby("location_id", observed=True)["channel"].nunique()


def _measured(counts: pd.DataFrame) -> dict:
    """Which scores the brand collects at all: {nps, csat, ces: bool}."""
    return {name: bool(measure.answered(counts).sum() > 0) for name, measure in MEASURES.items()}


def _latest_trend(dataset, measure, period, min_n, level) -> pd.DataFrame:
    """Change of the measure between the last two periods with `min_n` answers, per location (empty
    columns when there are not two such periods)."""
    columns = ["location_id", "change", "change_ci_low", "change_ci_high", "change_from", "change_to",
               "declining", "improving"]
    try:
        trend = mx.trend(dataset, measure, by="location_id", period=period, min_n=min_n, level=level)
    except ValueError:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame({"location_id": trend["location_id"], "change": trend["change"],
                         "change_ci_low": trend["change_ci_low"], "change_ci_high": trend["change_ci_high"],
                         "change_from": trend["period_from"].astype(str), "change_to": trend["period_to"].astype(str),
                         "declining": trend["significant"] & (trend["change"] < 0),
                         "improving": trend["significant"] & (trend["change"] > 0)})


def attribute_gaps(responses: pd.DataFrame, location_id: str | None = None, level: float = 0.95) -> pd.DataFrame:
    """A location's attribute ratings (attr_*, 1-5) against the brand's: per attribute its mean here
    with a t interval and n, the brand's mean and the gap, weakest first. With `location_id` None,
    every location's, in one pass, with a location_id column (what a run's store keeps).

    `verdict` says whether the location is 'below' or 'above' the brand on that attribute beyond
    chance, or 'within': its t interval, widened (Bonferroni) for the number of attributes compared at
    once, lies wholly on one side of the brand's mean ('too few' without ratings). So a page names a
    weakest attribute only when it really is weaker there, not merely the lowest of a few numbers that
    differ by noise.
    """
    attributes = [c for c in responses.columns if c.startswith(ATTRIBUTE_PREFIX)]
    columns = ["location_id", "attribute", "here", "low", "high", "n", "brand", "verdict", "gap"]
    places = (pd.Index(responses["location_id"].dropna().unique()).sort_values() if location_id is None
              else pd.Index([location_id]))
    if not attributes or not len(places):
        empty = pd.DataFrame(columns=columns)
        return empty if location_id is None else empty.drop(columns="location_id")
    wide = 1 - (1 - level) / len(attributes)
    values = responses[attributes].astype("float64")
    sums = values.groupby(responses["location_id"]).sum(min_count=1).reindex(places)
    squares = (values ** 2).groupby(responses["location_id"]).sum(min_count=1).reindex(places)
    counts = values.notna().groupby(responses["location_id"]).sum().reindex(places).fillna(0)
    parts = []
    for attribute in attributes:
        moments = (sums[attribute].fillna(0).to_numpy(), squares[attribute].fillna(0).to_numpy(),
                   counts[attribute].to_numpy())
        here, widened = mx.mean_from_moments(*moments, level=level), mx.mean_from_moments(*moments, level=wide)
        brand = float(values[attribute].mean())
        verdict = pd.Series("within", index=range(len(places)))
        verdict[widened["ci_high"].to_numpy() < brand] = "below"
        verdict[widened["ci_low"].to_numpy() > brand] = "above"
        verdict[here["mean"].isna().to_numpy()] = "too few"
        parts.append(pd.DataFrame({"location_id": places, "attribute": attribute.removeprefix(ATTRIBUTE_PREFIX),
                                   "here": here["mean"].to_numpy(), "low": here["ci_low"].to_numpy(),
                                   "high": here["ci_high"].to_numpy(), "n": here["n"].to_numpy(), "brand": brand,
                                   "verdict": verdict.to_numpy()}))
    gaps = pd.concat(parts, ignore_index=True)
    gaps["gap"] = gaps["here"] - gaps["brand"]
    gaps = gaps.sort_values(["location_id", "gap"], kind="stable").reset_index(drop=True)
    return gaps if location_id is None else gaps.drop(columns="location_id")
