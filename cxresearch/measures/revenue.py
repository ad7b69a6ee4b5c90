"""Revenue outcomes per location and period: revenue, customers, revenue per customer, order value.

Totals are facts, not estimates, so they carry no interval; the average order value is a mean of
many orders and gets its t interval, as every average leadership sees does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.engine import as_source, reductions
from cxresearch.measures import metrics as mx

__all__ = ["location_panel", "purchase_span", "revenue_summary"]


def revenue_summary(transactions, by=("location_id",), period: str | None = "Q",
                    level: float = 0.95) -> pd.DataFrame:
    """Revenue, transactions, distinct customers, revenue per customer and AOV (with interval) per group.

    `transactions` is a Source, a CXDataset or a transactions DataFrame; the sums are one reduction
    (`reductions.revenue_sums`) on its engine."""
    by = [by] if isinstance(by, str) else list(by or [])
    if not by and period is None:
        raise ValueError("revenue_summary needs at least one grouping column or a period")
    out = reductions.revenue_sums(as_source(transactions, "transactions"), by, period)
    aov = mx.mean_from_moments(out["revenue"], out["revenue_sq"], out["transactions"], level)
    return out.drop(columns="revenue_sq").assign(
        transactions=out["transactions"].astype("int64"),
        revenue_per_customer=out["revenue"] / out["customers"],
        aov=aov["mean"], aov_ci_low=aov["ci_low"].clip(lower=0), aov_ci_high=aov["ci_high"])


def location_panel(dataset, period: str = "Q") -> pd.DataFrame:
    """One row per location x period: revenue, transactions, customers, NPS (with its sampling
    variance and counts), EX, and the previous period's NPS and EX within the location.

    This is the input of the panel models. A location-period with no sales is absent (log revenue
    is undefined); one with no responses has missing NPS. `nps_var` is the squared plain standard
    error, the sampling noise the revenue model corrects for.
    """
    source = as_source(dataset)
    money = revenue_summary(source, by="location_id", period=period)
    counts = reductions.score_counts(source, ["location_id"], ["nps"], period=period)
    nps = mx.nps_from_counts(counts["nps_promoters"], counts["nps_passives"], counts["nps_detractors"])
    scores = counts[["location_id", "period"]].assign(nps=nps["nps"], nps_n=nps["n"], nps_var=nps["se"] ** 2)
    panel = money.merge(scores, on=["location_id", "period"], how="outer")
    ex = reductions.ex_means(source, period) if source.has("employee_experience") else pd.DataFrame()
    if len(ex):
        panel = panel.merge(ex, on=["location_id", "period"], how="left")
    else:
        panel["ex"] = np.nan
    panel = panel.sort_values(["location_id", "period"]).reset_index(drop=True)
    ordinal = pd.Series(pd.PeriodIndex(panel["period"]).asi8, index=panel.index)
    consecutive = (ordinal - ordinal.groupby(panel["location_id"]).shift(1)) == 1
    for col in ("nps", "nps_var", "nps_n", "ex"):
        panel[f"{col}_lag"] = panel.groupby("location_id")[col].shift(1).where(consecutive)
    panel = panel.merge(source.locations[["location_id", "region", "format"]], on="location_id", how="left")
    panel["nps_n"] = panel["nps_n"].fillna(0).astype("int64")
    return panel


def purchase_span(dataset) -> dict:
    """How many purchases, by how many customers, from when to when: counted on the engine
    (`reductions.purchase_span`), so the transactions are never fetched."""
    return reductions.purchase_span(as_source(dataset, "transactions"))
