"""CX -> retention: the retention gap between the top and the bottom group of the brand's measure
(promoters vs detractors for NPS, 4-5 vs 1-2 stars for CSAT, easy vs hard for CES) by a binomial GLM
with interactions, on counts per cell, clustered by location; and a Cox survival cross-check that also
uses censored customers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from cxresearch.measures import metrics as mx
from cxresearch.measures.measure import Measure, get
from cxresearch.models.effect import Effect

__all__ = ["coded_groups", "measure_of_table", "retention_effect", "survival_check"]

DEFAULT_COVARIATES = ("region", "format", "anchor_channel", "segment")


def _usable_covariates(data: pd.DataFrame, covariates) -> list[str]:
    """Covariates present with at least two observed values (a constant cannot be adjusted for)."""
    return [c for c in covariates if c in data.columns and data[c].nunique(dropna=True) >= 2]


def _cells(data: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Customers per cell of the categorical regressors: retained count and n."""
    frame = data[keys].astype("str").fillna("unknown").replace({"<NA>": "unknown", "nan": "unknown"})
    frame["retained"] = data["retained"].astype("float64").to_numpy()
    return frame.groupby(keys, observed=True, sort=True)["retained"].agg(["sum", "size"]).reset_index()


GROUPS = ("bottom", "middle", "top")  # the measure's groups as the model codes them (reference: bottom)


def measure_of_table(table: pd.DataFrame, measure=None) -> Measure:
    """The measure to use on a customer table: `measure`, else the first of nps, csat, ces with answers."""
    if measure is not None:
        return get(measure)
    for name in ("nps", "csat", "ces"):
        if name in table and table[name].notna().any():
            return get(name)
    raise ValueError("no customer has an NPS, CSAT or CES answer at the anchor")


def coded_groups(table: pd.DataFrame, measure: Measure) -> pd.Series:
    """bottom / middle / top of each customer's answer (as text; missing where there is none)."""
    names = dict(zip(measure.groups, GROUPS))
    return measure.group(table[measure.name]).map(names).astype("object")


def _design(cells: pd.DataFrame, group: str, covariates: list[str]) -> pd.DataFrame:
    """Intercept, group dummies (reference: bottom) and covariate dummies (reference: first level)."""
    parts = [pd.Series(1.0, index=cells.index, name="const")]
    for level in GROUPS[1:]:
        parts.append((cells[group] == level).astype("float64").rename(f"group[{level}]"))
    if covariates:
        parts.append(pd.get_dummies(cells[covariates], drop_first=True, dtype="float64", prefix_sep="="))
    return pd.concat(parts, axis=1)


def retention_effect(customer_table: pd.DataFrame, covariates=DEFAULT_COVARIATES, cluster: str = "anchor_location_id",
                     by: str | None = None, level: float = 0.95, measure=None) -> Effect:
    """Retention gap (percentage points) between the measure's top and bottom group, adjusted and
    clustered by location: promoters vs detractors for NPS, satisfied (4-5) vs dissatisfied (1-2)
    for CSAT, easy (5-7) vs hard (1-3) for CES.

    `customer_table` is `retention.customer_table(...)`; `measure` defaults to the first of NPS, CSAT,
    CES that it has answers for. Censored customers and customers without an answer at the anchor
    are left out (counted in `n`). `extra['base_rate']` is the share of all customers with a known
    outcome who came back, so the gap can be read against it. With `by` (e.g. 'region') the model is
    also fitted within each group and `details` lists the gap per group; a group where it cannot be
    estimated (too few customers, a singular fit) gets its reason in `note`.
    """
    measure = measure_of_table(customer_table, measure)
    fit = _fit_retention(customer_table, covariates, cluster, level, measure)
    if by is not None:
        rows = []
        for key, part in customer_table.groupby(by, observed=True):
            try:
                sub = _fit_retention(part, [c for c in covariates if c != by], cluster, level, measure)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                rows.append({by: key, "gap_pp": np.nan, "ci_low": np.nan, "ci_high": np.nan, "customers": 0,
                             "note": str(exc)})
                continue
            rows.append({by: key, "gap_pp": sub.estimate, "ci_low": sub.ci_low, "ci_high": sub.ci_high,
                         "customers": sub.n["customers"], "note": ""})
        fit.details = pd.DataFrame(rows)
    return fit


