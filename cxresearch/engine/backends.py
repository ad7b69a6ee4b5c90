"""Where the data lives: one connection string picks the engine that validates and reduces raw events.

    src = cx.connect("data/sample")                       # DuckDB over the folder's files (the default)
    src = cx.connect("duckdb:///warehouse/brand.duckdb")  # canonical tables inside a DuckDB file
    src = cx.connect("data/sample", spark="local[2]")     # Spark: a master URL, a session or "sc://host"
    src = cx.connect("spark:data/sample")                 # the same, as one string for reports.yaml
    src = cx.connect("pandas:data/sample")                # all in memory: the same as cx.load_dataset
    src = cx.connect("postgres://user@host/brand")        # a warehouse Ibis supports, canonical table names

A `Source` checks every table on the engine with the ingest rules, written once as Ibis queries
(`cxresearch.engine.rules`), and keeps the checked rows and the rejects there as tables: nothing is
collected into memory to validate it. This is the only validation path: `load_dataset` is
`connect` on an embedded DuckDB with the tables fetched into pandas, and data already in memory (a
CXDataset, a DataFrame) is registered in an embedded DuckDB (`as_source`) so that every reduction
runs the same code on it. (On DuckDB, typed Parquet files and the tables of a DuckDB file are read
in place; only the rows that checking rejected or cleaned are stored.) The raw-event reductions
(`cxresearch.engine.reductions`) run there too and return small pandas frames of sufficient statistics,
so `metrics`, `compare`, `models` and the notebooks receive the same numbers whatever the engine. The small tables
(locations, customers, employee experience) and the responses are fetched on first use, as the
row-level statistics (key drivers, ICC) need them; transactions, the big table, never need to be.

Timestamps live on the engine as naive UTC; sessions are set to UTC so calendar periods agree.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import pandas as pd

from cxresearch import schema
from cxresearch.engine.source import PREFIX, Source
from cxresearch.io import mapping as mapping_mod
from cxresearch.io import qualtrics
from cxresearch.io.dataset import CXDataset
from cxresearch.io.files import IngestError, canonical_names, file_format, folder_tables, require_columns

__all__ = ["connect", "duckdb_materialize", "duckdb_register", "load_dataset", "local_files", "read_errors",
           "read_qualtrics", "resolve", "spark_session"]

log = logging.getLogger(__name__)

SPARK_ENV = "CXRESEARCH_SPARK"  # master or Spark Connect URL for "spark:<folder>" (default local[2])
SPARK_MEMORY_ENV = "CXRESEARCH_SPARK_DRIVER_MEMORY"  # heap of a session started here (default 4g; local mode runs in it)
ROW = schema.ROW  # 1-based record number in the source, carried by every engine table
OTHER_SOURCES = ", or a connection string such as duckdb:///brand.duckdb"
READ_IN_PLACE = True  # typed sources on DuckDB are read in place (tests switch it off to compare)


def connect(source="data/sample", *, spark=None, mapping=None, memory_limit: str | None = None,
            threads: int | None = None, scratch: str | Path | None = None):
    """Open a source on its engine and validate every table there.

    Parameters
    ----------
    source : str, Path, CXDataset or Source
        A folder of exports (read by DuckDB, the default), ``"duckdb:///file.duckdb"``,
        ``"spark:<folder>"`` (the master or Spark Connect URL from ``CXRESEARCH_SPARK``, default
        ``local[2]``), ``"pandas:<folder>"`` (the same checks, fetched into memory), or any Ibis URL
        (``"postgres://..."``) whose database holds the canonical tables. A dataset or Source is
        returned as it is.
    spark : SparkSession or str, optional
        A session, a master URL (``"local[2]"``) or a Spark Connect URL (``"sc://..."``): the folder
        is then read by Spark.
    mapping : dict, str or Path, optional
        A column mapping (see `cxresearch.io.mapping`); a folder's ``mapping.yaml`` by default.
    memory_limit : str, optional
        DuckDB's memory cap (``"3GB"``); beyond it DuckDB spills to `scratch`, by default a folder
        of its own in ``$TMPDIR/cxresearch-duckdb-<user>`` that only its user can read.
    threads : int, optional
        DuckDB's threads (default: one per core), for a machine shared with other work.
    scratch : str or Path, optional
        Where DuckDB spills.

    Returns
    -------
    Source
        The validated tables and their rejects on the engine (a CXDataset for ``"pandas:"``).

    Raises
    ------
    IngestError
        A folder or file that cannot be used as a whole (no locations table, a required column
        missing, an unreadable file); bad rows are rejects, not errors.
    """
    if isinstance(source, (CXDataset, Source)):
        return source
    text = str(source)
    if text.startswith("pandas:"):  # the same checks on an embedded DuckDB, fetched into memory
        return load_dataset(text.removeprefix("pandas:"), mapping)
    if text.startswith("spark:"):
        spark, text = spark or os.environ.get(SPARK_ENV, "local[2]"), text.removeprefix("spark:")
    if spark is not None:
        return _connect_spark(Path(text), spark, mapping)
    limits = {key: value for key, value in (("memory_limit", memory_limit), ("threads", threads)) if value}
    if text.startswith("duckdb://"):
        return _connect_duckdb_file(text.removeprefix("duckdb://"), limits, scratch)
    if "://" in text:
        return _connect_warehouse(text)
    return _connect_duckdb_folder(Path(text), mapping, limits, scratch)


def resolve(source, base) -> str:
    """A data setting (reports.yaml, --data) made absolute: folders relative to `base`, URLs untouched."""
    text = str(source)
    for prefix in ("spark:", "pandas:"):
        if text.startswith(prefix):
            return prefix + str((Path(base) / text.removeprefix(prefix)).resolve())
    if text.startswith("duckdb:///"):
        file = Path(text.removeprefix("duckdb://"))
        relative = Path(base) / text.removeprefix("duckdb:///")
        return f"duckdb://{file}" if file.is_file() or not relative.is_file() else f"duckdb://{relative.resolve()}"
    if "://" in text:
        return text
    return str((Path(base) / text).resolve())


def local_files(source) -> list[Path]:
    """The files behind a source, sorted: a folder's files or a DuckDB file; none for a warehouse."""
    text = str(source)
    for prefix in ("spark:", "pandas:"):
        text = text.removeprefix(prefix)
    if text.startswith("duckdb://"):
        file = Path(text.removeprefix("duckdb://"))
        return [file] if file.is_file() else []
    if "://" in text or not Path(text).is_dir():
        return []
    return sorted(p for p in Path(text).iterdir() if p.is_file())


