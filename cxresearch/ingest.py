"""Load a folder of exports (CSV, Parquet, Qualtrics) into a validated CXDataset.

The folder holds one file per table, named after it (locations.csv, responses.parquet, ...) or
named in a column mapping (see `cxresearch.mapping`). Problems with a file as a whole (unreadable,
a required column missing, a table nobody asked for) raise `IngestError` naming the file, the
column and what was expected, before any table is returned: nothing is ever half-loaded. Problems
with single rows send those rows to `dataset.rejects` with their reason; the rest loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from . import mapping as mapping_mod
from . import qualtrics, schema
from .dataset import CXDataset
from .validate import validate_table

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
DEFAULT_MAPPING_FILE = "mapping.yaml"
NA_TOKENS = ("NA", "N/A", "NULL", "null", "NaN", "nan")  # CSV cells read as missing (besides empty ones)
NOT_TABLES = ("rejects",)  # files `CXDataset.to_dir` writes beside the tables for the record


class IngestError(ValueError):
    """A file cannot be loaded as a whole: unreadable, a required column missing, or an unknown table."""


def load_dataset(path, mapping=None) -> CXDataset:
    """Read, validate and return the CX tables in folder `path`.

    `mapping` is a dict, a path to a YAML mapping, or None (then `path/mapping.yaml` is used if it
    exists). Required: a locations table and at least one of responses and transactions.
    """
    settings, files = folder_tables(Path(path), mapping)
    raws = {table: read_table(file, table, mapping_mod.table_options(settings, table))
            for table, file in files.items()}
    return _validate_all(raws, files)


def read_qualtrics(path, mapping=None, locations=None) -> CXDataset:
    """Read one Qualtrics CSV export into the responses table of a CXDataset.

    `mapping` is the responses section (columns, values, timezone) or a full mapping with a
    `responses:` section, as a dict or YAML path. `locations` (ids, a locations frame or a
    CXDataset) lets unknown location_ids be rejected; without it they are not checked.
    """
    settings = mapping_mod.read_mapping(mapping)
    if "responses" not in settings:
        settings = {"responses": settings}
    mapping_mod.check_mapping(settings, str(mapping) if isinstance(mapping, (str, Path)) else "mapping")
    options = mapping_mod.table_options(settings, "responses") | {"format": "qualtrics"}
    file = Path(path)
    raw = read_table(file, "responses", options)
    known = _location_frame(locations)
    files = {"responses": file}
    if known is not None:
        raw_locations = RawTable(known, pd.Series(range(1, len(known) + 1)), {}, "(given)")
        return _validate_all({"locations": raw_locations, "responses": raw}, files | {"locations": Path("(given)")})
    return _validate_all({"responses": raw}, files)


def folder_tables(folder: Path, mapping, other_sources: str = "") -> tuple[dict, dict[str, Path]]:
    """The mapping settings of a data folder (its mapping.yaml unless one is given) and which file
    holds which table; IngestError if `folder` is not a folder (`other_sources` adds what else would do)."""
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder; expected a folder with one file per table "
                          f"({', '.join(schema.TABLE_ORDER)}){other_sources}")
    if mapping is None and (folder / DEFAULT_MAPPING_FILE).is_file():
        mapping = folder / DEFAULT_MAPPING_FILE
    settings = mapping_mod.load_mapping(mapping)
    return settings, locate_tables(folder, settings)


def file_format(file: Path, options: dict) -> str:
    """csv, parquet or qualtrics: the mapping's `format`, else from the file name."""
    return options.get("format") or ("parquet" if file.name.lower().endswith((".parquet", ".pq")) else "csv")


class RawTable:
    """A table as read: canonical column names, raw values, record numbers, options, set-aside rows."""

    def __init__(self, frame, record, options, source, set_aside=None, ignored=()):
        self.frame, self.record, self.options, self.source = frame, record, options, source
        self.set_aside = set_aside if set_aside is not None else pd.DataFrame(columns=["row", "column", "value", "reason"])
        self.ignored = list(ignored)


def locate_tables(folder: Path, settings: dict) -> dict[str, Path]:
    """Which file holds which table; errors on unknown, ambiguous or missing files."""
    data_files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES))
    found: dict[str, Path] = {}
    for table in schema.TABLE_ORDER:
        named = (settings.get(table) or {}).get("file")
        if named:
            file = folder / named
            if not file.is_file():
                raise IngestError(f"{file}: the mapping names this file for {table}, but it does not exist")
            found[table] = file
            continue
        candidates = [p for p in data_files if _stem(p) == table]
        if len(candidates) > 1:
            raise IngestError(f"{folder}: {table} is in more than one file ({', '.join(p.name for p in candidates)}); "
                              f"keep one or name it in the mapping")
        if candidates:
            found[table] = candidates[0]
    claimed = set(found.values())
    unknown = [p.name for p in data_files if p not in claimed and _stem(p) not in NOT_TABLES]
    if unknown:
        raise IngestError(f"{folder}: unknown table file(s) {', '.join(unknown)}; expected files named "
                          f"{', '.join(schema.TABLE_ORDER)} (.csv, .csv.gz or .parquet), or a mapping that names them")
    if "locations" not in found:
        raise IngestError(f"{folder}: no locations table; expected locations.csv or locations.parquet")
    if not {"responses", "transactions"} & set(found):
        raise IngestError(f"{folder}: neither a responses nor a transactions table; expected at least one")
    return found