def _fit_retention(table: pd.DataFrame, covariates, cluster: str, level: float, measure: Measure) -> Effect:
    score = measure.name
    known = table["retained"].notna() & table[score].notna()
    data = table[known].assign(cx_group=coded_groups(table[known], measure))
    groups = set(data["cx_group"].dropna())
    bottom, top = measure.groups[0], measure.groups[2]
    if data.empty:
        raise ValueError(f"no customer has both a known retention outcome and a {measure.label} answer "
                         f"({int(table['censored'].sum())} of {len(table)} are censored)")
    missing = [name for name, code in ((top, "top"), (bottom, "bottom")) if code not in groups]
    if missing:
        raise ValueError(f"the retention gap needs {top} and {bottom} customers; the data have no {' and no '.join(missing)}")
    if data[cluster].nunique() < 2:
        raise ValueError("clustering by location needs at least two locations")
    for name, code in ((top, "top"), (bottom, "bottom")):
        outcomes = data.loc[data["cx_group"] == code, "retained"].astype(bool)
        if outcomes.all() or not outcomes.any():
            came = data["retained"].astype(bool)
            raise ValueError(f"every {name} customer {'came back' if outcomes.all() else 'was lost'} "
                             f"({len(outcomes):,} customers), so the gap cannot be estimated; of all "
                             f"{len(came):,} customers with a score and a known outcome, {int(came.sum()):,} came back")
    used = _usable_covariates(data, covariates)
    cells = _cells(data, [cluster, "cx_group"] + used)
    x, interactions = _interacted_design(cells, used, cluster)
    endog = np.column_stack([cells["sum"], cells["size"] - cells["sum"]])
    groups_codes = pd.factorize(cells[cluster])[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = sm.GLM(endog, x, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups_codes})
        gap, se_cr1 = _ame_gap(model, x, cells["size"].to_numpy(dtype=float), interactions)
        se = _jackknife_se(model, x, cells, groups_codes, interactions)
    if not (np.isfinite(gap) and np.isfinite(se)):
        raise ValueError("the retention model did not converge to a finite gap (too few customers per group)")
    clusters = int(data[cluster].nunique())
    z = float(stats.t.ppf(0.5 + level / 2, clusters - 1))
    outcomes = table["retained"].dropna().astype(bool)
    n = {"customers": int(len(data)), "locations": clusters,
         "censored_excluded": int(table["retained"].isna().sum()),
         "without_score": int((table["retained"].notna() & table[score].isna()).sum())}
    varying = sorted({column.split("=")[0] for _, column in interactions})
    base_rate = float(outcomes.mean()) if len(outcomes) else float("nan")
    caveats = (f"Observational: {measure.people(2)} may differ from {measure.people(0)} in ways the adjustment does "
               "not capture, "
               f"so read this as an association adjusted for location mix, not a guaranteed effect of raising "
               f"{measure.label}. Customers whose window is not over yet are left out, not counted as lost. "
               f"For scale: {100 * base_rate:.1f}% of all {len(outcomes):,} customers with a known outcome came back.")
    notes = sorted({str(w.message).split("\n")[0] for w in caught
                    if w.category.__module__.startswith("statsmodels") or issubclass(w.category, RuntimeWarning)})
    if notes:
        caveats += " The fit warned: " + "; ".join(notes) + "."
    return Effect(
        name=f"Retention gap, {measure.people(2)} vs {measure.people(0)} ({measure.label} {measure.answers(2)} vs "
             f"{measure.answers(0)})", estimate=100 * gap, se=100 * se,
        ci_low=100 * (gap - z * se), ci_high=100 * (gap + z * se), unit="percentage points", n=n, level=level,
        method=(f"Binomial GLM (logit) of retained-within-horizon on the {measure.label} group"
                + (f" adjusting for {', '.join(used)}" if used else "")
                + (f", with the group effect allowed to differ by {', '.join(varying)} (group x covariate "
                   "interactions)" if varying else "")
                + f"; average marginal effect {top} vs {bottom} over the customers' covariate mix; its standard "
                f"error by the leave-one-location-out jackknife (CR3), {level:.0%} interval from the t distribution "
                f"with {clusters - 1} degrees of freedom (locations - 1). Fitted on counts per cell, which equals "
                "the customer-level model."),
        caveats=caveats,
        model=model, extra={"se_cr1": 100 * se_cr1, "covariates": used, "interactions": [f"{g}:{c}" for g, c in interactions],
                            "measure": measure.name, "base_rate": base_rate, "warnings": notes})


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
    x = _design(cells, "cx_group", covariates)
    dummies = [c for c in x.columns if c != "const" and not c.startswith("group[")]
    retained, size = cells["sum"].to_numpy(dtype=float), cells["size"].to_numpy(dtype=float)
    clusters = pd.factorize(cells[cluster])[0]
    added, columns = [], {}
    for level in GROUPS[1:]:
        in_group = (cells["cx_group"] == level).to_numpy()
        for column in dummies:
            on = in_group & (x[column].to_numpy() > 0)
            kept, total = retained[on].sum(), size[on].sum()
            if min(kept, total - kept) >= min_outcomes and len(np.unique(clusters[on])) >= min_clusters:
                added.append((level, column))
                columns[f"group[{level}]:{column}"] = x[column].to_numpy() * in_group
    if not added:
        return x, []
    full = pd.concat([x, pd.DataFrame(columns, index=x.index)], axis=1)
    if np.linalg.matrix_rank(full.to_numpy()) < full.shape[1]:
        return x, []  # a sparse corner of the data: keep the additive model rather than guess which to drop
    return full, added


