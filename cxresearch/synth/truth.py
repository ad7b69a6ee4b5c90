"""The truth the generator publishes: retention gap, revenue and EX effects, attribute importance,
each location's true value of the brand's measure (NPS, CSAT or CES)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cxresearch.measures.importance import relative_weights
from cxresearch.synth.params import (
    ATTRIBUTES,
    DETRACTOR_CUT,
    FORMATS,
    MEASURE_GROUPS,
    PROMOTER_CUT,
    REGIONS,
    SEGMENTS,
    SynthParams,
    Truth,
)
from cxresearch.synth.world import (
    _attributes_given_total,
    _Calendar,
    _draw_answer,
    _Experience,
    _latent_cuts,
    _measure_value,
    _pick,
)

__all__ = ["location_quarter_truth", "location_truth"]


def _truth(arguments, p, loc, ex, exp, cust, buys, location_ids, cal, horizon_days, rng) -> Truth:
    n_loc, n_q = ex.shape
    in_window = buys["quarter"] >= 1
    counts = np.zeros((n_loc, n_q))
    np.add.at(counts, (buys["location"], buys["quarter"]), 1)
    brand_score = float((counts * exp.value).sum() / counts.sum())
    retention = _retention_truth(p, loc, exp, cust, cal, horizon_days)
    key = _keydriver_truth(exp, buys["location"][in_window], buys["quarter"][in_window], rng)
    gamma = math.log1p(p.revenue_pct(exp.measure) / 100)
    ex_effect = _ex_effect(exp, p)
    nps = exp.measure == "nps"
    _, b, c, _ = exp.answer
    latent = np.array(p.attribute_weights) * b + c * (np.arange(len(ATTRIBUTES)) == ATTRIBUTES.index("speed"))
    return Truth(
        parameters=arguments,
        horizon_days=int(horizon_days),
        brand_nps=brand_score if nps else float("nan"),
        **retention,
        revenue_log_per_10nps=gamma if nps else float("nan"),
        revenue_pct_per_10nps=100 * math.expm1(gamma) if nps else float("nan"),
        ex_nps_points_per_10ex=ex_effect if nps else float("nan"),
        attribute_weights_latent={f"attr_{a}": float(w) for a, w in zip(ATTRIBUTES, p.attribute_weights if nps else latent)},
        **key,
        location_nps=location_truth(loc, exp, counts, location_ids),
        location_quarter_nps=location_quarter_truth(ex, exp, counts, location_ids, cal),
        measure=exp.measure,
        brand_score=brand_score,
        revenue_log_per_10=gamma,
        revenue_pct_per_10=100 * math.expm1(gamma),
        ex_points_per_10ex=ex_effect,
    )


def _ex_effect(exp: _Experience, p: SynthParams) -> float:
    """Average over in-window location-quarters of d(value)/dEX * 10: kappa * 100 (phi(a) + phi(b)) / S for
    NPS, kappa * 100 b phi(a) / sd_Y for a share (Y = a + b Z + ..., so dY/dM = b)."""
    mean = exp.mean[:, 1:]
    if exp.measure == "nps":
        density = (np.exp(-0.5 * ((PROMOTER_CUT - mean) / exp.sd) ** 2)
                   + np.exp(-0.5 * ((DETRACTOR_CUT - mean) / exp.sd) ** 2)) / math.sqrt(2 * math.pi)
        return float(np.mean(100 * p.quality_per_10ex * density / exp.sd))
    top_cut, _ = _latent_cuts(exp.measure)
    density = np.exp(-0.5 * ((top_cut - exp.y_mean[:, 1:]) / exp.y_sd) ** 2) / math.sqrt(2 * math.pi)
    return float(np.mean(100 * p.quality_per_10ex * exp.answer[1] * density / exp.y_sd))


def _retention_truth(p: SynthParams, loc: dict, exp: _Experience, cust: dict, cal: _Calendar,
                     horizon: float) -> dict:
    """Retention within `horizon` days of the first purchase by the group of the brand measure's answer
    about it (NPS, CSAT or CES: `exp.probs` are that measure's group probabilities), exactly.

    First purchases form the first simulation pass, so the cohort whose realized mix sets a first
    purchase's return shift is the n customers with the same home l and first quarter k (n is fixed
    by arrivals alone). For customer i with group g and covariates x (home region, home format,
    segment): P(return | g, i) = E clip(rho_g + delta_x + base_l - (rho_g + S)/n, 0, 1), S the
    sum of rho over the other n - 1 first purchases of the cohort, whose groups are iid p(l, k);
    without the clip this is rho_g + delta_x + c_lk - (rho_g - sum_g' p_g'(l, k) rho_g')/n, c_lk the
    expected shift; `_expected_clipped` adds the clip exactly. P(ret | g, x_i) = F_x times the
    average of that over the first purchases of cell x that have group g (weights p_g(l, k)), which is
    what a model of retention on the first purchase's group and x converges to; F_x = 1 - exp(-rate_x H).
    The truth averages P(ret | g, x_i) over all customers (standardized to the covariate mix)."""
    rho = np.array(p.return_prob)
    n_loc, n_q = exp.mean.shape
    home, k = cust["home"], cal.quarter_of(cust["first"])
    cohort = home.astype(np.int64) * n_q + k
    size = np.bincount(cohort, minlength=n_loc * n_q)[cohort].astype("float64")
    probs = exp.probs[home, k]  # (n, 3)
    base = (exp.base_probs @ rho)[home]
    # distinct (cohort, segment) pairs share everything the return probability depends on
    combo, index = np.unique(cohort * len(SEGMENTS) + cust["segment"], return_index=True)
    inverse = np.searchsorted(combo, cohort * len(SEGMENTS) + cust["segment"])
    returns = np.empty((len(home), 3))
    for g in range(3):
        a = rho[g] * (1 - 1 / size[index]) + cust["delta"][index] + base[index]
        returns[:, g] = _expected_clipped(a, size[index].astype(np.int64), probs[index], rho)[inverse]
    within = 1 - np.exp(-cust["rate"] * horizon)
    cell = (loc["region"][home].astype(np.int64) * len(FORMATS) + loc["format"][home]) * len(SEGMENTS) + cust["segment"]
    n_cells = len(REGIONS) * len(FORMATS) * len(SEGMENTS)
    mean_return = np.empty((len(home), 3))
    for g in range(3):
        num = np.bincount(cell, weights=probs[:, g] * returns[:, g], minlength=n_cells)
        den = np.bincount(cell, weights=probs[:, g], minlength=n_cells)
        mean_return[:, g] = (num / np.where(den > 0, den, 1))[cell]
    rate = mean_return * within[:, None]  # (n, 3)
    gap = 100 * (rate[:, 0] - rate[:, 2])
    region = loc["region"][home]
    by_region = {r: float(gap[region == i].mean()) for i, r in enumerate(REGIONS) if (region == i).any()}
    return {
        "retention_gap_pp": float(gap.mean()),
        "retention_gap_pp_structural": float(100 * (rho[0] - rho[2]) * within.mean()),
        "retention_by_group": {g: float(rate[:, i].mean()) for i, g in enumerate(MEASURE_GROUPS[exp.measure])},
        "retention_gap_pp_by_region": by_region,
    }


def _expected_clipped(a: np.ndarray, n: np.ndarray, p: np.ndarray, rho: np.ndarray, eps: float = 1e-16
                      ) -> np.ndarray:
    """E clip(a - S/n, 0, 1) per row, S = sum of rho over n - 1 iid groups with probabilities p (rows).

    Without the clip it is a - (n - 1) p'rho / n. The clip is added exactly where it can bind with
    probability above eps (Hoeffding bound): over the number j of promoters among the others
    (binomial), the passives among the rest are binomial too and E (A - B X)+ has a closed form in
    binomial CDFs. Terms of probability below eps (1e-16) are dropped."""
    from scipy.stats import binom

    m = n - 1
    mean = a - m * (p @ rho) / n
    span = rho.max() - rho.min()
    dev_high = n * (a - 1) - m * (p @ rho)  # S below n (a - 1) clips at 1: needs S - E S < dev_high
    dev_low = n * a - m * (p @ rho)  # S above n a clips at 0: needs S - E S > dev_low
    bound = np.log(eps) * np.maximum(m, 1) * span ** 2 / 2  # Hoeffding: P(|S - ES| >= t) < eps if t^2 > -bound
    risky = ((dev_high > 0) | (dev_high ** 2 < -bound) | (dev_low < 0) | (dev_low ** 2 < -bound))
    rows = np.flatnonzero(risky)
    if rows.size == 0:
        return mean
    mr, pr = m[rows], p[rows]
    lo = np.maximum(binom.ppf(eps, mr, pr[:, 0]) - 1, 0).astype(np.int64)
    hi = np.minimum(binom.isf(eps, mr, pr[:, 0]) + 1, mr).astype(np.int64)
    count = hi - lo + 1
    owner = np.repeat(np.arange(rows.size), count)
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + lo[owner]
    r = rows[owner]
    weight = binom.pmf(j, m[r], p[r, 0])
    rest = m[r] - j
    q = np.where(p[r, 1] + p[r, 2] > 0, p[r, 1] / np.maximum(p[r, 1] + p[r, 2], 1e-300), 0.0)
    level = a[r] - (rho[2] * m[r] + (rho[0] - rho[2]) * j) / n[r]  # a - S/n when the rest are detractors
    slope = (rho[1] - rho[2]) / n[r]  # minus the change per passive instead of a detractor
    fix = _expected_positive(-level, -slope, rest, q) - _expected_positive(level - 1, slope, rest, q)
    out = mean.copy()
    out[rows] += np.bincount(owner, weights=weight * fix, minlength=rows.size)
    return out


def _expected_positive(a: np.ndarray, b: np.ndarray, m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """E (a - b X)+ for X ~ Binomial(m, q), elementwise (any sign of b)."""
    from scipy.stats import binom

    a, b = np.broadcast_arrays(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"))
    out = np.maximum(a, 0.0)  # b == 0 or m == 0
    neg = b < 0  # (a - bX)+ = (a - b E X) + (-a - (-b) X)+
    a2 = np.where(neg, -a, a)
    b2 = np.abs(b)
    pos = (b2 > 0) & (m > 0)
    top = np.where(pos, np.floor(np.where(pos, a2, 0) / np.where(pos, b2, 1)), -1)
    top = np.minimum(top, m)
    cdf = binom.cdf(top, m, q)
    cdf_less = np.where(m > 1, binom.cdf(top - 1, np.maximum(m - 1, 1), q), (top >= 1).astype("float64"))
    value = np.where(top >= 0, a2 * cdf - b2 * m * q * cdf_less, 0.0)
    value = np.where(neg, (a - b * m * q) + value, value)
    return np.where(pos, value, out)


def _keydriver_truth(exp: _Experience, locs: np.ndarray, quarters: np.ndarray, rng: np.random.Generator,
                     size: int = 400_000) -> dict:
    """Observed-scale key-driver estimands from a large fixed-seed internal sample of responses drawn
    like the brand's own (location-quarters in proportion to purchases): OLS of the measure's answer
    (0-10 NPS, 1-5 CSAT or 1-7 CES) on the five 1-5 ratings (pooled), its R^2 and Johnson's relative
    weights as shares."""
    if len(locs) == 0:
        return {"attribute_weights": {}, "attribute_importance": {}, "attribute_r2": float("nan")}
    pick = rng.integers(0, len(locs), size)
    l, k = locs[pick], quarters[pick]
    z = exp.mean[l, k] + exp.sd * rng.standard_normal(size)
    if exp.measure == "nps":
        _, ratings = _attributes_given_total(z - exp.mean[l, k], exp.alpha[l, k], exp, rng)
        answer = np.clip(np.rint(z), 0, 10)
    else:
        answer, speed = _draw_answer(z, exp.mean[l, k], exp, rng)
        _, ratings = _attributes_given_total(z - exp.mean[l, k], exp.alpha[l, k], exp, rng,
                                             speed if exp.answer[2] else None)
    design = np.column_stack([np.ones(size), ratings])
    coef, *_ = np.linalg.lstsq(design, answer, rcond=None)
    resid = answer - design @ coef
    r2 = 1 - resid.var() / answer.var()
    shares = relative_weights(ratings, answer)
    names = [f"attr_{a}" for a in ATTRIBUTES]
    return {"attribute_weights": {n: float(c) for n, c in zip(names, coef[1:])},
            "attribute_importance": {n: float(s) for n, s in zip(names, shares)},
            "attribute_r2": float(r2)}


def location_truth(loc: dict, exp: _Experience, counts: np.ndarray, ids: pd.Series) -> pd.DataFrame:
    """Per location: the measure (column nps, csat or ces), the true expected value of a response there
    over the window (quarters weighted by the location's purchases, the survey being a random sample of
    them); <measure>_persistent, at h = 0 (its persistent service quality); transactions in the window."""
    window = counts[:, 1:]
    weights = np.where(window.sum(axis=1, keepdims=True) > 0, window, 1.0)
    value = (weights * exp.value[:, 1:]).sum(axis=1) / weights.sum(axis=1)
    base = _measure_value(exp.base_probs, exp.measure)
    m = exp.measure
    return pd.DataFrame({"location_id": ids, "region": np.array(REGIONS, dtype=object)[loc["region"]],
                         "format": np.array(FORMATS, dtype=object)[loc["format"]],
                         m: value, f"{m}_persistent": base, "transactions": window.sum(axis=1).astype("int64")})


def location_quarter_truth(ex, exp, counts, ids, cal) -> pd.DataFrame:
    """Per location x quarter (including the quarter before the window, in_window False): the
    quarter start, EX score, the measure's true expected value (column nps, csat or ces), the previous
    quarter's (<measure>_previous, which sets spend this quarter), the expected return shift c_lk (a
    pass cohort's realized shift is sum_g (p_g(l, h=0) - realized share_g) rho_g) and the number of
    transactions."""
    n_loc, n_q = ex.shape
    locs = np.tile(np.arange(n_loc), n_q)
    quarters = np.repeat(np.arange(n_q), n_loc)
    previous = np.where(quarters > 0, exp.value[locs, np.maximum(quarters - 1, 0)], np.nan)
    m = exp.measure
    return pd.DataFrame({
        "location_id": _pick(ids, locs),
        "quarter_start": pd.Series(cal.quarter_starts[quarters]),
        "in_window": quarters >= 1,
        "ex_score": ex[locs, quarters],
        m: exp.value[locs, quarters],
        f"{m}_previous": previous,
        "return_shift": exp.return_shift[locs, quarters],
        "transactions": counts[locs, quarters].astype("int64"),
    })
