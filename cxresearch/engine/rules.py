"""The ingest rules, written once as Ibis expressions so that every engine runs the same checks.

From the raw engine table (canonical column names, raw values, `_row`, the record number):

- `check_rows`: every row parsed once, its coerced canonical columns and the index of its first
  problem, in the same order as the pandas validator (columns in canonical order and, within a
  column, its checks in order; then "no score", unknown references, duplicate keys). The engine
  stores this table in its own columnar format; nothing is collected into memory.
- For a typed source on DuckDB (a Parquet file, a table of a DuckDB file): `typed_rows` reads the
  rows in place, `exceptions` keeps only the checked rows with a problem or a cleaned value, and
  `valid_rows` swaps those in.
- `has_repeated_keys`, `duplicate_rows`: the later valid rows of a repeated key.
- `accepted_rows`: the valid rows that are not duplicates, canonical columns only.
- `reject_records`: the rejects layout (table, source, row, column, value, reason), with raw values
  read back for the rejected rows only.

This is the only rule set: data in memory goes through it on an embedded DuckDB. Timestamps in
text are ISO 8601 (an offset is honoured; without one they are local time in the mapping's
`timezone`, UTC by default), or follow the mapping's `date_format` (a strftime pattern). Any other
form is a reject whose reason names `date_format`: a guessed month-first or day-first reading would
be a wrong number nobody sees. Local times are converted to UTC the same way on every engine (see
`local_to_utc`). White space is what Python strips (`WHITESPACE`, Unicode's included) on every
engine, and numbers in text are read as pandas' `to_numeric` reads them.
"""

from __future__ import annotations

import sys

import ibis
import ibis.expr.datatypes as dt

from cxresearch import schema
from cxresearch.io.files import NA_TOKENS
from cxresearch.schema import ROW

__all__ = ["Checked", "accepted_rows", "as_stored", "check_category", "check_id", "check_number", "check_rows",
           "check_score", "check_text", "check_timestamp", "duplicate_rows", "exceptions", "has_repeated_keys",
           "hash64", "java_pattern", "local_to_utc", "naive_utc", "on_duckdb", "parse_category", "parse_number",
           "parse_text", "parse_timestamp", "reject_records", "repeats", "storable", "typed_rows", "valid_rows"]

ENGINE_TYPES = {"id": dt.string, "text": dt.string, "timestamp": dt.Timestamp(), "float": dt.float64,
                "score": dt.int8, "category": dt.string}
# The white space the in-memory validator strips (Python's: ASCII's six, the separators \x1c-\x1f and
# Unicode's spaces, such as the no-break space spreadsheets pad cells with). An engine's own trim
# removes only the six ASCII ones, which made an id padded with U+00A0 an unknown reference there.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # (none lies beyond U+3000)
# Regular expressions name characters by code (\x{..}, read by DuckDB's and Spark's dialects alike):
# written literally, SQL text for Spark would carry \v and \f, which its parser reads as v and f.
_CLASS = "".join(f"\\x{{{ord(c):X}}}" for c in WHITESPACE)
_ASCII_CLASS = "".join(f"\\x{{{ord(c):X}}}" for c in WHITESPACE if c in " \t\n\r\x0b\x0c")
_EDGE_WHITESPACE = f"^[{_CLASS}]+|[{_CLASS}]+$"
_EDGE_ASCII_WHITESPACE = f"^[{_ASCII_CLASS}]+|[{_ASCII_CLASS}]+$"  # what pandas drops around a number
_FIRST_WIDE = min(c for c in WHITESPACE if not c.isascii())  # U+0085: wider white space sorts at or above it


class Checked:
    """A table's checked rows: `_row`, the coerced canonical columns and `_code` (index of the first
    problem, null when none); plus what each code means, to label the rejects."""

    def __init__(self, expr, labels: list[tuple[str, str, str | None]], key: str):
        self.expr, self.labels, self.key = expr, labels, key  # labels: (column, reason, column whose raw value to show)