def _ame_gap(model, x: pd.DataFrame, weights: np.ndarray, interactions: list[tuple[str, str]] = ()
             ) -> tuple[float, float]:
    """Average over customers of P(retained | top) - P(retained | bottom) in a model with group x
    covariate interactions (each customer keeps their covariates), and its delta-method standard error."""
    beta, cov = model.params.to_numpy(), model.cov_params().to_numpy()
    difference, gradient = _gap_per_cell(beta, x, interactions)
    w = weights / weights.sum()
    grad = w @ gradient
    return float(w @ difference), float(np.sqrt(grad @ cov @ grad))


def _as_group(x: pd.DataFrame, interactions, group: str) -> np.ndarray:
    """The design with every row set to `group` (its interaction columns too), covariates kept."""
    out = x.copy()
    for level in GROUPS[1:]:
        out[f"group[{level}]"] = float(level == group)
    for level, column in interactions:
        out[f"group[{level}]:{column}"] = x[column] * float(level == group)
    return out.to_numpy(dtype=float)


def _gap_per_cell(beta: np.ndarray, x: pd.DataFrame, interactions) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: P(retained | top) - P(retained | bottom) at `beta`, and its gradient in beta."""
    x1, x0 = _as_group(x, interactions, "top"), _as_group(x, interactions, "bottom")
    p1, p0 = 1 / (1 + np.exp(-x1 @ beta)), 1 / (1 + np.exp(-x0 @ beta))
    return p1 - p0, (p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0


def _jackknife_se(model, x: pd.DataFrame, cells: pd.DataFrame, clusters: np.ndarray, interactions) -> float:
    """Leave-one-location-out jackknife (CR3) standard error of the average marginal gap.

    Why: with a few dozen locations and a design of 30+ columns (the group x covariate interactions),
    the clustered sandwich (CR1) comes out too small: over 200 NPS brands of 50 locations its 95%
    interval covered the truth 91% of the time, the jackknife's t interval 96.5% (benchmarks/recovery.py).
    Each location's refit is one Newton step from the full fit, beta_(-g) = beta - (H - H_g)^-1 S_g
    (H the Fisher information, S_g and H_g location g's score and information), which matched exact
    refits to three significant digits on the benchmark's brands at a thirtieth of the cost; the gap
    without g is its customers' average of the per-cell gap, linearised around beta."""
    beta, design = model.params.to_numpy(), x.to_numpy(dtype=float)
    size, retained = cells["size"].to_numpy(dtype=float), cells["sum"].to_numpy(dtype=float)
    p = 1 / (1 + np.exp(-design @ beta))
    count, k = int(clusters.max()) + 1, design.shape[1]
    scores = np.zeros((count, k))
    np.add.at(scores, clusters, design * (retained - size * p)[:, None])
    order = np.argsort(clusters, kind="stable")
    bounds = np.searchsorted(clusters[order], np.arange(count + 1))
    weighted_design = design * (size * p * (1 - p))[:, None]
    information = np.stack([design[order[a:b]].T @ weighted_design[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])])
    # pinv: a covariate level seen at one location only is not identified without it; it touches no other cell
    steps = -(np.linalg.pinv(information.sum(axis=0)[None] - information, rcond=1e-12) @ scores[:, :, None])[:, :, 0]
    difference, gradient = _gap_per_cell(beta, x, interactions)
    weighted = np.bincount(clusters, size * difference, count)
    weight = np.bincount(clusters, size, count)
    slopes = np.zeros((count, k))
    np.add.at(slopes, clusters, gradient * size[:, None])
    without = (weighted.sum() - weighted + ((slopes.sum(axis=0)[None] - slopes) * steps).sum(axis=1)) / (weight.sum() - weight)
    return float(np.sqrt((count - 1) / count * ((without - without.mean()) ** 2).sum()))


