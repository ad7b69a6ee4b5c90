"""Measures, third stage: CX scores with their intervals, fair comparison of locations, retention,
revenue, the journey and the scorecard, all computed from the reductions' small frames."""

from cxresearch.measures import compare, intervals, journey, metrics, retention, revenue, scorecard
from cxresearch.measures.metrics import ces, csat, nps, proportion, summarize, trend

__all__ = ["ces", "compare", "csat", "intervals", "journey", "metrics", "nps", "proportion", "retention", "revenue",
           "scorecard", "summarize", "trend"]
