"""Raw exports as strings, and the dirt `generate_raw(messy=True)` adds, one defect per dirty row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch import schema


def _to_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """A canonical table as strings, the way `pd.read_csv(dtype=str)` sees an export (NaN = empty)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            text = np.datetime_as_string(col.dt.tz_localize(None).to_numpy().astype("datetime64[s]"), unit="s")
            values = pd.Series(np.char.add(text, "Z"), dtype="str").where(col.notna().to_numpy())
        elif pd.api.types.is_float_dtype(col.dtype):
            values = col.astype("str").where(col.notna())
        else:
            values = col.astype("object").where(col.notna())
        out[name] = values.reset_index(drop=True).astype("str")
    return pd.DataFrame(out)


# Defects per table: name -> what the injected row looks like. Every kind except missing_optional is
# an extra row that a validating ingest must reject; missing_optional blanks one optional cell of a
# clean row, which must still be accepted.
DEFECTS = {
    "locations": ("duplicate_exact", "duplicate_conflict"),
    "customers": ("duplicate_exact", "duplicate_conflict", "unknown_location_id", "bad_timestamp"),
    "responses": ("duplicate_exact", "duplicate_conflict", "nps_out_of_range", "csat_out_of_range",
                  "ces_out_of_range", "no_score", "unknown_location_id", "bad_timestamp", "missing_timestamp"),
    "transactions": ("duplicate_exact", "duplicate_conflict", "unknown_location_id", "bad_timestamp",
                     "missing_timestamp", "negative_revenue", "non_numeric_revenue"),
    "employee_experience": ("duplicate_exact",),
}
OPTIONAL_BLANKS = {
    "locations": ("name", "latitude"),
    "customers": ("segment", "home_location_id"),
    "responses": ("channel", "journey_stage", "customer_id", "comment"),
    "transactions": ("channel",),
    "employee_experience": ("respondents",),
}
TIMESTAMP_COLUMN = {"customers": "first_seen_on", "responses": "responded_at", "transactions": "occurred_at"}
LOCATION_COLUMN = {"customers": "home_location_id", "responses": "location_id", "transactions": "location_id"}
BAD_TIMESTAMPS = ("2024-02-30T10:00:00Z", "not recorded", "13/45/2024 25:61", "2024-13-01T00:00:00Z")
BAD_REVENUE = ("$45.10", "12,50", "twenty", "45.1.2")


def _make_messy(raw: dict[str, pd.DataFrame], rng: np.random.Generator, rate: float, n_locations: int,
                measure: str = "nps"):
    """Blank some optional cells, then add dirty rows (one defect each) at random places; duplicates
    come after the row they copy so the first, clean, copy is the one an ingest keeps (a conflicting
    duplicate response changes the answer of the brand's `measure`)."""
    out, counts = {}, {}
    for table in schema.TABLE_ORDER:
        frame = raw[table].copy()
        n = len(frame)
        per_kind = max(1, int(round(rate * n))) if n else 0
        blanked = _blank_optional(frame, table, rng, per_kind)
        extra, sources, kinds = [], [], {}
        next_id = [n]
        for kind in DEFECTS[table] if n else ():
            rows = rng.integers(0, n, per_kind)
            dirty = _inject(frame, table, kind, rows, rng, next_id, n_locations, measure)
            extra.append(dirty)
            sources.append(rows if kind.startswith("duplicate") else np.full(per_kind, -1))
            kinds[kind] = per_kind
        if extra:
            frame = _interleave(frame, pd.concat(extra, ignore_index=True), np.concatenate(sources), rng)
        out[table] = frame.astype("str")
        rejected = sum(kinds.values())
        counts[table] = {"rows": len(frame), "rejected": rejected, "accepted": len(frame) - rejected,
                         "defects": kinds, "missing_optional": blanked}
    return out, counts


def _blank_optional(frame: pd.DataFrame, table: str, rng: np.random.Generator, n: int) -> int:
    """Blank one optional cell in each of `n` distinct clean rows (cells that were not already blank)."""
    if not len(frame):
        return 0
    columns = OPTIONAL_BLANKS[table]
    rows = rng.choice(len(frame), size=min(n, len(frame)), replace=False)
    which = rng.integers(0, len(columns), len(rows))
    done = 0
    for j, col in enumerate(columns):
        target = rows[which == j]
        target = target[frame[col].iloc[target].notna().to_numpy()]
        frame.loc[target, col] = np.nan
        done += len(target)
    return done