def check_rows(raw, table: str, accepted: dict, options: dict, csv: bool, engine: str,
               flag_cleaned: bool = False) -> Checked:
    """Parse and check every row once: coerced values and the first problem of each row.

    `accepted` maps already-checked tables to their accepted rows, for the reference checks. Built in
    small stages (parse, reference joins, checks) so that no expression repeats a parse, which also
    keeps the plans small enough for Spark's code generator. With `flag_cleaned`, a `_cleaned` column
    says whether checking changed any value of the row from what `typed_rows` reads (see there), and
    `_suspect` whether the row may have a problem or a cleaned value (see `_suspect`)."""
    spec, names, columns = _layout(raw, table)
    t = _parsed(raw, columns, options, csv, engine)
    t, found_refs = _join_references(t, spec, columns, accepted)
    coerced, problems, column_problems = {}, [], {}
    for name, col in columns.items():
        coerced[name], found = (check_timestamp(t, col, options) if col.kind == "timestamp" else CHECK[col.kind](t, col))
        column_problems[name] = [condition for condition, _reason in found]
        problems += [(condition, name, reason, name) for condition, reason in found]
    across = _score_problems(coerced, spec, columns)
    across += [(~found & t[f"_p_{name}"].notnull(), name, f"unknown {name}", name) for name, found in found_refs.items()]
    problems += across
    code = ibis.cases(*[(condition.fill_null(False), i) for i, (condition, *_ignored) in enumerate(problems)],
                      else_=ibis.null("int16")) if problems else ibis.null("int16")
    typed = {n: (coerced[n] if n in coerced else ibis.null(ENGINE_TYPES[spec.column(n).kind])).name(n) for n in names}
    extra = {}
    if flag_cleaned:
        cleaned, suspect = ibis.literal(False), _any(condition for condition, *_ignored in across)
        for name, col in columns.items():
            changed = _changed(t, name, col, coerced[name], engine) if _may_be_cleaned(t[f"_v_{name}"].type(), col) else None
            cleaned = cleaned if changed is None else cleaned | changed
            suspect = suspect | _suspect(t, name, col, column_problems[name], changed)
        extra.update(_cleaned=cleaned, _suspect=suspect)
    return Checked(t.select(t[ROW], **typed, _code=code, **extra), [(p[1], p[2], p[3]) for p in problems], spec.key)


def _suspect(t, name: str, col, problems: list, changed):
    """A cheap test that holds wherever column `name` has a problem or a cleaned value (and on a
    few rows more): `exceptions` asks it first, so the first-problem code is worked out only for
    those rows (1.4-2.2 s less for 50M clean rows on DuckDB). Text ids and texts: an edge character
    (an empty value has one), or null where the column is required (an optional null is neither a
    problem nor a change); labels: present but not canonical; typed timestamps: null; anything
    else: its own problems and change."""
    values = t[f"_v_{name}"]
    if col.kind in ("id", "text") and f"_e_{name}" in t.columns:  # (the edge test is null for null)
        return t[f"_e_{name}"].fill_null(col.required)
    if f"_c_{name}" in t.columns:
        return values.notnull() & ~t[f"_c_{name}"]
    if col.kind == "timestamp" and values.type().is_timestamp():
        return t[f"_t_{name}"].isnull()
    return _any(problems + ([changed] if changed is not None else []))


def _any(conditions):
    """Whether any of the conditions holds (null counts as no)."""
    test = ibis.literal(False)
    for condition in conditions:
        test = test | condition.fill_null(False)
    return test


def storable(raw, table: str, options: dict) -> bool:
    """Whether a typed source's rows can be read in place by `typed_rows`: every present column has a
    type its canonical type is a plain cast of (text for ids and labels, numbers, timestamps), and the
    mapping rewrites no values."""
    if options.get("values") or options.get("date_format") or options.get("timezone", "UTC") != "UTC":
        return False  # (a recoded label or a local time is a cleaned value in every row)
    _spec, _names, columns = _layout(raw, table)
    for name, col in columns.items():
        kind = raw[name].type()
        text = col.kind in ("id", "text", "category") and kind.is_string()
        number = col.kind in ("float", "score") and kind.is_numeric()
        stamp = col.kind == "timestamp" and kind.is_timestamp()
        if not (text or number or stamp):
            return False
    return True


def typed_rows(raw, table: str, engine: str):
    """A typed source's rows as accepted rows hold them when checking changed nothing: each canonical
    column cast to its engine type, read in place. Rows that checking did change (or rejected) are
    the exceptions `check_rows(..., flag_cleaned=True)` finds; `valid_rows` puts the two together."""
    spec, names, columns = _layout(raw, table)
    return raw.select(raw[ROW], **{n: (as_stored(raw[n], columns[n], engine) if n in columns
                                       else ibis.null(ENGINE_TYPES[spec.column(n).kind])).name(n) for n in names})