def _stem(path: Path) -> str:
    name = path.name.lower()
    for suffix in DATA_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_table(file: Path, table: str, options: dict) -> RawTable:
    """Read one file and give its columns canonical names; raise IngestError if it cannot be used."""
    fmt = file_format(file, options)
    set_aside, ignored = None, []
    try:
        if fmt == "qualtrics":
            frame, record, set_aside, ignored, timezone = qualtrics.read(file, options)
            options = options | {"timezone": timezone}
        else:
            frame = _read_frame(file, fmt, options)
            record = pd.Series(range(1, len(frame) + 1))
            frame, ignored = _rename_columns(frame, table, options["columns"])
    except (qualtrics.QualtricsFormatError, IngestError) as exc:
        raise IngestError(f"{file}: {exc}") from exc
    _require_columns(frame, table, file)
    if ignored:
        log.warning("%s: column(s) not in the %s schema ignored: %s", file.name, table, ", ".join(ignored))
    return RawTable(frame, record, options, file.name, set_aside, ignored)


def _read_frame(file: Path, fmt: str, options: dict) -> pd.DataFrame:
    try:
        if fmt == "parquet":
            return _integers_kept(pd.read_parquet(file), file)
        return pd.read_csv(file, dtype=str, encoding="utf-8-sig", sep=options.get("delimiter", ","),
                           keep_default_na=False, na_values=["", *NA_TOKENS])
    except pd.errors.EmptyDataError as exc:
        raise IngestError(f"{file}: the file is empty; expected a header row with the column names") from exc
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        kind = "Parquet" if fmt == "parquet" else "CSV (UTF-8)"
        raise IngestError(f"{file}: cannot be read as {kind}: {exc}") from exc


def _integers_kept(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    """Integer Parquet columns with nulls in a nullable integer type. pandas reads them as floats
    unless the file was written by pandas, so a score of 9 would read back as 9.0 (in the rejects'
    text too) where an engine reads 9."""
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    for field in pq.read_schema(file):
        if pat.is_integer(field.type) and field.name in frame and frame[field.name].dtype.kind == "f":
            kind = "UInt" if pat.is_unsigned_integer(field.type) else "Int"
            frame[field.name] = frame[field.name].astype(f"{kind}{field.type.bit_width}")
    return frame


def _rename_columns(frame: pd.DataFrame, table: str, columns: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Apply the mapping, then match remaining headers to canonical names ignoring case and spaces."""
    renamed, ignored = canonical_names(frame.columns, table, columns)
    return frame[list(renamed)].rename(columns=renamed), ignored


def canonical_names(headers, table: str, columns: dict[str, str]) -> tuple[dict, list[str]]:
    """{header: canonical name} for the headers that map to a column of `table`, and the ignored rest.

    The mapping's `columns` come first; other headers match a canonical name ignoring case and
    surrounding spaces. Shared by the pandas reader and the engines (`cxresearch.engine`)."""
    spec = schema.TABLES[table]
    renamed, ignored = {}, []
    for header in headers:
        text = str(header).strip().lstrip("\ufeff")
        target = columns.get(text) or columns.get(str(header))
        if target is None and spec.known(text.lower()):
            target = text.lower()
        if target is None:
            ignored.append(str(header))
        elif target in renamed.values():
            raise IngestError(f"two columns map to {target!r}; keep one or fix the mapping")
        else:
            renamed[header] = target
    return renamed, ignored


def _require_columns(frame: pd.DataFrame, table: str, file: Path) -> None:
    require_columns(list(frame.columns), table, file)


def require_columns(columns: list, table: str, file) -> None:
    """Raise IngestError naming the file when a required column of `table` is not among `columns`."""
    missing = [c for c in schema.TABLES[table].required if c not in columns]
    if missing:
        raise IngestError(f"{file}: required {table} column(s) missing: {', '.join(missing)}; "
                          f"found {', '.join(map(str, columns)) or 'no columns'}; "
                          f"expected {', '.join(schema.TABLES[table].required)} (map other names in the mapping)")


def _validate_all(raws: dict[str, RawTable], files: dict[str, Path]) -> CXDataset:
    """Validate tables in reference order, each against the keys accepted before it."""
    accepted, rejects, read, ignored = {}, [], {}, {}
    for table in schema.TABLE_ORDER:
        if table not in raws:
            continue
        raw = raws[table]
        known = {ref: accepted[ref][schema.TABLES[ref].key] for ref in accepted}
        frame, bad = validate_table(raw.frame, table, raw.source, known, raw.options, raw.record)
        accepted[table] = frame
        aside = raw.set_aside.assign(table=table, source=raw.source)
        rejects.extend(r for r in (aside, bad) if len(r))
        read[table] = len(raw.frame) + len(raw.set_aside)
        if raw.ignored:
            ignored[table] = raw.ignored
    if "locations" not in accepted:
        accepted["locations"] = schema.empty("locations")
    all_rejects = (pd.concat([r[list(schema.REJECT_COLUMNS)] for r in rejects], ignore_index=True)
                   .astype(schema.REJECT_DTYPES)
                   if rejects else schema.empty_rejects())
    return CXDataset(**accepted, rejects=all_rejects, read=read,
                     sources={t: str(f) for t, f in files.items()}, ignored_columns=ignored)


def _location_frame(locations) -> pd.DataFrame | None:
    if locations is None:
        return None
    if isinstance(locations, CXDataset):
        return locations.locations
    if isinstance(locations, pd.DataFrame):
        return locations
    return pd.DataFrame({"location_id": pd.Series(list(locations), dtype="str")})
