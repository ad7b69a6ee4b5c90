"""CXDataset: the four canonical tables plus the rows that were rejected on the way in.

A dataset is what `ingest.load_dataset` and `synth.generate` return and what every later step reads.
It keeps the count of rows read per table, so `accounting()` can show that every row that came in
was either accepted or rejected with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxresearch import schema

__all__ = ["CXDataset", "accounting_table", "summary_lines"]

FORMATS = ("parquet", "csv")


@dataclass
class CXDataset:
    """Validated CX tables (pandas DataFrames in the canonical schema) and the rejects.

    Attributes: locations, customers, responses, transactions, employee_experience (canonical
    tables; all but locations may be empty), rejects (one row per rejected source row: table, source, row, column, value, reason),
    read (rows read per table, for the accounting), sources (file each table came from) and
    ignored_columns (source columns outside the schema, per table, which were not loaded).
    """

    locations: pd.DataFrame
    responses: pd.DataFrame = field(default_factory=lambda: schema.empty("responses"))
    transactions: pd.DataFrame = field(default_factory=lambda: schema.empty("transactions"))
    customers: pd.DataFrame = field(default_factory=lambda: schema.empty("customers"))
    employee_experience: pd.DataFrame = field(default_factory=lambda: schema.empty("employee_experience"))
    rejects: pd.DataFrame = field(default_factory=schema.empty_rejects)
    read: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        for name in schema.TABLE_ORDER:
            frame = getattr(self, name)
            setattr(self, name, schema.conform(frame, name))
            # A dataset built in memory (e.g. by synth) read exactly what it holds.
            self.read.setdefault(name, len(frame) + self._rejected_count(name))

    def table(self, name: str) -> pd.DataFrame:
        """The canonical table called `name` (one of schema.TABLE_ORDER)."""
        if name not in schema.TABLES:
            raise KeyError(f"unknown table {name!r}; expected one of {', '.join(schema.TABLE_ORDER)}")
        return getattr(self, name)

    def _rejected_count(self, name: str) -> int:
        mine = self.rejects[self.rejects["table"] == name]
        return int(mine[["source", "row"]].drop_duplicates().shape[0])

    def accounting(self) -> pd.DataFrame:
        """Rows read, accepted and rejected per table, and whether read == accepted + rejected."""
        accepted = {name: len(self.table(name)) for name in schema.TABLE_ORDER}
        rejected = {name: self._rejected_count(name) for name in schema.TABLE_ORDER}
        return accounting_table(self.read, accepted, rejected, self.sources)

    def rejects_by_reason(self) -> pd.DataFrame:
        """Count of rejected rows per table and reason, largest first."""
        counts = self.rejects.groupby(["table", "reason"], observed=True).size()
        return counts.rename("rows").sort_values(ascending=False).reset_index()

    def summary(self) -> str:
        """A few plain lines: what was loaded, over which period, and the accounting."""
        counts = {name: len(self.table(name)) for name in schema.TABLE_ORDER}
        ranges = {name: (self.table(name)[stamp].min(), self.table(name)[stamp].max())
                  for name, stamp in (("responses", "responded_at"), ("transactions", "occurred_at"))
                  if len(self.table(name))}
        return "\n".join(summary_lines(counts, ranges, self.ignored_columns, self.accounting()))

    def __repr__(self) -> str:
        return f"<CXDataset {self.summary().splitlines()[0]}; {len(self.rejects):,} rejects>"

    def to_dir(self, path, format: str = "parquet") -> Path:
        """Write each table (and rejects.csv, if any) to `path` as Parquet or CSV; returns the folder.

        `load_dataset(path)` reads the tables back unchanged. CSV timestamps are ISO 8601 in UTC.
        Rejects are written beside the tables as `rejects.csv` for the record; loading skips them.
        """
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        for name in schema.TABLE_ORDER:
            frame = self.table(name)
            if name in schema.OPTIONAL_TABLES and frame.empty:
                continue  # an optional table is absent rather than an empty file
            target = folder / f"{name}.{format}"
            if format == "parquet":
                frame.to_parquet(target, index=False)
            else:
                frame.to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        if len(self.rejects):
            self.rejects.to_csv(folder / "rejects.csv", index=False)
        return folder


def accounting_table(read: dict, accepted: dict, rejected: dict, sources: dict) -> pd.DataFrame:
    """The accounting of any dataset: read, accepted, rejected and whether they balance, per table."""
    rows = []
    for name in schema.TABLE_ORDER:
        read_rows = read.get(name, accepted[name] + rejected[name])
        rows.append({"table": name, "source": sources.get(name, ""), "read": read_rows, "accepted": accepted[name],
                     "rejected": rejected[name], "balanced": read_rows == accepted[name] + rejected[name]})
    return pd.DataFrame(rows).set_index("table")


def summary_lines(counts: dict, ranges: dict, ignored_columns: dict, accounting: pd.DataFrame) -> list[str]:
    """What was loaded, over which dates, columns not loaded, and the accounting, as plain lines."""
    lines = [f"{counts['locations']:,} locations, {counts['customers']:,} customers, "
             f"{counts['responses']:,} responses, {counts['transactions']:,} transactions"]
    for name, (low, high) in ranges.items():
        lines.append(f"{name}: {low:%Y-%m-%d} to {high:%Y-%m-%d}")
    for name, columns in ignored_columns.items():
        lines.append(f"{name}: column(s) outside the schema not loaded: {', '.join(columns)}")
    lines.append("accounting (read = accepted + rejected):")
    for name, r in accounting.iterrows():
        mark = "ok" if r.balanced else "MISMATCH"
        lines.append(f"  {name:<20} read {r.read:>9,}  accepted {r.accepted:>9,}  "
                     f"rejected {r.rejected:>7,}  {mark}")
    return lines
