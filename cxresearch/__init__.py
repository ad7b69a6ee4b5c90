"""cxresearch: customer-experience research for multi-location brands.

    import cxresearch as cx
    ds = cx.load_dataset("data/sample")     # validated tables + rejects, in memory
    ds.accounting()                         # read = accepted + rejected, per table
    src = cx.connect("data/sample")         # the same, validated and reduced on DuckDB (or Spark)

Modules, in the order data flows: schema (the data model), ingest / validate / mapping /
qualtrics (read and validate exports), synth (a synthetic brand with a published truth), metrics
(NPS, CSAT, CES with intervals), compare (shrinkage, funnel limits, ICC), retention and revenue
(outcomes per customer and location), journey (channels, the 5A funnel, CX maturity).
"""

from importlib.metadata import PackageNotFoundError, version

from . import compare, journey, metrics, models, retention, revenue, schema, synth
from .dataset import CXDataset
from .engine import Source, connect, load_dataset, read_qualtrics
from .ingest import IngestError
from .mapping import MappingError
from .metrics import ces, csat, nps, proportion, summarize, trend

LAZY_MODULES = ("brand", "plots", "report", "reporting", "scorecard")  # heavy imports (matplotlib, nbconvert)


def __getattr__(name):
    """Import the presentation modules on first use, so `import cxresearch` stays quick for the CLI."""
    if name in LAZY_MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cxresearch' has no attribute {name!r}")


try:
    __version__ = version("cxresearch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["CXDataset", "IngestError", "MappingError", "Source", "ces", "compare", "connect", "csat", "journey",
           "load_dataset", "metrics", "models", "nps", "proportion", "read_qualtrics", "retention", "revenue", "schema",
           "summarize", "synth", "trend", "__version__"]