def _inject(frame, table, kind, rows, rng, next_id, n_locations, measure="nps") -> pd.DataFrame:
    """Copies of `rows` changed to carry exactly the defect `kind`."""
    dirty = frame.iloc[rows].reset_index(drop=True).copy()
    key = schema.TABLES[table].key
    if not kind.startswith("duplicate"):  # a fresh id, so the only problem is the defect itself
        prefix = frame[key].iloc[0][0]
        width = len(frame[key].iloc[0]) - 1
        fresh = np.arange(next_id[0] + 1, next_id[0] + 1 + len(rows))
        next_id[0] += len(rows)
        dirty[key] = prefix + pd.Series(fresh).astype("str").str.zfill(width)
    m = len(dirty)
    if kind == "duplicate_conflict":
        _conflict(dirty, table, rng, measure)
    elif kind.endswith("_out_of_range"):
        score = kind.split("_")[0]
        dirty[score] = {"nps": "11", "csat": "0", "ces": "9"}[score]
    elif kind == "no_score":
        dirty[["nps", "csat", "ces"]] = np.nan
    elif kind == "unknown_location_id":
        width = len(frame[LOCATION_COLUMN[table]].dropna().iloc[0]) - 1
        unknown = n_locations + 1 + rng.integers(0, 50, m)
        dirty[LOCATION_COLUMN[table]] = "L" + pd.Series(unknown).astype("str").str.zfill(width)
    elif kind == "bad_timestamp":
        dirty[TIMESTAMP_COLUMN[table]] = np.array(BAD_TIMESTAMPS)[rng.integers(0, len(BAD_TIMESTAMPS), m)]
    elif kind == "missing_timestamp":
        dirty[TIMESTAMP_COLUMN[table]] = np.nan
    elif kind == "negative_revenue":
        dirty["revenue"] = "-" + dirty["revenue"].where(dirty["revenue"] != "0.0", "1.0")
    elif kind == "non_numeric_revenue":
        dirty["revenue"] = np.array(BAD_REVENUE)[rng.integers(0, len(BAD_REVENUE), m)]
    return dirty


def _conflict(dirty: pd.DataFrame, table: str, rng: np.random.Generator, measure: str = "nps") -> None:
    """Same key, one different (still valid) value (for a response, the answer of the brand's measure)."""
    if table == "locations":
        dirty["name"] = dirty["name"].fillna("Unnamed") + " (old)"
    elif table == "customers":
        dirty["segment"] = np.where(dirty["segment"] == "value", "premium", "value")
    elif table == "responses":
        low, high = schema.SCALES[measure]
        k = high - low + 1
        old = pd.to_numeric(dirty[measure]).fillna(low - 1).to_numpy() - low
        new = (old + 1 + rng.integers(0, k - 1, len(dirty))) % k + low  # never the old answer
        dirty[measure] = pd.Series(new.astype(np.int64)).astype("str")
    elif table == "transactions":
        dirty["revenue"] = pd.Series(np.round(pd.to_numeric(dirty["revenue"]).to_numpy() * 1.5 + 1, 2)).astype("str")
    else:
        dirty["ex_score"] = pd.Series(np.round(pd.to_numeric(dirty["ex_score"]).to_numpy() + 5, 1)).astype("str")


def _interleave(clean: pd.DataFrame, dirty: pd.DataFrame, source: np.ndarray, rng) -> pd.DataFrame:
    """Dirty rows at random positions; a duplicate strictly after the row it copies."""
    n = len(clean)
    low = np.where(source >= 0, source + 0.5, -0.5)
    position = low + rng.random(len(dirty)) * (n - low)
    keys = np.concatenate([np.arange(n, dtype="float64"), position])
    order = np.argsort(keys, kind="stable")
    return pd.concat([clean, dirty], ignore_index=True).iloc[order].reset_index(drop=True)
