"""Importers: a public or vendor export reshaped into the canonical tables, with every row accounted for.

    import cxresearch as cx
    result = cx.importers.olist("olist-export/")   # the public Olist marketplace export
    print(result.summary())                        # rows read, used and set aside (by reason) per file
    result.write("data/olist")                     # locations.parquet, ... and import_report.json
    ds = cx.load_dataset("data/olist")             # validated like any other data folder

An importer is one small module here, on one pattern:

- read each source file with `read_csv`: every column as text, nothing turned into a number, a date
  or a missing value behind the reader's back;
- register it with a `Ledger` (`ledger.file(name, frame)` gives its `Rows`) and set rows aside with
  `rows.set_aside(mask, reason)` (the first reason of a row wins); a row never set aside is used;
- convert local wall-clock times with `local_to_utc`;
- return `finish(source, origin, tables, ledger)`: the tables conformed (`schema.conform`), the
  report, and a check that every file's accounting closes (read = used + set aside).

`ImportResult.write` writes the tables as ``<table>.parquet`` plus ``import_report.json``, a name
the data-folder loader does not read as a table. The rows are then validated by the engine as any
export is (`cxresearch validate`); an importer's job is to hand it rows that pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxresearch import schema
from cxresearch.io.dataset import CXDataset
from cxresearch.io.files import DATA_SUFFIXES, IngestError

__all__ = ["REPORT_FILE", "SOURCES", "ImportResult", "Ledger", "Rows", "check_destination", "finish", "local_to_utc",
           "olist", "read_csv"]

REPORT_FILE = "import_report.json"  # not a data suffix: `cxresearch.io.files` does not take it for a table
REPORT_COLUMNS = ("step", "source", "detail", "rows")  # step: read, used, set aside, written, note
# The sources the command line offers (`cxresearch import NAME`): each is a function of this package.
SOURCES = {"olist": "the public Olist marketplace export (Kaggle olistbr/brazilian-ecommerce), a folder of its CSVs"}


class Rows:
    """The rows of one source file and why each is set aside (missing: the row is used)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.reason = pd.Series(None, index=frame.index, dtype="object")

    def set_aside(self, mask, reason: str) -> None:
        """Set aside the rows where `mask` holds (and no earlier reason does) with `reason`."""
        mask = pd.Series(mask, index=self.frame.index).fillna(False).astype(bool)
        self.reason = self.reason.mask(mask & self.reason.isna(), reason)

    @property
    def kept(self) -> pd.Series:
        """Whether each row is (still) used."""
        return self.reason.isna()

    def used(self) -> pd.DataFrame:
        """The rows not set aside."""
        return self.frame[self.kept]


