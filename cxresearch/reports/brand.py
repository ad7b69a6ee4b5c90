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
import pickle
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxresearch import models
from cxresearch.measures import compare, retention
from cxresearch.measures import metrics as mx
from cxresearch.measures.scorecard import location_scorecard

__all__ = ["BrandResults", "brand_results", "fingerprint"]


@dataclass
class BrandResults:
    """What the reports share: scorecard, brand summary, customer table and the fitted effects."""

    scorecard: pd.DataFrame
    brand: pd.Series
    by_period: pd.DataFrame
    customers: pd.DataFrame
    retention: models.Effect | None
    revenue: models.Effect | None
    ex: models.Effect | None
    drivers: pd.DataFrame | None
    consistency: pd.Series
    problems: dict

    def importance(self, driver: str) -> float:
        """A driver's share of the explained variation in NPS brand-wide (e.g. 'attr_staff'); NaN when
        the drivers could not be estimated or `driver` is not one of them."""
        if self.drivers is None:
            return float("nan")
        return float(self.drivers.set_index("driver")["importance"].get(driver, float("nan")))


def brand_results(dataset, horizon_days: int = 180, min_n: int = mx.DEFAULT_MIN_N, period: str = "Q",
                  cache_dir=None, fingerprint: str | None = None, seed: int = 0) -> BrandResults:
    """Compute (or read from `cache_dir`) the brand-level results. A model that cannot be fitted on
    these data is None and its reason is in `.problems`, so a report can say why instead of failing."""
    key = None
    if cache_dir is not None and fingerprint is not None:
        settings = json.dumps([fingerprint, horizon_days, min_n, period, seed], sort_keys=True)
        key = Path(cache_dir) / f"brand-{hashlib.sha256(settings.encode()).hexdigest()[:16]}.pkl"
        if key.exists():
            return pickle.loads(key.read_bytes())
    result = _compute(dataset, horizon_days, min_n, period, seed)
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        temporary = key.with_suffix(".tmp")
        temporary.write_bytes(pickle.dumps(result))
        temporary.replace(key)  # atomic: a parallel reader sees the whole file or none
    return result


def _compute(dataset, horizon_days, min_n, period, seed) -> BrandResults:
    problems = {}

    def attempt(name, fit):
        try:
            effect = fit()
        except ValueError as exc:
            problems[name] = str(exc)
            return None
        return dataclasses.replace(effect, model=None) if isinstance(effect, models.Effect) else effect

    customers = retention.customer_table(dataset, horizon_days=horizon_days)
    return BrandResults(
        scorecard=location_scorecard(dataset, min_n=min_n, period=period),
        brand=mx.summarize(dataset.responses, min_n=min_n).iloc[0],
        by_period=mx.summarize(dataset.responses, period=period, min_n=min_n),
        customers=customers,
        retention=attempt("retention", lambda: models.retention_effect(customers, by="region")),
        revenue=attempt("revenue", lambda: models.revenue_effect(dataset, period=period, seed=seed)),
        ex=attempt("ex", lambda: models.ex_effect(dataset, period=period)),
        drivers=attempt("drivers", lambda: models.drivers(dataset.responses, seed=seed)),
        consistency=compare.consistency(dataset.responses).iloc[0],
        problems=problems)


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
