"""Comparing locations fairly: shrunk estimates, funnel-plot limits and brand consistency (ICC).

Raw per-location scores rank small locations at both ends by chance. Three tools keep comparisons
honest, all computed from per-location counts (`metrics.score_counts`), so they never loop over
locations. Each works in the brand's measure (`cxresearch.measures.measure`: NPS, CSAT top-2-box
share or CES easy share, in points) and keeps within its bounds:

- `shrink`: empirical-Bayes partial pooling. Each location's estimate y_i (standard error s_i) is
  pulled toward the brand mean mu by B_i = tau^2 / (tau^2 + s_i^2), where tau^2 is the variance of the
  true location values, estimated by Paule-Mandel (statsmodels' meta-analysis). Rankings use these.
- `funnel`: Spiegelhalter (2005) funnel limits around the brand value for each location's n, at
  95% and 99.8%, widened by an additive between-location variance when the data are over-dispersed
  (the DerSimonian-Laird tau^2 from winsorized z-scores): which locations are unusual for their size
  given how much locations differ anyway.
- `verdicts`: above / within / below the brand beyond chance, with the false-discovery rate held at
  5% across locations (Benjamini-Hochberg), and intervals that agree with the verdict by construction.
- `consistency`: the intraclass correlation (ICC) of a random-intercept model of each response's
  contribution to the measure (for NPS +100 promoter, 0 passive, -100 detractor; for a share 100 or
  0): the share of variance that lies
  between locations. The one-way ANOVA estimator with Searle's F-based interval (unbalanced groups
  use the Kirk n0), from sums and sums of squares per location.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from cxresearch.measures import metrics as mx
from cxresearch.measures.intervals import bh_q
from cxresearch.measures.measure import Measure, get

__all__ = ["consistency", "consistency_by", "estimates_from_counts", "funnel", "funnel_curve", "icc_from_sums",
           "location_estimates", "shrink", "verdicts"]



def location_estimates(responses, metric="nps", by: str = "location_id") -> pd.DataFrame:
    """Per-location headline value of the measure (`metric`: 'nps', 'csat', 'ces' or a Measure, in
    its points), its se (from pseudo-count-adjusted shares, so never zero) and n. The measure's name
    is kept in ``.attrs['measure']``, so `shrink` and `funnel` keep within its bounds."""
    counts = mx.score_counts(responses, [by], [get(metric).name])
    return estimates_from_counts(counts, metric, by)


def estimates_from_counts(counts: pd.DataFrame, metric="nps", by: str = "location_id") -> pd.DataFrame:
    """`location_estimates` from sufficient statistics; rows with n = 0 for the metric are left out."""
    measure = get(metric)
    est = measure.estimates(counts)
    out = pd.DataFrame({by: counts[by].to_numpy(), "estimate": est["value"].to_numpy(),
                        "se": est["se_adjusted"].to_numpy(dtype=float), "n": est["n"].to_numpy()})
    out = out[out["n"] > 0].reset_index(drop=True)
    out.attrs["measure"] = measure.name
    return out


def _measure_of(estimates: pd.DataFrame, metric) -> Measure:
    return get(metric if metric is not None else estimates.attrs.get("measure", "nps"))


def shrink(estimates: pd.DataFrame, metric=None, level: float = 0.95) -> pd.DataFrame:
    """Empirical-Bayes (partial-pooling) estimates and a rank by them.

    `estimates` has columns estimate, se, n (see `location_estimates`); `metric` (default: the
    measure `location_estimates` recorded, else NPS) sets the bounds of the intervals. Adds brand_mean, tau (sd of
    true location values), weight B (1 = own data only, 0 = brand mean only), shrunk, its interval
    (normal posterior, sd = sqrt(B) * se, which leaves out the small uncertainty in mu and tau), and
    rank (1 = best shrunk value).
    """
    frame = estimates[estimates["se"] > 0].copy()
    if len(frame) < 3:
        raise ValueError(f"shrinkage needs at least 3 locations with data; got {len(frame)}")
    fit = combine_effects(frame["estimate"].to_numpy(), frame["se"].to_numpy() ** 2, method_re="pm")
    tau2, mu = float(fit.tau2), float(fit.mean_effect_re)
    weight = tau2 / (tau2 + frame["se"] ** 2)
    shrunk = mu + weight * (frame["estimate"] - mu)
    sd = np.sqrt(weight) * frame["se"]
    z = mx.z_value(level)
    low, high = _measure_of(estimates, metric).bounds
    frame = frame.assign(brand_mean=mu, tau=np.sqrt(tau2), weight=weight, shrunk=shrunk,
                         shrunk_ci_low=(shrunk - z * sd).clip(low, high), shrunk_ci_high=(shrunk + z * sd).clip(low, high))
    frame["rank"] = frame["shrunk"].rank(ascending=False, method="min").astype("int64")
    return frame.sort_values("rank").reset_index(drop=True)


def funnel(estimates: pd.DataFrame, metric=None, brand_value: float | None = None,
           per_response_sd: float | None = None, overdispersion: bool = True, min_n: int = 0,
           fdr: float = 0.05) -> pd.DataFrame:
    """Funnel-plot limits (95%, 99.8%) around the brand value for each location's n, and flags.

    The sd of one response defaults to the pooled within-location value (n-weighted from each
    location's se; for NPS about 100*sqrt(pP + pD - (pP-pD)^2)). With `overdispersion`, the limits are
    widened by tau^2 estimated from z-scores winsorized at 10%/90% when their spread exceeds chance
    (Spiegelhalter 2005, additive random-effects model).

    Flags (above, within or below; "too few" for a location with fewer than `min_n` responses, which
    is never flagged and not one of the comparisons):
    - `flag`: the verdict across many locations at once. Each location's two-sided p-value from its
      z-score, Benjamini-Hochberg adjusted (`q`) over the locations compared, so that of the locations
      flagged at most a share `fdr` (5%) are expected to be flagged by chance alone;
    - `flag_95` and `flag_998`: outside the 95% or 99.8% limits, one location at a time (with k
      locations, the 95% limits flag about 0.05 k of them by chance; `.attrs['expected_by_chance']`).
    """
    frame = estimates.copy()
    measure = _measure_of(estimates, metric)
    n = frame["n"].astype(float)
    if brand_value is None:
        brand_value = float(np.average(frame["estimate"], weights=n))
    if per_response_sd is None:
        per_response_sd = _pooled_sd(frame)
    s = per_response_sd / np.sqrt(n)
    tau2 = _additive_overdispersion(frame["estimate"].to_numpy(), s.to_numpy(), brand_value) if overdispersion else 0.0
    half = np.sqrt(s**2 + tau2)
    low, high = measure.bounds
    frame = frame.assign(brand_value=brand_value, tau=np.sqrt(tau2), per_response_sd=per_response_sd,
                         z=(frame["estimate"] - brand_value) / half)
    for name, level in (("95", 0.95), ("998", 0.998)):
        z = mx.z_value(level)
        frame[f"lower_{name}"] = (brand_value - z * half).clip(low, high)
        frame[f"upper_{name}"] = (brand_value + z * half).clip(low, high)
    compared = (frame["n"] >= min_n).to_numpy()
    frame["flag_95"] = _flag(frame, "95").where(compared, "too few")
    frame["flag_998"] = _flag(frame, "998").where(compared, "too few")
    frame["p"] = 2 * stats.norm.sf(frame["z"].abs())
    frame["q"] = bh_q(frame["p"].where(compared))
    direction = np.where(frame["z"] > 0, "above", "below")
    frame["flag"] = np.where(~compared, "too few", np.where(frame["q"] <= fdr, direction, "within"))
    frame.attrs.update(measure=measure.name, compared=int(compared.sum()), fdr=fdr,
                       expected_by_chance=0.05 * int(compared.sum()))
    return frame


def verdicts(estimates: pd.DataFrame, metric=None, brand_value: float | None = None, min_n: int = 0,
             fdr: float = 0.05) -> pd.DataFrame:
    """Which locations are above or below the brand beyond chance, with intervals that agree with the verdict.

    Each location's value is compared with the brand's (`brand_value`, default the answer-weighted
    mean of the locations' values) by z = (estimate - brand) / se. Calling locations above or below
    is many comparisons at once, so the verdict holds the false-discovery rate at `fdr` across the
    locations with at least `min_n` answers (Benjamini-Hochberg). The interval shown beside the
    verdict is each location's interval at level 1 - fdr x R / m (R locations flagged of m compared;
    R = 1 when none is): the false-coverage-rate interval of Benjamini and Yekutieli (2005). With it a
    location is flagged exactly when its interval lies wholly above or below the brand, so what a
    reader sees and the verdict can never disagree. Locations below `min_n` get "too few".

    Returns `estimates` with brand_value, z, p, q, verdict (above / within / below / too few),
    verdict_level, verdict_ci_low and verdict_ci_high (within the measure's bounds).
    """
    frame = estimates.copy()
    measure = _measure_of(estimates, metric)
    if brand_value is None:
        brand_value = float(np.average(frame["estimate"], weights=frame["n"].astype(float)))
    compared = (frame["n"] >= min_n).to_numpy()
    z = (frame["estimate"] - brand_value) / frame["se"]
    p = 2 * stats.norm.sf(np.abs(z))
    q = bh_q(np.where(compared, p, np.nan))
    flagged = compared & (q <= fdr)
    m, r = max(int(compared.sum()), 1), max(int(flagged.sum()), 1)
    level = 1 - fdr * r / m
    half = mx.z_value(level) * frame["se"]
    low, high = measure.bounds
    frame = frame.assign(brand_value=brand_value, z=z, p=p, q=q,
                         verdict=np.where(~compared, "too few", np.where(flagged, np.where(z > 0, "above", "below"),
                                                                         "within")),
                         verdict_level=level, verdict_ci_low=(frame["estimate"] - half).clip(low, high),
                         verdict_ci_high=(frame["estimate"] + half).clip(low, high))
    frame.attrs.update(measure=measure.name, compared=int(compared.sum()), flagged=int(flagged.sum()), fdr=fdr,
                       verdict_level=level)
    return frame


def _flag(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.Series(np.select([frame["estimate"] > frame[f"upper_{name}"], frame["estimate"] < frame[f"lower_{name}"]],
                               ["above", "below"], "within"), index=frame.index)


def _pooled_sd(frame: pd.DataFrame) -> float:
    """Within-location sd of one response, from the per-location se's (n-weighted pooled variance)."""
    per_response_var = (frame["se"] ** 2) * frame["n"]
    return float(np.sqrt(np.average(per_response_var, weights=frame["n"])))


def _additive_overdispersion(y: np.ndarray, s: np.ndarray, target: float) -> float:
    """DerSimonian-Laird tau^2 from winsorized z-scores (Spiegelhalter 2005), 0 if not over-dispersed."""
    k = len(y)
    if k < 3:
        return 0.0
    z = (y - target) / s
    lo, hi = np.percentile(z, [10, 90])
    z = np.clip(z, lo, hi)
    phi = float(np.mean(z**2))
    if k * phi <= stats.chi2.ppf(0.95, k - 1):
        return 0.0
    w = 1 / s**2
    return max(0.0, (k * phi - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))


def consistency(responses: pd.DataFrame, by: str | None = None, group: str = "location_id",
                level: float = 0.95, min_groups: int = 5, metric="nps") -> pd.DataFrame:
    """ICC of the measure between locations (share of variance between them), overall or per `by`
    (region, format). Each answer enters as its contribution to the headline value (for NPS +100,
    0, -100; for a top-box share 100 or 0), so the sds are in the measure's points.

    Returns icc, ci_low, ci_high, locations, responses, between_sd and within_sd per row.
    """
    measure = get(metric)
    answered = responses[measure.name].notna()
    coded = responses.loc[answered, [group] + ([by] if by else [])].copy()
    coded["y"] = measure.contributions(responses.loc[answered, measure.name])
    coded["y2"] = coded["y"] ** 2
    keys = [by, group] if by else [group]
    sums = coded.groupby(keys, observed=True).agg(n=("y", "size"), s=("y", "sum"), s2=("y2", "sum")).reset_index()
    if not by:
        return pd.DataFrame([icc_from_sums(sums["n"], sums["s"], sums["s2"], level)])
    rows = []
    for key, part in sums.groupby(by, observed=True):  # one row per region/format: a handful, not per location
        if len(part) < min_groups:
            continue
        try:
            rows.append({by: key} | icc_from_sums(part["n"], part["s"], part["s2"], level))
        except ValueError:  # too few answers, or all alike, within this region or format: no row for it
            continue
    return pd.DataFrame(rows)


def consistency_by(dataset, groups=("region", "format"), level: float = 0.95, metric="nps") -> pd.DataFrame:
    """The ICC brand-wide and within each location column of `groups` (region, format), one table:
    column `group` says whether a row is the brand or which region or format it is about."""
    responses, locations = dataset.responses, dataset.locations
    parts = [consistency(responses, level=level, metric=metric).assign(group="brand")]
    for column in groups:
        within = consistency(responses.merge(locations[["location_id", column]], on="location_id"), by=column,
                             level=level, metric=metric)
        parts.append(within.rename(columns={column: "group"}))
    return pd.concat(parts, ignore_index=True)


def icc_from_sums(n, s, s2, level: float = 0.95) -> dict:
    """One-way random-effects ICC(1) from per-group counts, sums and sums of squares, with Searle's interval."""
    n, s, s2 = (np.asarray(x, dtype="float64") for x in (n, s, s2))
    k, total = len(n), n.sum()
    if k < 2 or total <= k:
        raise ValueError(f"ICC needs at least 2 groups and more responses than groups; got {k} and {int(total)}")
    grand = s.sum() / total
    ss_between = float((s**2 / n).sum() - total * grand**2)
    ss_within = float(s2.sum() - (s**2 / n).sum())
    ms_b, ms_w = ss_between / (k - 1), ss_within / (total - k)
    if not ms_w > 1e-12:
        raise ValueError("every location's answers are all alike, so the share of variation between locations "
                         "is not defined")
    n0 = (total - (n**2).sum() / total) / (k - 1)
    sigma2_b = max(0.0, (ms_b - ms_w) / n0)
    icc = sigma2_b / (sigma2_b + ms_w)
    f = ms_b / ms_w
    alpha = 1 - level
    f_low = f / stats.f.ppf(1 - alpha / 2, k - 1, total - k)
    f_high = f / stats.f.ppf(alpha / 2, k - 1, total - k)
    return {"icc": icc, "ci_low": max(0.0, (f_low - 1) / (f_low + n0 - 1)),
            "ci_high": min(1.0, (f_high - 1) / (f_high + n0 - 1)), "locations": k, "responses": int(total),
            "between_sd": float(np.sqrt(sigma2_b)), "within_sd": float(np.sqrt(ms_w))}


def funnel_curve(brand_value: float, per_response_sd: float, tau: float, n_max: float, metric="nps",
                 points: int = 200) -> pd.DataFrame:
    """The funnel's limits over a grid of sample sizes (for drawing the funnel plot)."""
    n = np.linspace(2, max(n_max, 3), points)
    half = np.sqrt(per_response_sd**2 / n + tau**2)
    low, high = get(metric).bounds
    out = {"n": n}
    for name, level in (("95", 0.95), ("998", 0.998)):
        z = mx.z_value(level)
        out[f"lower_{name}"] = np.clip(brand_value - z * half, low, high)
        out[f"upper_{name}"] = np.clip(brand_value + z * half, low, high)
    return pd.DataFrame(out)
