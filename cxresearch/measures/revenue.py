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


def location_panel(dataset, period: str = "Q", measure=None) -> pd.DataFrame:
    """One row per location x period: revenue, transactions, customers, the CX measure `cx` (with its
    sampling variance `cx_var` and answers `cx_n`), EX, and the previous period's values within the
    location (`cx_lag`, `cx_var_lag`, `cx_n_lag`, `ex_lag`).

    `measure` is the brand's measure (default: NPS where the data have it, else CSAT, else CES), in
    its points; ``.attrs['measure']`` names it. This is the input of the panel models. A
    location-period with no sales is absent (log revenue is undefined); one with no responses has
    a missing `cx`. `cx_var` is the sampling variance of `cx`, the noise the revenue model corrects
    for: the pooled within-cell variance of one answer (unbiased, over all location-periods) over
    the cell's n. A cell's own plain variance would be zero whenever its few answers agree (one
    review, or three 5-star ones), which with real data's small cells hides most of the noise.
    """
    from cxresearch.measures.measure import choose

    source = as_source(dataset)
    chosen = choose(source, measure)
    money = revenue_summary(source, by="location_id", period=period)
    counts = reductions.score_counts(source, ["location_id"], [chosen.name], period=period)
    est = chosen.estimates(counts)
    n = est["n"].to_numpy(dtype=float)
    pooled = chosen.squared_deviations(counts).sum() / max((n - 1).clip(min=0).sum(), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = np.where(n > 0, pooled / n, np.nan)
    scores = counts[["location_id", "period"]].assign(cx=est["value"].to_numpy(), cx_n=est["n"].to_numpy(),
                                                      cx_var=noise)
    panel = money.merge(scores, on=["location_id", "period"], how="outer")
    ex = reductions.ex_means(source, period) if source.has("employee_experience") else pd.DataFrame()
    if len(ex):
        panel = panel.merge(ex, on=["location_id", "period"], how="left")
    else:
        panel["ex"] = np.nan
    panel = panel.sort_values(["location_id", "period"]).reset_index(drop=True)
    ordinal = pd.Series(pd.PeriodIndex(panel["period"]).asi8, index=panel.index)
    consecutive = (ordinal - ordinal.groupby(panel["location_id"]).shift(1)) == 1
    for col in ("cx", "cx_var", "cx_n", "ex"):
        panel[f"{col}_lag"] = panel.groupby("location_id")[col].shift(1).where(consecutive)
    panel = panel.merge(source.locations[["location_id", "region", "format"]], on="location_id", how="left")
    panel["cx_n"] = panel["cx_n"].fillna(0).astype("int64")
    panel.attrs["measure"] = chosen.name
    return panel


def purchase_span(dataset) -> dict:
    """How many purchases, by how many customers, from when to when: counted on the engine
    (`reductions.purchase_span`), so the transactions are never fetched."""
    return reductions.purchase_span(as_source(dataset, "transactions"))
