"""Brand-wide results that several reports share, computed once per run and cached.

The executive summary and every location deep dive need the same brand-level models (the retention
gap, the revenue effect, key drivers, the scorecard). Fitting them in each of 60 deep dives would
repeat the same minutes of work; `brand_results` computes them once and keeps them in a cache
folder that the runner gives every notebook, keyed by the data's content and the parameters, so a
stale result is never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np

from cxresearch import models
from cxresearch.measures import compare, retention
from cxresearch.measures import metrics as mx
from cxresearch.measures.measure import choose
from cxresearch.measures.scorecard import location_scorecard
from cxresearch.reports.results import BrandResults
from cxresearch.schema import ATTRIBUTE_PREFIX

__all__ = ["SETTINGS", "BrandResults", "brand_results", "fingerprint", "plain_reason"]


SETTINGS = ("horizon_days", "min_n", "period", "seed", "measure", "score_window_days", "min_gap_hours")


def brand_results(dataset, horizon_days: int = 180, min_n: int = mx.DEFAULT_MIN_N, period: str = "Q",
                  cache_dir=None, fingerprint: str | None = None, seed: int = 0, measure=None,
                  score_window_days: int = 30, min_gap_hours: float = 24) -> BrandResults:
    """Compute (or read from `cache_dir`) the brand-level results in the brand's measure.

    `measure` is 'nps', 'csat', 'ces', or None / 'auto' for NPS where the data have it, else CSAT,
    else CES (ValueError when the responses hold none of them). Any model that cannot be fitted on
    these data, for any reason, is None with its reason in `.problems`, so one model never stops
    the reports. `score_window_days` and `min_gap_hours` are those of `retention.customer_table`.
    """
    settings = {"horizon_days": horizon_days, "min_n": min_n, "period": period, "seed": seed,
                "measure": None if measure in (None, "auto") else measure, "score_window_days": score_window_days,
                "min_gap_hours": min_gap_hours}
    key = None
    if cache_dir is not None and fingerprint is not None:
        text = json.dumps([fingerprint, settings], sort_keys=True, default=str)
        key = Path(cache_dir) / f"brand-{hashlib.sha256(text.encode()).hexdigest()[:16]}.pkl"
        if key.exists():
            return pickle.loads(key.read_bytes())
    result = _compute(dataset, settings)
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        temporary = key.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(result))
        temporary.replace(key)  # atomic: a parallel reader sees the whole file or none
    return result


def _compute(dataset, settings) -> BrandResults:
    problems = {}
    chosen = choose(dataset, settings["measure"])
    min_n, period, seed = settings["min_n"], settings["period"], settings["seed"]

    def attempt(name, fit):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = fit()
            except Exception as exc:  # noqa: BLE001  any failure of one model becomes a stated reason
                problems[name] = plain_reason(exc)
                return None
        notes = sorted({str(w.message).split("\n")[0] for w in caught if _worth_saying(w)})
        if isinstance(result, models.Effect):
            result = dataclasses.replace(result, model=None)
            if notes:
                result.caveats = f"{result.caveats} The fit warned: {'; '.join(notes)}."
        return result

    customers = attempt("customers", lambda: retention.customer_table(
        dataset, horizon_days=settings["horizon_days"], score_window_days=settings["score_window_days"],
        min_gap_hours=settings["min_gap_hours"]))
    no_customers = problems.get("customers", "no customer table")
    if customers is not None:  # the measure's group of each customer's answer, for the reports' tables
        customers = customers.assign(cx_group=chosen.group(customers[chosen.name]))

    def needs_customers(fit):
        return (lambda: fit()) if customers is not None else _raise(no_customers)

    retention_fit = attempt("retention", needs_customers(
        lambda: models.retention_effect(customers, by="region", measure=chosen)))
    revenue_fit = attempt("revenue", lambda: models.revenue_effect(dataset, period=period, seed=seed, measure=chosen))
    what_if = None
    if revenue_fit is not None or retention_fit is not None:  # either half of the projection stands alone
        what_if = attempt("what_if", lambda: models.what_if(dataset, revenue_fit, retention_fit, period=period,
                                                            seed=seed))
    return BrandResults(
        measure=chosen,
        scorecard=location_scorecard(dataset, min_n=min_n, period=period, measure=chosen),
        brand=mx.summarize(dataset, min_n=min_n).iloc[0],
        headline=mx.summarize_measure(dataset, chosen, min_n=min_n).iloc[0],
        by_period=mx.summarize_measure(dataset, chosen, period=period, min_n=min_n),
        customers=customers,
        retention=retention_fit,
        survival=attempt("survival", needs_customers(lambda: models.survival_check(customers, measure=chosen))),
        revenue=revenue_fit,
        ex=attempt("ex", lambda: models.ex_effect(dataset, period=period, measure=chosen)),
        what_if=what_if,
        drivers=attempt("drivers", lambda: _drivers(dataset, chosen, seed)),
        consistency=attempt("consistency", lambda: compare.consistency(dataset.responses, metric=chosen).iloc[0]),
        trend=attempt("trend", lambda: mx.trend(dataset, chosen, by=None, period=period, min_n=min_n).iloc[0]),
        problems=problems, settings=settings)


def _drivers(dataset, measure, seed):
    """Key drivers of the measure: the attribute ratings where the brand collects them, else the
    categorical columns that vary (channel, journey stage, region, format)."""
    responses = dataset.responses
    attributes = [c for c in responses.columns if c.startswith(ATTRIBUTE_PREFIX)]
    if attributes:
        return models.drivers(responses, target=measure.name, seed=seed)
    with_places = responses.merge(dataset.locations[["location_id", "region", "format"]], on="location_id", how="left")
    categorical = [c for c in ("channel", "journey_stage", "region", "format")
                   if with_places[c].nunique(dropna=True) >= 2 and with_places[c].notna().mean() > 0.5]
    if not categorical:
        raise ValueError("there are no attribute ratings and no channel, journey stage, region or format that "
                         "varies, so there is nothing to explain the score with")
    return models.drivers(with_places, target=measure.name, attributes=[], categorical=categorical, seed=seed)


def _raise(reason):
    def fail():
        raise ValueError(reason)
    return fail


def _worth_saying(caught) -> bool:
    """A fitting library's own warning (statsmodels, scipy, numpy's overflow), not a deprecation notice."""
    category = caught.category
    if issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
        return False
    return category.__module__.split(".")[0] in ("statsmodels", "scipy", "numpy") or issubclass(category, RuntimeWarning)


def plain_reason(exc: BaseException) -> str:
    """Why a result could not be estimated, in words: a ValueError's own message (the package writes
    them for readers), else what kind of numerical failure it was."""
    kind = {ZeroDivisionError: "a division by zero (a group with no variation or no data)",
            np.linalg.LinAlgError: "a singular fit (too little variation in the data to separate the effects)",
            OverflowError: "a numerical overflow (the fit did not converge)"}
    for cls, text in kind.items():  # (numpy's LinAlgError is a ValueError: ask for the numerical kinds first)
        if isinstance(exc, cls):
            return f"the fit failed with {text}"
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"the fit failed ({type(exc).__name__}: {exc})"


def fingerprint(path) -> str:
    """SHA-256 over the data files (names and contents) behind a folder or connection string: the
    identity of the input. A warehouse has no local files: its connection string stands for it."""
    from cxresearch.engine import local_files

    digest = hashlib.sha256()
    files = local_files(path)
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    if not files:
        digest.update(str(path).encode())
    return digest.hexdigest()
