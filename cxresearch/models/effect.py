"""`Effect`: what every model returns: the headline in business units with its interval, n, the
method and the caveats in plain words, and `.summary()` for the analyst; and `WhatIf`, a projection
from two effects. Both are plain data (pandas only), so a run's store can hold them and a report
read them back without loading statsmodels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxresearch.measures.measure import get

__all__ = ["Effect", "WhatIf"]


@dataclass
class Effect:
    """A model's headline effect with its interval, sample sizes, method and caveats."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    unit: str
    n: dict
    method: str
    caveats: str
    level: float = 0.95
    se: float = float("nan")
    details: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)
    model: object = None

    def __str__(self) -> str:
        sizes = ", ".join(f"{v:,} {k}" for k, v in self.n.items())
        unit = self.unit if self.unit == "%" else f" {self.unit}"
        return (f"{self.name}: {self.estimate:+.1f}{unit} ({self.level:.0%} CI {self.ci_low:+.1f} to "
                f"{self.ci_high:+.1f}; {sizes}). {self.caveats}")

    def to_dict(self) -> dict:
        return {"name": self.name, "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "se": self.se, "unit": self.unit, "level": self.level, "n": self.n, "method": self.method,
                "caveats": self.caveats}

    def summary(self) -> str:
        """The headline, the method, and the fitted model's own summary for the analyst."""
        parts = [str(self), f"Method: {self.method}"]
        if self.details is not None:
            parts.append(self.details.to_string())
        if self.model is not None and hasattr(self.model, "summary"):
            parts.append(str(self.model.summary()))
        return "\n\n".join(parts)


@dataclass
class WhatIf:
    """A scenario's projected gains per location and in total, with intervals from the effects' uncertainty."""

    scenario: str
    locations: pd.DataFrame
    total: dict
    assumptions: str
    level: float = 0.95
    measure: str = "nps"

    def __str__(self) -> str:
        t = self.total
        revenue = ("revenue not projected (no revenue effect)" if np.isnan(t["revenue_gain"]) else
                   f"projected extra revenue {t['revenue_gain']:+,.0f} per period ({self.level:.0%} CI "
                   f"{t['revenue_gain_ci_low']:+,.0f} to {t['revenue_gain_ci_high']:+,.0f})")
        retained = ("retention not projected (no retention gap)" if np.isnan(t["retained_gain"]) else
                    f"{t['retained_gain']:+,.0f} more customers retained per period ({t['retained_gain_ci_low']:+,.0f} "
                    f"to {t['retained_gain_ci_high']:+,.0f})")
        return (f"{self.scenario}: {t['locations_changed']} locations gain on average {t['mean_gain']:.1f} "
                f"{get(self.measure).unit}; {revenue} and {retained}. {self.assumptions}")
