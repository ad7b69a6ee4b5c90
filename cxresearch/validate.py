"""Validate one raw table against the schema: coerce each column, reject bad rows with a reason.

Input is a frame whose columns already carry canonical names (ingest renames them) and whose
values are as read (strings from CSV, typed values from Parquet). Output is the accepted rows in
canonical dtypes and one reject record per refused row, so accepted + rejected = read always holds.
Everything is vectorized: one pass per column, no loop over rows.

A row with several problems is rejected once, under its first problem in column order; the rules
after the column checks are, in order: no score at all, unknown reference, duplicate key.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import schema

TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class Problems:
    """The first problem found for each row: column, raw value and reason (NA where none yet)."""

    def __init__(self, index: pd.Index):
        self.column = pd.Series(pd.NA, index=index, dtype="str")
        self.value = pd.Series(pd.NA, index=index, dtype="str")
        self.reason = pd.Series(pd.NA, index=index, dtype="str")

    def flag(self, mask: pd.Series, column: str, reason: str, raw: pd.Series | None = None) -> None:
        """Record `reason` for rows in `mask` that have no problem yet."""
        new = mask.fillna(False).astype(bool) & self.reason.isna()
        if not new.any():
            return
        self.column[new] = column
        self.reason[new] = reason
        if raw is not None:
            self.value[new] = raw[new].astype("str")

    @property
    def bad(self) -> pd.Series:
        return self.reason.notna()


def _blank(values: pd.Series) -> pd.Series:
    """True where a value is missing or only white space."""
    if values.dtype == "str" or values.dtype == object:
        return values.isna() | (values.astype("str").str.strip() == "")
    return values.isna()


def _apply_value_map(values: pd.Series, value_map: dict | None) -> pd.Series:
    """Replace raw codes by canonical values (mapping `values:` section), matching on stripped text."""
    if not value_map:
        return values
    keys = {str(k).strip(): v for k, v in value_map.items()}
    text = values.astype("str").str.strip()
    mapped = text.map(keys)
    return mapped.where(mapped.notna(), values) if mapped.notna().any() else values


def coerce_id(values, col, problems):
    text = values.astype("str").str.strip()
    text = text.where(~_blank(values))
    if col.required:
        problems.flag(text.isna(), col.name, f"missing {col.name}", values)
    return text


def coerce_text(values, col, problems):
    text = values.astype("str")
    return text.where(~_blank(values))


def coerce_number(values, col, problems, whole: bool = False):
    blank = _blank(values)
    numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_numeric_dtype(values) \
        else values.astype("float64")
    numbers = pd.Series(numbers, index=values.index, dtype="float64")
    problems.flag(numbers.isna() & ~blank, col.name, f"{col.name} is not a number", values)
    problems.flag(np.isinf(numbers), col.name, f"{col.name} is not a finite number", values)
    if whole:
        problems.flag(numbers.notna() & (numbers != np.round(numbers)), col.name,
                      f"{col.name} is not a whole number", values)
    if col.low is not None and col.high is not None:
        outside = (numbers < col.low) | (numbers > col.high)
        problems.flag(outside, col.name, f"{col.name} outside {col.low:g}-{col.high:g}", values)
    elif col.low is not None:
        problems.flag(numbers < col.low, col.name, f"{col.name} below {col.low:g}", values)
    if col.required:
        problems.flag(blank, col.name, f"missing {col.name}", values)
    return numbers


def coerce_score(values, col, problems):
    numbers = coerce_number(values, col, problems, whole=True)
    valid = (numbers == np.round(numbers)) & (numbers >= col.low) & (numbers <= col.high)
    return numbers.where(valid).astype(col.dtype)


def coerce_timestamp(values, col, problems, timezone: str = "UTC", date_format: str | None = None):
    """Parse timestamps to UTC; naive values are read as local time in `timezone`."""
    blank = _blank(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values if values.dt.tz is not None else _localize(values, timezone)
        stamps = stamps.dt.tz_convert("UTC")
    else:
        stamps = _parse_text_timestamps(values.astype("str").str.strip(), timezone, date_format)
    problems.flag(stamps.isna() & ~blank, col.name, f"{col.name} is not a valid timestamp", values)
    if col.required:
        problems.flag(blank, col.name, f"missing {col.name}", values)
    return stamps.astype(col.dtype)


def _localize(naive: pd.Series, timezone: str) -> pd.Series:
    """Local wall-clock times to aware ones. In the repeated hour when clocks go back, a time is read
    as the first (daylight-saving) one; in the skipped hour when they go forward, it moves forward."""
    daylight_first = np.ones(len(naive), dtype=bool)
    return naive.dt.tz_localize(timezone, ambiguous=daylight_first, nonexistent="shift_forward")


def _parse_text_timestamps(text: pd.Series, timezone: str, date_format: str | None) -> pd.Series:
    """ISO 8601 first (fast, vectorized); anything else once more with a per-value parser. In UTC
    (the default) naive times and times with an offset are parsed as one batch; in another time
    zone the naive ones are told apart by their suffix, and value by value should pandas find an
    offset the suffix test missed ("+02", "z") among them. Digits past the microsecond are dropped."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    present = text.str.contains(r"\d", na=False)  # a time has digits: 'now' or 'today' (the clock) is none
    if timezone == "UTC":
        groups = [(present, True)]
    else:
        aware = present & text.str.contains(TZ_SUFFIX, na=False)
        groups = [(aware, True), (present & ~aware, False)]
    for mask, is_aware in groups:
        if not mask.any():
            continue
        part = text[mask]
        try:
            parsed = _parse_batch(part, date_format, is_aware)
        except (ValueError, TypeError):  # pandas refuses offsets mixed into naive times
            out[mask] = pd.concat([_parse_one(value, date_format, timezone) for value in part]).set_axis(part.index)
            continue
        out[mask] = parsed if is_aware else _localize(parsed, timezone).dt.tz_convert("UTC")
    return out


