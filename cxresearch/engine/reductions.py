"""The raw-event reductions, written once in Ibis so they run where the data lives (DuckDB, Spark, a warehouse).

Each function takes a `cxresearch.engine.Source` and returns a small pandas frame of sufficient
statistics: `score_counts` (for metrics.summarize and compare), `revenue_sums` (revenue.revenue_summary),
`ex_means` (revenue.location_panel), `first_purchases` and `customer_outcomes`
(retention.customer_table), `cohort_counts` (retention.cohort_matrix) and `touchpoints`
(journey.touchpoints). They are the only code that reads raw events: data in memory reaches them
through `engine.as_source`, so the statistics downstream never know which engine counted. Integer
counts are identical across engines; sums of money agree to floating-point rounding (the order of
addition differs). What several reductions share (`customer_purchases`, `end_of_data`) is computed
once per Source (`Source.memo`).

Calendar periods are computed on the engine by truncating the (naive UTC) timestamp, and turned into
pandas Periods only on the small result.
"""

from __future__ import annotations

import ibis
import pandas as pd

from cxresearch import schema
from cxresearch.engine.rules import hash64, on_duckdb, repeats
from cxresearch.schema import METRICS, PASSIVE_MIN, PROMOTER_MIN, ROW, SCALES

__all__ = ["cohort_counts", "comment_batches", "comments_of", "customer_key", "customer_outcomes", "customer_purchases",
           "end_of_data", "ex_means", "first_purchases", "purchase_span", "rating_sums", "repeat_counts", "revenue_sums",
           "score_counts", "touchpoints"]

ENGINE_PERIODS = ("D", "W", "M", "Q", "Y")  # pandas periods whose Ibis truncate unit has the same name
FIRST_PURCHASE = ("anchor_at", "anchor_location_id", "anchor_channel")
# accepted rows hold only these labels (or null), so a bit per label counts distinct channels
CHANNEL_LABELS = tuple(dict.fromkeys(schema.TABLES["responses"].column("channel").categories
                                     + schema.TABLES["transactions"].column("channel").categories))


def score_counts(source, by, metrics=METRICS, period: str | None = None, time_column: str = "responded_at",
                 csat_top_box: int = 2, ces_easy_from: int = 5) -> pd.DataFrame:
    """metrics.score_counts on the engine: per group, NPS category counts, CSAT top-box, CES sums.

    `by` may name responses columns, "period" (with `period`) and location columns (region, format),
    which are joined on the engine."""
    by = [by] if isinstance(by, str) else list(by or [])
    t = _with_location_columns(source, source.table("responses"), by)
    t = _with_period(t, period, time_column)
    by = by + ["period"] if period is not None and "period" not in by else by
    aggs = {"responses": t.count().cast("float64")}
    for metric in metrics:
        score = t[metric]
        low, high = SCALES[metric]
        if metric == "nps":
            aggs["nps_promoters"] = _count(score >= PROMOTER_MIN)
            aggs["nps_passives"] = _count((score >= PASSIVE_MIN) & (score < PROMOTER_MIN))
            aggs["nps_detractors"] = _count(score < PASSIVE_MIN)
        elif metric == "csat":
            aggs["csat_top"] = _count(score > high - csat_top_box)
            aggs["csat_n"] = _count(score.notnull())
        else:
            value = score.cast("float64")
            aggs["ces_sum"] = value.sum().fill_null(0.0)
            aggs["ces_sumsq"] = (value * value).sum().fill_null(0.0)
            aggs["ces_n"] = _count(score.notnull())
            aggs["ces_easy"] = _count(score >= ces_easy_from)
    out = (t.group_by(by).aggregate(**aggs) if by else t.aggregate(**aggs)).to_pyarrow().to_pandas()
    return _ordered(_typed_keys(source, out, by, period), by)


