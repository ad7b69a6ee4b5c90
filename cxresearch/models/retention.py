"""CX -> retention: the retention gap between promoters and detractors (a binomial GLM with
interactions, on counts per cell, clustered by location), and a Cox survival cross-check that also uses
censored customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from cxresearch.measures import metrics as mx
from cxresearch.models.effect import Effect

__all__ = ["retention_effect", "survival_check"]

DEFAULT_COVARIATES = ("region", "format", "anchor_channel", "segment")


def _usable_covariates(data: pd.DataFrame, covariates) -> list[str]:
    """Covariates present with at least two observed values (a constant cannot be adjusted for)."""
    return [c for c in covariates if c in data.columns and data[c].nunique(dropna=True) >= 2]


def _cells(data: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Customers per cell of the categorical regressors: retained count and n."""
    frame = data[keys].astype("str").fillna("unknown").replace({"<NA>": "unknown", "nan": "unknown"})
    frame["retained"] = data["retained"].astype("float64").to_numpy()
    return frame.groupby(keys, observed=True, sort=True)["retained"].agg(["sum", "size"]).reset_index()


def _design(cells: pd.DataFrame, group: str, covariates: list[str]) -> pd.DataFrame:
    """Intercept, NPS-group dummies (reference: detractor) and covariate dummies (reference: first level)."""
    parts = [pd.Series(1.0, index=cells.index, name="const")]
    for level in ("passive", "promoter"):
        parts.append((cells[group] == level).astype("float64").rename(f"nps_group[{level}]"))
    if covariates:
        parts.append(pd.get_dummies(cells[covariates], drop_first=True, dtype="float64", prefix_sep="="))
    return pd.concat(parts, axis=1)


def retention_effect(customer_table: pd.DataFrame, covariates=DEFAULT_COVARIATES, cluster: str = "anchor_location_id",
                     by: str | None = None, level: float = 0.95) -> Effect:
    """Retention gap (percentage points) between promoters and detractors, adjusted and clustered by location.

    `customer_table` is `retention.customer_table(...)`. Censored customers and customers without
    an NPS at the anchor are left out (counted in `n`). With `by` (e.g. 'region') the model is also
    fitted within each group and `details` lists the gap per group.
    """
    fit = _fit_retention(customer_table, covariates, cluster, level)
    if by is not None:
        rows = []
        for key, part in customer_table.groupby(by, observed=True):
            try:
                sub = _fit_retention(part, [c for c in covariates if c != by], cluster, level)
            except ValueError as exc:
                rows.append({by: key, "gap_pp": np.nan, "ci_low": np.nan, "ci_high": np.nan, "customers": 0,
                             "note": str(exc)})
                continue
            rows.append({by: key, "gap_pp": sub.estimate, "ci_low": sub.ci_low, "ci_high": sub.ci_high,
                         "customers": sub.n["customers"], "note": ""})
        fit.details = pd.DataFrame(rows)
    return fit


def _fit_retention(table: pd.DataFrame, covariates, cluster: str, level: float) -> Effect:
    known = table["retained"].notna() & table["nps"].notna()
    data = table[known]
    groups = set(data["nps_group"].dropna().astype(str))
    if data.empty:
        raise ValueError("no customer has both a known retention outcome and an NPS score "
                         f"({int(table['censored'].sum())} of {len(table)} are censored)")
    missing = {"promoter", "detractor"} - groups
    if missing:
        raise ValueError(f"the retention gap needs promoters and detractors; the data have no {', '.join(sorted(missing))}")
    if data[cluster].nunique() < 2:
        raise ValueError("clustering by location needs at least two locations")
    used = _usable_covariates(data, covariates)
    cells = _cells(data.assign(nps_group=data["nps_group"].astype(str)), [cluster, "nps_group"] + used)
    x, interactions = _interacted_design(cells, used, cluster)
    endog = np.column_stack([cells["sum"], cells["size"] - cells["sum"]])
    groups_codes = pd.factorize(cells[cluster])[0]
    model = sm.GLM(endog, x, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups_codes})
    gap, se = _ame_gap(model, x, cells["size"].to_numpy(dtype=float), interactions)
    z = mx.z_value(level)
    n = {"customers": int(len(data)), "locations": int(data[cluster].nunique()),
         "censored_excluded": int(table["retained"].isna().sum()),
         "without_score": int((table["retained"].notna() & table["nps"].isna()).sum())}
    varying = sorted({column.split("=")[0] for _, column in interactions})
    return Effect(
        name="Retention gap, promoters vs detractors", estimate=100 * gap, se=100 * se,
        ci_low=100 * (gap - z * se), ci_high=100 * (gap + z * se), unit="percentage points", n=n, level=level,
        method=("Binomial GLM (logit) of retained-within-horizon on NPS group"
                + (f" adjusting for {', '.join(used)}" if used else "")
                + (f", with the NPS-group effect allowed to differ by {', '.join(varying)} (group x covariate "
                   "interactions)" if varying else "")
                + "; average marginal effect promoter vs detractor over the customers' covariate mix by the delta "
                f"method; standard errors clustered by location (CR1), normal {level:.0%} interval. Fitted on counts "
                "per cell, which equals the customer-level model."),
        caveats=("Observational: promoters may differ from detractors in ways the adjustment does not capture, "
                 "so read this as an association adjusted for location mix, not a guaranteed effect of raising NPS. "
                 "Customers whose window is not over yet are left out, not counted as lost."),
        model=model, extra={"covariates": used, "interactions": [f"{g}:{c}" for g, c in interactions]})