def _parse_batch(part: pd.Series, date_format: str | None, utc: bool) -> pd.Series:
    """Times in microseconds: UTC (`utc`) or naive; NaT where unreadable."""
    unit = "datetime64[us, UTC]" if utc else "datetime64[us]"
    parsed = pd.to_datetime(part, format=date_format or "ISO8601", errors="coerce", utc=utc).dt.floor("us").astype(unit)
    retry = parsed.isna()
    if retry.any() and date_format is None:
        again = pd.to_datetime(part[retry], format="mixed", errors="coerce", utc=utc).dt.floor("us").astype(unit)
        parsed = parsed.where(~retry, again)
    return parsed


def _parse_one(value: str, date_format: str | None, timezone: str) -> pd.Series:
    """One time (a one-row Series, in UTC): converted when it has an offset, local in `timezone`
    when it has none."""
    stamp = pd.to_datetime(pd.Series([value]), format=date_format or "ISO8601", errors="coerce")
    if stamp.isna().all() and date_format is None:
        stamp = pd.to_datetime(pd.Series([value]), format="mixed", errors="coerce")
    stamp = stamp.dt.floor("us")
    if stamp.dt.tz is None:
        stamp = _localize(stamp.astype("datetime64[us]"), timezone)
    return stamp.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def coerce_category(values, col, problems):
    """Match labels to the allowed categories, forgiving case, spaces and hyphens (In-Store -> in_store).

    Labels are normalized once per distinct value, not once per row."""
    blank = _blank(values)
    codes, uniques = pd.factorize(values.astype("str"), use_na_sentinel=True)
    labels = pd.Series(uniques, dtype="str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    norm = pd.Series(labels.to_numpy(dtype=object, na_value=None)[codes] if len(labels) else np.full(len(codes), None),
                     index=values.index, dtype="str").where(codes >= 0)
    known = norm.isin(col.categories)
    problems.flag(~known & ~blank, col.name,
                  f"{col.name} not one of {', '.join(col.categories)}", values)
    return pd.Series(pd.Categorical(norm.where(known), dtype=col.dtype), index=values.index)