def as_stored(values, col, engine: str):
    """A typed value in the engine type of its canonical column, with nothing cleaned."""
    if col.kind in ("id", "text", "category"):
        return values.cast("string")
    if col.kind == "timestamp":
        return naive_utc(values, engine)
    return values.try_cast(ENGINE_TYPES[col.kind])


def _may_be_cleaned(source, col) -> bool:
    """Whether checking can change a value of this type without rejecting the row: typed timestamps
    and integer numbers pass unchanged (an integer score out of range is a problem, not a cleaning)."""
    if col.kind == "timestamp":
        return source.is_string()
    if col.kind in ("float", "score"):
        return not source.is_integer()
    return True


def _changed(t, name: str, col, coerced, engine: str):
    """Whether checking changed a typed value from what `typed_rows` reads. For text it is said
    from the parse flags, cheaper than comparing the coerced and the stored value."""
    values = t[f"_v_{name}"]
    if values.type().is_string() and col.kind == "category":  # normalised, blanked or rejected
        return values.notnull() & ~t[f"_c_{name}"]
    if values.type().is_string() and col.kind in ("id", "text"):
        # ids are stripped (only values the edge test flags can change, an empty one among them; the
        # test also flags ids that begin or end with é or 中, which the strip leaves) and blank ids
        # and texts become null
        return t[f"_d_{name}"] if col.kind == "id" else (t[f"_s_{name}"] == "").fill_null(False)
    return ~coerced.identical_to(as_stored(values, col, engine))


def exceptions(checked):
    """The checked rows worth storing when the rest are read in place: those with a problem or a
    cleaned value, among the suspect ones (a cheaper test first)."""
    suspect = checked.filter(checked["_suspect"])
    return suspect.filter(suspect["_code"].notnull() | suspect["_cleaned"]).drop("_cleaned", "_suspect")


def valid_rows(stored, in_place=None, exceptions_found: bool = True):
    """Rows without a problem, duplicates not yet removed: the stored checked rows, or rows read in
    place (`typed_rows`) with the stored exceptions swapped in for the rows they cover."""
    good = stored.filter(stored["_code"].isnull()).drop("_code")
    if in_place is None:
        return good
    if not exceptions_found:
        return in_place
    good = good.cast(in_place.schema())  # the engine may report a stored type more precisely (timestamp(6))
    return in_place.anti_join(stored, in_place[ROW] == stored[ROW]).union(good, distinct=False)


def duplicate_rows(valid, key: str):
    """Valid rows whose key an earlier valid row already has (by record number): the pandas validator
    keeps the first valid row of each key and rejects the later ones. Repeated keys are found first
    with a bare count, so the record numbers are only compared among the (few) repeated rows."""
    keyed = valid.filter(valid[key].notnull()).select(ROW, _dupkey=valid[key])
    repeated = keyed.group_by("_dupkey").aggregate(_copies=keyed.count()).filter(lambda f: f["_copies"] > 1)
    copies = keyed.semi_join(repeated, "_dupkey")
    copies = copies.mutate(_first=copies[ROW].min().over(ibis.window(group_by="_dupkey")))
    return copies.filter(copies[ROW] != copies["_first"]).select(row=copies[ROW].cast("int64"))


def has_repeated_keys(valid, key: str):
    """A scalar expression: whether any key may repeat among the valid rows. Far cheaper than
    `duplicate_rows`, and clean exports have no repeats. On DuckDB it asks whether 64-bit hashes
    of the keys repeat: keys whose hashes all differ all differ, and a shared hash only sends the
    table to `duplicate_rows`, which compares the keys themselves."""
    keys = valid.filter(valid[key].notnull())[key]  # (DuckDB hashes a null to a value)
    return repeats(hash64(keys) if on_duckdb(keys) else keys)


def repeats(values):
    """A scalar expression: whether any value of a column occurs twice. On DuckDB the values are
    sorted and each compared with the one before: for 50M hashes that took 4.2-4.8 s against 6.7 s
    for a distinct count. Elsewhere a distinct count, as a window over a whole table would run in
    one Spark task. Nulls never repeat; but DuckDB hashes a null to a value, so filter nulls
    before hashing."""
    if not on_duckdb(values):
        return values.nunique() < values.count()
    t = values.name("_v").as_table()
    t = t.mutate(_before=t["_v"].lag().over(ibis.window(order_by="_v")))
    return t.filter(t["_v"] == t["_before"]).count() > 0


