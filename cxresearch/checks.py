"""The ingest rules of `cxresearch.validate`, written once as Ibis expressions so an engine runs them.

`check_table` turns a raw engine table (canonical column names, raw values, `_row`) into one query
whose result has the coerced canonical columns plus `_reason`, `_column` and `_value`: the first
problem of each row, in the same order as the pandas validator (columns in canonical order and,
within a column, its checks in order; then "no score", unknown references, duplicate keys). Rows
with no reason are the accepted ones; the others are the rejects. Nothing leaves the engine.

What the engines do not do (the in-memory reader does): non-UTC `timezone`, `date_format` and
Qualtrics exports; `cxresearch.engine` refuses those mappings with a clear error. Timestamps in
text must be ISO 8601 (with or without an offset; without one they are UTC).
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

from . import schema

ROW = "_row"
ENGINE_TYPES = {"id": dt.string, "text": dt.string, "timestamp": dt.Timestamp(), "float": dt.float64,
                "score": dt.int8, "category": dt.string}
NA_TOKENS = ("NA", "N/A", "NULL", "null", "NaN", "nan")  # the pandas CSV reader's missing values


def check_table(raw, table: str, source: str, checked: dict, options: dict, csv: bool):
    """One query: coerced canonical columns, `_row`, and the first problem of each row (or nulls).

    Built in small stages (parse, reference joins, checks, then the duplicate keys) so that no
    expression repeats a parse: that keeps the plans small enough for Spark's code generator."""
    spec = schema.TABLES[table]
    present = [c for c in raw.columns if c != ROW]
    names = spec.names + sorted(c for c in present if spec.prefixed is not None and c.startswith(spec.prefixed.name))
    columns = [spec.column(n) for n in names if n in present]
    value_maps = options.get("values", {}) or {}
    parsed = {}
    for col in columns:
        values = _value_map(_missing_tokens(raw[col.name]) if csv else raw[col.name], value_maps.get(col.name))
        parsed[f"_v_{col.name}"] = values.cast("string")
        parsed.update(PARSE[col.kind](values, col))
    keep_raw = {f"_r_{c}": raw[c].cast("string") for c in _raw_needed(spec, present, checked)}
    t = raw.select(raw[ROW], **parsed, **keep_raw)
    t, found_refs = _join_references(t, spec, present, checked)
    coerced, problems = {}, []
    for col in columns:
        coerced[col.name], found = CHECK[col.kind](t, col)
        problems += [(condition, col.name, reason, t[f"_v_{col.name}"]) for condition, reason in found]
    problems += _score_problems(coerced, spec, present)
    problems += [(~found & t[f"_p_{name}"].notnull(), name, f"unknown {name}", t[f"_r_{name}"])
                 for name, found in found_refs.items()]
    code = ibis.cases(*[(condition.fill_null(False), i) for i, (condition, *_ignored) in enumerate(problems)],
                      else_=ibis.null("int16")) if problems else ibis.null("int16")
    typed = {n: coerced[n] if n in coerced else ibis.null(ENGINE_TYPES[spec.column(n).kind]) for n in names}
    stage = t.select(t[ROW], **{n: v.name(n) for n, v in typed.items()}, _code=code,
                     **{f"_value{i}": p[3].cast("string") for i, p in enumerate(problems) if p[3] is not None},
                     _rawkey=t[f"_r_{spec.key}"])
    labelled = stage.select(*[stage[c] for c in [ROW, *names]], _rawkey=stage["_rawkey"],
                            _reason=_lookup(stage["_code"], [p[2] for p in problems]),
                            _column=_lookup(stage["_code"], [p[1] for p in problems]),
                            _value=_raw_value(stage, problems))
    return _flag_duplicates(labelled, spec.key)


def _raw_needed(spec, present, checked) -> list[str]:
    refs = [c.name for c in spec.columns if c.references in checked and c.name in present]
    return [spec.key] + [c for c in refs if c != spec.key]


def _join_references(t, spec, present, checked):
    """Left-join each reference column to the accepted keys of its table (a join, not IN: Spark allows
    subqueries only in filters). Returns the table and, per column, whether its value was found."""
    found = {}
    for col in spec.columns:
        if col.references in checked and col.name in present:
            ref = checked[col.references]
            key = schema.TABLES[col.references].key
            keys = ref.filter(ref["_reason"].isnull()).select(**{f"_k_{col.name}": ref[key]}).distinct()
            probe = _id_value(t, col.name).name(f"_p_{col.name}")
            t = t.mutate(probe)
            t = t.left_join(keys, t[f"_p_{col.name}"] == keys[f"_k_{col.name}"])
            found[col.name] = None
    out = {name: t[f"_k_{name}"].notnull() for name in found}
    return t, out


def _lookup(code, labels):
    if not labels:
        return ibis.null("string")
    return code.cases(*[(i, ibis.literal(label)) for i, label in enumerate(labels)], else_=ibis.null("string"))


def _raw_value(stage, problems):
    if not problems:
        return ibis.null("string")
    return stage["_code"].cases(*[(i, stage[f"_value{i}"] if p[3] is not None else ibis.null("string"))
                                  for i, p in enumerate(problems)], else_=ibis.null("string"))


def reject_records(checked, table: str, source: str):
    """The rejected rows of a checked table in the rejects layout (table, source, row, column, value, reason)."""
    bad = checked.filter(checked["_reason"].notnull())
    return bad.select(table=ibis.literal(table, "string"), source=ibis.literal(source, "string"),
                      row=bad[ROW].cast("int64"), column=bad["_column"], value=bad["_value"], reason=bad["_reason"])


# -- the first problem of each row -------------------------------------------------------------------

