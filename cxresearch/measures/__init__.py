"""Measures, third stage: CX scores with their intervals, fair comparison of locations, retention,
revenue, the journey and the scorecard, all computed from the reductions' small frames."""

from cxresearch import lazy_exports

# imported on first use, so that a report needing only the measure's formatting (`measure`) does not
# load the engines or scipy
__getattr__, __dir__ = lazy_exports(
    globals(), {m: f"cxresearch.measures.{m}" for m in ("alerts", "compare", "intervals", "journey", "metrics", "retention",
                                                        "revenue", "scorecard", "terms", "text", "topics")},
    dict.fromkeys(("ces", "csat", "nps", "proportion", "summarize", "trend"), "cxresearch.measures.metrics"))

__all__ = ["alerts", "ces", "compare", "csat", "intervals", "journey", "metrics", "nps", "proportion", "retention", "revenue",
           "scorecard", "summarize", "terms", "text", "topics", "trend"]