@ibis.udf.scalar.builtin(name="hash")
def hash64(value: str) -> dt.uint64:
    """DuckDB: a 64-bit hash of a value (Ibis' own hash() adds a cast through BIT to make it signed)."""


def accepted_rows(valid, duplicates=None):
    """Valid rows without the later copies of a repeated key: `_row` and the canonical columns."""
    return valid.anti_join(duplicates, valid[ROW] == duplicates["row"]) if duplicates is not None else valid


def reject_records(checked, duplicates, labels, key: str, raw, table: str, source: str, options: dict, csv: bool,
                   engine: str):
    """The rejects (table, source, row, column, value, reason) of a stored checked table and its
    duplicate rows. Raw values are read back from the source for the rejected rows only."""
    problems = checked.filter(checked["_code"].notnull())
    bad = problems.select(ROW, _code=problems["_code"].cast("int32"), _duplicate=ibis.literal(False))
    if duplicates is not None:  # (engines store the code's small integer type differently: cast both sides)
        dup = duplicates.select(**{ROW: duplicates["row"]}, _code=ibis.null("int32"), _duplicate=ibis.literal(True))
        bad = bad.union(dup)
    bad = bad.view()
    spec, names, columns = _layout(raw, table)
    wanted = raw.semi_join(bad, raw[ROW] == bad[ROW])
    t = _parsed(wanted, columns, options, csv, engine).view()
    t = t.join(bad, t[ROW] == bad[ROW])

    def raw_text(column):
        return t[f"_v_{column}"].cast("string")
    value = t["_code"].cases(*[(i, raw_text(c) if c is not None else ibis.null("string")) for i, (_n, _r, c)
                               in enumerate(labels)], else_=ibis.null("string")) if labels else ibis.null("string")
    return t.select(
        table=ibis.literal(table, "string"), source=ibis.literal(source, "string"), row=t[ROW].cast("int64"),
        column=t["_duplicate"].ifelse(ibis.literal(key), _lookup(t["_code"], [n for n, _r, _c in labels])),
        value=t["_duplicate"].ifelse(t[f"_v_{key}"].cast("string"), value),
        reason=t["_duplicate"].ifelse(ibis.literal(f"duplicate {key}"), _lookup(t["_code"], [r for _n, r, _c in labels])))


def _layout(raw, table):
    """The table spec, its canonical column names (with attr_* present) and the present columns' specs."""
    spec = schema.TABLES[table]
    names = schema.table_columns(table, raw)
    return spec, names, {n: spec.column(n) for n in names if n in raw.columns}


def _parsed(raw, columns: dict, options: dict, csv: bool, engine: str):
    """Stage 1: each present column cleaned (CSV missing tokens, value maps) and, when text, stripped
    once, and whether a label is already canonical (`_c_`); stage 2: parsed from those (so no
    expression strips, parses or looks up a column twice)."""
    value_maps = options.get("values", {}) or {}
    first = {}
    for name, col in columns.items():
        values = _value_map(_missing_tokens(raw[name]) if csv else raw[name], value_maps.get(name))
        first[f"_v_{name}"] = values  # as read; turned into text only for rejected rows
        if _is_text(values) and col.kind != "category":  # labels strip only when not already canonical
            first[f"_e_{name}"] = _edge_space(values)
        if col.kind == "category":  # (looked up once: a list lookup per use cost 0.7 s over 50M rows)
            first[f"_c_{name}"] = _one_of(values.cast("string"), col.categories)
    t = raw.select(raw[ROW], **first)
    t = t.mutate(**{f"_s_{name}": _stripped_where(t[f"_e_{name}"], t[f"_v_{name}"])
                    for name in columns if f"_e_{name}" in t.columns})
    parsed = {}
    for col in columns.values():
        parsed.update(parse_timestamp(t, col, engine, options) if col.kind == "timestamp"
                      else PARSE[col.kind](t, col, engine))
    return t.mutate(**parsed)


def _join_references(t, spec, columns, accepted):
    """Whether each reference column's value is an accepted key of its table. On DuckDB an `IN`
    subquery (a mark join: a quarter faster than a left join on 50M rows, which must carry the key
    along); elsewhere a left join, as Spark allows subqueries only in filters. Returns the table and,
    per column, whether its value was found."""
    found, mark = [], on_duckdb(t[ROW])
    for col in spec.columns:
        if col.references in accepted and col.name in columns:
            ref = accepted[col.references]
            keys = ref.select(**{f"_k_{col.name}": ref[schema.TABLES[col.references].key]})
            value = _id_value(t, col.name)
            if mark:
                t = t.mutate(**{f"_p_{col.name}": value, f"_k_{col.name}": value.isin(keys[f"_k_{col.name}"])})
            else:
                t = t.mutate(value.name(f"_p_{col.name}"))
                keys = keys.distinct()
                t = t.left_join(keys, t[f"_p_{col.name}"] == keys[f"_k_{col.name}"])
            found.append(col.name)
    if mark:
        return t, {name: t[f"_k_{name}"].fill_null(False) for name in found}
    return t, {name: t[f"_k_{name}"].notnull() for name in found}


