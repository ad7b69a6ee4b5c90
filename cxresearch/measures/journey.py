"""Channels, touchpoints and the customer journey: reach across channels, the 5A funnel, CX maturity.

Scores by channel or by journey stage are `metrics.summarize(responses, by="channel")` (or
"journey_stage"); this module adds what needs the customer's whole path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.engine import as_source, reductions
from cxresearch.measures import metrics as mx
from cxresearch.schema import JOURNEY_STAGES

__all__ = ["channel_reach", "maturity_levels", "stage_funnel", "touchpoints"]

MATURITY_LEVELS = ("communication", "responsiveness", "engagement", "proactive", "breakthrough")  # Gartner


def touchpoints(dataset, by: str | None = None) -> pd.DataFrame:
    """Per customer: touchpoints (responses + purchases) and distinct channels seen in either.

    `by` may be 'home_location_id' (needs the customers table) to attach a location to each customer.
    `dataset` is a Source or a CXDataset; its engine counts (`reductions.touchpoints`).
    """
    source = as_source(dataset)
    per = reductions.touchpoints(source)
    if by is not None:
        per = per.merge(source.customers[["customer_id", by]], on="customer_id", how="left")
    return per


def channel_reach(dataset, by: str | None = None, min_n: int = mx.DEFAULT_MIN_N, level: float = 0.95) -> pd.DataFrame:
    """Share of customers reached through two or more channels (Wilson interval) and mean touchpoints."""
    per = touchpoints(dataset, by)
    per["multi"] = (per["channels"] >= 2).astype("float64")
    per["tp_sq"] = per["touchpoints"].astype("float64") ** 2
    grouped = (per.groupby(by, dropna=False).agg(multi=("multi", "sum"), n=("multi", "size"), tp=("touchpoints", "sum"),
                                                 tp_sq=("tp_sq", "sum")).reset_index()
               if by else per.agg({"multi": "sum", "customer_id": "size", "touchpoints": "sum", "tp_sq": "sum"})
               .to_frame().T.rename(columns={"customer_id": "n", "touchpoints": "tp"}))
    share = mx.proportion_from_counts(grouped["multi"], grouped["n"], level)
    mean_tp = mx.mean_from_moments(grouped["tp"], grouped["tp_sq"], grouped["n"], level)
    suppressed = share["n"] < min_n
    out = grouped[[by]].copy() if by else pd.DataFrame(index=grouped.index)
    out["customers"] = share["n"]
    out["multichannel_share"] = share["share"].where(~suppressed)
    out["multichannel_ci_low"] = share["ci_low"].where(~suppressed)
    out["multichannel_ci_high"] = share["ci_high"].where(~suppressed)
    out["touchpoints_per_customer"] = mean_tp["mean"].where(~suppressed)
    out["suppressed"] = suppressed
    return out.reset_index(drop=True)


def stage_funnel(responses: pd.DataFrame, by: str | None = None, level: float = 0.95) -> pd.DataFrame:
    """Kotler's 5A funnel: customers reaching at least each stage, and the step-to-step conversion.

    A customer 'reaches' a stage when a response of theirs is at that stage or a later one (a
    customer who advocates has been aware). Conversion from one stage to the next carries a Wilson
    interval. Responses without a customer or a stage are not part of the funnel (counted in
    `responses_without_stage`).
    """
    known = responses[responses["customer_id"].notna() & responses["journey_stage"].notna()]
    furthest = known.assign(code=known["journey_stage"].cat.codes).groupby(
        ["customer_id"] + ([by] if by else []), observed=True)["code"].max().reset_index()
    rows = []
    for stage_code, stage in enumerate(JOURNEY_STAGES):  # five stages, not a loop over data
        reached = (furthest["code"] >= stage_code)
        counts = reached.groupby(furthest[by]).sum() if by else pd.Series({None: reached.sum()})
        for key, value in counts.items():
            rows.append({by: key, "stage": stage, "customers": int(value)} if by else {"stage": stage, "customers": int(value)})
    out = pd.DataFrame(rows)
    group = out.groupby(by, sort=False) if by else None
    previous = group["customers"].shift(1) if by else out["customers"].shift(1)
    low, high = mx.wilson_interval(out["customers"], previous, level)
    out["conversion"] = out["customers"] / previous
    out["conversion_ci_low"], out["conversion_ci_high"] = low, high
    out["stage"] = pd.Categorical(out["stage"], categories=list(JOURNEY_STAGES), ordered=True)
    out.attrs["responses_without_stage"] = int(len(responses) - len(known))
    return out


def maturity_levels(scorecard: pd.DataFrame, min_n: int = mx.DEFAULT_MIN_N, ces_easy: float = 0.5,
                    csat_good: float = 0.7, min_channels: int = 3, measured: dict | None = None) -> pd.DataFrame:
    """Place each location on Gartner's five CX maturity levels by a transparent rule.

    `scorecard` has one row per location with columns: responses, ces_easy_share, csat (top-2-box
    share), channels (distinct feedback channels), shrunk (the brand's measure, shrunk), declining
    (a significant drop) and funnel_flag ('above'/'within'/'below'/'too few'). Each level needs all
    earlier ones:

    1. communication  - the location hears its customers: it has feedback at all.
    2. responsiveness - enough feedback to measure (n >= min_n) and customers find it easy to get
                        help (share of easy CES answers >= ces_easy).
    3. engagement     - customers are heard across the journey (feedback from >= min_channels
                        channels) and satisfied (CSAT top-2-box >= csat_good).
    4. proactive      - the measure at or above the brand median (shrunk) and not declining.
    5. breakthrough   - the measure above the brand beyond chance (funnel flag 'above').

    `measured` says which scores the brand collects ({'ces': False, ...}; default: all). A gate that
    needs a score the brand does not collect cannot be passed, and the next step says it is not
    measured (it is never "suppressed": there is nothing to suppress).

    Returns level (1-5), level_name and next_step (the first gate the location does not pass).
    """
    measured = {"nps": True, "csat": True, "ces": True} | dict(measured or {})
    median = scorecard["shrunk"].median()
    n = scorecard["responses"]
    easy = (f"reach {min_n} responses and {ces_easy:.0%} easy (CES 5-7)" if measured["ces"] else
            "measure customer effort (CES is not collected, so ease cannot be shown)")
    satisfied = (f"feedback from {min_channels}+ channels and {csat_good:.0%}+ of customers satisfied (4-5 of 5)"
                 if measured["csat"] else "measure satisfaction (CSAT is not collected, so it cannot be shown)")
    gates = [
        ("hear customers: collect feedback", n > 0),
        (easy, (n >= min_n) & (scorecard["ces_easy_share"] >= ces_easy) if measured["ces"] else pd.Series(False, n.index)),
        (satisfied, (scorecard["channels"] >= min_channels) & (scorecard["csat"] >= csat_good) if measured["csat"]
         else pd.Series(False, n.index)),
        ("reach the brand median and hold it (not declining)",
         (scorecard["shrunk"] >= median) & ~scorecard["declining"].astype("boolean").fillna(False).astype(bool)),
        ("stand out: above the brand beyond chance", scorecard["funnel_flag"] == "above"),
    ]
    passed = np.column_stack([pd.Series(g).astype("boolean").fillna(False).to_numpy(dtype=bool) for _, g in gates])
    level = np.cumprod(passed, axis=1).sum(axis=1)  # gates are cumulative: stop at the first failure
    names = np.array(("no feedback yet",) + MATURITY_LEVELS)
    steps = np.array([text for text, _ in gates] + ["sustain"])
    return scorecard.assign(level=level, level_name=names[level], next_step=steps[level])