def load_dataset(path, mapping=None) -> CXDataset:
    """Read, validate and return the CX tables of a folder, in memory (pandas).

    The same validation as `connect`: it is `connect` on an embedded DuckDB, fetched.

    Parameters
    ----------
    path : str or Path
        A folder with one file per table (``locations.csv``, ``responses.parquet``, ...): a
        locations table and at least one of responses and transactions.
    mapping : dict, str or Path, optional
        A column mapping, or a YAML file holding one; ``path/mapping.yaml`` is used if it exists.

    Returns
    -------
    CXDataset
        The accepted rows in canonical dtypes, `rejects` (one row per refused row, with its
        reason) and the accounting (read = accepted + rejected per table).

    Raises
    ------
    IngestError
        A folder or file that cannot be used as a whole.
    MappingError
        A mapping that does not fit the schema (checked before any data is read).
    """
    with _connect_duckdb_folder(Path(path), mapping, {}, None) as source:
        return source.to_dataset()


def read_qualtrics(path, mapping=None, locations=None) -> CXDataset:
    """Read one Qualtrics CSV export into the responses table of a CXDataset.

    Parameters
    ----------
    path : str or Path
        The export (three header rows: column names, question texts, ImportIds).
    mapping : dict, str or Path, optional
        The responses section (columns, values, timezone) or a full mapping with a ``responses:``
        section; keys may be the export's column names, question texts or ImportIds.
    locations : ids, DataFrame or CXDataset, optional
        Known locations, so that unknown location_ids are rejected; without them they are not checked.

    Returns
    -------
    CXDataset
        The responses; preview, test and spam responses are rejects with their reason.
    """
    settings = mapping_mod.read_mapping(mapping)
    if "responses" not in settings:
        settings = {"responses": settings}
    mapping_mod.check_mapping(settings, str(mapping) if isinstance(mapping, (str, Path)) else "mapping")
    options = mapping_mod.table_options(settings, "responses") | {"format": "qualtrics"}
    con, close = _duckdb({}, None)
    register = duckdb_register(con)
    raws = {}
    known = _location_frame(locations)
    if known is not None:
        raws["locations"] = _Raw(register(f"{PREFIX}locations_given", _numbered(known)), "table", {}, "(given)")
    raws["responses"] = _qualtrics_raw(register, "responses", Path(path), options)
    with _validated(con, "duckdb", raws, close, materialize=duckdb_materialize(con), register=register) as source:
        return source.to_dataset()