def coerce_column(values: pd.Series, col: schema.Column, problems: Problems, options: dict) -> pd.Series:
    """Coerce one raw column to its canonical dtype, flagging bad values on `problems`."""
    values = _apply_value_map(values, options.get("values", {}).get(col.name))
    if col.kind == "id":
        return coerce_id(values, col, problems)
    if col.kind == "text":
        return coerce_text(values, col, problems)
    if col.kind == "float":
        return coerce_number(values, col, problems)
    if col.kind == "score":
        return coerce_score(values, col, problems)
    if col.kind == "timestamp":
        return coerce_timestamp(values, col, problems, options.get("timezone", "UTC"),
                                options.get("date_format"))
    if col.kind == "category":
        return coerce_category(values, col, problems)
    raise ValueError(f"unknown column kind {col.kind!r}")


def validate_table(raw: pd.DataFrame, table: str, source: str, known_keys: dict[str, pd.Series] | None = None,
                   options: dict | None = None, row_numbers: pd.Series | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `raw` into accepted rows (canonical dtypes) and rejects (table, source, row, column, value, reason).

    `known_keys` maps a referenced table name to its accepted keys (e.g. {"locations": ids}); a
    reference to a table not in it is not checked. `row_numbers` gives each row's 1-based record
    number in the source (defaults to 1..n). Column names must already be canonical; columns
    outside the schema are not carried (ingest reports them as ignored).
    """
    spec = schema.TABLES[table]
    options = options or {}
    raw = raw.reset_index(drop=True)
    problems = Problems(raw.index)
    coerced = {}
    for name in schema.table_columns(table, raw):
        if name in raw.columns:
            coerced[name] = coerce_column(raw[name], spec.column(name), problems, options)
    frame = pd.DataFrame(coerced, index=raw.index)
    _check_scores_present(frame, spec, problems)
    _check_references(frame, spec, problems, raw, known_keys or {})
    _check_duplicate_keys(frame, spec, problems, raw)
    rows = row_numbers.reset_index(drop=True) if row_numbers is not None else pd.Series(np.arange(1, len(raw) + 1))
    rejects = _reject_records(problems, table, source, rows)
    accepted = schema.conform(frame[~problems.bad.to_numpy()], table)
    return accepted, rejects


def _check_scores_present(frame, spec, problems):
    if not spec.score_columns:
        return
    present = [c for c in spec.score_columns if c in frame.columns]
    none = frame[present].isna().all(axis=1) if present else pd.Series(True, index=frame.index)
    problems.flag(none, ",".join(spec.score_columns), f"no score: needs at least one of {', '.join(spec.score_columns)}")


def is_in(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Membership test; on Arrow-backed strings pyarrow's hash lookup is about ten times faster than isin."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.is_in(pa.array(values.array), value_set=pa.array(keys.array)).fill_null(False)
        return found.to_numpy(zero_copy_only=False)
    except (TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return values.isin(keys).to_numpy()


def _check_references(frame, spec, problems, raw, known_keys):
    for col in spec.columns:
        if col.references in known_keys and col.name in frame.columns:
            values = frame[col.name]
            unknown = values.notna() & ~is_in(values, known_keys[col.references])
            problems.flag(unknown, col.name, f"unknown {col.name}", raw[col.name])


def _check_duplicate_keys(frame, spec, problems, raw):
    """Keep the first valid row of each key; later valid rows with the same key are rejected."""
    key = frame[spec.key]
    candidates = ~problems.bad & key.notna()
    dup = key[candidates].duplicated(keep="first")
    mask = pd.Series(False, index=frame.index)
    mask[dup.index[dup.to_numpy()]] = True
    problems.flag(mask, spec.key, f"duplicate {spec.key}", raw[spec.key])


def _reject_records(problems: Problems, table: str, source: str, rows: pd.Series) -> pd.DataFrame:
    bad = problems.bad.to_numpy()
    if not bad.any():
        return schema.empty_rejects()
    n = int(bad.sum())
    return pd.DataFrame({
        "table": pd.Series([table] * n, dtype="str"),
        "source": pd.Series([source] * n, dtype="str"),
        "row": rows[bad].to_numpy(dtype="int64"),
        "column": problems.column[bad].to_numpy(),
        "value": problems.value[bad].to_numpy(),
        "reason": problems.reason[bad].to_numpy(),
    }).astype({"column": "str", "value": "str", "reason": "str"})