def _lookup(code, labels):
    if not labels:
        return ibis.null("string")
    return code.cases(*[(i, ibis.literal(label)) for i, label in enumerate(labels)], else_=ibis.null("string"))


def _score_problems(coerced, spec, present):
    if not spec.score_columns:
        return []
    none = ibis.literal(True)
    for score in [coerced[c] for c in spec.score_columns if c in present]:
        none = none & score.isnull()
    return [(none, ",".join(spec.score_columns), f"no score: needs at least one of {', '.join(spec.score_columns)}",
             None)]


# -- one column: parse it once (stage 1), then coerce and check from the parsed parts (stage 2) -----

def _is_text(values) -> bool:
    return values.type().is_string()


def _missing_tokens(values):
    return _one_of(values, NA_TOKENS).ifelse(ibis.null("string"), values) if _is_text(values) else values


def _one_of(values, labels):
    """Whether each value is one of a few fixed labels (false for null). On DuckDB a list-contains
    test: it turns `IN (...)` into a join, which on 50M rows cost two seconds in the check pass;
    elsewhere `IN`, which every SQL engine has (arrays are not everywhere)."""
    if on_duckdb(values):
        return ibis.literal(list(labels), type="array<string>").contains(values).fill_null(False)
    return values.isin(list(labels)).fill_null(False)


def _value_map(values, value_map):
    if not value_map:
        return values
    text = _strip(values.cast("string"))
    return text.substitute({str(k).strip(): str(v) for k, v in value_map.items()}, else_=values.cast("string"))


def _strip(values):
    """Strip surrounding white space (`WHITESPACE`, as Python strips), but only touch values that
    have any: the strip costs far more than this test, and clean ids have none. The test (a first or
    last character at or below the space, or at or above U+0085) lets through more than white
    space; the strip then leaves those as they are."""
    return _stripped_where(_edge_space(values), values)


def _stripped_where(edge, values, edges=_EDGE_WHITESPACE):
    """`values` stripped (of `WHITESPACE`, or what `edges` matches) where `edge` (the edge test)
    fires, left as they are elsewhere."""
    return edge.ifelse(values.re_replace(edges, ""), values)


def _edge_space(values):
    """Whether the first or last character may be white space: at or below the space, or at or
    above U+0085 (the first non-ASCII white space). On DuckDB the first is compared as text (bytes
    compare, and a character's bytes sort as the character does), a third of the cost of reading its
    code; the last character's code is tested outside 33-132 in one comparison, as DuckDB would
    extract it once per comparison. Elsewhere character codes, as a collation may not sort by bytes."""
    low, high = ord("!"), ord(_FIRST_WIDE) - 1  # codes that are surely not white space
    if on_duckdb(values):
        last = _char_at(values, -1).ascii_str()  # (outside low-high: more than halfway from their middle)
        return (values < "!") | (values >= _FIRST_WIDE) | ((last * 2 - (low + high)).abs() > high - low)
    first, last = values.ascii_str(), values.substr(-1, 1).ascii_str()
    return (first < low) | (first > high) | (last < low) | (last > high)


@ibis.udf.scalar.builtin(name="array_extract")
def _char_at(value: str, index: int) -> str:
    """DuckDB: the character at `index` (negative counts from the end)."""


def on_duckdb(expr) -> bool:
    """Whether an expression runs on DuckDB (where a few faster spellings apply)."""
    return ibis.get_backend(expr).name == "duckdb"


def _blank(values, stripped):
    if stripped is not None:
        return stripped.isnull() | (stripped == "")
    if values.type().is_floating():
        return values.isnull() | values.isnan()
    return values.isnull()


def _id_value(t, name):
    return t[f"_b_{name}"].ifelse(ibis.null("string"), t[f"_s_{name}"])


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us(stamp: dt.Timestamp(timezone="UTC")) -> dt.int64:
    """DuckDB: microseconds since the epoch of a timestamp with time zone."""


