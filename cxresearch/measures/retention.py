"""Retention outcomes: one row per customer (or per response) with its anchor, CX score and fate.

Retention is "another purchase within H days of the anchor event" (docs/design.md). A customer whose
H-day window runs past the end of the data is *censored*: `retained` is missing (<NA>) and rates
leave the row out; it is never counted as lost. This holds even for a customer who has already come
back: counting early returners from unfinished windows while leaving out those who have not returned
yet would bias every rate upward. `days_to_next` (with `next_purchase_at` missing when no repeat is
seen) keeps the information for survival models, which use censored rows properly.

`customer_table` and `cohort_matrix` are the only steps here that read every transaction, through
one reduction each on the engine (`reductions.customer_outcomes`, `reductions.cohort_counts`);
rates and tiers work on the customer table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch import schema
from cxresearch.engine import as_source, reductions
from cxresearch.measures import metrics as mx
from cxresearch.schema import PASSIVE_MIN, PROMOTER_MIN

__all__ = ["cohort_matrix", "customer_table", "first_purchases", "loyalty_tiers", "nps_group", "retention_rates"]

NPS_GROUPS = ("detractor", "passive", "promoter")
TIER_LABELS = ("one-time (1)", "returning (2)", "watch (3-4)", "care (5+)")  # seed research: watch at 3+, care at 5+


def nps_group(scores: pd.Series) -> pd.Series:
    """promoter (9-10) / passive (7-8) / detractor (0-6) as an ordered categorical; missing stays missing."""
    values = scores.astype("float64")
    labels = np.select([values >= PROMOTER_MIN, values >= PASSIVE_MIN, values >= 0], ["promoter", "passive", "detractor"], "")
    out = pd.Series(labels, index=scores.index).replace("", np.nan)
    return out.astype(pd.CategoricalDtype(list(NPS_GROUPS), ordered=True))


def customer_table(dataset, horizon_days: int = 180, anchor: str = "first_purchase", as_of=None,
                   score_window_days: int = 30, min_gap_hours: float = 24) -> pd.DataFrame:
    """One row per customer (anchor='first_purchase') or per customer response (anchor='response').

    Columns: customer_id, anchor_at, anchor_location_id, region, format, anchor_channel, segment,
    nps, csat, ces, nps_group, next_purchase_at, days_to_next, retained (True/False/<NA>), censored,
    horizon_purchases and horizon_revenue (purchases after the anchor within the horizon, and their
    revenue), purchases, occasions and revenue (all of the customer's), end_of_data.

    A repeat purchase is one at least `min_gap_hours` (default 24) after the anchor, so the orders
    of one split checkout are one purchase occasion, not a return; `occasions` counts a customer's
    purchases that far apart. With anchor='first_purchase' the CX score is the response to the
    first purchase where responses name the purchase they rate (responses.transaction_id); else
    the customer's first response in the `score_window_days` after the first purchase and before
    the next one (the survey about that visit); customers without one have missing scores. `as_of`
    is the end of the data (default: the last transaction). `dataset` is a Source or a CXDataset;
    the engine computes the facts.
    """
    if anchor not in ("first_purchase", "response"):
        raise ValueError(f"anchor must be 'first_purchase' or 'response', not {anchor!r}")
    table, end = _anchors_and_facts(as_source(dataset), anchor, horizon_days, as_of, score_window_days, min_gap_hours)
    return _derive_outcomes(table, horizon_days, end).pipe(_in_order)


def first_purchases(dataset) -> pd.DataFrame:
    """Each customer's first purchase: customer_id, anchor_at, anchor_location_id, anchor_channel
    (the earliest second, then the earliest record), sorted by customer_id."""
    source = as_source(dataset, "transactions")
    first = reductions.first_purchases(source).order_by("customer_id").to_pyarrow().to_pandas()
    return _canonical_engine_frame(first.reset_index(drop=True), schema.TRANSACTIONS.column("channel").dtype)


def _end_of_data(as_of, last_purchase) -> pd.Timestamp:
    if as_of is None:
        return last_purchase
    stamp = pd.Timestamp(as_of)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _anchors_and_facts(source, anchor, horizon_days, as_of, score_window_days, min_gap_hours):
    """The anchors and their purchase facts, computed where the data lives (`reductions.customer_outcomes`)."""
    if not source.has("transactions") or source.accepted_counts()["transactions"] == 0:
        raise ValueError("customer_table needs transactions; the dataset has none")
    end = _end_of_data(as_of, reductions.end_of_data(source).tz_localize("UTC"))
    facts = reductions.customer_outcomes(source, anchor, horizon_days, end.tz_localize(None), score_window_days,
                                         min_gap_hours)
    channel = schema.TRANSACTIONS.column("channel").dtype if anchor == "first_purchase" else \
        schema.RESPONSES.column("channel").dtype
    facts = _canonical_engine_frame(facts, channel)
    first = ["customer_id"] + (["response_id"] if "response_id" in facts else [])
    return facts[first + ["anchor_at", "anchor_location_id", "region", "format", "anchor_channel", "segment", "nps",
                          "csat", "ces", "next_purchase_at", "horizon_purchases", "horizon_revenue", "purchases",
                          "occasions", "revenue"]], end


def _canonical_engine_frame(frame: pd.DataFrame, channel_dtype) -> pd.DataFrame:
    """An engine's anchors or facts in the dtypes the in-memory path gives: str ids, UTC times,
    the channel category, nullable scores and integer counts (whichever of these columns are present)."""
    casts = {"customer_id": "str", "response_id": "str", "anchor_location_id": "str", "anchor_channel": channel_dtype,
             "region": "str", "format": "str", "segment": "str",
             "nps": "Int8", "csat": "Int8", "ces": "Int8", "horizon_purchases": "int64", "purchases": "int64",
             "occasions": "int64"}
    out = frame.astype({c: t for c, t in casts.items() if c in frame})
    for column in ("anchor_at", "next_purchase_at"):
        if column in out:
            out[column] = pd.to_datetime(out[column]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return out


def _derive_outcomes(table, horizon_days, end) -> pd.DataFrame:
    """NPS group, days to the next purchase, retained (missing when censored) and censored, from the facts."""
    days = (table["next_purchase_at"] - table["anchor_at"]).dt.total_seconds() / 86400
    repeat = (days <= horizon_days).fillna(False).to_numpy(dtype=bool)
    censored = ~(table["anchor_at"] + pd.Timedelta(days=horizon_days) <= end).to_numpy()
    retained = pd.array(repeat, dtype="boolean")
    retained[censored] = pd.NA
    return table.assign(nps_group=nps_group(table["nps"]), days_to_next=days.to_numpy(), retained=retained,
                        censored=censored, end_of_data=end)


def _in_order(table) -> pd.DataFrame:
    """The customer table's columns in their documented order."""
    first = ["customer_id"] + (["response_id"] if "response_id" in table else [])
    order = first + ["anchor_at", "anchor_location_id", "region", "format", "anchor_channel", "segment", "nps", "csat",
                     "ces", "nps_group", "next_purchase_at", "days_to_next", "retained", "censored",
                     "horizon_purchases", "horizon_revenue", "purchases", "occasions", "revenue", "end_of_data"]
    return table[order]


def retention_rates(table: pd.DataFrame, by=("anchor_location_id",), period: str | None = None,
                    min_n: int = mx.DEFAULT_MIN_N, level: float = 0.95) -> pd.DataFrame:
    """Retention rate per group among customers whose outcome is known, with Wilson intervals.

    Censored rows are counted (column `censored`) but are in neither numerator nor denominator.
    `period` ('M', 'Q') groups by the anchor's period too. Groups with n < `min_n` are suppressed.
    """
    by = [by] if isinstance(by, str) else list(by or [])
    data = table
    if period is not None:
        data = mx.add_period(table, period, "anchor_at")
        by = by + ["period"]
    known = data["retained"].notna()
    parts = pd.DataFrame({"retained": data["retained"].fillna(False).astype("float64"), "n": known.astype("float64"),
                          "censored": data["censored"].astype("float64")})
    grouped = (parts.groupby([data[c] for c in by], observed=True, dropna=False).sum().reset_index() if by
               else parts.sum().to_frame().T)
    est = mx.proportion_from_counts(grouped["retained"], grouped["n"], level)
    suppressed = est["n"] < min_n
    out = grouped[by].copy() if by else pd.DataFrame(index=grouped.index)
    out["rate"] = est["share"].where(~suppressed)
    out["ci_low"] = est["ci_low"].where(~suppressed)
    out["ci_high"] = est["ci_high"].where(~suppressed)
    out["n"] = est["n"]
    out["retained"] = grouped["retained"].astype("int64").where(~suppressed)
    out["censored"] = grouped["censored"].astype("int64")
    out["suppressed"] = suppressed
    return out


def cohort_matrix(dataset, as_of=None, freq: str = "M") -> pd.DataFrame:
    """Share of each first-purchase cohort buying again in each later period (rows: cohort, columns: periods since).

    `dataset` is a Source, a CXDataset or a transactions DataFrame; the engine counts customers per
    cohort and period (`reductions.cohort_counts`), so no transaction is fetched. `freq` is 'M',
    'Q' or 'Y'. Column 0 is the cohort's first period (1.0 by construction). Cells after the end of
    the data (`as_of`, default the last purchase) are missing, not zero: those months have not
    happened yet.
    """
    source = as_source(dataset, "transactions")
    counts = reductions.cohort_counts(source, freq)
    end = reductions.end_of_data(source) if as_of is None else pd.Timestamp(as_of)
    table = counts.pivot(index="cohort", columns="since", values="customers").fillna(0)
    size = table[0]
    shares = table.reindex(columns=range(int(table.columns.max()) + 1), fill_value=0).div(size, axis=0)
    last = pd.Period(end.tz_convert("UTC").tz_localize(None) if end.tzinfo else end, freq=freq).ordinal
    observed = np.arange(shares.shape[1])[None, :] <= (last - shares.index.to_numpy())[:, None]
    shares = shares.where(observed)
    shares.index = pd.PeriodIndex.from_ordinals(shares.index, freq=freq).rename("cohort")
    shares.columns.name = "periods_since_first"
    shares.insert(0, "customers", size.astype("int64").to_numpy())
    return shares


def loyalty_tiers(table: pd.DataFrame, by=("anchor_location_id",)) -> pd.DataFrame:
    """Customers per tier of purchase occasions (1, 2, 3-4 'watch', 5+ 'care'), counts and shares per
    group. Occasions, not transaction rows: the orders of one split checkout are one occasion."""
    by = [by] if isinstance(by, str) else list(by or [])
    counted = table["occasions" if "occasions" in table else "purchases"]
    tier = pd.cut(counted, bins=[0, 1, 2, 4, np.inf], labels=list(TIER_LABELS))
    keys = [table[c] for c in by] + [tier.rename("tier")]
    counts = table.groupby(keys, observed=False).size().rename("customers").reset_index()
    total = counts.groupby(by, observed=True)["customers"].transform("sum") if by else counts["customers"].sum()
    return counts.assign(share=counts["customers"] / total)
