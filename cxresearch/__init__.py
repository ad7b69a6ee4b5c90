"""cxresearch: customer-experience research for multi-location brands.

    import cxresearch as cx
    ds = cx.load_dataset("data/sample")     # validated tables + rejects, in memory
    ds.accounting()                         # read = accepted + rejected, per table
    src = cx.connect("data/sample")         # the same, validated and reduced on DuckDB (or Spark)
    cx.summarize(src, by="region")          # NPS, CSAT, CES with intervals, suppressed below min_n

Subpackages, in the order data flows (docs/design.md): `schema` (the data model), `io` (exports,
mappings, the in-memory dataset), `engine` (the one validation and the raw-event reductions, on
DuckDB, Spark or a warehouse), `measures` (metrics, compare, retention, revenue, journey,
scorecard), `models` (CX -> retention and revenue, drivers, what-if), `reports` (brand results,
prose, plots, the runner) and `synth` (a synthetic brand with a published truth).
"""

from importlib.metadata import PackageNotFoundError, version

from cxresearch import engine, io, measures, models, schema, synth
from cxresearch.engine import Source, as_source, connect, load_dataset, read_qualtrics
from cxresearch.io import CXDataset, IngestError, MappingError, importers
from cxresearch.measures import compare, journey, metrics, retention, revenue, scorecard
from cxresearch.measures.metrics import ces, csat, nps, proportion, summarize, trend

LAZY = {"reports": "cxresearch.reports", "plots": "cxresearch.reports.plots"}  # matplotlib, nbconvert: on first use


def __getattr__(name):
    """Import the report modules on first use, so `import cxresearch` stays quick for the command line."""
    if name in LAZY:
        import importlib

        return importlib.import_module(LAZY[name])
    raise AttributeError(f"module 'cxresearch' has no attribute {name!r}")


try:
    __version__ = version("cxresearch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["CXDataset", "IngestError", "MappingError", "Source", "as_source", "ces", "compare", "connect", "csat",
           "engine", "importers", "io", "journey", "load_dataset", "measures", "metrics", "models", "nps", "proportion",
           "read_qualtrics", "retention", "revenue", "schema", "scorecard", "summarize", "synth", "trend",
           "__version__"]
