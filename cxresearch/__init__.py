"""cxresearch: customer-experience research for multi-location brands.

    import cxresearch as cx
    ds = cx.load_dataset("data/sample")     # validated tables + rejects, in memory
    ds.accounting()                         # read = accepted + rejected, per table
    src = cx.connect("data/sample")         # the same, validated and reduced on DuckDB (or Spark)
    cx.summarize(src, by="region")          # NPS, CSAT, CES with intervals, suppressed below min_n

Subpackages, in the order data flows (docs/design.md): `schema` (the data model), `io` (exports,
mappings, the in-memory dataset), `engine` (the one validation and the raw-event reductions, on
DuckDB, Spark or a warehouse), `measures` (metrics, compare, retention, revenue, journey,
scorecard, text), `models` (CX -> retention and revenue, drivers, what-if), `reports` (brand results,
prose, plots, the runner) and `synth` (a synthetic brand with a published truth).
"""

from importlib.metadata import PackageNotFoundError, version

# Everything is imported on first use (PEP 562), so `import cxresearch` costs almost nothing: a report
# that only reads a run's results never loads the engines (Ibis, DuckDB), statsmodels or scipy, and
# the command line starts quickly. `cx.connect` imports the engine the first time it is used.
SUBMODULES = {"engine": "cxresearch.engine", "io": "cxresearch.io", "measures": "cxresearch.measures",
              "models": "cxresearch.models", "schema": "cxresearch.schema", "synth": "cxresearch.synth",
              "importers": "cxresearch.io.importers", "compare": "cxresearch.measures.compare",
              "journey": "cxresearch.measures.journey", "metrics": "cxresearch.measures.metrics",
              "retention": "cxresearch.measures.retention", "revenue": "cxresearch.measures.revenue",
              "scorecard": "cxresearch.measures.scorecard", "reports": "cxresearch.reports",
              "plots": "cxresearch.reports.plots", "text": "cxresearch.measures.text"}
NAMES = {"Source": "cxresearch.engine", "alerts": "cxresearch.measures.alerts", "as_source": "cxresearch.engine",
         "connect": "cxresearch.engine",
         "load_dataset": "cxresearch.engine", "read_qualtrics": "cxresearch.engine", "CXDataset": "cxresearch.io",
         "IngestError": "cxresearch.io", "MappingError": "cxresearch.io", "ces": "cxresearch.measures.metrics",
         "csat": "cxresearch.measures.metrics", "nps": "cxresearch.measures.metrics",
         "proportion": "cxresearch.measures.metrics", "summarize": "cxresearch.measures.metrics",
         "trend": "cxresearch.measures.metrics"}


def lazy_exports(namespace: dict, submodules: dict[str, str], names: dict[str, str]):
    """A package's `__getattr__` and `__dir__` (PEP 562) that import its `submodules` (attribute ->
    module) and `names` (attribute -> the module defining it) on first use, then keep them in
    `namespace` (the package's globals) so later lookups are plain attribute reads."""
    import importlib

    package = namespace["__name__"]

    def __getattr__(name):
        if name in submodules:
            value = importlib.import_module(submodules[name])
        elif name in names:
            value = getattr(importlib.import_module(names[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(submodules) | set(names))

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(globals(), SUBMODULES, NAMES)


try:
    __version__ = version("cxresearch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["CXDataset", "IngestError", "MappingError", "Source", "alerts", "as_source", "ces", "compare", "connect", "csat",
           "engine", "importers", "io", "journey", "load_dataset", "measures", "metrics", "models", "nps", "proportion",
           "read_qualtrics", "reports", "retention", "revenue", "schema", "scorecard", "summarize", "synth", "text",
           "trend", "__version__"]