def _numbered(frame: pd.DataFrame, rows=None) -> pd.DataFrame:
    """`frame` with its record numbers (`rows`, default 1..n) as `_row`, first."""
    numbered = frame.reset_index(drop=True)
    numbered.insert(0, ROW, pd.Series(range(1, len(frame) + 1) if rows is None else list(rows), dtype="int64"))
    return numbered


def _location_frame(locations) -> pd.DataFrame | None:
    if locations is None:
        return None
    if isinstance(locations, CXDataset):
        return locations.locations
    if isinstance(locations, pd.DataFrame):
        return locations
    return pd.DataFrame({"location_id": pd.Series(list(locations), dtype="str")})


# -- DuckDB ------------------------------------------------------------------------------------------

def _duckdb(limits: dict, scratch):
    """A DuckDB connection that spills to a scratch folder (so tables can exceed memory), in UTC, with
    the caller's limits (memory_limit, threads)."""
    import ibis

    if scratch:
        folder = Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        spill = folder / "spill"
    else:  # named, not made: DuckDB creates it only if it spills, so a killed kernel leaves no empty folder
        folder = spill = _private_scratch() / uuid.uuid4().hex
    settings = {"temp_directory": str(spill), **limits}
    # An in-memory database whose blocks spill to the scratch folder beyond the memory limit: faster to
    # fill than a database file, and still out of core. Its session runs in UTC whatever the machine's
    # time zone, so that calendar periods and the naive UTC times agree.
    con = ibis.duckdb.connect(":memory:", **settings)
    con.raw_sql("SET TimeZone = 'UTC'")

    def close():
        con.disconnect()
        if not scratch:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(close) if not scratch else None
    return con, close


def _private_scratch() -> Path:
    """This user's folder for spilled blocks (customer data), readable by nobody else: made once per
    user, as DuckDB would make a spill folder readable by all."""
    folder = Path(tempfile.gettempdir()) / f"cxresearch-duckdb-{getpass.getuser()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    status = folder.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise PermissionError(f"{folder} belongs to another user or is readable by others; remove it, "
                              "or pass cx.connect(..., scratch=) a private folder")
    return folder


def duckdb_register(con):
    """A function that stores a pandas frame as a table of the DuckDB connection `con`."""
    def register(name, frame):
        return con.create_table(name, frame, overwrite=True)
    return register


def _connect_duckdb_folder(folder: Path, mapping, limits: dict, scratch) -> Source:
    settings, files = folder_tables(folder, mapping, OTHER_SOURCES)
    con, close = _duckdb(limits, scratch)
    register = duckdb_register(con)
    raws = {}
    for table, file in files.items():
        options = mapping_mod.table_options(settings, table)
        fmt = file_format(file, options)
        path = str(file.resolve()).replace("'", "''")
        if fmt == "qualtrics":
            raws[table] = _qualtrics_raw(register, table, file, options)
            continue
        if file.stat().st_size == 0:
            raise IngestError(f"{file}: the file is empty; expected a header row with the column names")
        if fmt == "parquet":
            sql = (f"SELECT file_row_number + 1 AS {ROW}, * EXCLUDE (file_row_number) "
                   f"FROM read_parquet('{path}', file_row_number = true)")
        else:
            delim = options.get("delimiter", ",").replace("'", "''")
            sql = (f"SELECT row_number() OVER () AS {ROW}, * FROM read_csv('{path}', all_varchar = true, "
                   f"header = true, delim = '{delim}', quote = '\"', escape = '\"', nullstr = '')")
        with read_errors(file, fmt):
            raws[table] = _Raw(con.sql(sql), fmt, options, file)
    return _validated(con, "duckdb", raws, close, materialize=duckdb_materialize(con), register=register)