def survival_check(customer_table: pd.DataFrame, covariates=DEFAULT_COVARIATES, max_customers: int | None = 200_000,
                   seed: int = 0, level: float = 0.95, measure=None) -> Effect:
    """Cox model (statsmodels PHReg) of time to next purchase: hazard ratio of the measure's top group
    vs its bottom group (promoters vs detractors for NPS).

    Unlike the retention GLM it uses censored customers (time observed up to the end of data).
    Above `max_customers` a seeded random sample keeps the fit quick; the estimate is the same in
    expectation and its interval honestly wider.
    """
    from statsmodels.duration.hazard_regression import PHReg

    measure = measure_of_table(customer_table, measure)
    data = customer_table[customer_table[measure.name].notna()]
    data = data.assign(cx_group=coded_groups(data, measure))
    if data.empty or not {"top", "bottom"} <= set(data["cx_group"].dropna()):
        raise ValueError(f"the survival check needs {measure.groups[2]} and {measure.groups[0]} customers")
    if max_customers is not None and len(data) > max_customers:
        data = data.sample(max_customers, random_state=seed)
    observed = data["next_purchase_at"].notna()
    follow = (data["end_of_data"] - data["anchor_at"]).dt.total_seconds() / 86400
    time = np.where(observed, data["days_to_next"], follow).astype(float)
    time = np.maximum(time, 1e-3)
    used = _usable_covariates(data, covariates)
    frame = data[["cx_group"] + used].astype("str").replace({"<NA>": "unknown", "nan": "unknown"})
    x = _design(frame.reset_index(drop=True), "cx_group", used).drop(columns="const")
    for code, name in (("top", measure.people(2)), ("bottom", measure.people(0))):
        if not observed[(data["cx_group"] == code).to_numpy()].any():
            raise ValueError(f"none of the {int((data['cx_group'] == code).sum()):,} {name} made a next purchase, "
                             "so the survival check has nothing to compare")
    model = PHReg(time, x.to_numpy(), status=observed.to_numpy().astype(int)).fit()
    i = list(x.columns).index("group[top]")
    b, se = float(model.params[i]), float(model.bse[i])
    if not (np.isfinite(b) and np.isfinite(se)):
        raise ValueError("the survival model did not converge (too few repeat purchases per group)")
    z = mx.z_value(level)
    return Effect(name=f"Hazard ratio of a next purchase, {measure.people(2)} vs {measure.people(0)}",
                  estimate=float(np.exp(b)),
                  ci_low=float(np.exp(b - z * se)), ci_high=float(np.exp(b + z * se)), se=se, unit="x",
                  n={"customers": int(len(data)), "repeat_purchases": int(observed.sum())}, level=level,
                  method="Cox proportional hazards (statsmodels PHReg) with censoring at the end of the data"
                         + (f", adjusting for {', '.join(used)}" if used else ""),
                  caveats=f"A ratio above 1 means {measure.people(2)} come back sooner. Observational, like the GLM.",
                  model=model)
