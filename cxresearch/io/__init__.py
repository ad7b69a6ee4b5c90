"""Ingest, first stage: the in-memory dataset, which file holds which table, column mappings, the
Qualtrics reshape and the importers of public or vendor exports (`importers`). The rows themselves are
checked on an engine (`cxresearch.engine`)."""

from cxresearch.io import importers
from cxresearch.io.dataset import CXDataset
from cxresearch.io.files import IngestError
from cxresearch.io.mapping import MappingError

__all__ = ["CXDataset", "IngestError", "MappingError", "importers"]
