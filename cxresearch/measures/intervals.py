"""The interval arithmetic every measure shares, vectorized: arrays of counts in, estimates out.

NPS with the adjusted-Wald interval (Rocks 2016), proportions with Wilson's, means with t intervals;
one location or ten thousand groups cost the same arithmetic (see docs/design.md). And `bh_q`, the
Benjamini-Hochberg q-values with which every many-at-once comparison holds its false discoveries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["bh_q", "clip_to_scale", "mean_from_moments", "nps_from_counts", "proportion_from_counts",
           "wilson_interval", "z_value"]

NPS_PSEUDO = (0.75, 1.5, 0.75)  # promoter, passive, detractor pseudo-counts of the adjusted Wald interval


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence `level` such as 0.95."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return float(stats.norm.ppf(0.5 + level / 2))


def bh_q(p) -> np.ndarray:
    """Benjamini-Hochberg q-values of the p-values `p` (statsmodels' fdr_bh); a missing p-value (not
    tested) stays missing and does not count among the tests. A p-value is a discovery at a
    false-discovery rate `fdr` when its q-value is at most `fdr`."""
    p = np.asarray(p, dtype="float64")
    out = np.full(p.shape, np.nan)
    tested = np.isfinite(p)
    if tested.any():
        from statsmodels.stats.multitest import multipletests  # (statsmodels: only when testing)

        out[tested] = multipletests(p[tested], method="fdr_bh")[1]
    return out


# --- vectorized cores: arrays of counts in, arrays of estimates out --------------------------------

def nps_from_counts(promoters, passives, detractors, level: float = 0.95) -> pd.DataFrame:
    """NPS, shares, se and adjusted-Wald interval for arrays of counts (one row per group)."""
    p_count, a_count, d_count = (np.asarray(x, dtype="float64") for x in (promoters, passives, detractors))
    n = p_count + a_count + d_count
    with np.errstate(divide="ignore", invalid="ignore"):
        p, a, d = p_count / n, a_count / n, d_count / n
        score = 100 * (p - d)
        se = 100 * np.sqrt((p + d - (p - d) ** 2) / n)
        n_adj = n + sum(NPS_PSEUDO)
        p_adj = (p_count + NPS_PSEUDO[0]) / n_adj
        d_adj = (d_count + NPS_PSEUDO[2]) / n_adj
        centre = 100 * (p_adj - d_adj)
        se_adjusted = 100 * np.sqrt((p_adj + d_adj - (p_adj - d_adj) ** 2) / n_adj)
        half = z_value(level) * se_adjusted
    empty = n == 0
    low = np.where(empty, np.nan, np.clip(centre - half, -100, 100))
    high = np.where(empty, np.nan, np.clip(centre + half, -100, 100))
    return pd.DataFrame({"nps": score, "n": n.astype("int64"), "promoters": p_count.astype("int64"),
                         "passives": a_count.astype("int64"), "detractors": d_count.astype("int64"),
                         "share_promoters": p, "share_passives": a, "share_detractors": d,
                         "se": se, "se_adjusted": se_adjusted, "ci_low": low, "ci_high": high})


def wilson_interval(successes, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for arrays of successes out of n (NaN where n is 0)."""
    k, n = np.asarray(successes, dtype="float64"), np.asarray(n, dtype="float64")
    z = z_value(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def proportion_from_counts(successes, n, level: float = 0.95) -> pd.DataFrame:
    """Share with its Wilson interval and binomial se, for arrays of successes out of n."""
    k, n = np.asarray(successes, dtype="float64"), np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = k / n
        se = np.sqrt(share * (1 - share) / n)
    low, high = wilson_interval(k, n, level)
    return pd.DataFrame({"share": share, "n": n.astype("int64"), "successes": k.astype("int64"),
                         "se": se, "ci_low": low, "ci_high": high})


def mean_from_moments(total, total_sq, n, level: float = 0.95) -> pd.DataFrame:
    """Mean with its t interval from sums and sums of squares (so groups reduce to three numbers)."""
    s, s2, n = (np.asarray(x, dtype="float64") for x in (total, total_sq, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var = np.where(n > 1, (s2 - n * mean**2) / (n - 1), np.nan)
        se = np.sqrt(np.maximum(var, 0) / n)
        t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    return pd.DataFrame({"mean": mean, "n": n.astype("int64"), "se": se,
                         "ci_low": mean - t * se, "ci_high": mean + t * se})


def clip_to_scale(frame: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    """Keep interval limits of a bounded score inside its scale."""
    return frame.assign(ci_low=frame["ci_low"].clip(low, high), ci_high=frame["ci_high"].clip(low, high))
