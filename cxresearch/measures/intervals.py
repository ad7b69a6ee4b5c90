"""The interval arithmetic every measure shares, vectorized: arrays of counts in, estimates out.

NPS with the adjusted-Wald interval (Rocks 2016), proportions with Wilson's, means with t intervals;
one location or ten thousand groups cost the same arithmetic (see docs/design.md). And `bh_q`, the
Benjamini-Hochberg q-values with which every many-at-once comparison holds its false discoveries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["bh_q", "clip_to_scale", "mean_from_moments", "nps_from_counts", "proportion_difference",
           "proportion_from_counts", "wilson_interval", "z_value"]

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


def proportion_difference(k1, n1, k2, n2, level: float = 0.95) -> dict:
    """The difference of two shares, k2/n2 - k1/n1, with Newcombe's hybrid Wilson interval (method 10,
    Newcombe 1998: it stays inside [-1, 1] and keeps its level with few successes, where the Wald
    interval does not) and the two-sided p-value of the pooled z-test. Scalars; NaN where a side is empty."""
    k1, n1, k2, n2 = (float(x) for x in (k1, n1, k2, n2))
    if n1 <= 0 or n2 <= 0:
        return {"share_1": np.nan, "share_2": np.nan, "change": np.nan, "low": np.nan, "high": np.nan,
                "z": np.nan, "p": np.nan}
    (l1, u1), (l2, u2) = wilson_interval(k1, n1, level), wilson_interval(k2, n2, level)
    p1, p2 = k1 / n1, k2 / n2
    change = p2 - p1
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = change / se if se > 0 else 0.0
    return {"share_1": p1, "share_2": p2, "change": change,
            "low": float(change - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)),
            "high": float(change + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)),
            "z": float(z), "p": float(2 * stats.norm.sf(abs(z)))}


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