@ibis.udf.scalar.builtin(name="make_timestamp")
def _make_timestamp(micros: dt.int64) -> dt.Timestamp():
    """DuckDB: the naive timestamp that many microseconds after the epoch."""


def naive_utc(stamps, engine: str):
    """Timestamps (with a time zone or without, or dates) as naive UTC. On DuckDB a time-zone-aware
    value goes through its epoch microseconds: eighteen times faster than the calendar-aware cast."""
    kind = stamps.type()
    if kind.is_timestamp() and kind.timezone is not None:
        return _make_timestamp(_epoch_us(stamps)) if engine == "duckdb" else stamps.cast(dt.Timestamp())
    return stamps.cast(dt.Timestamp()) if kind.is_date() else stamps


def _values_and_stripped(t, col):
    """A column as read (`_v_`) and, for text that may be stripped, stripped (`_s_`; else None)."""
    stripped = f"_s_{col.name}"
    return t[f"_v_{col.name}"], (t[stripped] if stripped in t.columns else None)


def parse_text(t, col, engine):
    """Blank or not; for an id in text, whether the strip changed it (`_d_`; said here, so that a
    flag rather than the raw text goes on through the reference joins)."""
    values, stripped = _values_and_stripped(t, col)
    parsed = {f"_b_{col.name}": _blank(values, stripped)}
    if stripped is None and col.kind == "id":  # a typed id (numbers): its text
        parsed[f"_s_{col.name}"] = values.cast("string")
    elif col.kind == "id":  # (a case: only the few flagged by the edge test are compared)
        parsed[f"_d_{col.name}"] = t[f"_e_{col.name}"].fill_null(False).ifelse(
            (stripped != values) | (stripped == ""), False)
    return parsed


def parse_number(t, col, engine):
    """Numbers in text are read as pandas' to_numeric reads them: ASCII white space around them is
    dropped (an engine's own strip), wider white space makes them no number; blank is blank after
    any white space."""
    values, stripped = _values_and_stripped(t, col)
    blank = _blank(values, stripped)
    if stripped is not None:  # (text reading NaN is no number, as in pandas; typed NaN is blank)
        numbers = _cast_text(_stripped_where(t[f"_e_{col.name}"], values, _EDGE_ASCII_WHITESPACE), dt.float64)
        numbers = numbers.isnan().ifelse(ibis.null("float64"), numbers)
    else:
        numbers = values.cast("float64")
    return {f"_b_{col.name}": blank, f"_n_{col.name}": blank.ifelse(ibis.null("float64"), numbers)}


def _cast_text(text, to):
    """Stripped text cast to a number or time, null where pandas reads none. DuckDB's cast also
    reads digits grouped by underscores (1_000) and 'epoch' as a time; Spark's drops control
    characters around the text and reads Java's number suffixes (1d, 2f). pandas refuses these."""
    cast = text.try_cast(to)
    if to.is_timestamp():  # RFC 3339 allows a lower-case t and z, which the casts refuse
        cast = ibis.coalesce(cast, text.upper().try_cast(to))
    # a time begins with its year: words some casts read as times ('epoch', 'now') are none
    refused = ibis.literal(False) if to.is_numeric() else ~text.re_search("^[0-9]")
    if on_duckdb(text):
        if to.is_numeric():
            refused = refused | text.contains("_")
    else:
        refused = refused | (text.ascii_str() <= 32) | (text.substr(-1, 1).ascii_str() <= 32)
        if to.is_numeric():  # (and Java's hexadecimal numbers, 0x1p3)
            refused = refused | text.re_search("[0-9.][dDfF]$") | text.re_search("[xX]")
    return refused.ifelse(ibis.null(to), cast)


