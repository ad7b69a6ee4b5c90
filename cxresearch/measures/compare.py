"""Comparing locations fairly: shrunk estimates, funnel-plot limits and brand consistency (ICC).

Raw per-location scores rank small locations at both ends by chance. Three tools keep comparisons
honest, all computed from per-location counts (`metrics.score_counts`), so they never loop over
locations:

- `shrink`: empirical-Bayes partial pooling. Each location's estimate y_i (standard error s_i) is
  pulled toward the brand mean mu by B_i = tau^2 / (tau^2 + s_i^2), where tau^2 is the variance of the
  true location values, estimated by Paule-Mandel (statsmodels' meta-analysis). Rankings use these.
- `funnel`: Spiegelhalter (2005) funnel limits around the brand value for each location's n, at
  95% and 99.8%, widened by an additive between-location variance when the data are over-dispersed
  (the DerSimonian-Laird tau^2 from winsorized z-scores), and a flag above / within / below.
- `consistency`: the intraclass correlation (ICC) of a random-intercept model of each response's
  NPS contribution (+100 promoter, 0 passive, -100 detractor): the share of variance that lies
  between locations. The one-way ANOVA estimator with Searle's F-based interval (unbalanced groups
  use the Kirk n0), from sums and sums of squares per location.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from cxresearch.measures import metrics as mx
from cxresearch.schema import PASSIVE_MIN, PROMOTER_MIN

__all__ = ["consistency", "consistency_by", "estimates_from_counts", "funnel", "funnel_curve", "icc_from_sums",
           "location_estimates", "shrink"]

SCALE_LIMITS = {"nps": (-100.0, 100.0), "csat": (0.0, 1.0), "ces": (1.0, 7.0)}


def location_estimates(responses: pd.DataFrame, metric: str = "nps", by: str = "location_id") -> pd.DataFrame:
    """Per-location estimate, its se (from pseudo-count-adjusted shares, so never zero) and n."""
    counts = mx.score_counts(responses, [by], [metric])
    return estimates_from_counts(counts, metric, by)


def estimates_from_counts(counts: pd.DataFrame, metric: str, by: str = "location_id") -> pd.DataFrame:
    """`location_estimates` from sufficient statistics; rows with n = 0 for the metric are left out."""
    if metric == "nps":
        est = mx.nps_from_counts(counts["nps_promoters"], counts["nps_passives"], counts["nps_detractors"])
        se, value = est["se_adjusted"], est["nps"]  # the adjusted-Wald se: never zero, even for tiny n
    elif metric == "csat":
        est = mx.proportion_from_counts(counts["csat_top"], counts["csat_n"])
        p_adj = (counts["csat_top"] + 1) / (est["n"] + 2)  # never 0 or 1, so se > 0
        se, value = np.sqrt(p_adj * (1 - p_adj) / (est["n"] + 2)), est["share"]
    elif metric == "ces":
        est = mx.mean_from_moments(counts["ces_sum"], counts["ces_sumsq"], counts["ces_n"])
        se, value = est["se"], est["mean"]
    else:
        raise ValueError(f"unknown metric {metric!r}; expected one of {mx.METRICS}")
    out = pd.DataFrame({by: counts[by].to_numpy(), "estimate": value.to_numpy(), "se": np.asarray(se, float),
                        "n": est["n"].to_numpy()})
    return out[out["n"] > 0].reset_index(drop=True)


def shrink(estimates: pd.DataFrame, metric: str = "nps", level: float = 0.95) -> pd.DataFrame:
    """Empirical-Bayes (partial-pooling) estimates and a rank by them.

    `estimates` has columns estimate, se, n (see `location_estimates`). Adds brand_mean, tau (sd of
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
    low, high = SCALE_LIMITS[metric]
    frame = frame.assign(brand_mean=mu, tau=np.sqrt(tau2), weight=weight, shrunk=shrunk,
                         shrunk_ci_low=(shrunk - z * sd).clip(low, high), shrunk_ci_high=(shrunk + z * sd).clip(low, high))
    frame["rank"] = frame["shrunk"].rank(ascending=False, method="min").astype("int64")
    return frame.sort_values("rank").reset_index(drop=True)


def funnel(estimates: pd.DataFrame, metric: str = "nps", brand_value: float | None = None,
           per_response_sd: float | None = None, overdispersion: bool = True) -> pd.DataFrame:
    """Funnel-plot limits (95%, 99.8%) around the brand value for each location's n, and flags.

    The sd of one response defaults to the pooled within-location value (n-weighted from each
    location's se; for NPS about 100*sqrt(pP + pD - (pP-pD)^2)). With `overdispersion`, the limits are
    widened by tau^2 estimated from z-scores winsorized at 10%/90% when their spread exceeds chance
    (Spiegelhalter 2005, additive random-effects model). Flags: `flag` from the 95% limits,
    `flag_998` from the 99.8% limits; each is above, within or below.
    """
    frame = estimates.copy()
    n = frame["n"].astype(float)
    if brand_value is None:
        brand_value = float(np.average(frame["estimate"], weights=n))
    if per_response_sd is None:
        per_response_sd = _pooled_sd(frame)
    s = per_response_sd / np.sqrt(n)
    tau2 = _additive_overdispersion(frame["estimate"].to_numpy(), s.to_numpy(), brand_value) if overdispersion else 0.0
    half = np.sqrt(s**2 + tau2)
    low, high = SCALE_LIMITS[metric]
    frame = frame.assign(brand_value=brand_value, tau=np.sqrt(tau2), per_response_sd=per_response_sd,
                         z=(frame["estimate"] - brand_value) / half)
    for name, level in (("95", 0.95), ("998", 0.998)):
        z = mx.z_value(level)
        frame[f"lower_{name}"] = (brand_value - z * half).clip(low, high)
        frame[f"upper_{name}"] = (brand_value + z * half).clip(low, high)
    frame["flag"] = _flag(frame, "95")
    frame["flag_998"] = _flag(frame, "998")
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
                level: float = 0.95, min_groups: int = 5) -> pd.DataFrame:
    """ICC of NPS between locations (share of variance between them), overall or per `by` (region, format).

    Returns icc, ci_low, ci_high, locations, responses, between_sd and within_sd (NPS points) per row.
    """
    coded = responses.loc[responses["nps"].notna(), [group] + ([by] if by else [])].copy()
    nps = responses.loc[responses["nps"].notna(), "nps"].astype("float64")
    coded["y"] = np.select([nps >= PROMOTER_MIN, nps < PASSIVE_MIN], [100.0, -100.0], 0.0)
    coded["y2"] = coded["y"] ** 2
    keys = [by, group] if by else [group]
    sums = coded.groupby(keys, observed=True).agg(n=("y", "size"), s=("y", "sum"), s2=("y2", "sum")).reset_index()
    if not by:
        return pd.DataFrame([icc_from_sums(sums["n"], sums["s"], sums["s2"], level)])
    rows = []
    for key, part in sums.groupby(by, observed=True):  # one row per region/format: a handful, not per location
        if len(part) >= min_groups:
            rows.append({by: key} | icc_from_sums(part["n"], part["s"], part["s2"], level))
    return pd.DataFrame(rows)