def revenue_sums(source, by, period: str | None) -> pd.DataFrame:
    """Per group (and period): revenue, revenue squared, transactions, distinct customers."""
    t = _with_period(source.table("transactions"), period, "occurred_at")
    keys = list(by) + (["period"] if period else [])
    revenue = t["revenue"]
    out = t.group_by(keys).aggregate(revenue=revenue.sum(), revenue_sq=(revenue * revenue).sum(),
                                     transactions=t.count().cast("float64"),
                                     customers=customer_key(source, t).nunique()).to_pyarrow().to_pandas()
    return _ordered(_typed_keys(source, out, keys, period), keys)


def repeat_counts(source, by=("location_id",), period: str = "M", horizon_days: int = 90,
                  min_gap_hours: float = 24.0) -> pd.DataFrame:
    """Per group and period of the purchase: purchase occasions whose horizon ends within the data
    (`eligible`: bought at least `horizon_days` before the last purchase) and, among them, those whose
    customer came back for another occasion, anywhere, within `horizon_days` (`came_back`). An
    occasion is a purchase at least `min_gap_hours` after the customer's previous one (a split
    checkout is one), credited to the group of its first purchase. One pass of two window functions."""
    gap, horizon = int(round(min_gap_hours * 3600)), int(horizon_days) * 86400
    tx = source.table("transactions")
    p = tx.select(*by, _c=customer_key(source, tx), _at=tx["occurred_at"])
    p = p.mutate(_new=_new_occasion(p, gap))
    starts = p.filter(p["_new"] == 1)
    starts = starts.mutate(_next=starts["_at"].lead().over(ibis.window(group_by=starts["_c"], order_by=starts["_at"])))
    end = pd.Timestamp(end_of_data(source))
    last = int((end.tz_localize("UTC") if end.tzinfo is None else end).timestamp())
    at = _whole_seconds(starts["_at"])
    eligible = at + horizon <= last
    back = eligible & starts["_next"].notnull() & (_whole_seconds(starts["_next"]) - at <= horizon)
    t = _with_period(starts.mutate(_eligible=eligible, _back=back), period, "_at")
    keys = list(by) + (["period"] if period else [])
    out = t.group_by(keys).aggregate(eligible=_count(t["_eligible"]), came_back=_count(t["_back"]))
    out = out.to_pyarrow().to_pandas()
    return _ordered(_typed_keys(source, out, keys, period), keys)


def ex_means(source, period: str) -> pd.DataFrame:
    """Mean employee-experience score per location and period."""
    t = _with_period(source.table("employee_experience"), period, "measured_at")
    out = t.group_by(["location_id", "period"]).aggregate(ex=t["ex_score"].mean()).to_pyarrow().to_pandas()
    return _ordered(_typed_keys(source, out, ["location_id", "period"], period), ["location_id", "period"])


def first_purchases(source, end=None):
    """Each customer's first purchase (earliest second, then earliest record): an Ibis table on the
    engine, stored. Up to the end of the data it is read from `customer_purchases`, built once."""
    if _is_all_data(source, end):
        return customer_purchases(source).select("customer_id", *FIRST_PURCHASE)
    tx = _purchases(source, end)
    return source.cache(_earliest(tx, tx["customer_id"].name("customer_id"),
                                  _first_key(tx["occurred_at"], tx[ROW]), _first_purchase_fields(tx)))


def customer_purchases(source):
    """Per customer over all purchases: the first purchase (anchor_at, anchor_location_id,
    anchor_channel), the number of purchases and the channels they used (`_channels`, a bit mask,
    see `_channel_mask`). Stored once per source: the customer table takes its anchors from it and
    touchpoints its counts, which saves touchpoints a pass over every transaction."""
    def build():
        tx = source.table("transactions")
        per = _earliest(tx, tx["customer_id"].name("customer_id"), _first_key(tx["occurred_at"], tx[ROW]),
                        _first_purchase_fields(tx), purchases=tx.count(), _channels=_channel_mask(tx["channel"]))
        return source.cache(per)
    return source.memo("customer_purchases", build)


