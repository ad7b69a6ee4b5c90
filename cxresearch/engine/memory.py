"""Data already in memory (a CXDataset, a DataFrame) as a `Source` on an embedded DuckDB, so that it
is reduced by the same queries as data on any engine: there is no second, in-memory implementation."""

from __future__ import annotations

import weakref

import pandas as pd

from cxresearch import schema
from cxresearch.engine.backends import duckdb_materialize, duckdb_register
from cxresearch.engine.source import PREFIX, Source
from cxresearch.io.dataset import CXDataset
from cxresearch.schema import ROW

__all__ = ["as_source", "frames_source"]


def as_source(data, table: str = "responses") -> Source:
    """Any input of the measures as a `Source`, so that every reduction runs one code path.

    A CXDataset's tables, or a DataFrame, are registered in an embedded DuckDB (timestamps as
    naive UTC, labels as text, `_row` numbering the rows in frame order) without being validated
    again. A CXDataset keeps its Source while its tables are the same frames, so several reductions
    of one dataset register it once: replace a table rather than editing it in place.

    Parameters
    ----------
    data : Source, CXDataset or DataFrame
        What to reduce; a Source is returned as it is.
    table : str, default "responses"
        The canonical table a DataFrame holds.

    Returns
    -------
    Source
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, CXDataset):
        key = tuple((id(data.table(name)), len(data.table(name))) for name in schema.TABLE_ORDER)
        cached = data.__dict__.get("_source")
        if cached is None or cached[0] != key:
            tables = {name: data.table(name) for name in schema.TABLE_ORDER}
            cached = (key, frames_source(tables, data.rejects, dict(data.read), dict(data.sources),
                                         dict(data.ignored_columns)))
            data.__dict__["_source"] = cached
        return cached[1]
    if isinstance(data, pd.DataFrame):
        return frames_source({table: data})
    raise TypeError(f"expected a Source, a CXDataset or a DataFrame, got {type(data).__name__}")


def frames_source(tables: dict, rejects=None, read=None, sources=None, ignored=None) -> Source:
    """A Source over frames already in memory and already valid (a CXDataset's, or one table's),
    on an embedded DuckDB closed when the Source is garbage-collected."""
    import ibis

    con = ibis.duckdb.connect(":memory:")
    con.raw_sql("SET TimeZone = 'UTC'")
    register = duckdb_register(con)
    accepted = {name: register(f"{PREFIX}{name}", _engine_frame(frame)) for name, frame in tables.items()}
    rejected = register(f"{PREFIX}rejects", rejects if rejects is not None else schema.empty_rejects())
    read = read if read is not None else {name: len(frame) for name, frame in tables.items()}
    source = Source(con, "duckdb", accepted, rejected, read, sources or {}, ignored or {},
                    materialize=duckdb_materialize(con), frames=tables)
    weakref.finalize(source, con.disconnect)
    return source


def _engine_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as the engine stores checked rows: naive UTC times, labels as text, and `_row`."""
    out = {}
    for name, values in frame.items():
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        elif isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype("str")
        elif isinstance(values.dtype, pd.PeriodDtype):
            values = values.dt.start_time
        out[str(name)] = values.reset_index(drop=True)
    if ROW not in out:
        out[ROW] = pd.Series(range(1, len(frame) + 1), dtype="int64")
    return pd.DataFrame(out)
