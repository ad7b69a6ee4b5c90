"""Find a folder's exports and give their columns canonical names, before the one validation.

The folder holds one file per table, named after it (locations.csv, responses.parquet, ...) or
named in a column mapping (see `cxresearch.io.mapping`). Problems with a folder or a file as a whole
(a required column missing, a table nobody asked for, the same table twice) raise `IngestError`
naming the file, the column and what was expected, before any table is returned: nothing is ever
half-loaded. The rows themselves are checked by `cxresearch.engine.rules` on the engine
(`cx.connect`, which `cx.load_dataset` uses too).
"""

from __future__ import annotations

from pathlib import Path

from cxresearch import schema
from cxresearch.io import mapping as mapping_mod

__all__ = ["IngestError", "canonical_names", "file_format", "folder_tables", "locate_tables", "require_columns"]

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
DEFAULT_MAPPING_FILE = "mapping.yaml"
NA_TOKENS = ("NA", "N/A", "NULL", "null", "NaN", "nan")  # CSV cells read as missing (besides empty ones)
NOT_TABLES = ("rejects",)  # files `CXDataset.to_dir` writes beside the tables for the record


class IngestError(ValueError):
    """A file cannot be loaded as a whole: unreadable, a required column missing, or an unknown table."""


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


def canonical_names(headers, table: str, columns: dict[str, str]) -> tuple[dict, list[str]]:
    """{header: canonical name} for the headers that map to a column of `table`, and the ignored rest.

    The mapping's `columns` come first; other headers match a canonical name ignoring case and
    surrounding spaces."""
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


def require_columns(columns: list, table: str, file) -> None:
    """Raise IngestError naming the file when a required column of `table` is not among `columns`."""
    missing = [c for c in schema.TABLES[table].required if c not in columns]
    if missing:
        raise IngestError(f"{file}: required {table} column(s) missing: {', '.join(missing)}; "
                          f"found {', '.join(map(str, columns)) or 'no columns'}; "
                          f"expected {', '.join(schema.TABLES[table].required)} (map other names in the mapping)")
