"""Ingest, first stage: the in-memory dataset, which file holds which table, column mappings and the
Qualtrics reshape. The rows themselves are checked on an engine (`cxresearch.engine`)."""

from cxresearch.io.dataset import CXDataset
from cxresearch.io.files import IngestError
from cxresearch.io.mapping import MappingError

__all__ = ["CXDataset", "IngestError", "MappingError"]
