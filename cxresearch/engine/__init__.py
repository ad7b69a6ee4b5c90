"""Ingest and reduce, on the engine where the data live: `connect` opens and validates a source with
the one rule set (`rules`), `reductions` computes every raw-event statistic there, and `as_source`
brings data already in memory to an embedded DuckDB so that it goes through the same code.
"""

from cxresearch.engine.backends import connect, load_dataset, local_files, read_qualtrics, resolve, spark_session
from cxresearch.engine.memory import as_source, frames_source
from cxresearch.engine.source import Source

__all__ = ["Source", "as_source", "connect", "frames_source", "load_dataset", "local_files", "read_qualtrics",
           "resolve", "spark_session"]