def _score_problems(coerced, spec, present):
    if not spec.score_columns:
        return []
    scores = [coerced[c] for c in spec.score_columns if c in present]
    none = ibis.literal(True)
    for score in scores:
        none = none & score.isnull()
    return [(none, ",".join(spec.score_columns), f"no score: needs at least one of {', '.join(spec.score_columns)}",
             None)]


def _flag_duplicates(stage, key: str):
    """Keep the first valid row of each key (by record number); later valid rows with it are rejected."""
    candidates = stage.filter(stage["_reason"].isnull() & stage[key].notnull())
    repeated = (candidates.group_by(candidates[key].name("_dupkey"))
                .agg(_first_row=candidates[ROW].min(), _copies=candidates.count())
                .filter(lambda t: t["_copies"] > 1))
    joined = stage.left_join(repeated, stage[key] == repeated["_dupkey"])
    duplicate = joined["_first_row"].notnull() & (joined[ROW] != joined["_first_row"]) & joined["_reason"].isnull()
    keep = [c for c in stage.columns if c not in ("_reason", "_column", "_value", "_rawkey")]
    return joined.select(*keep,
                         _reason=duplicate.ifelse(ibis.literal(f"duplicate {key}"), joined["_reason"]),
                         _column=duplicate.ifelse(ibis.literal(key), joined["_column"]),
                         _value=duplicate.ifelse(joined["_rawkey"], joined["_value"]))


# -- one column: parse it once (stage 1), then coerce and check from the parsed parts (stage 2) -----

def _is_text(values) -> bool:
    return values.type().is_string()


def _missing_tokens(values):
    return values.isin(NA_TOKENS).ifelse(ibis.null("string"), values) if _is_text(values) else values


def _value_map(values, value_map):
    if not value_map:
        return values
    text = values.cast("string").strip()
    return text.substitute({str(k).strip(): str(v) for k, v in value_map.items()}, else_=values.cast("string"))


def _blank(values):
    if _is_text(values):
        return values.isnull() | (values.strip() == "")
    if values.type().is_floating():
        return values.isnull() | values.isnan()
    return values.isnull()


def _id_value(t, name):
    return t[f"_b_{name}"].ifelse(ibis.null("string"), t[f"_s_{name}"])


def parse_text(values, col):
    return {f"_b_{col.name}": _blank(values), f"_s_{col.name}": values.cast("string").strip() if col.kind == "id"
            else values.cast("string")}


def parse_number(values, col):
    blank = _blank(values)
    numbers = values.strip().try_cast("float64") if _is_text(values) else values.cast("float64")
    return {f"_b_{col.name}": blank, f"_n_{col.name}": blank.ifelse(ibis.null("float64"), numbers)}


def parse_timestamp(values, col):
    """ISO 8601 text (an offset is honoured, none means UTC) or typed timestamps, to naive UTC."""
    kind = values.type()
    if kind.is_timestamp():
        stamps = values.cast(dt.Timestamp()) if kind.timezone is not None else values
    elif kind.is_date():
        stamps = values.cast(dt.Timestamp())
    else:
        stamps = values.cast("string").strip().try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())
    blank = _blank(values)
    return {f"_b_{col.name}": blank, f"_t_{col.name}": blank.ifelse(ibis.null(dt.Timestamp()), stamps)}


def parse_category(values, col):
    """Forgive case, spaces and hyphens (In-Store -> in_store), as the validator does."""
    return {f"_b_{col.name}": _blank(values),
            f"_k_{col.name}": values.cast("string").strip().lower().re_replace(r"[\s\-]+", "_")}


def check_id(t, col):
    return _id_value(t, col.name), ([(t[f"_b_{col.name}"], f"missing {col.name}")] if col.required else [])


def check_text(t, col):
    return t[f"_b_{col.name}"].ifelse(ibis.null("string"), t[f"_s_{col.name}"]), []


def check_number(t, col, whole: bool = False):
    blank, numbers = t[f"_b_{col.name}"], t[f"_n_{col.name}"]
    found = [(numbers.isnull() & ~blank, f"{col.name} is not a number"),
             (numbers.isinf(), f"{col.name} is not a finite number")]
    if whole:
        found.append((numbers.notnull() & (numbers != numbers.round()), f"{col.name} is not a whole number"))
    if col.low is not None and col.high is not None:
        found.append(((numbers < col.low) | (numbers > col.high), f"{col.name} outside {col.low:g}-{col.high:g}"))
    elif col.low is not None:
        found.append((numbers < col.low, f"{col.name} below {col.low:g}"))
    if col.required:
        found.append((blank, f"missing {col.name}"))
    return numbers, found


def check_score(t, col):
    numbers, found = check_number(t, col, whole=True)
    valid = (numbers == numbers.round()) & (numbers >= col.low) & (numbers <= col.high)
    return valid.fill_null(False).ifelse(numbers.cast("int8"), ibis.null("int8")), found


def check_timestamp(t, col):
    blank, stamps = t[f"_b_{col.name}"], t[f"_t_{col.name}"]
    found = [(stamps.isnull() & ~blank, f"{col.name} is not a valid timestamp")]
    if col.required:
        found.append((blank, f"missing {col.name}"))
    return stamps, found


def check_category(t, col):
    norm = t[f"_k_{col.name}"]
    known = norm.isin(list(col.categories)).fill_null(False)
    return known.ifelse(norm, ibis.null("string")), [(~known & ~t[f"_b_{col.name}"],
                                                      f"{col.name} not one of {', '.join(col.categories)}")]


PARSE = {"id": parse_text, "text": parse_text, "float": parse_number, "score": parse_number,
         "timestamp": parse_timestamp, "category": parse_category}
CHECK = {"id": check_id, "text": check_text, "float": check_number, "score": check_score,
         "timestamp": check_timestamp, "category": check_category}