def purchase_span(source) -> dict:
    """Purchases, distinct customers, and the first and last purchase time (naive UTC)."""
    tx = source.table("transactions")
    out = tx.aggregate(transactions=tx.count(), customers=tx["customer_id"].nunique(),
                       first=tx["occurred_at"].min(), last=tx["occurred_at"].max()).to_pyarrow().to_pylist()[0]
    return {"transactions": int(out["transactions"]), "customers": int(out["customers"]),
            "first": pd.Timestamp(out["first"]), "last": pd.Timestamp(out["last"])}


def end_of_data(source):
    """The last purchase time (the default end of the data) as a naive UTC Timestamp (asked once per source)."""
    def build():
        tx = source.table("transactions")
        return pd.Timestamp(tx.aggregate(end=tx["occurred_at"].max()).to_pyarrow().to_pandas()["end"].iloc[0])
    return source.memo("end_of_data", build)


def touchpoints(source) -> pd.DataFrame:
    """Per customer: touchpoints (responses + purchases) and distinct channels, as journey.touchpoints.

    Purchases are counted once per customer in `customer_purchases` (shared with the customer table);
    responses here; the two per-customer tables are then added up, channel masks or-ed."""
    parts = []
    if source.has("responses"):
        r = source.table("responses")
        r = r.filter(r["customer_id"].notnull())
        parts.append(r.group_by("customer_id").aggregate(_n=r.count(), _channels=_channel_mask(r["channel"])))
    if source.has("transactions"):
        per = customer_purchases(source)
        parts.append(per.select("customer_id", per["purchases"].name("_n"), "_channels"))
    events = parts[0] if len(parts) == 1 else parts[0].union(parts[1], distinct=False)
    out = events.group_by("customer_id").aggregate(touchpoints=events["_n"].sum(), _channels=_bit_or(events["_channels"]))
    out = out.select("customer_id", "touchpoints", channels=_channel_count(out["_channels"]))
    out = out.order_by("customer_id").to_pyarrow().to_pandas()  # the engine sorts 2M ids faster than pandas
    return out.reset_index(drop=True).astype(
        {"customer_id": "str", "touchpoints": "int64", "channels": "int64"})


# periods a cohort matrix counts in, numbered as pandas numbers its Periods (0 = the first in 1970)
COHORT_ORDINALS = {"M": lambda at: (at.year() - 1970) * 12 + at.month() - 1,
                   "Q": lambda at: (at.year() - 1970) * 4 + at.quarter() - 1,
                   "Y": lambda at: at.year() - 1970}


def cohort_counts(source, freq: str = "M") -> pd.DataFrame:
    """Customers buying in each period, by first-purchase cohort: columns cohort and period (pandas
    Period ordinals of `freq`, 'M', 'Q' or 'Y'), since (periods after the cohort's) and customers.
    A customer counts once per period however often they bought in it."""
    if freq not in COHORT_ORDINALS:
        raise ValueError(f"cohorts are counted by M, Q or Y, not {freq!r}")
    tx = source.table("transactions")
    active = tx.select(_c=customer_key(source, tx), _p=COHORT_ORDINALS[freq](tx["occurred_at"]).cast("int64")).distinct()
    first = active.group_by("_c").aggregate(cohort=active["_p"].min())
    j = active.join(first, "_c")
    counts = j.group_by(["cohort", (j["_p"] - j["cohort"]).name("since")]).aggregate(customers=j.count())
    out = counts.order_by(["cohort", "since"]).to_pyarrow().to_pandas()
    return out.astype({"cohort": "int64", "since": "int64", "customers": "int64"})


# -- retention on the engine -------------------------------------------------------------------------

