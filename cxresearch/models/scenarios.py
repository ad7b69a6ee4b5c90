"""What if: the revenue and retained customers a change in the CX measure (NPS, CSAT or CES, in
points) would be worth, per location, from the estimated effects, with intervals that carry both
effects' uncertainty."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.measures import metrics as mx
from cxresearch.measures.measure import get
from cxresearch.models.effect import Effect, WhatIf

__all__ = ["WhatIf", "what_if"]


def _largest_gain_first(table: pd.DataFrame) -> pd.DataFrame:
    """Order by gain in the measure, then projected revenue gain, then id; keys are rounded so that last-bit float
    differences between machines cannot reorder ties (a +5 scenario gives every location the same gain)."""
    keys = table.assign(_gain=table["gain"].round(6), _revenue=table["revenue_gain"].round(6))
    ordered = keys.sort_values(["_gain", "_revenue", "location_id"], ascending=[False, False, True], kind="stable")
    return ordered.drop(columns=["_gain", "_revenue"]).reset_index(drop=True)


def what_if(dataset, revenue: Effect | None, retention: Effect | None, scenario="median", period: str = "Q",
            recent_periods: int = 4, n_draws: int = 2000, seed: int = 0, level: float = 0.95) -> WhatIf:
    """Project revenue and retained customers if the locations' CX measure moved as in `scenario`.

    The measure is the one the effects were estimated on (NPS, CSAT or CES, in points). Either effect
    may be None (not estimated): that half of the projection is then nan, the other still stands.
    `scenario` is 'median' (every location below the brand median rises to it), a number (every
    location gains that many points, capped at the top of the scale) or a dict {location_id:
    target}. The current value is each location's shrunk estimate (small locations are not taken at
    face value). Per location and period, extra revenue = revenue x (exp(slope x gain / 10) - 1)
    with draws of the revenue slope from its confidence distribution; extra retained customers =
    new customers x gain x shift x retention gap, where shift is the share of customers who move from the bottom to the
    top group per point (1/200 for NPS, 1/100 for a top-box share), with the gap drawn from its
    normal sampling distribution. Baselines are the averages of the last
    `recent_periods` periods. Intervals are percentiles of the draws, so they carry the
    uncertainty of both estimated effects (not of the baselines).
    """
    from cxresearch.measures import compare
    from cxresearch.measures.retention import first_purchases
    from cxresearch.measures.revenue import revenue_summary

    if revenue is None and retention is None:
        raise ValueError("a what-if needs the revenue effect, the retention gap or both")
    measure = get((revenue if revenue is not None else retention).extra.get("measure", "nps"))
    current = compare.shrink(compare.location_estimates(dataset, measure))[["location_id", "shrunk", "n"]]
    target = _scenario_targets(current, scenario, measure)
    money = revenue_summary(dataset, by="location_id", period=period)
    recent = money[money["period"] >= sorted(money["period"].unique())[-recent_periods]]
    base = recent.groupby("location_id").agg(revenue=("revenue", "mean"))
    first = first_purchases(dataset)  # where each customer first bought, and when
    first = first.assign(period=mx.period_of(first["anchor_at"], period))
    newcomers = (first[first["period"].isin(recent["period"].unique())].groupby("anchor_location_id").size()
                 / recent_periods)
    table = current.assign(target=target).merge(base, left_on="location_id", right_index=True, how="left")
    table["new_customers"] = table["location_id"].map(newcomers).fillna(0.0)
    table["gain"] = (table["target"] - table["shrunk"]).clip(lower=0)
    rng = np.random.default_rng(seed)
    gain, a = table["gain"].to_numpy(), (1 - level) / 2
    rev = _revenue_draws(table, revenue, rng, n_draws)
    ret = _retained_draws(table, retention, measure, rng, n_draws)
    if revenue is not None:
        point_slope = revenue.extra["log_slope"]
        table["revenue_gain"] = table["revenue"].fillna(0) * (np.exp(point_slope * gain / 10) - 1)
    else:
        table["revenue_gain"] = np.nan
    table["revenue_gain_ci_low"], table["revenue_gain_ci_high"] = _quantiles(rev, a)
    table["retained_gain"] = (table["new_customers"] * gain * measure.shift_per_point * retention.estimate / 100
                              if retention is not None else np.nan)
    table["retained_gain_ci_low"], table["retained_gain_ci_high"] = _quantiles(ret, a)
    total_rev, total_ret = rev.sum(axis=0), ret.sum(axis=0)
    changed = gain > 0
    total = {"locations_changed": int(changed.sum()), "mean_gain": float(gain[changed].mean()) if changed.any() else 0.0,
             "revenue_gain": float(table["revenue_gain"].sum()) if revenue is not None else np.nan,
             "revenue_gain_ci_low": float(np.quantile(total_rev, a)),
             "revenue_gain_ci_high": float(np.quantile(total_rev, 1 - a)),
             "revenue_base": float(table["revenue"].sum()),
             "retained_gain": float(table["retained_gain"].sum()) if retention is not None else np.nan,
             "retained_gain_ci_low": float(np.quantile(total_ret, a)),
             "retained_gain_ci_high": float(np.quantile(total_ret, 1 - a))}
    label = measure.label
    assumptions = (f"Assumes the within-location links estimated from past data hold when {label} changes, and that "
                   f"a {label} gain comes from {measure.people(0)} becoming {measure.people(2)}; per period, on recent "
                   "baselines.")
    if isinstance(scenario, str):
        title = {"median": f"Raise every location below the brand median {label} to the median"}.get(scenario)
    elif isinstance(scenario, dict):
        title = f"Custom {label} targets"
    else:
        title = f"Every location +{scenario:g} {measure.unit}"
    return WhatIf(scenario=title, locations=_largest_gain_first(table),
                  total=total, assumptions=assumptions, level=level, measure=measure.name)


def _revenue_draws(table: pd.DataFrame, revenue: Effect | None, rng, n_draws: int) -> np.ndarray:
    """Extra revenue per location (rows) for draws of the revenue slope (columns); nan without the effect."""
    if revenue is None:
        return np.full((len(table), n_draws), np.nan)
    slopes = revenue.extra.get("log_slope_draws")
    slopes = slopes[np.isfinite(slopes)] if slopes is not None else np.array([])
    if len(slopes) < 10:
        raise ValueError("the revenue effect carries too few draws of its slope to project with an interval")
    slopes = rng.choice(slopes, n_draws)
    gain = table["gain"].to_numpy()
    return table["revenue"].fillna(0).to_numpy()[:, None] * (np.exp(slopes[None, :] * gain[:, None] / 10) - 1)


def _retained_draws(table: pd.DataFrame, retention: Effect | None, measure, rng, n_draws: int) -> np.ndarray:
    """Extra retained customers per location (rows) for draws of the retention gap (columns); nan without it."""
    if retention is None:
        return np.full((len(table), n_draws), np.nan)
    gaps = rng.normal(retention.estimate, retention.se, n_draws) / 100
    moved = table["new_customers"].to_numpy() * table["gain"].to_numpy() * measure.shift_per_point
    return moved[:, None] * gaps[None, :]


def _quantiles(draws: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    if np.isnan(draws).all():
        return np.full(len(draws), np.nan), np.full(len(draws), np.nan)
    return np.quantile(draws, a, axis=1), np.quantile(draws, 1 - a, axis=1)


def _scenario_targets(current: pd.DataFrame, scenario, measure) -> np.ndarray:
    if isinstance(scenario, str):
        if scenario != "median":
            raise ValueError(f"scenario must be 'median', a number of points or a dict of targets, not {scenario!r}")
        return np.maximum(current["shrunk"].to_numpy(), current["shrunk"].median())
    if isinstance(scenario, dict):
        return current["location_id"].map(scenario).fillna(current["shrunk"]).to_numpy()
    return np.minimum(current["shrunk"].to_numpy() + float(scenario), measure.bounds[1])