def parse_timestamp(t, col, engine, options):
    """Text or typed timestamps to naive UTC. Text is ISO 8601 (an offset is honoured) or, with the
    mapping's `date_format`, that strftime pattern; a time without an offset, text or typed, is
    local time in the mapping's `timezone` (UTC by default)."""
    values, stripped = _values_and_stripped(t, col)
    zone, pattern = options.get("timezone") or "UTC", options.get("date_format")
    if stripped is not None and pattern:
        parsed = _strptime(stripped, pattern, engine)
        stamps = naive_utc(parsed, engine) if "%z" in pattern else local_to_utc(parsed, zone, engine)
    elif stripped is not None and zone == "UTC":
        stamps = naive_utc(_cast_text(stripped, dt.Timestamp(timezone="UTC")), engine)
    elif stripped is not None:  # an offset wins; without one, the time is local
        offset = stripped.re_search(_ISO_OFFSET)
        stamps = offset.ifelse(naive_utc(_cast_text(stripped, dt.Timestamp(timezone="UTC")), engine),
                               local_to_utc(_cast_text(stripped, dt.Timestamp()), zone, engine))
    elif values.type().is_timestamp() and values.type().timezone is None and zone != "UTC":
        stamps = local_to_utc(values, zone, engine)
    else:
        stamps = naive_utc(values, engine)
    blank = _blank(values, stripped)
    return {f"_b_{col.name}": blank, f"_t_{col.name}": blank.ifelse(ibis.null(dt.Timestamp()), stamps)}


# an offset after a time of day: Z, or +hh, +hhmm, +hh:mm (a date alone, 2024-01-05, has none)
_ISO_OFFSET = "[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? ?([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"


def local_to_utc(local, zone: str, engine: str):
    """Naive local wall-clock times in `zone` as naive UTC, the same on every engine.

    Only the unambiguous direction (UTC to local, `_wall`) is asked of the engine. A local time L
    is tried with the zone's offset a day before (o1) and a day after (o2): L - o is the answer
    when it reads back as L. In the hour clocks repeat (both read back) the earlier instant, the
    daylight-saving one, is taken; in the hour they skip (neither does) L - o1, which moves the time
    forward by the length of the gap (02:30 becomes 03:30), as Java and ICU do."""
    if zone == "UTC":
        return local
    day = ibis.interval(days=1)
    before = local - (_wall(local - day, zone, engine) - (local - day))
    after = local - (_wall(local + day, zone, engine) - (local + day))
    before_ok = _wall(before, zone, engine) == local
    after_ok = _wall(after, zone, engine) == local
    earlier = (before < after).ifelse(before, after)
    return ibis.cases((before_ok & after_ok, earlier), (after_ok, after), else_=before)


@ibis.udf.scalar.builtin(name="timezone")
def _duckdb_wall(zone: str, stamp: dt.Timestamp(timezone="UTC")) -> dt.Timestamp():
    """DuckDB (ICU): the wall-clock time in `zone` of an instant."""


@ibis.udf.scalar.builtin(name="from_utc_timestamp")
def _spark_wall(stamp: dt.Timestamp(), zone: str) -> dt.Timestamp():
    """Spark: the wall-clock time in `zone` of a UTC time."""


def _wall(utc, zone: str, engine: str):
    """Naive UTC times as wall-clock times in `zone`."""
    if engine == "duckdb":
        return _duckdb_wall(ibis.literal(zone), utc.cast(dt.Timestamp(timezone="UTC")))
    return _spark_wall(utc, ibis.literal(zone))


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_strptime(text: str, pattern: str) -> dt.Timestamp():
    """DuckDB: text read with a strftime pattern, null where it does not fit."""


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_strptime_tz(text: str, pattern: str) -> dt.Timestamp(timezone="UTC"):
    """DuckDB: text with an offset (%z) read with a strftime pattern, as an instant."""


@ibis.udf.scalar.builtin(name="try_to_timestamp")
def _spark_strptime(text: str, pattern: str) -> dt.Timestamp():
    """Spark: text read with a datetime pattern, null where it does not fit."""


# strftime directives and their Spark (Java) datetime pattern letters
_JAVA_PATTERN = {"Y": "yyyy", "y": "yy", "m": "M", "d": "d", "H": "H", "I": "h", "M": "mm", "S": "ss",
                 "f": "SSSSSS", "p": "a", "b": "MMM", "B": "MMMM", "a": "EEE", "A": "EEEE", "j": "D",
                 "z": "xx", "%": "%"}


def java_pattern(pattern: str) -> str:
    """A strftime pattern (the mapping's `date_format`) as a Spark datetime pattern: directives to
    their letters, other text quoted. Raises ValueError for a directive with no counterpart."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            if code not in _JAVA_PATTERN:
                raise ValueError(f"date_format {pattern!r}: %{code} has no Spark equivalent; use "
                                 f"{', '.join('%' + c for c in _JAVA_PATTERN)}")
            out.append(_JAVA_PATTERN[code])
            i += 2
        else:
            literal = pattern[i]
            out.append(literal if not literal.isalpha() and literal != "'" else "''" if literal == "'" else f"'{literal}'")
            i += 1
    return "".join(out)


def _strptime(text, pattern: str, engine: str):
    """Text read with the mapping's strftime `pattern` (null where it does not fit)."""
    if engine == "duckdb":
        read = _duckdb_strptime_tz if "%z" in pattern else _duckdb_strptime
        return read(text, ibis.literal(pattern))
    return _spark_strptime(text, ibis.literal(java_pattern(pattern)))