def _interacted_design(cells: pd.DataFrame, covariates: list[str], cluster: str, min_outcomes: int = 10,
                       min_clusters: int = 10) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """`_design` plus NPS group x covariate-dummy interactions, so the promoter-detractor gap may differ by
    region, format, channel and segment instead of following the logit's additive shape.

    Why: with an additive logit the gap on the probability scale is forced to vary with the base rate in
    one particular way; where the truth differs (e.g. a gap that grows with how often a format's customers
    come back at all), the misfit is systematic by location-level covariates such as format, and the
    location-clustered standard error counts it as between-location noise (coverage of 98% rather than
    95% in benchmarks/recovery.py). An interaction is kept only where that group and covariate level have
    at least `min_outcomes` retained and `min_outcomes` lost customers (no separation) in at least
    `min_clusters` locations (a location-level covariate such as format seen in a handful of locations
    would let its interaction soak up those locations' residuals, and the clustered standard error
    would come out too small), and only while the design keeps full rank. Returns the design and the
    (group, dummy column) pairs that were added.
    """
    x = _design(cells, "nps_group", covariates)
    dummies = [c for c in x.columns if c != "const" and not c.startswith("nps_group[")]
    retained, size = cells["sum"].to_numpy(dtype=float), cells["size"].to_numpy(dtype=float)
    clusters = pd.factorize(cells[cluster])[0]
    added, columns = [], {}
    for level in ("passive", "promoter"):
        in_group = (cells["nps_group"] == level).to_numpy()
        for column in dummies:
            on = in_group & (x[column].to_numpy() > 0)
            kept, total = retained[on].sum(), size[on].sum()
            if min(kept, total - kept) >= min_outcomes and len(np.unique(clusters[on])) >= min_clusters:
                added.append((level, column))
                columns[f"nps_group[{level}]:{column}"] = x[column].to_numpy() * in_group
    if not added:
        return x, []
    full = pd.concat([x, pd.DataFrame(columns, index=x.index)], axis=1)
    if np.linalg.matrix_rank(full.to_numpy()) < full.shape[1]:
        return x, []  # a sparse corner of the data: keep the additive model rather than guess which to drop
    return full, added


def _ame_gap(model, x: pd.DataFrame, weights: np.ndarray, interactions: list[tuple[str, str]] = ()
             ) -> tuple[float, float]:
    """Average over customers of P(retained | promoter) - P(retained | detractor) in a model with group x
    covariate interactions (each customer keeps their covariates), and its delta-method standard error."""
    beta, cov = model.params.to_numpy(), model.cov_params().to_numpy()

    def as_group(group: str) -> np.ndarray:
        out = x.copy()
        for level in ("passive", "promoter"):
            out[f"nps_group[{level}]"] = float(level == group)
        for level, column in interactions:
            out[f"nps_group[{level}]:{column}"] = x[column] * float(level == group)
        return out.to_numpy()

    x1, x0 = as_group("promoter"), as_group("detractor")
    p1, p0 = 1 / (1 + np.exp(-x1 @ beta)), 1 / (1 + np.exp(-x0 @ beta))
    w = weights / weights.sum()
    gap = float(w @ (p1 - p0))
    grad = (w * p1 * (1 - p1)) @ x1 - (w * p0 * (1 - p0)) @ x0
    return gap, float(np.sqrt(grad @ cov @ grad))


def survival_check(customer_table: pd.DataFrame, covariates=DEFAULT_COVARIATES, max_customers: int | None = 200_000,
                   seed: int = 0, level: float = 0.95) -> Effect:
    """Cox model (statsmodels PHReg) of time to next purchase: hazard ratio promoters vs detractors.

    Unlike the retention GLM it uses censored customers (time observed up to the end of data).
    Above `max_customers` a seeded random sample keeps the fit quick; the estimate is the same in
    expectation and its interval honestly wider.
    """
    from statsmodels.duration.hazard_regression import PHReg

    data = customer_table[customer_table["nps"].notna()]
    if max_customers is not None and len(data) > max_customers:
        data = data.sample(max_customers, random_state=seed)
    observed = data["next_purchase_at"].notna()
    follow = (data["end_of_data"] - data["anchor_at"]).dt.total_seconds() / 86400
    time = np.where(observed, data["days_to_next"], follow).astype(float)
    time = np.maximum(time, 1e-3)
    used = _usable_covariates(data, covariates)
    frame = data[["nps_group"] + used].astype("str").replace({"<NA>": "unknown", "nan": "unknown"})
    x = _design(frame.reset_index(drop=True), "nps_group", used).drop(columns="const")
    model = PHReg(time, x.to_numpy(), status=observed.to_numpy().astype(int)).fit()
    i = list(x.columns).index("nps_group[promoter]")
    b, se = float(model.params[i]), float(model.bse[i])
    z = mx.z_value(level)
    return Effect(name="Hazard ratio of a next purchase, promoters vs detractors", estimate=float(np.exp(b)),
                  ci_low=float(np.exp(b - z * se)), ci_high=float(np.exp(b + z * se)), se=se, unit="x",
                  n={"customers": int(len(data)), "repeat_purchases": int(observed.sum())}, level=level,
                  method="Cox proportional hazards (statsmodels PHReg) with censoring at the end of the data"
                         + (f", adjusting for {', '.join(used)}" if used else ""),
                  caveats="A ratio above 1 means promoters come back sooner. Observational, like the GLM.",
                  model=model)