def _connect_duckdb_file(path: str, limits: dict, scratch) -> Source:
    """Canonical tables stored in a DuckDB database file, attached read-only beside the scratch database.
    A base table whose rowids run 0..n-1 is numbered by rowid + 1 and read in place; a view, or a
    table with gaps in its rowids or a column of its own named rowid, is numbered in scan order and
    its checked rows are copied. Either way row k is the k-th row a Parquet export would hold."""
    file = Path(path)
    if not file.is_file() and path.startswith("/") and Path(path[1:]).is_file():
        file = Path(path[1:])  # duckdb:///brand.duckdb: relative to the working folder
    if not file.is_file():
        raise IngestError(f"{file}: no such DuckDB file")
    con, close = _duckdb(limits, scratch)
    con.raw_sql(f"ATTACH '{str(file.resolve())}' AS brand (READ_ONLY)")
    kinds = dict(con.raw_sql("SELECT table_name, table_type FROM information_schema.tables "
                             "WHERE table_catalog = 'brand' AND table_schema = 'main'").fetchall())
    raws = {}
    for table in schema.TABLE_ORDER:
        if kinds.get(table) == "BASE TABLE" and _rowids_number_rows(con, table):  # read in place
            raws[table] = _Raw(con.sql(f"SELECT rowid + 1 AS {ROW}, * FROM brand.main.{table}"), "duckdb", {},
                               f"{file.name}:{table}")
        elif table in kinds:  # numbered in scan order and copied when checked
            raws[table] = _Raw(con.sql(f"SELECT row_number() OVER () AS {ROW}, * FROM brand.main.{table}"),
                               "table", {}, f"{file.name}:{table}")
    _require_tables(raws, file)
    return _validated(con, "duckdb", raws, close, materialize=duckdb_materialize(con),
                      register=duckdb_register(con))


def _rowids_number_rows(con, table: str) -> bool:
    """Whether rowid + 1 is a stored table's record number: rowids run 0..n-1 (a DELETE leaves gaps
    until the file is compacted, which would renumber rows between runs) and no column of the table
    is itself named rowid (it would hide DuckDB's)."""
    columns = con.raw_sql("SELECT column_name FROM information_schema.columns WHERE table_catalog = 'brand' "
                          f"AND table_schema = 'main' AND table_name = '{table}'").fetchall()
    if any(name.lower() == "rowid" for (name,) in columns):
        return False
    rows, last = con.raw_sql(f"SELECT count(*), max(rowid) FROM brand.main.{table}").fetchone()
    return rows == 0 or last == rows - 1


def duckdb_materialize(con):
    def materialize(name, expr):
        con.drop_table(name, force=True)  # a reused scratch folder may hold the previous run's tables
        return con.create_table(name, expr)
    return materialize


# -- Spark -------------------------------------------------------------------------------------------

def spark_session(spark="local[2]"):
    """A SparkSession from a session, a master URL or a Spark Connect URL, with its time zone set to UTC."""
    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    if isinstance(spark, str):
        builder = SparkSession.builder.appName("cxresearch")
        builder = builder.remote(spark) if spark.startswith("sc://") else builder.master(spark)
        spark = (builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
                 .config("spark.driver.memory", os.environ.get(SPARK_MEMORY_ENV, "4g")).getOrCreate())
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def _connect_spark(folder: Path, spark, mapping) -> Source:
    import ibis

    session = spark_session(spark)
    settings, files = folder_tables(folder, mapping, OTHER_SOURCES)
    con = ibis.pyspark.connect(session)
    tag = uuid.uuid4().hex[:8]  # this Source's views, apart from another Source's on the session

    def register(name, frame):
        session.createDataFrame(frame).createOrReplaceTempView(f"{name}_{tag}")
        return con.table(f"{name}_{tag}")

    raws = {}
    for table, file in files.items():
        options = mapping_mod.table_options(settings, table)
        fmt = file_format(file, options)
        if fmt == "qualtrics":
            raws[table] = _qualtrics_raw(register, table, file, options)
            continue
        if fmt == "parquet":
            frame = session.read.parquet(str(file.resolve()))
        else:
            frame = (session.read.option("header", True).option("sep", options.get("delimiter", ","))
                     .option("quote", '"').option("escape", '"').option("multiLine", True)
                     .option("encoding", "UTF-8").csv(str(file.resolve())))
        view = f"{PREFIX}{table}_raw_{tag}"
        _with_row_numbers(frame).createOrReplaceTempView(view)
        raws[table] = _Raw(con.table(view), fmt, options, file)
    return _validated(con, "spark", raws, None, materialize=_spark_materialize(con, session, tag), register=register)


