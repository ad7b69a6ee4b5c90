"""What a report notebook starts with: one call opens its data on their engine and the brand-level
results every report of a run shares, so that the notebooks hold no set-up code of their own."""

from __future__ import annotations

import warnings

from cxresearch.engine import connect
from cxresearch.measures.metrics import DEFAULT_MIN_N
from cxresearch.reports import plots
from cxresearch.reports.brand import BrandResults, brand_results, fingerprint

__all__ = ["open_report"]


def open_report(data, mapping=None, *, horizon_days: int = 180, min_n: int = DEFAULT_MIN_N, period: str = "Q",
                cache_dir=None, seed: int = 0, measure: str | None = "auto", score_window_days: int = 30,
                min_gap_hours: float = 24, results: bool = True) -> tuple[object, BrandResults | None]:
    """The data of a report (a Source on its engine, from `cx.connect`) and the brand results.

    The arguments are the notebooks' parameters (`measure`: nps, csat, ces or auto). With
    `results=False` only the data are opened (the data-quality report needs no model, so it runs
    even when the data hold no score at all). With `cache_dir` (set by `cxresearch run`) the brand
    results are computed once per run and read by every notebook, keyed by the data's fingerprint.
    Also sets the charts' style and quiets the libraries' FutureWarnings, which readers cannot act on.
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    plots.set_style()
    dataset = connect(data, mapping=mapping)
    if not results:
        return dataset, None
    shared = brand_results(dataset, horizon_days=horizon_days, min_n=min_n, period=period, cache_dir=cache_dir,
                           fingerprint=fingerprint(data) if cache_dir else None, seed=seed, measure=measure,
                           score_window_days=score_window_days, min_gap_hours=min_gap_hours)
    return dataset, shared