def customer_outcomes(source, anchor: str, horizon_days: int, end, score_window_days: int,
                      min_gap_hours: float = 0) -> pd.DataFrame:
    """The engine half of retention.customer_table: one row per anchor with its scores and purchase facts,
    purchases up to `end` (a naive UTC timestamp). A purchase counts as a next one only from
    `min_gap_hours` after the anchor (so a split checkout is not a return).

    Columns: customer_id, [response_id,] anchor_at, anchor_location_id, anchor_channel, nps, csat,
    ces, next_purchase_at, horizon_purchases, horizon_revenue, purchases, occasions (purchases at
    least `min_gap_hours` apart), revenue (naive UTC times),
    and the context: region and format of the anchor location, the customer's segment."""
    tx = _purchases(source, end)
    if anchor == "first_purchase":
        anchors = first_purchases(source, end)
        key = "customer_id"
    else:
        if not source.has("responses"):
            raise ValueError("customer_table with anchor='response' needs responses; the dataset has none")
        r = source.table("responses")
        known = tx.select("customer_id").distinct()
        r = r.filter(r["customer_id"].notnull() & (r["responded_at"] <= ibis.literal(end))
                     & r["customer_id"].isin(known["customer_id"]))
        anchors = source.cache(r.select("customer_id", "response_id", anchor_at=r["responded_at"],
                                        anchor_location_id=r["location_id"], anchor_channel=r["channel"], nps=r["nps"],
                                        csat=r["csat"], ces=r["ces"], _anchor_row=r[ROW]))
        key = "_anchor_row"
    facts = _join_outcomes(source, tx, anchors, key, horizon_days, min_gap_hours)
    if anchor == "first_purchase" and source.has("responses"):
        facts = _attach_first_scores(source, source.cache(facts), score_window_days, min_gap_hours)
    elif anchor == "first_purchase":  # a brand with purchases and no survey: no scores to attach
        facts = facts.mutate(nps=ibis.null("int8"), csat=ibis.null("int8"), ces=ibis.null("int8"))
    out = _with_context(source, facts).order_by(key)  # one row per key
    out = out.to_pyarrow().to_pandas().reset_index(drop=True)
    return out.drop(columns=[c for c in ("_anchor_row",) if c in out])


def _with_context(source, facts):
    """Region and format of the anchor location and the customer's segment, joined on the engine:
    cheaper there than merging 2M fetched rows in pandas. Keys are unique, so rows stay one per anchor."""
    loc = source.table("locations")
    loc = loc.select(_loc=loc["location_id"], region=loc["region"], format=loc["format"])
    out = facts.left_join(loc, facts["anchor_location_id"] == loc["_loc"]).drop("_loc")
    if not source.has("customers"):
        return out.mutate(segment=ibis.null("string"))
    customers = source.table("customers")
    customers = customers.select(_cust=customers["customer_id"], segment=customers["segment"])
    return out.left_join(customers, out["customer_id"] == customers["_cust"]).drop("_cust")


def _purchases(source, end=None):
    """Purchases up to `end` (all of them when that is the end of the data: no filter to run)."""
    tx = source.table("transactions")
    return tx if _is_all_data(source, end) else tx.filter(tx["occurred_at"] <= ibis.literal(end))


def _is_all_data(source, end) -> bool:
    """Whether purchases up to `end` are all the purchases (no end, or one at or after the last)."""
    return end is None or pd.Timestamp(end) >= end_of_data(source)


def _first_key(stamps, rows):
    """Whole seconds, then record number, as one sortable integer (as the in-memory index orders them)."""
    return _whole_seconds(stamps) * 1_000_000_000 + rows.cast("int64")


def _whole_seconds(stamps):
    """Seconds since the epoch, rounded down as the in-memory path does (DuckDB's epoch is a
    fraction, and its cast to an integer would round 10.7 s up to 11)."""
    return stamps.epoch_seconds().floor().cast("int64")


