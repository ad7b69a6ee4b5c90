"""Models, the fourth stage: they link CX to outcomes, each returning an `Effect`: the headline in business units with
its 95% interval, n, the method and the caveats in plain words, and `.summary()` for the analyst.

All links are observational (docs/design.md): the models adjust for location mix, use within-location
variation where the data allow, cluster standard errors by location, and say so next to the number.

- `retention_effect`: customer-level binomial GLM of retained-within-horizon on the NPS group at the
  anchor plus region, format, channel and segment, with the NPS-group effect allowed to differ by each
  of them (group x covariate interactions), fitted on counts per cell (identical to the customer-level
  logit because every regressor is categorical), standard errors clustered by location; headline =
  average marginal effect promoter vs detractor in percentage points (delta method).
  `survival_check` is the Cox cross-check that also uses censored customers.
"""

from cxresearch.models.effect import Effect
from cxresearch.models.key_drivers import drivers
from cxresearch.models.panel import ex_effect, revenue_effect, two_way_demean, wild_cluster_interval
from cxresearch.models.retention import retention_effect, survival_check
from cxresearch.models.scenarios import WhatIf, what_if

__all__ = ["Effect", "WhatIf", "drivers", "ex_effect", "retention_effect", "revenue_effect", "survival_check",
           "two_way_demean", "what_if", "wild_cluster_interval"]
