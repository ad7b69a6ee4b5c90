"""Revenue outcomes per location and period: revenue, customers, revenue per customer, order value.

Totals are facts, not estimates, so they carry no interval; the average order value is a mean of
many orders and gets its t interval, as every average leadership sees does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import metrics as mx
from .dataset import CXDataset
from .engine import engine_of


def revenue_summary(transactions: pd.DataFrame, by=("location_id",), period: str | None = "Q",
                    level: float = 0.95) -> pd.DataFrame:
    """Revenue, transactions, distinct customers, revenue per customer and AOV (with interval) per group.

    `transactions` is a frame, a CXDataset, or a `cxresearch.engine.Source` (the engine then sums)."""
    by = [by] if isinstance(by, str) else list(by or [])
    if not by and period is None:
        raise ValueError("revenue_summary needs at least one grouping column or a period")
    if engine_of(transactions) != "pandas":
        from . import reductions

        out = reductions.revenue_sums(transactions, by, period)
    else:
        frame = transactions.transactions if isinstance(transactions, CXDataset) else transactions
        out = _revenue_sums(frame, by, period)
    aov = mx.mean_from_moments(out["revenue"], out["revenue_sq"], out["transactions"], level)
    return out.drop(columns="revenue_sq").assign(
        transactions=out["transactions"].astype("int64"),
        revenue_per_customer=out["revenue"] / out["customers"],
        aov=aov["mean"], aov_ci_low=aov["ci_low"].clip(lower=0), aov_ci_high=aov["ci_high"])


def _revenue_sums(transactions: pd.DataFrame, by: list[str], period: str | None) -> pd.DataFrame:
    data = transactions
    if period is not None:
        data = mx.add_period(transactions, period, "occurred_at")
        by = by + ["period"]
    keys = [data[c] for c in by]
    revenue = data["revenue"].astype("float64")
    sums = pd.DataFrame({"revenue": revenue, "revenue_sq": revenue**2, "transactions": 1.0}).groupby(
        keys, observed=True, dropna=False).sum()
    customers = data.groupby(keys, observed=True, dropna=False)["customer_id"].nunique().rename("customers")
    return sums.join(customers).reset_index()


def location_panel(dataset, period: str = "Q") -> pd.DataFrame:
    """One row per location x period: revenue, transactions, customers, NPS (with its sampling
    variance and counts), EX, and the previous period's NPS and EX within the location.

    This is the input of the panel models. A location-period with no sales is absent (log revenue
    is undefined); one with no responses has missing NPS. `nps_var` is the squared plain standard
    error, the sampling noise the revenue model corrects for.
    """
    on_engine = engine_of(dataset) != "pandas"
    money = revenue_summary(dataset, by="location_id", period=period)
    counts = _nps_counts(dataset, period, on_engine)
    nps = mx.nps_from_counts(counts["nps_promoters"], counts["nps_passives"], counts["nps_detractors"])
    scores = counts[["location_id", "period"]].assign(nps=nps["nps"], nps_n=nps["n"], nps_var=nps["se"] ** 2)
    panel = money.merge(scores, on=["location_id", "period"], how="outer")
    ex = _ex_means(dataset, period, on_engine)
    if len(ex):
        panel = panel.merge(ex, on=["location_id", "period"], how="left")
    else:
        panel["ex"] = np.nan
    panel = panel.sort_values(["location_id", "period"]).reset_index(drop=True)
    ordinal = pd.Series(pd.PeriodIndex(panel["period"]).asi8, index=panel.index)
    consecutive = (ordinal - ordinal.groupby(panel["location_id"]).shift(1)) == 1
    for col in ("nps", "nps_var", "nps_n", "ex"):
        panel[f"{col}_lag"] = panel.groupby("location_id")[col].shift(1).where(consecutive)
    panel = panel.merge(dataset.locations[["location_id", "region", "format"]], on="location_id", how="left")
    panel["nps_n"] = panel["nps_n"].fillna(0).astype("int64")
    return panel


def _nps_counts(dataset, period: str, on_engine: bool) -> pd.DataFrame:
    if on_engine:
        from . import reductions

        return reductions.score_counts(dataset, ["location_id"], ["nps"], period=period)
    return mx.score_counts(mx.add_period(dataset.responses, period), ["location_id", "period"], ["nps"])


def _ex_means(dataset, period: str, on_engine: bool) -> pd.DataFrame:
    """Mean EX score per location and period (empty when the data have no EX table)."""
    if on_engine:
        from . import reductions

        return reductions.ex_means(dataset, period) if dataset.has("employee_experience") else pd.DataFrame()
    ex = dataset.employee_experience
    if not len(ex):
        return pd.DataFrame()
    means = mx.add_period(ex, period, "measured_at").groupby(["location_id", "period"], observed=True)["ex_score"].mean()
    return means.rename("ex").reset_index()
