"""Models, the fourth stage: they link CX to outcomes, each returning an `Effect`: the headline in business units with
its 95% interval, n, the method and the caveats in plain words, and `.summary()` for the analyst.

All links are observational (docs/design.md): the models adjust for location mix, use within-location
variation where the data allow, cluster standard errors by location, and say so next to the number.

- `retention_effect`: customer-level binomial GLM of retained-within-horizon on the NPS group at the
  anchor plus region, format, channel and segment, with the NPS-group effect allowed to differ by each
  of them (group x covariate interactions), fitted on counts per cell (identical to the customer-level
  logit because every regressor is categorical); headline = average marginal effect top vs bottom
  group (promoter vs detractor for NPS) in percentage points, its standard error by the
  leave-one-location-out jackknife (CR3) and a t interval with locations - 1 degrees of freedom.
  `survival_check` is the Cox cross-check that also uses censored customers.
"""

from cxresearch import lazy_exports

# imported on first use: reading a fitted `Effect` back (a run's store) must not load statsmodels
__getattr__, __dir__ = lazy_exports(
    globals(), {m: f"cxresearch.models.{m}" for m in ("effect", "key_drivers", "panel", "retention", "scenarios")},
    {"Effect": "cxresearch.models.effect", "WhatIf": "cxresearch.models.effect", "drivers": "cxresearch.models.key_drivers",
     "ex_effect": "cxresearch.models.panel", "revenue_effect": "cxresearch.models.panel",
     "two_way_demean": "cxresearch.models.panel", "wild_cluster_interval": "cxresearch.models.panel",
     "retention_effect": "cxresearch.models.retention", "survival_check": "cxresearch.models.retention",
     "what_if": "cxresearch.models.scenarios"})

__all__ = ["Effect", "WhatIf", "drivers", "ex_effect", "retention_effect", "revenue_effect", "survival_check",
           "two_way_demean", "what_if", "wild_cluster_interval"]
