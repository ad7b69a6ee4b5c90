"""cxresearch: customer-experience research for multi-location brands.

    import cxresearch as cx
    ds = cx.load_dataset("data/sample")     # validated tables + rejects
    ds.accounting()                         # read = accepted + rejected, per table

Modules, in the order data flows: schema (the data model), ingest (read and validate exports),
synth (a synthetic brand with a published truth); later: metrics, compare, retention, models,
reporting.
"""

from importlib.metadata import PackageNotFoundError, version

from . import schema
from .dataset import CXDataset
from .ingest import IngestError, load_dataset, read_qualtrics
from .mapping import MappingError

try:
    __version__ = version("cxresearch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["CXDataset", "IngestError", "MappingError", "load_dataset", "read_qualtrics", "schema", "__version__"]
