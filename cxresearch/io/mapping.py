"""Column mappings: how a brand's own export names and codes map onto the canonical schema.

A mapping is YAML (or the same structure as a dict), one section per table, every key optional:

    timezone: Europe/Berlin          # naive timestamps are local time here (default UTC)
    responses:
      file: survey_export.csv        # default: responses.csv, responses.csv.gz or responses.parquet
      format: qualtrics              # csv, parquet or qualtrics (default: from the file name)
      timezone: America/Denver       # overrides the top-level timezone for this table
      date_format: "%d/%m/%Y %H:%M"  # strftime format when timestamps are not ISO 8601
      delimiter: ";"                 # CSV field separator (default ",")
      columns:                       # export column -> canonical column
        Q1_NPS: nps
        "Store #": location_id
      values:                        # canonical column -> {export code: canonical value}
        channel: {"In Store": in_store, "Call centre": phone}

Mistakes in a mapping (an unknown table, key or canonical column) are errors, raised before any
data is read, so a typo never turns into silently missing data.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cxresearch import schema

__all__ = ["MappingError", "check_mapping", "load_mapping", "read_mapping", "table_options"]

TABLE_KEYS = {"file", "format", "timezone", "date_format", "delimiter", "columns", "values"}
READ_FORMATS = ("csv", "parquet", "qualtrics")


class MappingError(ValueError):
    """The column mapping itself is malformed."""


def load_mapping(mapping) -> dict:
    """Return a checked mapping dict from None, a dict, or a path to a YAML file."""
    settings = read_mapping(mapping)
    check_mapping(settings, str(mapping) if isinstance(mapping, (str, Path)) else "mapping")
    return settings


def read_mapping(mapping) -> dict:
    """The mapping as a dict (read from YAML if `mapping` is a path), not yet checked."""
    if mapping is None:
        return {}
    where = "mapping"
    if isinstance(mapping, (str, Path)):
        where = str(mapping)
        try:
            mapping = yaml.safe_load(Path(mapping).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise MappingError(f"{where}: cannot read the mapping file ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise MappingError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(mapping, dict):
        raise MappingError(f"{where}: expected a mapping of table names to settings, got {type(mapping).__name__}")
    return mapping


def check_mapping(mapping: dict, where: str = "mapping") -> None:
    """Raise MappingError naming the first thing in `mapping` that does not fit the schema."""
    for table, section in mapping.items():
        if table == "timezone":
            continue
        if table not in schema.TABLES:
            raise MappingError(f"{where}: unknown table {table!r}; expected one of "
                               f"{', '.join(schema.TABLE_ORDER)} (or timezone)")
        if not isinstance(section, dict):
            raise MappingError(f"{where}: section {table!r} must be a mapping")
        unknown = set(section) - TABLE_KEYS
        if unknown:
            raise MappingError(f"{where}: {table}: unknown setting(s) {', '.join(sorted(unknown))}; "
                               f"expected {', '.join(sorted(TABLE_KEYS))}")
        if section.get("format", "csv") not in READ_FORMATS:
            raise MappingError(f"{where}: {table}: format must be one of {', '.join(READ_FORMATS)}")
        spec = schema.TABLES[table]
        for source, target in (section.get("columns") or {}).items():
            if not spec.known(str(target)):
                raise MappingError(f"{where}: {table}: column {source!r} maps to {target!r}, which is not a "
                                   f"{table} column; expected one of {', '.join(spec.names)}")
        for target in section.get("values") or {}:
            if not spec.known(str(target)):
                raise MappingError(f"{where}: {table}: values given for {target!r}, which is not a {table} column")


def table_options(mapping: dict, table: str) -> dict:
    """Settings for one table, with the top-level timezone filled in where the mapping gives one."""
    options = dict(mapping.get(table) or {})
    if "timezone" in mapping:
        options.setdefault("timezone", mapping["timezone"])
    options["columns"] = {str(k): str(v) for k, v in (options.get("columns") or {}).items()}
    options["values"] = dict(options.get("values") or {})
    return options