def _with_row_numbers(frame):
    """Add 1-based record numbers in file order without a single-partition window: each row's id
    within its partition plus the number of rows in the partitions before it."""
    from pyspark.sql import functions as F

    ids = frame.withColumn("_mid", F.monotonically_increasing_id())
    part = (F.col("_mid") / F.lit(1 << 33)).cast("long")
    counts = ids.groupBy(part.alias("_part")).count().orderBy("_part").collect()
    offsets, total = [], 0
    for row in counts:
        offsets.append((row["_part"], total))
        total += row["count"]
    spark = frame.sparkSession
    offset_frame = spark.createDataFrame(offsets or [(0, 0)], "_part long, _offset long")
    joined = ids.withColumn("_part", part).join(F.broadcast(offset_frame), "_part")
    row = F.col("_offset") + (F.col("_mid") - F.col("_part") * F.lit(1 << 33)) + F.lit(1)
    return joined.select(row.alias(ROW), *[F.col(f"`{c}`") for c in frame.columns])


def _spark_materialize(con, session, tag: str):
    """Store as temporary views named `<name>_<tag>`: the views of a session are shared, and each
    Source's own tag keeps a second Source on the same session from replacing the first one's tables."""
    def materialize(name, expr):
        # A local checkpoint computes the table once and cuts its lineage, so later queries read the
        # stored rows instead of re-optimizing the whole check plan (which trips a Spark pruning bug).
        frame = session.sql(str(con.compile(expr))).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(f"{name}_{tag}")
        return con.table(f"{name}_{tag}")
    return materialize


# -- a warehouse -------------------------------------------------------------------------------------

def _connect_warehouse(url: str) -> Source:
    """Any backend Ibis connects to by URL; its current database must hold the canonical table names."""
    import ibis

    con = ibis.connect(url)
    present = set(con.list_tables())
    raws = {table: _Raw(con.table(table).mutate(**{ROW: ibis.row_number() + 1}), "table", {},
                        f"{url.split('://')[0]}:{table}")
            for table in schema.TABLE_ORDER if table in present}
    _require_tables(raws, url)

    def materialize(name, expr):
        return con.create_table(name, expr, temp=True, overwrite=True)
    return _validated(con, con.name, raws, None, materialize=materialize, register=materialize)


