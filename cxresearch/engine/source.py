"""`Source`: validated CX tables living on an engine, with the rejects kept there too."""

from __future__ import annotations

import pandas as pd

from cxresearch import schema
from cxresearch.io.dataset import CXDataset, accounting_table, summary_lines
from cxresearch.schema import ROW

__all__ = ["Source"]

PREFIX = "cx_"  # engine tables this package writes: cx_<table>_checked, cx_<table>_rejects, cx_rejects


class Source:
    """Validated CX tables living on an engine, with the rejects kept there too.

    `table(name)` is the Ibis table of accepted rows (canonical columns plus `_row`, the record
    number in the source). `locations`, `customers`, `responses`, `employee_experience` and
    `transactions` fetch a table into pandas (canonical dtypes, source order) on first use, so a
    Source can stand in for a CXDataset; `rejects` fetches the rejects, `rejects_table` leaves them
    on the engine. `accounting()` shows read = accepted + rejected per table, counted by the engine.
    """

    def __init__(self, con, engine: str, accepted: dict, rejects, read: dict[str, int], sources: dict[str, str],
                 ignored_columns: dict[str, list[str]], on_close=None, materialize=None, frames=None):
        self.con, self.engine = con, engine
        self._frames = frames or {}  # the in-memory tables a Source over frames was made from
        self.in_memory = frames is not None  # registered from memory, not checked here
        self._materialize, self._cached, self._memos = materialize, 0, {}
        self._accepted, self.rejects_table = accepted, rejects
        self.read, self.sources, self.ignored_columns = read, sources, ignored_columns
        self._fetched: dict[str, pd.DataFrame] = {}
        self._on_close = on_close
        self._accepted_counts: dict[str, int] | None = None

    # -- tables on the engine ----------------------------------------------------------------------
    def has(self, name: str) -> bool:
        """Whether the source holds table `name` (optional tables may be absent)."""
        return name in self._accepted

    def table(self, name: str):
        """Accepted rows of `name` as an Ibis table (canonical columns and `_row`)."""
        if name not in schema.TABLES:
            raise KeyError(f"unknown table {name!r}; expected one of {', '.join(schema.TABLE_ORDER)}")
        if name not in self._accepted:
            raise KeyError(f"this source has no {name} table")
        return self._accepted[name]

    def cache(self, expr):
        """Store an intermediate result (per-customer facts, say) as an engine table, so a query that
        uses it twice does not compute it twice."""
        if self._materialize is None:
            return expr
        self._cached += 1
        return self._materialize(f"{PREFIX}step_{self._cached}", expr)

    def memo(self, name: str, build):
        """What `build()` returns, built once per source: for an intermediate result several
        reductions share (each customer's purchase facts, the end of the data)."""
        if name not in self._memos:
            self._memos[name] = build()
        return self._memos[name]

    # -- tables fetched into pandas ----------------------------------------------------------------
    def fetch(self, name: str) -> pd.DataFrame:
        """Table `name` in pandas with canonical dtypes, in source order (cached)."""
        if name not in self._fetched:
            if name in self._frames:
                self._fetched[name] = self._frames[name]
            elif name not in self._accepted:
                self._fetched[name] = schema.empty(name)
            else:
                frame = self.table(name).order_by(ROW).drop(ROW).to_pyarrow().to_pandas()
                self._fetched[name] = schema.conform(frame, name)
        return self._fetched[name]

    def key_dtype(self, name: str):
        """The pandas dtype of a column a reduction groups by: the frame's own for a Source over
        frames, else the canonical one (text for a column outside the schema)."""
        for frame in self._frames.values():
            if name in frame.columns:
                return frame[name].dtype
        for table in ("responses", "transactions", "locations"):
            if schema.TABLES[table].known(name):
                return schema.TABLES[table].column(name).dtype
        return "str"

    locations = property(lambda self: self.fetch("locations"))
    customers = property(lambda self: self.fetch("customers"))
    responses = property(lambda self: self.fetch("responses"))
    transactions = property(lambda self: self.fetch("transactions"))
    employee_experience = property(lambda self: self.fetch("employee_experience"))

    @property
    def rejects(self) -> pd.DataFrame:
        """All rejected rows in pandas (table, source, row, column, value, reason), ordered by table and row."""
        frame = self.rejects_table.to_pyarrow().to_pandas()
        if frame.empty:
            return schema.empty_rejects()
        order = {t: i for i, t in enumerate(schema.TABLE_ORDER)}
        frame = frame.assign(_t=frame["table"].map(order)).sort_values(["_t", "row"], kind="stable")
        return frame.drop(columns="_t").reset_index(drop=True).astype(schema.REJECT_DTYPES)

    def to_dataset(self) -> CXDataset:
        """Everything fetched into an in-memory CXDataset (for small data, tests and export)."""
        tables = {name: self.fetch(name) for name in schema.TABLE_ORDER}
        return CXDataset(**tables, rejects=self.rejects, read=dict(self.read), sources=dict(self.sources),
                         ignored_columns=dict(self.ignored_columns))

    # -- the record ----------------------------------------------------------------------------------
    def accepted_counts(self) -> dict[str, int]:
        if self._accepted_counts is None:
            self._accepted_counts = {name: int(self.table(name).count().execute()) if name in self._accepted else 0
                                     for name in schema.TABLE_ORDER}
        return self._accepted_counts

    def rejected_counts(self) -> dict[str, int]:
        counts = self.rejects_table.group_by("table").agg(rows=self.rejects_table.count()).to_pyarrow().to_pandas()
        found = dict(zip(counts["table"], counts["rows"]))
        return {name: int(found.get(name, 0)) for name in schema.TABLE_ORDER}

    def accounting(self) -> pd.DataFrame:
        """Rows read, accepted and rejected per table (counted on the engine), and whether they balance."""
        return accounting_table(self.read, self.accepted_counts(), self.rejected_counts(), self.sources)

    def rejects_by_reason(self) -> pd.DataFrame:
        """Count of rejected rows per table and reason, largest first (aggregated on the engine)."""
        r = self.rejects_table
        counts = r.group_by(["table", "reason"]).agg(rows=r.count()).to_pyarrow().to_pandas()
        return counts.sort_values(["rows", "table", "reason"], ascending=[False, True, True]).reset_index(drop=True)

    def summary(self) -> str:
        """The same plain lines as CXDataset.summary, with counts and date ranges from the engine."""
        ranges = {}
        for name, stamp in (("responses", "responded_at"), ("transactions", "occurred_at")):
            if name in self._accepted and self.accepted_counts()[name]:
                t = self.table(name)
                span = t.aggregate(low=t[stamp].min(), high=t[stamp].max()).to_pyarrow().to_pandas().iloc[0]
                ranges[name] = (span["low"], span["high"])
        return "\n".join(summary_lines(self.accepted_counts(), ranges, self.ignored_columns, self.accounting()))

    def close(self) -> None:
        """Drop the engine connection and any scratch files."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        counts = self.accepted_counts()
        return (f"<Source on {self.engine}: {counts['locations']:,} locations, {counts['responses']:,} responses, "
                f"{counts['transactions']:,} transactions>")