class Ledger:
    """What an import read, used and set aside per source file, and notes worth a reader's eye."""

    def __init__(self):
        self.files: dict[str, Rows] = {}
        self.notes: list[tuple[str, str, int]] = []

    def file(self, name: str, frame: pd.DataFrame) -> Rows:
        """Register the rows read from source file `name`; set rows aside on what this returns."""
        self.files[name] = Rows(frame)
        return self.files[name]

    def note(self, source: str, detail: str, rows: int) -> None:
        """Record a count that is neither a row used nor one set aside (kept when non-zero)."""
        if rows:
            self.notes.append((source, detail, int(rows)))

    def report(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """The report: per file rows read, used and set aside by reason; rows written per table; notes."""
        lines = []
        for name, rows in self.files.items():
            lines.append(("read", name, "", len(rows.frame)))
            lines.append(("used", name, "", int(rows.kept.sum())))
            counts = rows.reason.dropna().value_counts(sort=False)
            lines += [("set aside", name, reason, int(n)) for reason, n in counts.items()]
        lines += [("written", name, "", len(frame)) for name, frame in tables.items()]
        lines += [("note", source, detail, n) for source, detail, n in self.notes]
        report = pd.DataFrame(lines, columns=list(REPORT_COLUMNS))
        return report.astype({"step": "str", "source": "str", "detail": "str", "rows": "int64"})


@dataclass
class ImportResult:
    """The canonical tables an importer built and its report.

    Attributes: source (the importer's name), origin (what was read), tables (canonical DataFrames by
    table name, conformed with `schema.conform`) and report (columns step, source, detail, rows:
    per source file the rows read, used and set aside with their reason; rows written per table;
    notes).
    """

    source: str
    origin: str
    tables: dict[str, pd.DataFrame]
    report: pd.DataFrame

    def accounting(self) -> pd.DataFrame:
        """Per source file: rows read, used, set aside, and whether read == used + set aside."""
        steps = self.report[self.report["step"].isin(["read", "used", "set aside"])]
        counts = steps.pivot_table(index="source", columns="step", values="rows", aggfunc="sum", sort=False)
        counts = counts.reindex(columns=["read", "used", "set aside"]).fillna(0).astype("int64")
        counts["balanced"] = counts["read"] == counts["used"] + counts["set aside"]
        counts.index.name, counts.columns.name = "file", None
        return counts

    def set_aside(self) -> pd.DataFrame:
        """The rows set aside: file, reason and rows."""
        rows = self.report[self.report["step"] == "set aside"]
        return rows[["source", "detail", "rows"]].rename(columns={"source": "file", "detail": "reason"}).reset_index(drop=True)

    def summary(self) -> str:
        """Plain lines: what was written, and per source file the rows read, used and set aside by reason."""
        counts = {name: len(frame) for name, frame in self.tables.items()}
        lines = [f"{self.source} import of {self.origin}: "
                 + ", ".join(f"{counts.get(name, 0):,} {name}" for name in ("locations", "customers", "responses",
                                                                             "transactions"))]
        lines.append("source files (read = used + set aside):")
        width = max((len(name) for name in self.accounting().index), default=0)
        aside = self.set_aside()
        for name, r in self.accounting().iterrows():
            mark = "ok" if r.balanced else "MISMATCH"
            lines.append(f"  {name:<{width}}  read {r.read:>8,}  used {r.used:>8,}  set aside {r['set aside']:>7,}  {mark}")
            for reason in aside[aside["file"] == name].itertuples():
                lines.append(f"      {reason.rows:>8,}  {reason.reason}")
        notes = self.report[self.report["step"] == "note"]
        if len(notes):
            lines.append("notes:")
            lines += [f"  {n.source}: {n.detail}: {n.rows:,}" for n in notes.itertuples()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ImportResult {self.summary().splitlines()[0]}>"

    def write(self, dest, force: bool = False) -> Path:
        """Write each table as ``<table>.parquet`` into `dest` (created) and the report as `REPORT_FILE`.

        A folder that is not empty is refused (IngestError) unless `force`; with `force`, table files
        already there (any format) and an earlier report are replaced, other files are left alone.
        An empty optional table is not written, as `CXDataset.to_dir` does. Returns the folder.
        """
        folder = check_destination(dest, force)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            stem = next((old.name[: -len(s)] for s in DATA_SUFFIXES if old.name.lower().endswith(s)), None)
            if old.is_file() and (old.name == REPORT_FILE or (stem and stem.lower() in schema.TABLES)):
                old.unlink()
        CXDataset(**self.tables).to_dir(folder, format="parquet")
        report = {"source": self.source, "origin": self.origin,
                  "accounting": self.accounting().reset_index().to_dict(orient="records"),
                  "report": self.report.to_dict(orient="records")}
        (folder / REPORT_FILE).write_text(json.dumps(report, indent=1, default=_plain) + "\n", encoding="utf-8")
        return folder


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def check_destination(dest, force: bool = False) -> Path:
    """`dest` as a Path; IngestError when it is a file, or a folder that is not empty and `force` is off."""
    folder = Path(dest)
    if folder.exists() and not folder.is_dir():
        raise IngestError(f"{folder}: not a folder; give a new or empty folder to write the tables to")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise IngestError(f"{folder}: folder is not empty; pass --force (force=True) to replace its tables")
    return folder


def read_csv(folder: Path, name: str, columns, required: bool = True) -> pd.DataFrame | None:
    """Source file `name` of `folder` with every column as text and empty cells as "" (no NA guessing).

    IngestError when the folder is missing, a required file is absent, or any of `columns` is
    not in the header; None for an absent file that is not `required`."""
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder; expected a folder holding the export's files ({name}, ...)")
    path = folder / name
    if not path.is_file():
        if required:
            raise IngestError(f"{path}: file missing; expected {name} with columns {', '.join(columns)}")
        return None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise IngestError(f"{path}: not a readable UTF-8 CSV file: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise IngestError(f"{path}: column(s) missing: {', '.join(missing)}; found {', '.join(frame.columns)}")
    return frame


def local_to_utc(text: pd.Series, zone: str) -> tuple[pd.Series, dict[str, int]]:
    """Naive local times in text (ISO 8601: ``2018-06-12 00:00:00``, ``2018-06-12``) in `zone`, as UTC.

    The engine's rule (`cxresearch.engine.rules.local_to_utc`): in the hour the clocks repeat at the
    end of summer time the earlier instant, the summer-time one, is taken; a time in the hour they
    skip is moved forward by the length of the gap (00:30 becomes 01:30), read with the offset before
    it. Blank or unreadable text is NaT. Returns the UTC times and counts of the times that were
    ambiguous, skipped and unreadable (blank cells are not counted)."""
    blank = text.str.strip() == ""
    local = pd.to_datetime(text.where(~blank), format="ISO8601", errors="coerce")
    if isinstance(local.dtype, pd.DatetimeTZDtype):  # (a column of times with offsets: already instants)
        return local.dt.tz_convert("UTC"), {"ambiguous": 0, "skipped": 0, "unreadable": int((local.isna() & ~blank).sum())}
    n = len(local)
    summer = local.dt.tz_localize(zone, ambiguous=np.ones(n, bool), nonexistent="NaT")
    winter = local.dt.tz_localize(zone, ambiguous=np.zeros(n, bool), nonexistent="NaT")
    skipped = local.notna() & summer.isna()
    if skipped.any():  # L - (the offset a day before), as the engine does
        before = (local[skipped] - pd.Timedelta(days=1)).dt.tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
        offset = before.dt.tz_localize(None) - before.dt.tz_convert("UTC").dt.tz_localize(None)
        summer = summer.dt.tz_convert("UTC")
        summer[skipped] = (local[skipped] - offset).dt.tz_localize("UTC")
    counts = {"ambiguous": int((summer.notna() & winter.notna() & (summer != winter)).sum()),
              "skipped": int(skipped.sum()), "unreadable": int((local.isna() & ~blank).sum())}
    return summer.dt.tz_convert("UTC"), counts


def finish(source: str, origin, tables: dict[str, pd.DataFrame], ledger: Ledger) -> ImportResult:
    """The ImportResult of an importer: tables conformed (absent ones empty), the report written.

    Raises RuntimeError (a fault of the importer, never of the data) when a file's accounting does
    not close or a table repeats a key."""
    conformed = {name: schema.conform(tables[name], name) if name in tables else schema.empty(name)
                 for name in ("locations", "customers", "responses", "transactions")}
    for name, frame in conformed.items():
        key = schema.TABLES[name].key
        if frame[key].duplicated().any():
            raise RuntimeError(f"{source} importer: {name}.{key} repeats a key")
    result = ImportResult(source, str(origin), conformed, ledger.report(conformed))
    unbalanced = result.accounting().query("not balanced")
    if len(unbalanced):
        raise RuntimeError(f"{source} importer: accounting does not close for {', '.join(unbalanced.index)}")
    return result


from cxresearch.io.importers.olist import olist  # noqa: E402  (the sources, after the pattern they use)
