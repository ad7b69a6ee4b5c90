"""Retention outcomes: one row per customer (or per response) with its anchor, CX score and fate.

Retention is "another purchase within H days of the anchor event" (DESIGN.md). A customer whose
H-day window runs past the end of the data is *censored*: `retained` is missing (<NA>) and rates
leave the row out; it is never counted as lost. This holds even for a customer who has already come
back: counting early returners from unfinished windows while leaving out those who have not returned
yet would bias every rate upward. `days_to_next` (with `next_purchase_at` missing when no repeat is
seen) keeps the information for survival models, which use censored rows properly.

`customer_table` is the only step here that reads every transaction; rates, cohorts and tiers work
on its result. Everything is vectorized: sorting and searching, no loop over customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import metrics as mx
from . import schema
from .engine import engine_of

NPS_GROUPS = ("detractor", "passive", "promoter")
TIER_LABELS = ("one-time (1)", "returning (2)", "watch (3-4)", "care (5+)")  # seed research: watch at 3+, care at 5+


def nps_group(scores: pd.Series) -> pd.Series:
    """promoter (9-10) / passive (7-8) / detractor (0-6) as an ordered categorical; missing stays missing."""
    values = scores.astype("float64")
    labels = np.select([values >= 9, values >= 7, values >= 0], ["promoter", "passive", "detractor"], "")
    out = pd.Series(labels, index=scores.index).replace("", np.nan)
    return out.astype(pd.CategoricalDtype(list(NPS_GROUPS), ordered=True))


def customer_table(dataset, horizon_days: int = 180, anchor: str = "first_purchase", as_of=None,
                   score_window_days: int = 30) -> pd.DataFrame:
    """One row per customer (anchor='first_purchase') or per customer response (anchor='response').

    Columns: customer_id, anchor_at, anchor_location_id, region, format, anchor_channel, segment,
    nps, csat, ces, nps_group, next_purchase_at, days_to_next, retained (True/False/<NA>), censored,
    horizon_purchases and horizon_revenue (purchases after the anchor within the horizon, and their
    revenue), purchases and revenue (all of the customer's), end_of_data.

    With anchor='first_purchase' the CX score is the customer's first response in the
    `score_window_days` after the first purchase and before the next one (the survey about that
    visit); customers without one have missing scores. `as_of` is the end of the data (default: the
    last transaction).
    """
    if anchor not in ("first_purchase", "response"):
        raise ValueError(f"anchor must be 'first_purchase' or 'response', not {anchor!r}")
    if engine_of(dataset) != "pandas":
        table, end = _engine_anchors_and_facts(dataset, anchor, horizon_days, as_of, score_window_days)
    else:
        table, end = _memory_anchors_and_facts(dataset, anchor, horizon_days, as_of, score_window_days)
    table = _derive_outcomes(table, horizon_days, end)
    return _add_context(table, dataset)


def first_purchases(dataset) -> pd.DataFrame:
    """Each customer's first purchase: customer_id, anchor_at, anchor_location_id, anchor_channel
    (the earliest second, then the earliest record), sorted by customer_id."""
    if engine_of(dataset) != "pandas":
        from . import reductions

        first = reductions.first_purchases(dataset).order_by("customer_id").to_pyarrow().to_pandas()
        return _canonical_engine_frame(first.reset_index(drop=True), schema.TRANSACTIONS.column("channel").dtype)
    tx = dataset.transactions[["customer_id", "location_id", "occurred_at", "revenue", "channel"]]
    return _first_rows(tx, PurchaseIndex(tx))


def _end_of_data(as_of, last_purchase) -> pd.Timestamp:
    if as_of is None:
        return last_purchase
    stamp = pd.Timestamp(as_of)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _memory_anchors_and_facts(dataset, anchor, horizon_days, as_of, score_window_days):
    tx = dataset.transactions[["customer_id", "location_id", "occurred_at", "revenue", "channel"]]
    if tx.empty:
        raise ValueError("customer_table needs transactions; the dataset has none")
    end = _end_of_data(as_of, tx["occurred_at"].max())
    if tx["occurred_at"].max() > end:
        tx = tx[tx["occurred_at"] <= end]
    index = PurchaseIndex(tx)
    if anchor == "first_purchase":
        table = _first_purchase_anchors(tx, index, dataset.responses, score_window_days)
    else:
        table = _response_anchors(dataset.responses, index, end)
    return _purchase_facts(table, index, horizon_days), end


def _engine_anchors_and_facts(source, anchor, horizon_days, as_of, score_window_days):
    """The same anchors and facts computed where the data lives (cxresearch.reductions)."""
    from . import reductions

    if not source.has("transactions") or source.accepted_counts()["transactions"] == 0:
        raise ValueError("customer_table needs transactions; the dataset has none")
    end = _end_of_data(as_of, reductions.end_of_data(source).tz_localize("UTC"))
    facts = reductions.customer_outcomes(source, anchor, horizon_days, end.tz_localize(None), score_window_days)
    channel = schema.TRANSACTIONS.column("channel").dtype if anchor == "first_purchase" else \
        schema.RESPONSES.column("channel").dtype
    facts = _canonical_engine_frame(facts, channel)
    first = ["customer_id"] + (["response_id"] if "response_id" in facts else [])
    return facts[first + ["anchor_at", "anchor_location_id", "region", "format", "anchor_channel", "segment", "nps",
                          "csat", "ces", "next_purchase_at", "horizon_purchases", "horizon_revenue", "purchases",
                          "revenue"]], end


def _canonical_engine_frame(frame: pd.DataFrame, channel_dtype) -> pd.DataFrame:
    """An engine's anchors or facts in the dtypes the in-memory path gives: str ids, UTC times,
    the channel category, nullable scores and integer counts (whichever of these columns are present)."""
    casts = {"customer_id": "str", "response_id": "str", "anchor_location_id": "str", "anchor_channel": channel_dtype,
             "region": "str", "format": "str", "segment": "str",
             "nps": "Int8", "csat": "Int8", "ces": "Int8", "horizon_purchases": "int64", "purchases": "int64"}
    out = frame.astype({c: t for c, t in casts.items() if c in frame})
    for column in ("anchor_at", "next_purchase_at"):
        if column in out:
            out[column] = pd.to_datetime(out[column]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return out


class PurchaseIndex:
    """Purchases ordered by (customer, time) as plain arrays, with a composite key for vectorized searches.

    Only integer and float arrays are sorted (customer codes, seconds, revenue); the string columns
    of the transactions are never copied, which keeps memory near the input's own size.
    """

    def __init__(self, tx: pd.DataFrame):
        codes, self.customers = pd.factorize(tx["customer_id"], sort=True)
        stamps = _naive_utc(tx["occurred_at"])
        seconds = _whole_seconds(stamps)
        self.order = np.lexsort((seconds, codes))  # positions in tx, by customer then time
        self.codes = codes[self.order]
        self.origin = int(seconds.min()) - 10 * 365 * 86400  # keeps offsets positive
        self.key = self._key(self.codes, seconds[self.order])
        # naive UTC, fast to index; as recorded (a next purchase keeps its fraction of a second)
        self.times = stamps.to_numpy()[self.order]
        revenue = tx["revenue"].to_numpy(dtype="float64")
        self.revenue_cumsum = np.concatenate([[0.0], np.cumsum(revenue[self.order])])
        self.totals = pd.DataFrame({"purchases": np.bincount(codes, minlength=len(self.customers)),
                                    "revenue": np.bincount(codes, weights=revenue, minlength=len(self.customers))},
                                   index=pd.Index(self.customers, name="customer_id"))

    def _key(self, codes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Sortable (customer, time) key: customer code in the high bits, seconds since origin below (2^34 s ~ 544 y)."""
        return codes.astype("int64") * (1 << 34) + (seconds - self.origin)

    def customer_codes(self, ids: pd.Series) -> np.ndarray:
        """Code of each id in this index (-1 where the customer has no transactions)."""
        return self.customers.get_indexer(ids)

    def after(self, codes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Position of each customer's first purchase strictly after the given time (which is also the
        position just past their last purchase at or before it)."""
        return np.searchsorted(self.key, self._key(codes, seconds), side="right")


def _seconds(stamps: pd.Series) -> np.ndarray:
    return _whole_seconds(_naive_utc(stamps))


def _naive_utc(stamps: pd.Series) -> pd.Series:
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None)


def _whole_seconds(naive: pd.Series) -> np.ndarray:
    """Seconds since the epoch, rounded down (a fraction of a second is dropped)."""
    return naive.astype("datetime64[s]").to_numpy().astype("int64")


def _first_purchase_anchors(tx, index, responses, score_window_days) -> pd.DataFrame:
    return _attach_scores(_first_rows(tx, index), index, responses, score_window_days)


def _first_rows(tx, index) -> pd.DataFrame:
    first = np.flatnonzero(np.r_[True, index.codes[1:] != index.codes[:-1]])  # each customer's first purchase
    rows = tx.iloc[index.order[first]]
    return pd.DataFrame({"customer_id": rows["customer_id"].to_numpy(), "anchor_at": rows["occurred_at"].array,
                         "anchor_location_id": rows["location_id"].array, "anchor_channel": rows["channel"].array})


def _attach_scores(anchors, index, responses, window_days) -> pd.DataFrame:
    """The first response in (anchor, anchor + window] and before the next purchase, per customer."""
    scored = responses.loc[responses["customer_id"].notna(), ["customer_id", "responded_at", "nps", "csat", "ces"]]
    scored = scored.merge(anchors[["customer_id", "anchor_at"]], on="customer_id")  # inner: anchored customers only
    codes = index.customer_codes(scored["customer_id"])
    next_pos = index.after(codes, _seconds(scored["anchor_at"]))
    next_at = _next_time(index, codes, next_pos)
    ok = ((scored["responded_at"] >= scored["anchor_at"])
          & (scored["responded_at"] <= scored["anchor_at"] + pd.Timedelta(days=window_days))
          & ((scored["responded_at"] < next_at) | next_at.isna()))
    best = scored[ok.to_numpy()].sort_values(["customer_id", "responded_at"], kind="stable").drop_duplicates("customer_id")
    return anchors.merge(best[["customer_id", "nps", "csat", "ces"]], on="customer_id", how="left")


def _next_time(index, codes, positions) -> pd.Series:
    """Time of the purchase at each position if it belongs to the same customer, else NaT."""
    valid = (positions < len(index.key)) & (codes >= 0)
    valid[valid] = index.codes[positions[valid]] == codes[valid]
    times = np.full(len(codes), np.datetime64("NaT"), dtype=index.times.dtype)
    times[valid] = index.times[positions[valid]]
    return pd.Series(times).astype("datetime64[us]").dt.tz_localize("UTC")


def _response_anchors(responses, index, end) -> pd.DataFrame:
    rows = responses[responses["customer_id"].notna() & (responses["responded_at"] <= end)]
    rows = rows[index.customer_codes(rows["customer_id"]) >= 0]  # customers with no purchase have no retention
    columns = {"customer_id": "customer_id", "response_id": "response_id", "responded_at": "anchor_at",
               "location_id": "anchor_location_id", "channel": "anchor_channel", "nps": "nps", "csat": "csat", "ces": "ces"}
    return rows[list(columns)].rename(columns=columns).reset_index(drop=True)


def _purchase_facts(table, index, horizon_days) -> pd.DataFrame:
    """Next purchase after each anchor, purchases and revenue within the horizon, and the customer's totals."""
    codes = index.customer_codes(table["customer_id"])
    anchor_s = _seconds(table["anchor_at"])
    first_after = index.after(codes, anchor_s)
    horizon_end = index.after(codes, anchor_s + horizon_days * 86400)
    next_at = _next_time(index, codes, first_after)
    count = np.maximum(horizon_end - first_after, 0)
    revenue = index.revenue_cumsum[np.maximum(horizon_end, first_after)] - index.revenue_cumsum[first_after]
    totals = index.totals.reindex(table["customer_id"])
    return table.assign(next_purchase_at=next_at.array, horizon_purchases=count, horizon_revenue=revenue,
                        purchases=totals["purchases"].to_numpy(), revenue=totals["revenue"].to_numpy())


def _derive_outcomes(table, horizon_days, end) -> pd.DataFrame:
    """NPS group, days to the next purchase, retained (missing when censored) and censored, from the facts."""
    days = (table["next_purchase_at"] - table["anchor_at"]).dt.total_seconds() / 86400
    repeat = (days <= horizon_days).fillna(False).to_numpy(dtype=bool)
    censored = ~(table["anchor_at"] + pd.Timedelta(days=horizon_days) <= end).to_numpy()
    retained = pd.array(repeat, dtype="boolean")
    retained[censored] = pd.NA
    return table.assign(nps_group=nps_group(table["nps"]), days_to_next=days.to_numpy(), retained=retained,
                        censored=censored, end_of_data=end)


def _add_context(table, dataset) -> pd.DataFrame:
    """The anchor location's region and format and the customer's segment (an engine joins them itself)."""
    if "region" not in table:
        locations = dataset.locations[["location_id", "region", "format"]].rename(
            columns={"location_id": "anchor_location_id"})
        table = table.merge(locations, on="anchor_location_id", how="left")
    if "segment" not in table:
        if len(dataset.customers):
            table = table.merge(dataset.customers[["customer_id", "segment"]], on="customer_id", how="left")
        else:
            table["segment"] = pd.Series(pd.NA, index=table.index, dtype="str")
    first = ["customer_id"] + (["response_id"] if "response_id" in table else [])
    order = first + ["anchor_at", "anchor_location_id", "region", "format", "anchor_channel", "segment", "nps", "csat",
                     "ces", "nps_group", "next_purchase_at", "days_to_next", "retained", "censored",
                     "horizon_purchases", "horizon_revenue", "purchases", "revenue", "end_of_data"]
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
    grouped = parts.groupby([data[c] for c in by], observed=True, dropna=False).sum().reset_index() if by else parts.sum().to_frame().T
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


def cohort_matrix(transactions: pd.DataFrame, as_of=None, freq: str = "M") -> pd.DataFrame:
    """Share of each first-purchase cohort buying again in each later period (rows: cohort, columns: periods since).

    Column 0 is the cohort's first period (1.0 by construction). Cells after the end of the data
    are missing, not zero: those months have not happened yet.
    """
    tx = transactions[["customer_id", "occurred_at"]]
    end = tx["occurred_at"].max() if as_of is None else pd.Timestamp(as_of)
    ordinal = pd.Series(mx.add_period(tx, freq, "occurred_at")["period"].array.asi8, index=tx.index)
    first = ordinal.groupby(tx["customer_id"]).transform("min")
    active = pd.DataFrame({"cohort": first, "since": ordinal - first, "customer_id": tx["customer_id"]}).drop_duplicates()
    size = active[active["since"] == 0].groupby("cohort").size()
    counts = active.groupby(["cohort", "since"]).size().unstack(fill_value=0)
    shares = counts.reindex(columns=range(int(counts.columns.max()) + 1), fill_value=0).div(size, axis=0)
    last = pd.Period(end.tz_convert("UTC").tz_localize(None) if end.tzinfo else end, freq=freq).ordinal
    observed = np.arange(shares.shape[1])[None, :] <= (last - shares.index.to_numpy())[:, None]
    shares = shares.where(observed)
    shares.index = pd.PeriodIndex.from_ordinals(shares.index, freq=freq).rename("cohort")
    shares.columns.name = "periods_since_first"
    size.index = shares.index
    shares.insert(0, "customers", size)
    return shares


def loyalty_tiers(table: pd.DataFrame, by=("anchor_location_id",)) -> pd.DataFrame:
    """Customers per purchase-count tier (1, 2, 3-4 'watch', 5+ 'care'), counts and shares per group."""
    by = [by] if isinstance(by, str) else list(by or [])
    tier = pd.cut(table["purchases"], bins=[0, 1, 2, 4, np.inf], labels=list(TIER_LABELS))
    keys = [table[c] for c in by] + [tier.rename("tier")]
    counts = table.groupby(keys, observed=False).size().rename("customers").reset_index()
    total = counts.groupby(by, observed=True)["customers"].transform("sum") if by else counts["customers"].sum()
    return counts.assign(share=counts["customers"] / total)