def _join_outcomes(source, tx, anchors, key, horizon_days, min_gap_hours=0):
    """Per anchor: the first purchase after it (at least `min_gap_hours` later), purchases and revenue
    from then to anchor + horizon, and the customer's totals. Only (key, customer, time) go through
    the big join, customers by their `customer_key`; the anchors' other columns are joined back to
    the small per-anchor result."""
    gap = int(round(min_gap_hours * 3600))
    p = tx.select(_c=customer_key(source, tx), _at=tx["occurred_at"], _rev=tx["revenue"])
    p = p.mutate(_new=_new_occasion(p, gap))
    anchors = anchors.mutate(_key=customer_key(source, anchors) if key == "customer_id" else anchors[key])
    slim = anchors.select("_key", _ac=customer_key(source, anchors),
                          _start=_whole_seconds(anchors["anchor_at"]))
    joined = slim.join(p, slim["_ac"] == p["_c"])  # every purchase of the anchor's customer, so the
    when = _whole_seconds(joined["_at"])  # customer's totals come out of the same pass
    after = when >= joined["_start"] + gap if gap > 0 else when > joined["_start"]
    within = after & (when <= joined["_start"] + horizon_days * 86400)
    facts = joined.group_by("_key").aggregate(
        next_purchase_at=joined["_at"].min(where=after),
        horizon_purchases=within.cast("int64").sum(),
        horizon_revenue=joined["_rev"].sum(where=within).fill_null(0.0),
        purchases=joined.count(), occasions=joined["_new"].sum(), revenue=joined["_rev"].sum())
    facts = facts.rename(_fkey="_key")  # (a join on a computed key, named apart so Ibis keeps both sides)
    return anchors.join(facts, anchors["_key"] == facts["_fkey"]).drop("_key", "_fkey")


def _new_occasion(p, gap_seconds: int):
    """1 where a purchase starts a new purchase occasion of its customer: the first, or one at least
    `gap_seconds` after the customer's previous purchase (purchases closer together, such as the
    orders of a split checkout, are one occasion); with no gap every purchase is its own occasion."""
    if gap_seconds <= 0:
        return ibis.literal(1, "int64")
    previous = p["_at"].lag().over(ibis.window(group_by=p["_c"], order_by=p["_at"]))
    new = previous.isnull() | (_whole_seconds(p["_at"]) - _whole_seconds(previous) >= gap_seconds)
    return new.cast("int64")


def _attach_first_scores(source, facts, window_days, min_gap_hours=0):
    """The score of the anchor purchase, per customer: a response that names a purchase of the anchor
    occasion (responses.transaction_id: a purchase of the customer from the anchor's second to
    `min_gap_hours` after it, so any order of a split checkout) when there is one; else the first
    response that names no purchase, in [anchor, anchor + window] and before the next purchase. A
    response about a later purchase is never taken for the anchor's."""
    r = source.table("responses")
    r = r.filter(r["customer_id"].notnull())
    tx = source.table("transactions")
    tx = tx.select(_tid=tx["transaction_id"], _tc=tx["customer_id"], _tat=tx["occurred_at"])
    r = r.left_join(tx, (r["transaction_id"] == tx["_tid"]) & (r["customer_id"] == tx["_tc"]))
    r = r.select(_c=r["customer_id"], _at=r["responded_at"], _row=r[ROW], _tx=r["transaction_id"], _tat=r["_tat"],
                 _nps=r["nps"], _csat=r["csat"], _ces=r["ces"])
    j = facts.join(r, facts["customer_id"] == r["_c"])
    offset = _whole_seconds(j["_tat"]) - _whole_seconds(j["anchor_at"])
    linked = (j["_tat"].notnull() & (offset >= 0) & (offset < max(int(round(min_gap_hours * 3600)), 1))).fill_null(False)
    in_window = ((j["_at"] >= j["anchor_at"]) & (j["_at"] <= j["anchor_at"] + ibis.interval(days=window_days))
                 & (j["next_purchase_at"].isnull() | (j["_at"] < j["next_purchase_at"])))
    j = j.filter(linked | (j["_tx"].isnull() & in_window))
    priority = ibis.ifelse(linked, 0, 1).cast("int64") * 4_000_000_000_000_000_000  # a linked response first
    best = _earliest(j, j["customer_id"].name("_c"), priority + _first_key(j["_at"], j["_row"]),
                     {"nps": j["_nps"], "csat": j["_csat"], "ces": j["_ces"]})
    return facts.left_join(best, facts["customer_id"] == best["_c"]).drop("_c")


# -- shared ------------------------------------------------------------------------------------------

