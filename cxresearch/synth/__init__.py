"""A synthetic multi-location brand with a published ground truth.

    ds, truth = cx.synth.generate(n_locations=60, n_customers=20000, seed=7)
    truth.retention_gap_pp, truth.revenue_pct_per_10nps, truth.location_nps, ...
    raw, truth = cx.synth.generate_raw(60, 20000, messy=True)   # dirty CSV-like frames for ingest
    cx.synth.write_raw(raw, "folder"); truth.save("folder/truth.json")
    ds, truth = cx.synth.generate(60, 20000, measure="csat")    # a CSAT-only (1-5 star) brand
    truth.retention_gap_pp, truth.revenue_pct_per_10, truth.location_nps["csat"], ...

Estimators (retention models, revenue panels, key drivers, location shrinkage) are tested by
generating a brand whose effects are known and checking that they recover them. Every value in
`Truth` is the population quantity its estimand converges to with infinite data, computed in
closed form from the model below (normal and binomial CDFs, no simulation), except the observed-scale key-driver
figures, which come from a large fixed-seed internal sample.

The generative model
--------------------
Units of time are days since the window start; quarters are calendar quarters, plus one quarter
before the window (index 0) whose NPS drives spend in the first quarter.

The brand's measure (`measure=`) is what its survey asks and what retention and spend follow: NPS
by default; "csat" or "ces" make a brand that asks only CSAT (1-5, or star ratings) or only CES
(1-7). Steps 3-6 are written for NPS; for the other two, read "the measure's answer, group and
value" for "NPS" (see "Other measures" below).

1. Locations. Each has a region and a format. Persistent service quality
   q_l = region effect + format effect + b * (mean EX_l - 62)/10 + N(0, quality_sd).
   Region and format also shift traffic (how many customers call the location home) and spend,
   in the same direction for flagships (better service, more traffic, bigger baskets) and outlets
   (worse service, smaller baskets): the confounding that makes a naive cross-location
   correlation of NPS with revenue far larger than the causal effect.
2. Employee experience. EX_lk = mean EX_l + d_lk, with d an AR(1) within location started from its
   stationary distribution (published rounded to 0.1; the model uses the rounded value). Service
   quality in quarter k is Q_lk = q_l + h_lk with h_lk = kappa * (EX_lk - mean EX_l)/10 + N(0, transient_sd).
3. Experiences. Every purchase has a latent experience on the 0-10 NPS scale,
   Z = c0 + sum_j w_j A_j + e, with latent attribute perceptions A = alpha_lk + u,
   alpha_lk = attribute mean + lambda * Q_lk (+ a format shift of price perception),
   u ~ N(0, Sigma) (correlated: halo), e ~ N(0, nps_noise_sd^2), and sum_j w_j lambda_j = 1.
   So Z | (l, k) ~ N(M_lk, S^2) exactly, with M_lk = c0 + w'alpha_lk and S^2 = w'Sigma w + sd_e^2.
   The purchase's NPS answer is clip(round(Z), 0, 10): promoter iff Z >= 8.5, detractor iff
   Z < 6.5, hence P(promoter) = 1 - Phi((8.5 - M)/S), P(detractor) = Phi((6.5 - M)/S) and the true
   expected NPS of a response at (l, k) is 100 * (P(promoter) - P(detractor)), exactly.
   Segment and channel do not enter the experience, so this holds for every purchase there.
4. Customers arrive over the window (monthly seasonality, a Q4 peak), each with a home location
   (chosen in proportion to traffic) and a segment (mix depends on the home format), and make their
   first purchase at home. Purchases are simulated in passes: pass 1 is every customer's first
   purchase, pass r + 1 the next purchase of those who returned after pass r. After a purchase with
   NPS group g at (l, k) in pass r, the customer returns with probability
   clip(rho_g + delta_x + c_lkr, 0, 1), otherwise never, where the return shift
   c_lkr = sum_g (p_g(l, h=0) - share_g(l, k, r)) rho_g uses the REALIZED group shares of the
   pass-r purchases at (l, k) (its expectation is c_lk = sum_g (p_g(l, h=0) - p_g(l, k)) rho_g).
   If they return, the next purchase follows after Exponential(rate_x) days (no seasonality), at
   home or, with probability 1 - home_share, at another location of the home region.
   x = (home region, home format, segment). Hence
   P(next purchase within H days | g, x, c) = clip(rho_g + delta_x + c) * (1 - exp(-rate_x H)).
5. Spend. log revenue of a purchase = level(format, region, location, segment, month of year)
   + gamma * (true NPS of the location in the previous quarter - 30)/10 + N(0, spend_sd^2).
   Spend does not depend on the purchase's own experience.
6. Surveys. Each purchase is surveyed with probability survey_rate, independently of everything,
   so observed scores are an unbiased sample of experiences. The answer reveals the purchase's NPS;
   attribute ratings are drawn from the exact conditional distribution of u given Z (Gaussian
   conditioning), so they drive NPS with the true weights; csat and ces are driven by Z with noise.

Why the revenue truth is exact
------------------------------
If a quarter's experiences moved the location's repeat purchases, that retention channel would
add to the within-location revenue effect and the truth would not be gamma. Two things could move
them: the expected quality fluctuation h_lk, and the luck of the draw, a location-quarter whose
purchases happen to contain more promoters than p(l, k) says. Measured NPS is a survey of those same
purchases, so it tracks that luck, and an estimator on measured NPS would pick the channel up. The
return shift cancels both: within a pass cohort (the n purchases of pass r at (l, k), all drawn
before any of their returns), sum_i (rho_g(i) + c_lkr) = n sum_g p_g(l, h=0) rho_g identically, so
the cohort's expected number of returns is n sum_g p_g(l, h=0) rho_g + sum_i delta_x(i), whatever
h_lk and whatever groups were realized. (Which purchases return still depends on their groups, but
groups are independent of customers' covariates, so the expected spend, timing and places of the
returns do not depend on the groups either.) Passes, not quarters, are the cohorts because a
return can land in the same location-quarter: the shift of a quarter's early purchases cannot wait
for the mix of purchases they themselves generate. Summed over passes, the expected number of
follow-on purchases of a location-quarter does not depend on its realized experience mix.

The one departure is the clip to [0, 1], which binds only in small cohorts whose realized mix is far
from p(l, k) (a few dozen purchases or fewer; with the default parameters the unclipped value
exceeds 1 only for promoters among many detractors). In a brand of 100 locations x 400,000
customers, where a pass-1 cohort has about 500 purchases, it binds for about 1 purchase in 100,000
and removes about 1e-7 expected returns per purchase. So, in expectation, the transaction process
(who buys, where, when) does not depend on the experiences at all, and the within-location
variation of log quarterly revenue is gamma * NPS_{l,k-1}/10 plus noise mean-independent of both the
true and the measured NPS. A location + quarter fixed-effects regression of log revenue on the
previous quarter's true NPS therefore estimates gamma (per 10 points) without bias, and one on
measured NPS does too once corrected for survey noise. The NPS group still decides *who* comes back
(promoters more often than detractors, by rho_P - rho_D times 1 - 1/n: a purchase's own group is
part of the mix its cohort's shift compensates), and persistent quality still moves how many come
back across locations.

The other truths
----------------
Retention: the truth is P(ret within H | first-purchase group g, x) with x = (home region, home
format, segment), averaged over all generated customers (standardized to their covariate mix).
First purchases are pass 1, so a customer's cohort is the n customers with the same home and first
quarter (n fixed by arrivals, not by experiences). For a first purchase of group g that cohort's
other n - 1 groups are iid p(l, k), and P(return | g, customer) =
E clip(rho_g + delta_x + base_l - (rho_g + S)/n, 0, 1), base_l = sum_g p_g(l, h=0) rho_g and S the
sum of rho over the others; without the clip this is rho_g + delta_x + c_lk - (rho_g - p(l, k)'rho)/n.
The clip is added exactly (binomial CDFs over the cohort's counts, terms below 1e-16 dropped).
Within a cell x, P(ret | g, x) is F_x times the average of that over the cell's first purchases
weighted by p_g(l, k). The gap promoter - detractor is the average marginal effect;
retention_gap_pp_structural, (rho_P - rho_D) F_x averaged, holds c fixed: the gap is smaller by
about a tenth of a point plus the structural gap times the customers' mean 1/n (about 1 point in a
brand of 12 locations x 3,000 customers, 0.06 with 100 x 400,000).

EX: within a location and over quarters, true NPS moves with EX by kappa * dNPS/dM per 10 EX
points; the truth averages this derivative over location-quarters in the window (the fixed-effects
slope agrees to second order in the small within-location fluctuations).

Location NPS: each location's quarterly true NPS averaged with the weights of its realized
purchases (the survey samples purchases at random), so a location's raw mean NPS is unbiased for it.

Key drivers: observed answers are rounded and clipped (0-10, 1-5), so the OLS coefficients of the
answer on the ratings are smaller than the latent weights. attribute_weights, attribute_r2 and
attribute_importance are the observed-scale population values, computed from 400,000 internal
draws with the brand's own location-quarter mix and a stream spawned from the seed (sampling error
about 0.003 per coefficient); attribute_weights_latent are the structural weights.

Other measures
--------------
A CSAT or CES answer is clip(round(Y)) with the latent Y = a + b Z + c u_speed + noise (CSAT:
(a, b, noise) = params.csat and c = 0; CES: params.ces, u_speed the speed perception's deviation
from its location-quarter mean, so effort also follows the speed of service beyond the overall
experience). Given (l, k), Y ~ N(a + b M_lk, sd_Y^2) exactly, with sd_Y^2 = b^2 S^2 + c^2 Sigma_ss
+ 2 b c (Sigma w)_s + noise^2, so the groups' probabilities are normal CDFs again: top (CSAT 4-5,
CES 5-7) iff Y >= 3.5 (CES 4.5), bottom (1-2, 1-3) iff Y < 2.5 (3.5); the value is the top-box
share in points, 100 P(top). In such a brand the answer is drawn with each purchase (u_speed from its
exact conditional given Z), the return follows its group (params.return_prob for top, middle,
bottom), spend follows gamma * (the previous quarter's true value - 70)/10 with
gamma = log(1 + params.revenue_pct(measure)/100), and a surveyed purchase reveals that answer (its
attribute ratings drawn given both Z and u_speed). Everything above then holds as written with the
measure's groups and value in place of NPS's: the return shift compensates the realized mix of the
measure's groups, which is what the measured value samples, so the revenue truth is exactly gamma
per 10 points of the measure; the retention truth is the same expectation over the measure's group
probabilities; the EX truth is kappa * b * 100 phi((cut - a - b M)/sd_Y)/sd_Y averaged. NPS and the
other score columns stay empty, and the NPS-named truths are NaN (see `Truth`). An NPS brand
(the default) is generated exactly as before this option existed: the same tables for the same seed.

Conventions
-----------
IDs are "L0001", "C000001", "T0000001", "R0000001", "E00001" (wider when the count needs it);
timestamps are UTC and floored to whole seconds. A response is recorded a few hours after its
purchase (never crossing a quarter boundary or the window end), so it can be linked to the
customer's latest purchase before it. Everything is drawn from independent numpy Generators spawned
from `seed`, one per component, so output is identical for identical arguments in any process, and
changing survey_rate changes only the responses, never the transactions.

Raw exports (`generate_raw`) are the same tables as strings; messy=True adds dirty rows for testing
ingest, each with exactly one defect, and counts them in `truth.messy_counts`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from cxresearch import schema
from cxresearch.io.dataset import CXDataset
from cxresearch.synth.messy import _make_messy, _to_raw
from cxresearch.synth.params import ATTRIBUTES, FORMATS, GROUPS, REGIONS, SEGMENTS, SynthParams, Truth
from cxresearch.synth.tables import _build
from cxresearch.synth.world import COMMENT_TOPIC_TERMS, _streams


def generate(n_locations: int = 60, n_customers: int = 20000, start="2024-01-01", end="2025-12-31",
             seed: int = 7, messy: bool = False, survey_rate: float = 0.2, horizon_days: int = 180,
             params: SynthParams | None = None, measure: str = "nps") -> tuple[CXDataset, Truth]:
    """Generate a clean brand as a CXDataset and its Truth.

    Parameters
    ----------
    n_locations, n_customers : int, default 60 and 20000
        Sizes (customers all first buy within the window).
    start, end : date-like, default "2024-01-01" and "2025-12-31"
        First and last day of the window (inclusive, UTC).
    seed : int, default 7
        Everything is deterministic given the arguments.
    messy : bool, default False
        Refused (True): dirty values do not fit canonical dtypes; use ``generate_raw(..., messy=True)``.
    survey_rate : float, default 0.2
        Probability that a purchase is surveyed.
    horizon_days : int, default 180
        The retention horizon the truth is stated for.
    params : SynthParams, optional
        Structural parameters (default ``SynthParams()``).
    measure : {"nps", "csat", "ces"}, default "nps"
        The brand's CX measure. "nps": the survey asks NPS, CSAT and CES in the ``score_patterns`` mix,
        and retention and spend follow NPS (the default brand). "csat" (a 1-5 CSAT or star-rating
        brand) and "ces" (1-7): the survey asks only that measure, the NPS and other score columns
        stay empty, retention depends on the measure's group of the first purchase (CSAT 4-5 / 3 /
        1-2, CES 5-7 / 4 / 1-3, with ``params.return_prob`` as for NPS promoters / passives /
        detractors), and spend on the location's previous-quarter top-box share in points
        (``params.revenue_pct(measure)`` % per +10 points: ``params.revenue_pct_per_10``, by default
        15); the truth is stated in that measure.

    Returns
    -------
    (CXDataset, Truth)
        The validated canonical tables, and the population values estimators should recover.

    Raises
    ------
    ValueError
        messy=True, sizes below 1, a survey_rate outside 0-1, an end before the start, an unknown
        measure, or parameters whose return probabilities leave [0, 1].
    """
    if messy:
        raise ValueError("generate() returns validated canonical tables; for dirty raw exports use "
                         "synth.generate_raw(..., messy=True) and load them with cx.load_dataset")
    tables, truth = _build(n_locations, n_customers, start, end, seed, survey_rate, horizon_days, params, measure)
    return CXDataset(**tables), truth


def generate_raw(n_locations: int = 60, n_customers: int = 20000, start="2024-01-01", end="2025-12-31",
                 seed: int = 7, messy: bool = False, survey_rate: float = 0.2, horizon_days: int = 180,
                 params: SynthParams | None = None, messy_rate: float = 0.003, measure: str = "nps"
                 ) -> tuple[dict[str, pd.DataFrame], Truth]:
    """The same brand as `generate`, as raw frames of strings (what a CSV export looks like).

    Missing values are NaN; timestamps are ISO 8601 in UTC ("2024-03-05T14:22:10Z"). With
    messy=True, each table gets about `messy_rate` x rows of each defect kind (at least one), each
    dirty row carrying exactly one defect; `truth.messy_counts[table]` gives the kinds and counts,
    the number of rows a validating ingest must reject ("rejected") and of clean rows whose optional
    cells were blanked ("missing_optional", still valid). Rejected rows are extra rows (duplicates are
    placed after the row they copy), so the accepted rows are exactly the clean tables with those
    optional cells blank.

    Parameters
    ----------
    n_locations, n_customers, start, end, seed, survey_rate, horizon_days, params, measure
        As in `generate`.
    messy : bool, default False
        Add dirty rows (see above).
    messy_rate : float, default 0.003
        Share of each table's rows per defect kind.

    Returns
    -------
    (dict of DataFrame, Truth)
        Raw frames by table name, and the truth (with ``messy_counts`` when messy).
    """
    dataset, truth = generate(n_locations, n_customers, start, end, seed, False, survey_rate,
                              horizon_days, params, measure)
    raw = {name: _to_raw(dataset.table(name)) for name in schema.TABLE_ORDER}
    if not messy:
        return raw, truth
    rng = _streams(seed)["messy"]
    raw, counts = _make_messy(raw, rng, messy_rate, n_locations, measure)
    parameters = dict(truth.parameters, messy=True, messy_rate=messy_rate)
    return raw, dataclasses.replace(truth, messy_counts=counts, parameters=parameters)


def write_raw(tables: dict[str, pd.DataFrame], folder, format: str = "csv") -> Path:
    """Write raw frames (from `generate_raw`) as `folder`/<table>.csv (or .parquet); returns the folder."""
    if format not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', not {format!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if format == "csv":
            frame.to_csv(out / f"{name}.csv", index=False)
        else:
            frame.to_parquet(out / f"{name}.parquet", index=False)
    return out


__all__ = ["ATTRIBUTES", "COMMENT_TOPIC_TERMS", "FORMATS", "GROUPS", "REGIONS", "SEGMENTS", "SynthParams", "Truth",
           "generate", "generate_raw", "write_raw"]
