"""Read a Qualtrics CSV export into raw response columns with canonical names.

A Qualtrics export (Data & Analysis > Export > CSV) has three header rows: the column names
(StartDate, RecordedDate, ResponseId, Q1, Q3_2, ...), the question texts ("Recorded Date",
"How likely are you to recommend ...?"), and an ImportId row of small JSON objects
({"ImportId":"recordedDate","timeZone":"America/Denver"}, {"ImportId":"QID1"}). Answers are numeric
codes or choice text ("10 - Extremely likely", "Very satisfied"), depending on the export option.

This module only reshapes (a pre-step): it picks the mapped columns, turns choice text into numbers
and sets the account's time zone; the engine's rules (`cxresearch.engine.rules`) then check every
value like any other source's. Preview, test and spam responses are not customer data and are
returned as rejects with their reason.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from cxresearch.schema import ATTRIBUTE_PREFIX

__all__ = ["QualtricsFormatError", "choice_to_number", "export_timezone", "read", "read_header", "resolve_columns"]

# Columns every Qualtrics export has, mapped by default (a mapping may override them).
DEFAULT_COLUMNS = {"ResponseId": "response_id", "RecordedDate": "responded_at",
                   "ExternalReference": "customer_id"}
NOT_CUSTOMER_STATUS = {"Survey Preview": "Qualtrics survey preview", "Survey Test": "Qualtrics survey test",
                       "Spam": "Qualtrics flagged as spam", "1": "Qualtrics survey preview",
                       "2": "Qualtrics survey test", "8": "Qualtrics flagged as spam"}
# Qualtrics' standard choice labels, used when the export holds choice text and the mapping gives no values.
CHOICE_LABELS = {
    "csat": {"extremely dissatisfied": 1, "very dissatisfied": 1, "somewhat dissatisfied": 2, "dissatisfied": 2,
             "neither satisfied nor dissatisfied": 3, "somewhat satisfied": 4, "satisfied": 4,
             "extremely satisfied": 5, "very satisfied": 5},
    "ces": {"strongly disagree": 1, "disagree": 2, "somewhat disagree": 3, "neither agree nor disagree": 4,
            "somewhat agree": 5, "agree": 6, "strongly agree": 7},
}
SCORE_COLUMNS = ("nps", "csat", "ces")


class QualtricsFormatError(ValueError):
    """The file does not have the three header rows of a Qualtrics CSV export."""


def read_header(path: Path) -> tuple[list[str], list[str], list[dict]]:
    """The three header rows: column names, question texts and parsed ImportId objects."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for _, row in zip(range(3), csv.reader(handle))]
    if len(rows) < 3:
        raise QualtricsFormatError(f"{path}: expected Qualtrics' three header rows (names, question texts, "
                                   f"ImportId), found {len(rows)} row(s)")
    names, labels, ids = rows
    try:
        import_ids = [json.loads(cell) for cell in ids]
    except json.JSONDecodeError as exc:
        raise QualtricsFormatError(f"{path}: the third row is not Qualtrics' ImportId row "
                                   f"(cells like {{\"ImportId\":\"QID1\"}}): {exc}") from exc
    if not all(isinstance(i, dict) and "ImportId" in i for i in import_ids):
        raise QualtricsFormatError(f"{path}: the third row is not Qualtrics' ImportId row")
    return names, labels, import_ids


def resolve_columns(names, labels, import_ids, columns: dict[str, str]) -> dict[str, str]:
    """Map export column name -> canonical name; a mapping key may be the name, question text or ImportId."""
    aliases = {}
    for name, label, import_id in zip(names, labels, import_ids):
        for alias in (name, label.strip(), import_id["ImportId"]):
            aliases.setdefault(alias, name)
    chosen = {name: target for name, target in DEFAULT_COLUMNS.items() if name in names}
    for key, target in columns.items():
        if key not in aliases:
            raise QualtricsFormatError(f"mapping names column {key!r}, which is not in the export "
                                       f"(not a column name, question text or ImportId)")
        chosen = {n: t for n, t in chosen.items() if t != target}  # a mapping overrides a default
        chosen[aliases[key]] = target
    return chosen


def export_timezone(names, import_ids) -> str | None:
    """The account time zone Qualtrics wrote into the RecordedDate ImportId, if any."""
    for name, import_id in zip(names, import_ids):
        if name == "RecordedDate":
            return import_id.get("timeZone")
    return None


def choice_to_number(values: pd.Series, labels: dict[str, int]) -> pd.Series:
    """'10 - Extremely likely' -> 10, 'Very satisfied' -> 5 (via `labels`); other text stays as is for validation."""
    text = values.astype("str").str.strip()
    leading = text.str.extract(r"^(\d+)(?:\s*-.*)?$", expand=False)
    by_label = text.str.lower().map(labels) if labels else pd.Series(pd.NA, index=values.index)
    out = leading.where(leading.notna(), by_label.astype("Int64").astype("str").where(by_label.notna()))
    return out.where(out.notna(), values)


def read(path, options: dict):
    """Read an export: raw canonical-named frame, its record numbers, rows set aside (by Status),
    ignored column names, and the time zone of its timestamps (the mapping's, else the export's).

    The set-aside frame has the rejects' columns except table and source.
    """
    path = Path(path)
    names, labels, import_ids = read_header(path)
    chosen = resolve_columns(names, labels, import_ids, options.get("columns", {}))
    data = pd.read_csv(path, skiprows=[1, 2], dtype=str, encoding="utf-8-sig", keep_default_na=False,
                       na_values=[""])
    record = pd.Series(range(1, len(data) + 1))
    set_aside = _not_customer_rows(data)
    keep = ~set_aside["reason"].notna().to_numpy()
    asides = pd.DataFrame({"row": record[~keep].to_numpy(), "column": "Status",
                           "value": data.loc[~keep, "Status"].to_numpy() if "Status" in data else "",
                           "reason": set_aside.loc[~keep, "reason"].to_numpy()})
    data, record = data[keep].reset_index(drop=True), record[keep].reset_index(drop=True)
    raw = pd.DataFrame({target: data[name] for name, target in chosen.items()})
    for column in raw.columns:
        if column in SCORE_COLUMNS or column.startswith(ATTRIBUTE_PREFIX):
            labels_for = {} if column in options.get("values", {}) else CHOICE_LABELS.get(column, {})
            raw[column] = choice_to_number(raw[column], labels_for)
    timezone = options.get("timezone") or export_timezone(names, import_ids) or "UTC"
    ignored = [n for n in names if n not in chosen]
    return raw, record, asides, ignored, timezone


def _not_customer_rows(data: pd.DataFrame) -> pd.DataFrame:
    reason = data["Status"].map(NOT_CUSTOMER_STATUS) if "Status" in data else pd.Series(pd.NA, index=data.index)
    return pd.DataFrame({"reason": reason})