def customer_key(source, t):
    """What to count, group and join customers by in `t`: a 64-bit hash of customer_id where that is
    exact, else customer_id. Every accepted customer_id of the responses and transactions is a key of
    the customers table (a reference check), so when no two of those keys share a hash, the hash
    tells customers apart exactly as the id does; and integers hash and compare faster than strings
    (at 2M customers and 50M purchases, 2-4 s less per pass on DuckDB). On other engines, without a
    customers table, or when two keys collide, the id itself is used. Only for rows whose customer_id
    is present: DuckDB hashes a null to a value."""
    return hash64(t["customer_id"]) if _customer_hash_is_exact(source) else t["customer_id"]


def _customer_hash_is_exact(source) -> bool:
    def build():  # (data in memory was not reference-checked here: its ids are used as they are)
        if source.engine != "duckdb" or not source.has("customers") or source.in_memory:
            return False
        c = source.table("customers")  # accepted: the ids are distinct and present
        return not repeats(hash64(c["customer_id"])).execute()
    return source.memo("customer_hash_is_exact", build)


def _earliest(t, group, key, fields: dict, **also):
    """Per `group`, the named `fields` of the row with the smallest `key` (one argmin of a struct,
    cheaper than one argmin per field), and any other aggregates `also` names."""
    per = t.group_by(group).aggregate(_first=_arg_min(ibis.struct(fields), key), **also)
    return per.select(group.get_name(), *also, **{name: per["_first"][name] for name in fields})


def _arg_min(value, key):
    """The value at the smallest key. On DuckDB its arg_min: Ibis writes argmin as FIRST(... ORDER
    BY key), which DuckDB runs on sort-key blobs, a fifth slower on 50M rows."""
    if not on_duckdb(key):
        return value.argmin(key)
    arg_min = ibis.udf.agg.builtin(lambda v, k: None, name="arg_min",
                                   signature=((value.type(), key.type()), value.type()))
    return arg_min(value, key)


def _first_purchase_fields(tx) -> dict:
    return {"anchor_at": tx["occurred_at"], "anchor_location_id": tx["location_id"], "anchor_channel": tx["channel"]}


def _channel_mask(channel):
    """The channels a group's rows used, as a bit mask (bit i: CHANNEL_LABELS[i]; null when no row
    has a channel). Masks or-ed across tables count a customer's distinct channels without grouping
    by (customer, channel); one bitwise or, rather than a flag per label, cost 0.4 s against 2 s over
    50M purchases on DuckDB."""
    bits = channel.cases(*[(label, 1 << i) for i, label in enumerate(CHANNEL_LABELS)], else_=ibis.null("int64"))
    return _bit_or(bits.cast("int64"))  # (room for 63 labels)


def _bit_or(masks):
    """The bitwise or of a group's channel masks: one aggregate on DuckDB; elsewhere, where Ibis
    cannot spell it (Spark), the sum of each bit's largest value."""
    if on_duckdb(masks):
        return masks.bit_or()
    return sum((masks & (1 << i)).max().fill_null(0) for i in range(len(CHANNEL_LABELS))).cast("int64")


def _channel_count(mask):
    """How many bits of a channel mask are set (0 for null)."""
    mask = mask.fill_null(0)
    return sum(((mask >> i) & 1).cast("int64") for i in range(len(CHANNEL_LABELS)))


def _count(condition):
    return condition.fill_null(False).cast("int64").sum().cast("float64")


def _with_period(t, period, time_column):
    """Add a `period` column (the start of the calendar period, naive UTC) when a period is asked for."""
    if period is None:
        return t
    if period not in ENGINE_PERIODS:
        raise ValueError(f"period {period!r} is not supported on an engine; use one of {', '.join(ENGINE_PERIODS)}")
    return t.mutate(period=t[time_column].truncate(period))


def _with_location_columns(source, t, by):
    wanted = [c for c in by if c not in t.columns and c != "period" and c in schema.LOCATIONS.names]
    missing = [c for c in by if c not in t.columns and c != "period" and c not in wanted]
    if missing or (wanted and not source.has("locations")):
        raise KeyError(f"summarize: no column(s) {missing or wanted} in responses"
                       + ("" if missing else ", and no locations table to take them from (pass a dataset)"))
    if not wanted:
        return t
    loc = source.table("locations").select("location_id", *wanted).rename(_loc="location_id")
    return t.left_join(loc, t["location_id"] == loc["_loc"]).drop("_loc")