def parse_category(t, col, engine):
    """Forgive case, spaces and hyphens (In-Store -> in_store), as the validator does. Labels already
    canonical (nearly all; `_c_`) skip the strip, the blank test and the regular expression."""
    text, canonical = t[f"_v_{col.name}"].cast("string"), t[f"_c_{col.name}"]
    stripped = _strip(text)
    return {f"_b_{col.name}": canonical.ifelse(False, _blank(text, stripped)),
            f"_k_{col.name}": canonical.ifelse(text, stripped.lower().re_replace(f"[{_CLASS}\\-]+", "_"))}


def check_id(t, col):
    return _id_value(t, col.name), ([(t[f"_b_{col.name}"], f"missing {col.name}")] if col.required else [])


def check_text(t, col):
    return t[f"_b_{col.name}"].ifelse(ibis.null("string"), t[f"_v_{col.name}"].cast("string")), []


def check_number(t, col, whole: bool = False):
    """Checks that cannot fire on the source's type are left out (typed numbers always parse; integers
    are finite and whole), which keeps the per-row test short on typed exports."""
    blank, numbers = t[f"_b_{col.name}"], t[f"_n_{col.name}"]
    source = t[f"_v_{col.name}"].type()
    found = []
    if not source.is_numeric():
        found.append((numbers.isnull() & ~blank, f"{col.name} is not a number"))
    if not source.is_integer():
        found.append((_infinite(numbers), f"{col.name} is not a finite number"))
        if whole:
            found.append((numbers.notnull() & ~_whole(numbers), f"{col.name} is not a whole number"))
    if col.low is not None and col.high is not None:
        found.append(((numbers < col.low) | (numbers > col.high), f"{col.name} outside {col.low:g}-{col.high:g}"))
    elif col.low is not None:
        found.append((numbers < col.low, f"{col.name} below {col.low:g}"))
    if col.required:
        found.append((blank, f"missing {col.name}"))
    return numbers, found


def _infinite(numbers):
    """Whether a number is infinite (numbers here are never NaN: text reading NaN is no number,
    a typed NaN is blank). Not Ibis' isinf, which Spark's SQL gets as FALSE."""
    return numbers.isinf() if on_duckdb(numbers) else numbers.abs() > sys.float_info.max


def _whole(numbers):
    """Whether a number is whole; false for infinity. (Not a comparison with its rounding: Ibis casts
    that to a 64-bit integer, and the cast of an infinite score stopped the whole check.)"""
    return numbers % 1 == 0


def check_score(t, col):
    numbers, found = check_number(t, col, whole=True)
    valid = (numbers >= col.low) & (numbers <= col.high)
    if not t[f"_v_{col.name}"].type().is_integer():
        valid = valid & _whole(numbers)
    return valid.fill_null(False).ifelse(numbers.cast("int8"), ibis.null("int8")), found


def check_timestamp(t, col, options):
    """Unreadable text is a reject; its reason names `date_format` when the mapping gives none."""
    blank, stamps = t[f"_b_{col.name}"], t[f"_t_{col.name}"]
    reason = f"{col.name} is not a valid timestamp" if options.get("date_format") else \
        f"{col.name} is not an ISO 8601 timestamp (for other forms, give the mapping a date_format)"
    found = [(stamps.isnull() & ~blank, reason)]
    if col.required:
        found.append((blank, f"missing {col.name}"))
    return stamps, found


def check_category(t, col):
    norm = t[f"_k_{col.name}"]
    known = t[f"_c_{col.name}"].ifelse(True, _one_of(norm, col.categories))  # canonical: known as read
    return known.ifelse(norm, ibis.null("string")), [(~known & ~t[f"_b_{col.name}"],
                                                      f"{col.name} not one of {', '.join(col.categories)}")]


PARSE = {"id": parse_text, "text": parse_text, "float": parse_number, "score": parse_number,
         "category": parse_category}  # (timestamps: parse_timestamp, which also reads the mapping)
CHECK = {"id": check_id, "text": check_text, "float": check_number, "score": check_score,
         "category": check_category}  # (timestamps: check_timestamp)
