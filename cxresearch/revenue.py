"""Revenue outcomes per location and period: revenue, customers, revenue per customer, order value.

Totals are facts, not estimates, so they carry no interval; the average order value is a mean of
many orders and gets its t interval, as every average leadership sees does.
"""

from __future__ import annotations

import pandas as pd

from . import metrics as mx


def revenue_summary(transactions: pd.DataFrame, by=("location_id",), period: str | None = "Q",
                    level: float = 0.95) -> pd.DataFrame:
    """Revenue, transactions, distinct customers, revenue per customer and AOV (with interval) per group."""
    by = [by] if isinstance(by, str) else list(by or [])
    data = transactions
    if period is not None:
        data = mx.add_period(transactions, period, "occurred_at")
        by = by + ["period"]
    if not by:
        raise ValueError("revenue_summary needs at least one grouping column or a period")
    keys = [data[c] for c in by]
    revenue = data["revenue"].astype("float64")
    sums = pd.DataFrame({"revenue": revenue, "revenue_sq": revenue**2, "transactions": 1.0}).groupby(
        keys, observed=True, dropna=False).sum()
    customers = data.groupby(keys, observed=True, dropna=False)["customer_id"].nunique().rename("customers")
    out = sums.join(customers).reset_index()
    aov = mx.mean_from_moments(out["revenue"], out["revenue_sq"], out["transactions"], level)
    return out.drop(columns="revenue_sq").assign(
        transactions=out["transactions"].astype("int64"),
        revenue_per_customer=out["revenue"] / out["customers"],
        aov=aov["mean"], aov_ci_low=aov["ci_low"].clip(lower=0), aov_ci_high=aov["ci_high"])