def _typed_keys(source, out: pd.DataFrame, keys, period) -> pd.DataFrame:
    """Engine keys in the dtypes of the tables: categories, str ids (or a frame's own dtype for a
    Source over frames), pandas Periods."""
    for key in keys:
        if key == "period":
            stamps = pd.to_datetime(out[key])
            out[key] = pd.PeriodIndex(stamps.dt.to_period(period)) if len(out) else pd.PeriodIndex([], freq=period)
            continue
        try:
            out[key] = out[key].astype(source.key_dtype(key))
        except (TypeError, ValueError):  # (a frame's integer key with a missing group stays as counted)
            pass
    return out


def _ordered(out: pd.DataFrame, keys) -> pd.DataFrame:
    return out.sort_values(list(keys), na_position="last", kind="stable").reset_index(drop=True) if keys else out


def comment_batches(source, columns, text: str = "comment", rows_per_batch: int = 200_000):
    """The responses with a comment, one block of whole locations at a time (about `rows_per_batch`
    comments each, locations in sorted order, each location's comments in source order): DataFrames
    of `columns` plus `text`, so a brand's comments never have to be in memory at once (cx.text)."""
    t = source.table("responses")
    with_text = t.filter(t[text].notnull())
    per = with_text.group_by("location_id").aggregate(n=with_text.count()).to_pyarrow().to_pandas()
    per = per.assign(location_id=per["location_id"].astype(str)).sort_values("location_id", kind="stable")
    block, size = [], 0
    for location, n in zip(per["location_id"], per["n"]):
        block.append(location)
        size += int(n)
        if size >= rows_per_batch:
            yield _comment_block(source, with_text, columns, text, block)
            block, size = [], 0
    if block:
        yield _comment_block(source, with_text, columns, text, block)


def _comment_block(source, with_text, columns, text: str, locations: list[str]) -> pd.DataFrame:
    picked = with_text.filter(with_text["location_id"].isin(locations)).select(*columns, text, ROW)
    frame = picked.to_pyarrow().to_pandas()
    order = {location: i for i, location in enumerate(locations)}
    frame = frame.assign(_at=frame["location_id"].astype(str).map(order))
    frame = frame.sort_values(["_at", ROW], kind="stable").drop(columns=["_at", ROW]).reset_index(drop=True)
    typed = schema.conform(frame, "responses")  # (the engine's naive UTC times become aware again)
    return typed[list(columns)].assign(**{text: frame[text].astype(str)})


def comments_of(source, response_ids, text: str = "comment") -> list[str]:
    """The `text` of the responses `response_ids`, in that order (a few examples, fetched by id)."""
    wanted = [str(r) for r in response_ids]
    t = source.table("responses")
    found = t.filter(t["response_id"].isin(wanted)).select("response_id", text).to_pyarrow().to_pandas()
    by_id = dict(zip(found["response_id"].astype(str), found[text]))
    return [str(by_id.get(r, "")) for r in wanted]


def rating_sums(source, columns, by=("location_id",), period: str | None = None,
                time_column: str = "responded_at") -> pd.DataFrame:
    """Per group (and `period`): for each rating column in `columns` (attr_*), its count of answers,
    sum and sum of squares, as `<column>_n`, `<column>_sum`, `<column>_sumsq` (for means with
    intervals, and change scans over periods: cx.alerts)."""
    by = [by] if isinstance(by, str) else list(by)
    t = _with_period(source.table("responses"), period, time_column)
    keys = by + (["period"] if period is not None else [])
    aggs = {}
    for column in columns:
        value = t[column].cast("float64")
        aggs[f"{column}_n"] = _count(t[column].notnull())
        aggs[f"{column}_sum"] = value.sum().fill_null(0.0)
        aggs[f"{column}_sumsq"] = (value * value).sum().fill_null(0.0)
    out = t.group_by(keys).aggregate(**aggs).to_pyarrow().to_pandas()
    return _ordered(_typed_keys(source, out, keys, period), keys)
