"""`BrandResults`: the brand-level results every report of a run shares (`brand.brand_results`
computes them). Plain data, importing nothing heavy, so that a report reading a run's store
(`store`) loads neither the engines nor statsmodels."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # (annotations only: importing them would load the models)
    from cxresearch import models
    from cxresearch.measures.measure import Measure

__all__ = ["BrandResults"]


@dataclass
class BrandResults:
    """What the reports share: the measure, scorecard, brand summary, customer table and the fitted effects.

    A result that could not be estimated on these data is None, and `problems` says why in plain
    words (the reports print it instead of failing); warnings a fit raised are in its caveats.
    """

    measure: Measure
    scorecard: pd.DataFrame
    brand: pd.Series  # every score the data have (summarize's units)
    headline: pd.Series  # the measure brand-wide, in its points
    by_period: pd.DataFrame  # the measure per period, in its points
    customers: pd.DataFrame | None
    retention: models.Effect | None
    survival: models.Effect | None
    revenue: models.Effect | None
    ex: models.Effect | None
    what_if: models.WhatIf | None
    drivers: pd.DataFrame | None
    consistency: pd.Series | None
    trend: pd.Series | None
    problems: dict
    settings: dict = dataclasses.field(default_factory=dict)

    def importance(self, driver: str) -> float:
        """A driver's share of the explained variation in the measure brand-wide (e.g. 'attr_staff');
        NaN when the drivers could not be estimated or `driver` is not one of them."""
        if self.drivers is None:
            return float("nan")
        return float(self.drivers.set_index("driver")["importance"].get(driver, float("nan")))