def consistency_by(dataset, groups=("region", "format"), level: float = 0.95) -> pd.DataFrame:
    """The ICC brand-wide and within each location column of `groups` (region, format), one table:
    column `group` says whether a row is the brand or which region or format it is about."""
    responses, locations = dataset.responses, dataset.locations
    parts = [consistency(responses, level=level).assign(group="brand")]
    for column in groups:
        within = consistency(responses.merge(locations[["location_id", column]], on="location_id"), by=column,
                             level=level)
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
    n0 = (total - (n**2).sum() / total) / (k - 1)
    sigma2_b = max(0.0, (ms_b - ms_w) / n0)
    icc = sigma2_b / (sigma2_b + ms_w) if ms_w > 0 else np.nan
    f = ms_b / ms_w if ms_w > 0 else np.inf
    alpha = 1 - level
    f_low = f / stats.f.ppf(1 - alpha / 2, k - 1, total - k)
    f_high = f / stats.f.ppf(alpha / 2, k - 1, total - k)
    return {"icc": icc, "ci_low": max(0.0, (f_low - 1) / (f_low + n0 - 1)),
            "ci_high": min(1.0, (f_high - 1) / (f_high + n0 - 1)), "locations": k, "responses": int(total),
            "between_sd": float(np.sqrt(sigma2_b)), "within_sd": float(np.sqrt(ms_w))}


def funnel_curve(brand_value: float, per_response_sd: float, tau: float, n_max: float, metric: str = "nps",
                 points: int = 200) -> pd.DataFrame:
    """The funnel's limits over a grid of sample sizes (for drawing the funnel plot)."""
    n = np.linspace(2, max(n_max, 3), points)
    half = np.sqrt(per_response_sd**2 / n + tau**2)
    low, high = SCALE_LIMITS[metric]
    out = {"n": n}
    for name, level in (("95", 0.95), ("998", 0.998)):
        z = mx.z_value(level)
        out[f"lower_{name}"] = np.clip(brand_value - z * half, low, high)
        out[f"upper_{name}"] = np.clip(brand_value + z * half, low, high)
    return pd.DataFrame(out)
