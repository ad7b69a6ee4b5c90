"""The canonical CX data model: tables, columns, dtypes, required columns and allowed values.

Every other module reads and writes these tables, so this file is the one place that says what a
valid row looks like. `cxresearch.engine` enforces it on raw exports; `synth` produces it; `conform` casts a
frame that is already valid to the canonical dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Column", "Table", "conform", "data_dictionary", "empty", "empty_rejects", "table_columns"]

CHANNELS = ("in_store", "phone", "email", "web", "app", "social", "review")
JOURNEY_STAGES = ("aware", "appeal", "ask", "act", "advocate")  # Kotler's 5A path, in order
ATTRIBUTE_PREFIX = "attr_"  # responses.attr_<name>: 1-5 attribute ratings (staff, speed, ...)

# The CX scores every measure knows, their scales, and the NPS categories: said once, here.
METRICS = ("nps", "csat", "ces")
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
PROMOTER_MIN = 9  # NPS 9-10: promoters
PASSIVE_MIN = 7  # NPS 7-8: passives; 0-6: detractors
ROW = "_row"  # 1-based record number in the source, carried by every engine table

# Kinds of column and the pandas dtype each is stored as after ingest.
DTYPES = {
    "id": "str",
    "text": "str",
    "timestamp": "datetime64[us, UTC]",
    "float": "float64",
    "score": "Int8",  # nullable small integer: scores are whole numbers, missing is <NA>
    "category": "category",
}


@dataclass(frozen=True)
class Column:
    """One column of a canonical table: its kind, whether it is required, and what values are allowed."""

    name: str
    kind: str
    required: bool = False
    low: float | None = None  # inclusive bounds for numeric kinds
    high: float | None = None
    categories: tuple[str, ...] | None = None
    ordered: bool = False
    references: str | None = None  # name of the table whose key this column must match
    description: str = ""

    @property
    def dtype(self):
        if self.kind == "category":
            return pd.CategoricalDtype(list(self.categories), ordered=self.ordered)
        return DTYPES[self.kind]


@dataclass(frozen=True)
class Table:
    """A canonical table: its key column and its columns in canonical order."""

    name: str
    key: str
    columns: tuple[Column, ...]
    description: str = ""
    prefixed: Column | None = None  # template for a family of columns such as attr_*
    score_columns: tuple[str, ...] = field(default_factory=tuple)  # at least one must be present per row

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        """The column definition for `name`, including prefixed columns such as attr_staff."""
        for c in self.columns:
            if c.name == name:
                return c
        if self.prefixed is not None and name.startswith(self.prefixed.name):
            return Column(name, self.prefixed.kind, low=self.prefixed.low, high=self.prefixed.high,
                          description=self.prefixed.description)
        raise KeyError(f"{self.name} has no column {name!r}")

    def known(self, name: str) -> bool:
        try:
            self.column(name)
        except KeyError:
            return False
        return True


LOCATIONS = Table(
    "locations",
    key="location_id",
    description="One row per physical or virtual location of the brand.",
    columns=(
        Column("location_id", "id", required=True, description="Unique location identifier."),
        Column("name", "text", description="Display name."),
        Column("region", "text", description="Region the location belongs to."),
        Column("format", "text", description="Store format, e.g. flagship, mall, street, outlet."),
        Column("opened_on", "timestamp", description="Opening date (UTC midnight)."),
        Column("latitude", "float", low=-90, high=90, description="WGS84 latitude."),
        Column("longitude", "float", low=-180, high=180, description="WGS84 longitude."),
    ),
)

CUSTOMERS = Table(
    "customers",
    key="customer_id",
    description="Optional: one row per known customer.",
    columns=(
        Column("customer_id", "id", required=True, description="Unique customer identifier."),
        Column("home_location_id", "id", references="locations",
               description="The location the customer uses most."),
        Column("first_seen_on", "timestamp", description="First time the brand saw the customer."),
        Column("segment", "text", description="Customer segment label."),
    ),
)

RESPONSES = Table(
    "responses",
    key="response_id",
    description="One row per survey response (at least one of nps, csat, ces).",
    columns=(
        Column("response_id", "id", required=True, description="Unique response identifier."),
        Column("location_id", "id", required=True, references="locations",
               description="Location the response is about."),
        Column("responded_at", "timestamp", required=True, description="When the response was recorded (UTC)."),
        Column("customer_id", "id", references="customers", description="Responding customer, if known."),
        Column("channel", "category", categories=CHANNELS, description="Touchpoint the response is about."),
        Column("journey_stage", "category", categories=JOURNEY_STAGES, ordered=True,
               description="Kotler 5A stage: aware, appeal, ask, act, advocate."),
        Column("nps", "score", low=SCALES["nps"][0], high=SCALES["nps"][1], description="Likelihood to recommend, 0-10."),
        Column("csat", "score", low=SCALES["csat"][0], high=SCALES["csat"][1], description="Satisfaction, 1-5."),
        Column("ces", "score", low=SCALES["ces"][0], high=SCALES["ces"][1],
               description="Customer effort (ease), 1-7; higher is easier."),
        Column("comment", "text", description="Free-text comment."),
        Column("transaction_id", "id",
               description="The purchase the response rates, if known (links the score to that purchase)."),
    ),
    prefixed=Column(ATTRIBUTE_PREFIX, "score", low=1, high=5, description="Attribute rating, 1-5."),
    score_columns=METRICS,
)

TRANSACTIONS = Table(
    "transactions",
    key="transaction_id",
    description="One row per purchase.",
    columns=(
        Column("transaction_id", "id", required=True, description="Unique transaction identifier."),
        Column("customer_id", "id", required=True, references="customers", description="Buying customer."),
        Column("location_id", "id", required=True, references="locations",
               description="Location credited with the sale."),
        Column("occurred_at", "timestamp", required=True, description="When the purchase happened (UTC)."),
        Column("revenue", "float", required=True, low=0, description="Net revenue of the purchase, >= 0."),
        Column("channel", "category", categories=CHANNELS, description="Channel of the purchase."),
    ),
)

EMPLOYEE_EXPERIENCE = Table(
    "employee_experience",
    key="measurement_id",
    description="Optional: employee-experience pulse per location and period (service-profit chain).",
    columns=(
        Column("measurement_id", "id", required=True, description="Unique measurement identifier."),
        Column("location_id", "id", required=True, references="locations", description="Location measured."),
        Column("measured_at", "timestamp", required=True, description="Start of the period measured (UTC)."),
        Column("ex_score", "float", required=True, low=0, high=100,
               description="Employee-experience index, 0-100 (higher is better)."),
        Column("respondents", "float", low=0, description="Employees who answered the pulse."),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (LOCATIONS, CUSTOMERS, RESPONSES, TRANSACTIONS,
                                                EMPLOYEE_EXPERIENCE)}
# Load order: a table is validated after every table its columns reference.
TABLE_ORDER = ("locations", "customers", "responses", "transactions", "employee_experience")
# Tables a dataset may lack (an absent file loads as an empty table).
OPTIONAL_TABLES = ("customers", "responses", "transactions", "employee_experience")

REJECT_COLUMNS = ("table", "source", "row", "column", "value", "reason")
REJECT_DTYPES = {"table": "str", "source": "str", "row": "int64", "column": "str", "value": "str", "reason": "str"}


def table_columns(table: str, frame: pd.DataFrame | None = None) -> list[str]:
    """Canonical column order for `table`, with any prefixed columns (attr_*) present in `frame`."""
    spec = TABLES[table]
    names = spec.names
    if frame is not None and spec.prefixed is not None:
        names = names + sorted(c for c in frame.columns if c.startswith(spec.prefixed.name))
    return names


def empty(table: str) -> pd.DataFrame:
    """An empty frame of `table` with the canonical columns and dtypes."""
    spec = TABLES[table]
    return pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in spec.columns})


def empty_rejects() -> pd.DataFrame:
    """An empty rejects table: which table, source file, 1-based data row, column, raw value, reason."""
    return pd.DataFrame({column: pd.Series([], dtype=dtype) for column, dtype in REJECT_DTYPES.items()})


def conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cast an already-valid frame to the canonical columns, order and dtypes of `table`.

    Missing optional columns are added empty; columns outside the schema are kept after the
    canonical ones. Raises ValueError when a required column is absent. This does not validate
    values: use `cx.connect` or `cx.load_dataset` for untrusted data.
    """
    spec = TABLES[table]
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: required column(s) missing: {', '.join(missing)}")
    out = {}
    for name in table_columns(table, frame):
        col = spec.column(name)
        values = frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index)
        out[name] = _cast(values, col)
    extra = [c for c in frame.columns if c not in out]
    for name in extra:
        out[name] = frame[name]
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _cast(values: pd.Series, col: Column) -> pd.Series:
    values = values.reset_index(drop=True)
    if col.kind == "timestamp":
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.tz_convert("UTC").astype(col.dtype)
        parsed = pd.to_datetime(values, utc=True)
        return parsed.astype(col.dtype)
    if col.kind == "score":
        return pd.to_numeric(values).astype(col.dtype)
    if col.kind == "float":
        return pd.to_numeric(values).astype(col.dtype)
    return values.astype(col.dtype)


def data_dictionary() -> str:
    """The data dictionary as Markdown, one table per canonical table (data/README.md embeds it)."""
    parts = []
    for name in TABLE_ORDER:
        spec = TABLES[name]
        parts.append(f"### {name}\n\n{spec.description} Key: `{spec.key}`.\n")
        parts.append("| column | type | required | allowed | meaning |\n|---|---|---|---|---|")
        columns = list(spec.columns) + ([spec.prefixed] if spec.prefixed is not None else [])
        for col in columns:
            label = f"{col.name}*" if col is spec.prefixed else col.name
            dtype = "category" if col.kind == "category" else col.dtype
            parts.append(f"| `{label}` | {col.kind} (`{dtype}`) | {'yes' if col.required else ''} "
                         f"| {_allowed(col)} | {col.description} |")
        parts.append("")
    return "\n".join(parts)


def _allowed(col: Column) -> str:
    if col.categories:
        return ", ".join(col.categories)
    if col.low is not None and col.high is not None:
        return f"{col.low:g} to {col.high:g}"
    if col.low is not None:
        return f">= {col.low:g}"
    if col.references:
        return f"a `{col.references}` key"
    return ""