# -- shared ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def read_errors(file, fmt: str):
    """An engine's error reading a file as an IngestError that names the file and what it should be."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        kind = {"parquet": "Parquet", "csv": "CSV (UTF-8)"}.get(fmt, fmt)
        raise IngestError(f"{file}: cannot be read as {kind}: {str(exc).splitlines()[0]}") from exc


class _Raw:
    """A table as the engine first sees it: the Ibis table (canonical or export column names, raw
    values, `_row`), its format, the mapping's options for it, where it came from, and what a
    pre-step already did: rows set aside as rejects (row, column, value, reason) and columns it
    did not load."""

    def __init__(self, expr, fmt: str, options: dict, file, set_aside=None, ignored=()):
        self.expr, self.fmt, self.options, self.file = expr, fmt, options, file
        self.set_aside, self.ignored = set_aside, list(ignored)


def _qualtrics_raw(register, table: str, file: Path, options: dict) -> _Raw:
    """The Qualtrics pre-step: the export reshaped in memory (`cxresearch.io.qualtrics`: three header
    rows, choice text to numbers, the account's time zone), then registered on the engine as text,
    so that the one validation checks it like any export. Previews, tests and spam are set aside."""
    if table != "responses":
        raise IngestError(f"{file}: a Qualtrics export holds survey responses, not {table}")
    try:
        frame, record, set_aside, ignored, timezone = qualtrics.read(file, options)
    except qualtrics.QualtricsFormatError as exc:
        raise IngestError(f"{file}: {exc}") from exc
    expr = register(f"{PREFIX}{table}_qualtrics", _numbered(frame.astype("str"), record))
    return _Raw(expr, "qualtrics", options | {"timezone": timezone}, file, set_aside, ignored)


def _require_tables(raws: dict, where) -> None:
    if "locations" not in raws:
        raise IngestError(f"{where}: no locations table")
    if not {"responses", "transactions"} & set(raws):
        raise IngestError(f"{where}: neither a responses nor a transactions table; expected at least one")


def _checked_and_valid(checked, raw, table: str, engine: str, in_place: bool, read: int, materialize):
    """The stored checked rows (all, or only the exceptions when the source is read in place) and
    the valid rows, duplicates not yet removed."""
    from cxresearch.engine import rules as checks

    if not in_place:
        # Checked rows are stored once, in the engine's columnar format: every reduction then reads
        # typed columns instead of parsing the source again (ten times faster per query on DuckDB).
        stored = materialize(f"{PREFIX}{table}_checked", checked.expr)
        return stored, checks.valid_rows(stored)
    stored = materialize(f"{PREFIX}{table}_checked", checks.exceptions(checked.expr))
    counts = stored.aggregate(rows=stored.count(), cleaned=stored.count(where=stored["_code"].isnull()))
    counts = counts.to_pyarrow().to_pylist()[0]
    valid = checks.valid_rows(stored, checks.typed_rows(raw, table, engine), counts["rows"] > 0)
    return stored, (materialize(f"{PREFIX}{table}_valid", valid) if counts["cleaned"] > read / 10 else valid)


def _validated(con, engine: str, raws: dict, close, materialize, register) -> Source:
    """Check each table in reference order and keep the checked rows and the rejects as engine tables.

    A CSV is copied into the engine first (all text), so the file is parsed once, and its checked rows
    are stored. A typed source on DuckDB (a Parquet file, a table of a DuckDB file) is read in place
    instead: only its exceptions (rows with a problem or a cleaned value) are stored, and the accepted
    rows are the source's rows with the exceptions swapped in. Clean exports then cost one checking
    pass and no copy, and scanning the source is as fast as scanning a stored table. When over a
    tenth of the rows needed cleaning, the accepted rows are stored after all. Files read in place
    must not change while the Source is open (raw exports are immutable here; a DuckDB file is
    attached read-only, which keeps writers out). Rows a pre-step set aside (Qualtrics previews)
    join the rejects and count as read. `register` stores a pandas frame on the engine."""
    accepted, rejects, read, sources, ignored = {}, [], {}, {}, {}
    for table in schema.TABLE_ORDER:
        if table not in raws:
            continue
        entry = raws[table]
        with read_errors(entry.file, entry.fmt):
            accepted[table], rejected, read[table], ignored_here = _checked_table(engine, table, entry, accepted,
                                                                                 materialize)
        rejects.append(rejected)
        if ignored_here:
            ignored[table] = ignored_here
        if entry.set_aside is not None and len(entry.set_aside):
            source = getattr(entry.file, "name", str(entry.file))
            aside = entry.set_aside.assign(table=table, source=source)[list(schema.REJECT_COLUMNS)]
            rejects.append(register(f"{PREFIX}{table}_set_aside", aside.astype(schema.REJECT_DTYPES)))
            read[table] += len(entry.set_aside)
        sources[table] = str(entry.file)
    union = rejects[0]
    for more in rejects[1:]:
        union = union.union(more.cast(union.schema()))
    return Source(con, engine, accepted, materialize(f"{PREFIX}rejects", union), read, sources, ignored,
                  on_close=close, materialize=materialize)


def _checked_table(engine: str, table: str, entry: _Raw, accepted: dict, materialize):
    """One table checked on the engine: its accepted rows, its rejects (engine tables), the rows
    read and the columns not loaded."""
    from cxresearch.engine import rules as checks

    raw, fmt, options, file = entry.expr, entry.fmt, entry.options, entry.file
    renamed, extra = canonical_names([c for c in raw.columns if c != ROW], table, options.get("columns", {}))
    if fmt == "qualtrics":  # (the pre-step renamed the columns and knows what it left out)
        renamed, extra = {c: c for c in raw.columns if c != ROW}, entry.ignored
    require_columns(list(renamed.values()), table, file)
    if extra:
        log.warning("%s: column(s) not in the %s schema ignored: %s", getattr(file, "name", file), table,
                    ", ".join(extra))
    raw = raw.select(raw[ROW], *[raw[h].name(c) for h, c in renamed.items()])
    if fmt == "csv":
        raw = materialize(f"{PREFIX}{table}_raw", raw)
    source, csv = getattr(file, "name", str(file)), fmt == "csv"
    in_place = (READ_IN_PLACE and engine == "duckdb" and fmt in ("parquet", "duckdb")
                and checks.storable(raw, table, options))
    checked = checks.check_rows(raw, table, accepted, options, csv, engine, flag_cleaned=in_place)
    read = int(raw.count().execute())
    stored, valid = _checked_and_valid(checked, raw, table, engine, in_place, read, materialize)
    duplicates = None
    if bool(checks.has_repeated_keys(valid, checked.key).execute()):
        duplicates = materialize(f"{PREFIX}{table}_duplicates", checks.duplicate_rows(valid, checked.key))
    rejected = materialize(f"{PREFIX}{table}_rejects", checks.reject_records(
        stored, duplicates, checked.labels, checked.key, raw, table, source, options, csv, engine))
    return checks.accepted_rows(valid, duplicates), rejected, read, extra
