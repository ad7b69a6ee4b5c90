"""A synthetic multi-location brand with a published ground truth.

    ds, truth = cx.synth.generate(n_locations=60, n_customers=20000, seed=7)
    truth.retention_gap_pp, truth.revenue_pct_per_10nps, truth.location_nps, ...
    raw, truth = cx.synth.generate_raw(60, 20000, messy=True)   # dirty CSV-like frames for ingest
    cx.synth.write_raw(raw, "folder"); truth.save("folder/truth.json")

Estimators (retention models, revenue panels, key drivers, location shrinkage) are tested by
generating a brand whose effects are known and checking that they recover them. Every value in
`Truth` is the population quantity its estimand converges to with infinite data, computed in
closed form from the model below (normal and binomial CDFs, no simulation), except the observed-scale key-driver
figures, which come from a large fixed-seed internal sample.

The generative model
--------------------
Units of time are days since the window start; quarters are calendar quarters, plus one quarter
before the window (index 0) whose NPS drives spend in the first quarter.

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
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from . import schema
from .dataset import CXDataset

REGIONS = ("North", "South", "East", "West", "Central")
FORMATS = ("flagship", "mall", "street", "outlet")
SEGMENTS = ("premium", "regular", "value")
GROUPS = ("promoter", "passive", "detractor")
ATTRIBUTES = ("staff", "speed", "cleanliness", "availability", "price")
PURCHASE_CHANNELS = ("in_store", "web", "app", "phone")
PROMOTER_CUT, DETRACTOR_CUT = 8.5, 6.5  # latent thresholds: round(Z) >= 9 and round(Z) <= 6
NPS_REFERENCE = 30.0  # spend is centred here; only differences matter
STREAMS = ("locations", "ex", "customers", "purchases", "spend", "survey", "keydrivers", "messy")
REGION_CENTRES = {"North": (46.0, -94.0), "South": (32.5, -88.0), "East": (40.5, -76.0),
                  "West": (37.5, -120.0), "Central": (39.0, -98.0)}


@dataclass(frozen=True)
class SynthParams:
    """Structural parameters of the generator. Tuples are indexed like REGIONS, FORMATS, SEGMENTS,
    GROUPS, ATTRIBUTES or months (Jan..Dec). Latent quality is on the 0-10 NPS-answer scale, where
    +0.1 moves a typical location's NPS by about 3.5 points."""

    # locations
    region_probs: tuple = (0.22, 0.20, 0.22, 0.18, 0.18)
    format_probs: tuple = (0.10, 0.35, 0.35, 0.20)
    region_quality: tuple = (0.10, -0.05, 0.0, 0.15, -0.15)
    format_quality: tuple = (0.35, 0.0, 0.05, -0.35)
    quality_sd: float = 0.30
    format_traffic: tuple = (0.60, 0.30, 0.0, 0.10)  # log traffic
    traffic_sd: float = 0.35
    # employee experience (0-100)
    ex_mean: float = 62.0
    ex_format: tuple = (6.0, 0.0, 0.0, -6.0)
    ex_location_sd: float = 7.0
    ex_quality_per_10ex: float = 0.10  # cross-location: persistent quality per 10 points of mean EX
    ex_sd: float = 6.0  # within-location sd of quarterly EX
    ex_ar: float = 0.6
    quality_per_10ex: float = 0.15  # kappa: within-location quality per +10 EX
    transient_sd: float = 0.08
    # experience and scores
    nps_mean: float = 8.35
    attribute_weights: tuple = (0.9, 0.5, 0.35, 0.6, 0.4)  # latent NPS points per rating point
    attribute_mean: tuple = (3.7, 3.6, 3.9, 3.6, 3.4)
    attribute_quality_loading: tuple = (0.45, 0.35, 0.30, 0.30, 0.0)  # rescaled so w'lambda = 1
    price_format_shift: tuple = (-0.30, 0.0, 0.0, 0.45)  # outlets feel cheap, flagships dear
    attribute_sd: float = 0.85
    attribute_corr: float = 0.35
    nps_noise_sd: float = 1.2
    csat: tuple = (0.6, 0.42, 0.55)  # intercept, slope on Z, noise sd
    ces: tuple = (1.5, 0.45, 0.4, 0.8)  # intercept, slope on Z, slope on speed perception, noise sd
    # spend
    spend_median: float = 42.0
    spend_sd: float = 0.6
    format_spend: tuple = (0.30, 0.10, 0.0, -0.30)
    region_spend: tuple = (0.0, -0.05, 0.08, 0.10, -0.08)
    location_spend_sd: float = 0.10
    segment_spend: tuple = (0.40, 0.0, -0.30)
    month_spend: tuple = (-0.05, -0.08, -0.03, 0.0, 0.0, 0.02, 0.02, 0.0, -0.02, 0.02, 0.10, 0.22)
    revenue_pct_per_10nps: float = 6.0
    # customers and purchases
    month_arrivals: tuple = (0.85, 0.80, 0.90, 0.95, 1.0, 1.0, 1.0, 0.95, 0.95, 1.0, 1.25, 1.5)
    segment_mix: tuple = ((0.35, 0.45, 0.20), (0.20, 0.50, 0.30), (0.20, 0.50, 0.30), (0.08, 0.42, 0.50))
    home_share: float = 0.88
    purchase_channel_probs: tuple = (0.82, 0.08, 0.07, 0.03)
    # retention: P(return) = rho_g + delta_region + delta_format + delta_segment + c_lk
    return_prob: tuple = (0.80, 0.64, 0.46)
    region_return: tuple = (0.02, -0.02, 0.0, 0.03, -0.03)
    format_return: tuple = (0.03, 0.0, 0.01, -0.04)
    segment_return: tuple = (0.05, 0.0, -0.05)
    mean_days_between: float = 75.0
    region_rate: tuple = (1.0, 0.95, 1.05, 1.0, 0.9)
    format_rate: tuple = (1.1, 1.0, 1.05, 0.85)
    segment_rate: tuple = (1.3, 1.0, 0.8)
    # surveys
    response_channel_probs: tuple = (0.62, 0.08, 0.18, 0.04, 0.04, 0.02, 0.02)  # schema.CHANNELS order
    journey_stage_probs: tuple = (0.04, 0.06, 0.08, 0.70, 0.12)  # schema.JOURNEY_STAGES order
    score_patterns: tuple = ((1, 1, 1, 0.70), (1, 0, 0, 0.12), (1, 1, 0, 0.10), (0, 1, 1, 0.05), (1, 0, 1, 0.03))
    attribute_rate: float = 0.6  # share of responses with the attribute battery
    attribute_skip: float = 0.03  # item non-response within the battery
    comment_rate: float = 0.2
    response_delay_hours: float = 4.0

    @classmethod
    def from_dict(cls, values: dict) -> SynthParams:
        """Rebuild from `dataclasses.asdict` output or its JSON (lists become tuples again)."""
        def tup(v):
            return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v
        return cls(**{k: tup(v) for k, v in values.items()})


@dataclass(frozen=True)
class Truth:
    """The effects built into a generated brand, as the population values estimators should recover.

    NPS: brand_nps (-100..100, expected NPS of a response in the window); location_nps (per
    location: nps over the window, nps_persistent at zero within-location fluctuation, region,
    format, transactions); location_quarter_nps (per location x quarter, including the quarter
    before the window: quarter_start, in_window, ex_score, nps, nps_previous, return_shift (the
    expected shift c_lk; each pass cohort's realized shift depends on its realized mix),
    transactions).

    Retention (within horizon_days of the first purchase, by the NPS group of its experience):
    retention_by_group, proportions P(ret | group, x) averaged over all customers' covariates
    x = (home region, home format, segment); retention_gap_pp = promoter minus detractor in
    percentage points (the average marginal effect); retention_gap_pp_by_region (by home region);
    retention_gap_pp_structural, the gap with the return shift held fixed (larger by about 0.1 pp plus
    the structural gap times the mean of 1/n, n the customer's first-purchase cohort: see the module).

    Revenue: revenue_log_per_10nps, the location + quarter fixed-effects coefficient of log quarterly
    revenue on the previous quarter's true NPS, per 10 points (= 10 x the per-point coefficient);
    revenue_pct_per_10nps = 100 (exp(that) - 1). ex_nps_points_per_10ex: true NPS points per +10 EX
    points within a location.

    Key drivers: attribute_weights, the population OLS coefficients of the 0-10 answer on the 1-5
    ratings (pooled over responses; what a key-driver regression reports), attribute_r2 its R^2,
    attribute_importance Johnson's relative weights of that regression (shares summing to 1);
    attribute_weights_latent, the structural weights on the latent scale (larger: rounding and the
    0/10 and 1/5 limits of the answer scales attenuate the observed ones).

    messy_counts: per table, the defects injected by generate_raw(messy=True) (see there).
    parameters: every argument of the run; `regenerate()` rebuilds the brand from them.
    """

    parameters: dict
    horizon_days: int
    brand_nps: float
    retention_gap_pp: float
    retention_gap_pp_structural: float
    retention_by_group: dict
    retention_gap_pp_by_region: dict
    revenue_log_per_10nps: float
    revenue_pct_per_10nps: float
    ex_nps_points_per_10ex: float
    attribute_weights: dict
    attribute_weights_latent: dict
    attribute_importance: dict
    attribute_r2: float
    location_nps: pd.DataFrame
    location_quarter_nps: pd.DataFrame
    messy_counts: dict = field(default_factory=dict)

    FRAMES = ("location_nps", "location_quarter_nps")

    def to_dict(self) -> dict:
        """A JSON-serializable dict: frames become lists of records, timestamps ISO 8601 strings."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = _records(value) if isinstance(value, pd.DataFrame) else _plain(value)
        return out

    def save(self, path) -> Path:
        """Write truth.json: to `path` if it names a .json file, else to `path`/truth.json."""
        target = Path(path)
        if target.suffix.lower() != ".json":
            target.mkdir(parents=True, exist_ok=True)
            target = target / "truth.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path) -> Truth:
        """Read a truth.json written by `save` (a file, or a folder holding truth.json)."""
        source = Path(path)
        if source.is_dir():
            source = source / "truth.json"
        values = json.loads(source.read_text(encoding="utf-8"))
        for name in cls.FRAMES:
            frame = pd.DataFrame.from_records(values[name])
            if "quarter_start" in frame:
                frame["quarter_start"] = pd.to_datetime(frame["quarter_start"], utc=True).astype("datetime64[us, UTC]")
            for col in ("nps_previous",):
                if col in frame:
                    frame[col] = frame[col].astype("float64")
            values[name] = frame
        return cls(**values)

    def generator_arguments(self) -> dict:
        """Keyword arguments that rebuild exactly this brand: `generate(**args)` for a clean brand,
        `generate_raw(**args)` when `messy` is among them."""
        args = dict(self.parameters)
        args["params"] = SynthParams.from_dict(args["params"])
        return args

    def regenerate(self):
        """Rebuild the brand this truth describes: (CXDataset, Truth), or (raw frames, Truth) if messy."""
        args = self.generator_arguments()
        return generate_raw(**args) if args.get("messy") else generate(**args)


# --------------------------------------------------------------------------------------------------
# Public entry points


def generate(n_locations: int = 60, n_customers: int = 20000, start="2024-01-01", end="2025-12-31",
             seed: int = 7, messy: bool = False, survey_rate: float = 0.2, horizon_days: int = 180,
             params: SynthParams | None = None) -> tuple[CXDataset, Truth]:
    """Generate a clean brand as a CXDataset and its Truth.

    n_locations, n_customers: sizes (customers all first buy within the window); start, end: first
    and last day (inclusive, UTC); seed: everything is deterministic given the arguments;
    survey_rate: probability that a purchase is surveyed; horizon_days: the retention horizon the
    truth is stated for; params: structural parameters (SynthParams). messy=True is refused because
    dirty values do not fit canonical dtypes: use `generate_raw(..., messy=True)`.
    """
    if messy:
        raise ValueError("generate() returns validated canonical tables; for dirty raw exports use "
                         "synth.generate_raw(..., messy=True) and load them with cx.load_dataset")
    tables, truth = _build(n_locations, n_customers, start, end, seed, survey_rate, horizon_days, params)
    return CXDataset(**tables), truth


def generate_raw(n_locations: int = 60, n_customers: int = 20000, start="2024-01-01", end="2025-12-31",
                 seed: int = 7, messy: bool = False, survey_rate: float = 0.2, horizon_days: int = 180,
                 params: SynthParams | None = None, messy_rate: float = 0.003
                 ) -> tuple[dict[str, pd.DataFrame], Truth]:
    """The same brand as `generate`, as raw frames of strings (what a CSV export looks like).

    Missing values are NaN; timestamps are ISO 8601 in UTC ("2024-03-05T14:22:10Z"). With
    messy=True, each table gets about `messy_rate` x rows of each defect kind (at least one), each
    dirty row carrying exactly one defect; `truth.messy_counts[table]` gives the kinds and counts,
    the number of rows a validating ingest must reject ("rejected") and of clean rows whose optional
    cells were blanked ("missing_optional", still valid). Rejected rows are extra rows (duplicates are
    placed after the row they copy), so the accepted rows are exactly the clean tables with those
    optional cells blank.
    """
    dataset, truth = generate(n_locations, n_customers, start, end, seed, False, survey_rate,
                              horizon_days, params)
    raw = {name: _to_raw(dataset.table(name)) for name in schema.TABLE_ORDER}
    if not messy:
        return raw, truth
    rng = _streams(seed)["messy"]
    raw, counts = _make_messy(raw, rng, messy_rate, n_locations)
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


# --------------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class _Calendar:
    """Days since the window start: quarter boundaries (index 0 = the quarter before the window) and
    the month of year of every day of the window."""

    origin: pd.Timestamp
    n_days: int
    quarter_starts: pd.DatetimeIndex  # K quarter starts
    bounds: np.ndarray  # K + 1 boundaries in days since origin
    day_month: np.ndarray  # 0-11 per day

    @property
    def n_quarters(self) -> int:
        return len(self.quarter_starts)

    def quarter_of(self, days: np.ndarray) -> np.ndarray:
        return (np.searchsorted(self.bounds, days, side="right") - 1).astype(np.int16)

    def stamps(self, days: np.ndarray) -> pd.Series:
        """Timestamps (UTC, whole seconds, floored so they never pass the window end)."""
        seconds = np.floor(np.asarray(days, dtype="float64") * 86400.0).astype("int64")
        base = np.datetime64(self.origin.tz_localize(None).to_datetime64(), "us")
        return pd.Series(base + seconds.astype("timedelta64[s]")).dt.tz_localize("UTC")


def _utc_day(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).normalize()


def _calendar(start, end) -> _Calendar:
    """The window [start, end + 1 day) in UTC and its calendar quarters."""
    origin = _utc_day(start)
    stop = _utc_day(end) + pd.Timedelta(days=1)
    if stop <= origin:
        raise ValueError(f"end ({end}) must not be before start ({start})")
    first = origin.tz_localize(None).to_period("Q").start_time.tz_localize("UTC")
    starts = [first - pd.DateOffset(months=3), first]
    while starts[-1] + pd.DateOffset(months=3) < stop:
        starts.append(starts[-1] + pd.DateOffset(months=3))
    quarter_starts = pd.DatetimeIndex(starts).astype("datetime64[us, UTC]")
    boundaries = list(starts) + [starts[-1] + pd.DateOffset(months=3)]
    bounds = np.array([(b - origin) / pd.Timedelta(days=1) for b in boundaries])
    n_days = int((stop - origin) / pd.Timedelta(days=1))
    day_month = (pd.date_range(origin, periods=n_days, freq="D").month.to_numpy() - 1).astype(np.int8)
    return _Calendar(origin, n_days, quarter_starts, bounds, day_month)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent Generator per component, all spawned from `seed`."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def _draw_index(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of `probs` (rows of probabilities), vectorized."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    return (u[:, None] >= cum).sum(axis=1).astype(np.int8)


def _draw_fixed(rng: np.random.Generator, probs, n: int) -> np.ndarray:
    """n category indices drawn with the same probabilities."""
    cum = np.cumsum(probs)
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right").astype(np.int8)


def _make_locations(n: int, p: SynthParams, rng: np.random.Generator, cal: _Calendar) -> dict:
    """Region, format, persistent quality, traffic, spend level, EX mean, place and opening date."""
    region = rng.choice(len(REGIONS), n, p=np.array(p.region_probs)).astype(np.int8)
    fmt = rng.choice(len(FORMATS), n, p=np.array(p.format_probs)).astype(np.int8)
    ex_mean = np.clip(p.ex_mean + np.array(p.ex_format)[fmt] + p.ex_location_sd * rng.standard_normal(n), 25, 90)
    quality = (np.array(p.region_quality)[region] + np.array(p.format_quality)[fmt]
               + p.ex_quality_per_10ex * (ex_mean - p.ex_mean) / 10 + p.quality_sd * rng.standard_normal(n))
    traffic = np.exp(np.array(p.format_traffic)[fmt] + p.traffic_sd * rng.standard_normal(n))
    spend_level = (np.array(p.format_spend)[fmt] + np.array(p.region_spend)[region]
                   + p.location_spend_sd * rng.standard_normal(n))
    centres = np.array([REGION_CENTRES[r] for r in REGIONS])
    lat = centres[region, 0] + 1.5 * rng.standard_normal(n)
    lon = centres[region, 1] + 2.5 * rng.standard_normal(n)
    years_open = rng.uniform(1, 20, n) + 6 * (fmt == 0)
    opened = cal.origin - pd.to_timedelta(np.floor(years_open * 365.25), unit="D")
    return {"region": region, "format": fmt, "ex_mean": ex_mean, "quality": quality, "traffic": traffic,
            "spend_level": spend_level, "latitude": np.round(lat, 5), "longitude": np.round(lon, 5),
            "opened_on": opened}


def _ex_paths(loc: dict, p: SynthParams, rng: np.random.Generator, n_quarters: int):
    """Quarterly EX per location (AR(1) around its mean, stationary from the start) and the service
    shift h it causes plus a transient shock. Returns (ex, h), both locations x quarters."""
    n = len(loc["quality"])
    dev = np.empty((n, n_quarters))
    dev[:, 0] = p.ex_sd * rng.standard_normal(n)
    innovation = p.ex_sd * math.sqrt(1 - p.ex_ar ** 2)
    for k in range(1, n_quarters):
        dev[:, k] = p.ex_ar * dev[:, k - 1] + innovation * rng.standard_normal(n)
    ex = np.round(np.clip(loc["ex_mean"][:, None] + dev, 0, 100), 1)
    h = p.quality_per_10ex * (ex - loc["ex_mean"][:, None]) / 10 + p.transient_sd * rng.standard_normal((n, n_quarters))
    return ex, h


@dataclass(frozen=True)
class _Experience:
    """Per location x quarter: attribute means alpha (L, K, 5), latent NPS mean M, group
    probabilities (L, K, 3), true NPS, the return shift c; plus S and the attribute covariance."""

    alpha: np.ndarray
    mean: np.ndarray
    probs: np.ndarray
    nps: np.ndarray
    return_shift: np.ndarray
    base_probs: np.ndarray  # (L, 3) at h = 0
    sd: float
    weights: np.ndarray
    cov: np.ndarray


def _group_probs(mean: np.ndarray, sd: float) -> np.ndarray:
    """P(promoter), P(passive), P(detractor) for Z ~ N(mean, sd^2): exact normal CDFs."""
    promoter = 1 - ndtr((PROMOTER_CUT - mean) / sd)
    detractor = ndtr((DETRACTOR_CUT - mean) / sd)
    return np.stack([promoter, 1 - promoter - detractor, detractor], axis=-1)


def _experience(loc: dict, h: np.ndarray, p: SynthParams) -> _Experience:
    w = np.array(p.attribute_weights)
    loading = np.array(p.attribute_quality_loading)
    loading = loading / (w @ loading)  # so that one unit of quality moves M by one unit
    shift = np.zeros((len(loc["quality"]), len(ATTRIBUTES)))
    shift[:, ATTRIBUTES.index("price")] = np.array(p.price_format_shift)[loc["format"]]
    base = np.array(p.attribute_mean) + shift  # (L, 5)
    c0 = p.nps_mean - np.array(p.attribute_mean) @ w
    quality = loc["quality"][:, None] + h
    alpha = base[:, None, :] + loading * quality[..., None]
    mean = c0 + alpha @ w
    corr = np.full((len(w), len(w)), p.attribute_corr)
    np.fill_diagonal(corr, 1.0)
    cov = p.attribute_sd ** 2 * corr
    sd = math.sqrt(w @ cov @ w + p.nps_noise_sd ** 2)
    probs = _group_probs(mean, sd)
    base_probs = _group_probs(c0 + (base + loading * loc["quality"][:, None]) @ w, sd)
    rho = np.array(p.return_prob)
    return_shift = (base_probs[:, None, :] - probs) @ rho
    nps = 100 * (probs[..., 0] - probs[..., 2])
    return _Experience(alpha, mean, probs, nps, return_shift, base_probs, sd, w, cov)


def _make_customers(n: int, loc: dict, p: SynthParams, rng: np.random.Generator, cal: _Calendar) -> dict:
    """Arrival (first purchase) times in store hours with monthly seasonality, sorted; home
    location in proportion to traffic; segment from the home format's mix."""
    day_weight = np.array(p.month_arrivals)[cal.day_month]
    day = rng.choice(cal.n_days, n, p=day_weight / day_weight.sum())
    first = np.sort(day + rng.uniform(9 / 24, 21 / 24, n))
    home = rng.choice(len(loc["quality"]), n, p=loc["traffic"] / loc["traffic"].sum()).astype(np.int32)
    segment = _draw_index(rng, np.array(p.segment_mix)[loc["format"][home]])
    region, fmt = loc["region"][home], loc["format"][home]
    delta = (np.array(p.region_return)[region] + np.array(p.format_return)[fmt]
             + np.array(p.segment_return)[segment])
    rate = (np.array(p.region_rate)[region] * np.array(p.format_rate)[fmt]
            * np.array(p.segment_rate)[segment] / p.mean_days_between)
    return {"first": first, "home": home, "segment": segment, "delta": delta, "rate": rate}


def _check_return_probabilities(exp: _Experience, p: SynthParams) -> None:
    """Refuse parameters whose return probabilities leave [0, 1] at the expected shift c_lk (the
    realized shift of a small cohort with an unusual mix can go further: those are clipped)."""
    rho = np.array(p.return_prob)
    spread = [np.array(v) for v in (p.region_return, p.format_return, p.segment_return)]
    low = rho.min() + sum(s.min() for s in spread) + exp.return_shift.min()
    high = rho.max() + sum(s.max() for s in spread) + exp.return_shift.max()
    if low < 0 or high > 1:
        raise ValueError(f"return probabilities leave [0, 1] ({low:.3f}..{high:.3f}); shrink the "
                         "retention effects or the within-location quality fluctuations")


class _RegionPicker:
    """Draws a location of a given region in proportion to traffic (vectorized inverse CDF)."""

    def __init__(self, loc: dict):
        self.order = np.argsort(loc["region"], kind="stable")
        weights = loc["traffic"][self.order]
        self.cum = np.cumsum(weights)
        totals = np.bincount(loc["region"], weights=loc["traffic"], minlength=len(REGIONS))
        self.low = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        self.total = totals

    def __call__(self, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.low[region] + rng.random(len(region)) * self.total[region]
        pos = np.minimum(np.searchsorted(self.cum, target, side="right"), len(self.cum) - 1)
        return self.order[pos].astype(np.int32)


def _simulate_purchases(cust: dict, loc: dict, exp: _Experience, p: SynthParams,
                        rng: np.random.Generator, cal: _Calendar) -> dict:
    """All purchases in the window, one round of "next purchase" per loop pass over all customers
    still active. Returns arrays sorted by time: customer, location, time (days), quarter, latent
    experience z, and whether it is the customer's first purchase."""
    picker = _RegionPicker(loc)
    rho = np.array(p.return_prob)
    base = exp.base_probs @ rho  # (L,) mean return probability of a purchase at h = 0, before delta
    n_loc, n_q = exp.mean.shape
    who = np.arange(len(cust["first"]), dtype=np.int32)
    where, when = cust["home"].copy(), cust["first"].copy()
    parts = []
    first = True
    while who.size:
        quarter = cal.quarter_of(when)
        z = exp.mean[where, quarter] + exp.sd * rng.standard_normal(who.size)
        group = _group_of(z)
        parts.append((who, where, when, quarter, z, np.full(who.size, first)))
        # the return shift of this pass's cohort at (l, k): base_l minus the cohort's REALIZED mean
        # rho, so the cohort's expected number of returns does not depend on its experience mix
        cell = where.astype(np.int64) * n_q + quarter
        size = np.bincount(cell, minlength=n_loc * n_q)
        realized = np.bincount(cell, weights=rho[group], minlength=n_loc * n_q) / np.maximum(size, 1)
        prob = rho[group] + cust["delta"][who] + base[where] - realized[cell]
        back = rng.random(who.size) < np.clip(prob, 0.0, 1.0)
        wait = rng.standard_exponential(who.size) / cust["rate"][who]
        keep = back & (when + wait < cal.n_days)
        who, when = who[keep], (when + wait)[keep]
        where = cust["home"][who].copy()
        away = rng.random(who.size) >= p.home_share
        where[away] = picker(loc["region"][where[away]], rng)
        first = False
    names = ("customer", "location", "time", "quarter", "z", "first")
    columns = {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(names)}
    order = np.argsort(columns["time"], kind="stable")
    return {name: values[order] for name, values in columns.items()}


def _group_of(z: np.ndarray) -> np.ndarray:
    """0 promoter, 1 passive, 2 detractor, from the latent experience."""
    return np.where(z >= PROMOTER_CUT, 0, np.where(z < DETRACTOR_CUT, 2, 1)).astype(np.int8)


def _spend(buys: dict, cust: dict, loc: dict, exp: _Experience, p: SynthParams,
           rng: np.random.Generator, cal: _Calendar) -> np.ndarray:
    """Revenue per purchase: lognormal around the location/segment/month level, times
    exp(gamma * (previous quarter's true NPS - 30)/10). Independent of the purchase's experience."""
    gamma = math.log1p(p.revenue_pct_per_10nps / 100)
    l, k = buys["location"], buys["quarter"]
    month = cal.day_month[np.minimum(buys["time"].astype(np.int64), cal.n_days - 1)]
    log_spend = (math.log(p.spend_median) + loc["spend_level"][l]
                 + np.array(p.segment_spend)[cust["segment"][buys["customer"]]]
                 + np.array(p.month_spend)[month]
                 + gamma * (exp.nps[l, k - 1] - NPS_REFERENCE) / 10
                 + p.spend_sd * rng.standard_normal(len(l)))
    return np.round(np.exp(log_spend), 2)


def _attributes_given_total(total: np.ndarray, alpha: np.ndarray, exp: _Experience,
                            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Latent attribute perceptions A = alpha + u drawn from the exact conditional of u given
    w'u + e = total (Gaussian conditioning), and the 1-5 ratings round(A) clipped. Returns (A, ratings)."""
    w, cov = exp.weights, exp.cov
    gain = cov @ w / exp.sd ** 2
    cond = cov - np.outer(cov @ w, cov @ w) / exp.sd ** 2
    chol = np.linalg.cholesky(cond)
    u = total[:, None] * gain + rng.standard_normal((len(total), len(w))) @ chol.T
    latent = alpha + u
    return latent, np.clip(np.rint(latent), 1, 5)


COMMENT_TEMPLATES = {
    0: ("Great {a}!", "Loved the {a}.", "Really impressed by the {a}.", "{A} was excellent, will be back."),
    1: ("{A} was okay.", "Fine overall, the {a} could be better.", "Nothing special about the {a}."),
    2: ("Poor {a}.", "Disappointed with the {a}.", "{A} needs work.", "Will not come back, the {a} was bad."),
}
ATTRIBUTE_NOUNS = ("staff", "speed of service", "cleanliness", "product availability", "prices")


def _comment_bank() -> tuple[np.ndarray, np.ndarray]:
    """All comment texts, indexed [group, template, attribute], and templates per group."""
    width = max(len(t) for t in COMMENT_TEMPLATES.values())
    bank = np.empty((3, width, len(ATTRIBUTES)), dtype=object)
    for g, templates in COMMENT_TEMPLATES.items():
        for t in range(width):
            text = templates[t % len(templates)]
            for j, noun in enumerate(ATTRIBUTE_NOUNS):
                bank[g, t, j] = text.format(a=noun, A=noun[0].upper() + noun[1:])
    return bank, np.array([len(COMMENT_TEMPLATES[g]) for g in range(3)])


def _survey(buys: dict, channel: np.ndarray, exp: _Experience, p: SynthParams, survey_rate: float,
            rng: np.random.Generator, cal: _Calendar) -> dict:
    """Responses: a random subset of purchases, with scores revealing their experience."""
    idx = np.flatnonzero(rng.random(len(buys["time"])) < survey_rate)
    n = len(idx)
    l, k, z = buys["location"][idx], buys["quarter"][idx], buys["z"][idx]
    group = _group_of(z)
    latent, ratings = _attributes_given_total(z - exp.mean[l, k], exp.alpha[l, k], exp, rng)
    nps = np.clip(np.rint(z), 0, 10)
    a, b, noise = p.csat
    csat = np.clip(np.rint(a + b * z + noise * rng.standard_normal(n)), 1, 5)
    a, b, c, noise = p.ces
    speed = ATTRIBUTES.index("speed")
    ces = np.clip(np.rint(a + b * z + c * (latent[:, speed] - exp.alpha[l, k, speed])
                          + noise * rng.standard_normal(n)), 1, 7)
    patterns = np.array(p.score_patterns)
    shown = patterns[_draw_fixed(rng, patterns[:, 3], n), :3].astype(bool)
    scores = {name: np.where(shown[:, i], values, np.nan)
              for i, (name, values) in enumerate((("nps", nps), ("csat", csat), ("ces", ces)))}
    battery = rng.random(n) < p.attribute_rate
    asked = battery[:, None] & (rng.random((n, len(ATTRIBUTES))) >= p.attribute_skip)
    ratings = np.where(asked, ratings, np.nan)
    # channel: the purchase's own channel when it was not in store, else the survey touchpoint mix
    purchase_channel = np.array([schema.CHANNELS.index(c) for c in PURCHASE_CHANNELS])[channel[idx]]
    drawn = _draw_fixed(rng, p.response_channel_probs, n)
    resp_channel = np.where(purchase_channel == schema.CHANNELS.index("in_store"), drawn, purchase_channel)
    stage = _draw_fixed(rng, p.journey_stage_probs, n)
    comment = _comments(group, latent - exp.alpha[l, k], rng, p.comment_rate)
    delay = np.minimum(rng.standard_exponential(n) * p.response_delay_hours, 48.0) / 24
    when = buys["time"][idx] + delay
    same = (cal.quarter_of(when) == k) & (when < cal.n_days)
    when = np.where(same, when, buys["time"][idx])  # never let the delay cross a quarter or the end
    order = np.argsort(when, kind="stable")
    out = {"purchase": idx, "time": when, "channel": resp_channel, "stage": stage, "comment": comment,
           "ratings": ratings, **scores}
    return {name: values[order] for name, values in out.items()}


def _comments(group: np.ndarray, deviation: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Short comments for a random share of responses: praise of the best-perceived attribute from
    promoters, complaints about the worst from the others."""
    bank, per_group = _comment_bank()
    n = len(group)
    has = rng.random(n) < rate
    template = (rng.random(n) * per_group[group]).astype(np.int64)
    attribute = np.where(group == 0, deviation.argmax(axis=1), deviation.argmin(axis=1))
    text = bank[group, template, attribute]
    text[~has] = None
    return text


# --------------------------------------------------------------------------------------------------
# Assembling the tables


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    digits = max(width, len(str(n)))
    return prefix + pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(digits)


def _pick(ids: pd.Series, index: np.ndarray) -> pd.Series:
    """ids[index] as a fresh str Series (a take on the Arrow array, no Python objects)."""
    return ids.take(index).reset_index(drop=True)


def _build(n_locations, n_customers, start, end, seed, survey_rate, horizon_days, params):
    """Generate everything: returns (canonical tables as a dict, Truth)."""
    if n_locations < 1 or n_customers < 1:
        raise ValueError("n_locations and n_customers must be at least 1")
    if not 0 <= survey_rate <= 1:
        raise ValueError("survey_rate must be within 0..1")
    p = params or SynthParams()
    cal = _calendar(start, end)
    rng = _streams(seed)
    loc = _make_locations(n_locations, p, rng["locations"], cal)
    ex, h = _ex_paths(loc, p, rng["ex"], cal.n_quarters)
    exp = _experience(loc, h, p)
    _check_return_probabilities(exp, p)
    cust = _make_customers(n_customers, loc, p, rng["customers"], cal)
    buys = _simulate_purchases(cust, loc, exp, p, rng["purchases"], cal)
    channel = _draw_fixed(rng["spend"], p.purchase_channel_probs, len(buys["time"]))
    revenue = _spend(buys, cust, loc, exp, p, rng["spend"], cal)
    resp = _survey(buys, channel, exp, p, survey_rate, rng["survey"], cal)

    location_ids = _ids("L", n_locations, 4)
    customer_ids = _ids("C", n_customers, 6)
    tables = {
        "locations": _locations_frame(loc, location_ids),
        "customers": _customers_frame(cust, location_ids, customer_ids, cal),
        "transactions": _transactions_frame(buys, channel, revenue, location_ids, customer_ids, cal),
        "responses": _responses_frame(resp, buys, location_ids, customer_ids, cal),
        "employee_experience": _ex_frame(ex, loc, location_ids, cal, rng["ex"]),
    }
    arguments = {"n_locations": n_locations, "n_customers": n_customers, "start": str(start), "end": str(end),
                 "seed": seed, "survey_rate": survey_rate, "horizon_days": horizon_days,
                 "params": _plain(dataclasses.asdict(p))}
    truth = _truth(arguments, p, loc, ex, exp, cust, buys, location_ids, cal, horizon_days, rng["keydrivers"])
    return tables, truth


def _locations_frame(loc: dict, ids: pd.Series) -> pd.DataFrame:
    region = np.array(REGIONS, dtype=object)[loc["region"]]
    fmt = np.array(FORMATS, dtype=object)[loc["format"]]
    frame = pd.DataFrame({"region": region, "format": fmt})
    number = frame.groupby(["region", "format"]).cumcount().to_numpy() + 1
    name = frame["region"] + " " + frame["format"].str.title() + " " + pd.Series(number).astype("str")
    return pd.DataFrame({"location_id": ids, "name": name, "region": region, "format": fmt,
                         "opened_on": pd.Series(loc["opened_on"]).astype("datetime64[us, UTC]"),
                         "latitude": loc["latitude"], "longitude": loc["longitude"]})


def _customers_frame(cust, location_ids, customer_ids, cal) -> pd.DataFrame:
    first_day = np.floor(cust["first"])
    return pd.DataFrame({"customer_id": customer_ids,
                         "home_location_id": _pick(location_ids, cust["home"]),
                         "first_seen_on": cal.stamps(first_day),
                         "segment": np.array(SEGMENTS, dtype=object)[cust["segment"]]})


def _transactions_frame(buys, channel, revenue, location_ids, customer_ids, cal) -> pd.DataFrame:
    codes = np.array([schema.CHANNELS.index(c) for c in PURCHASE_CHANNELS])[channel]
    return pd.DataFrame({
        "transaction_id": _ids("T", len(revenue), 7),
        "customer_id": _pick(customer_ids, buys["customer"]),
        "location_id": _pick(location_ids, buys["location"]),
        "occurred_at": cal.stamps(buys["time"]),
        "revenue": revenue,
        "channel": pd.Categorical.from_codes(codes, dtype=schema.TRANSACTIONS.column("channel").dtype),
    })


def _responses_frame(resp, buys, location_ids, customer_ids, cal) -> pd.DataFrame:
    purchase = resp["purchase"]
    frame = pd.DataFrame({
        "response_id": _ids("R", len(purchase), 7),
        "location_id": _pick(location_ids, buys["location"][purchase]),
        "responded_at": cal.stamps(resp["time"]),
        "customer_id": _pick(customer_ids, buys["customer"][purchase]),
        "channel": pd.Categorical.from_codes(resp["channel"], dtype=schema.RESPONSES.column("channel").dtype),
        "journey_stage": pd.Categorical.from_codes(resp["stage"],
                                                   dtype=schema.RESPONSES.column("journey_stage").dtype),
        "nps": pd.array(resp["nps"], dtype="Int8"),
        "csat": pd.array(resp["csat"], dtype="Int8"),
        "ces": pd.array(resp["ces"], dtype="Int8"),
        "comment": pd.Series(resp["comment"], dtype="str"),
    })
    for j, name in enumerate(ATTRIBUTES):
        frame[f"attr_{name}"] = pd.array(resp["ratings"][:, j], dtype="Int8")
    return frame


def _ex_frame(ex, loc, location_ids, cal, rng) -> pd.DataFrame:
    """One pulse per location and in-window quarter (quarter index 1..K-1), quarter by quarter."""
    n_loc, n_q = ex.shape
    quarters = np.repeat(np.arange(1, n_q), n_loc)
    locs = np.tile(np.arange(n_loc), n_q - 1)
    staff = np.array([40.0, 20.0, 12.0, 15.0])[loc["format"][locs]]
    respondents = rng.binomial(rng.poisson(staff).astype(np.int64), 0.7).astype("float64")
    return pd.DataFrame({
        "measurement_id": _ids("E", len(locs), 5),
        "location_id": _pick(location_ids, locs),
        "measured_at": pd.Series(cal.quarter_starts[quarters]),
        "ex_score": ex[locs, quarters],
        "respondents": respondents,
    })


# --------------------------------------------------------------------------------------------------
# The truth


def _truth(arguments, p, loc, ex, exp, cust, buys, location_ids, cal, horizon_days, rng) -> Truth:
    n_loc, n_q = ex.shape
    in_window = buys["quarter"] >= 1
    counts = np.zeros((n_loc, n_q))
    np.add.at(counts, (buys["location"], buys["quarter"]), 1)
    brand_nps = float((counts * exp.nps).sum() / counts.sum())
    retention = _retention_truth(p, loc, exp, cust, cal, horizon_days)
    key = _keydriver_truth(exp, buys["location"][in_window], buys["quarter"][in_window], rng)
    gamma = math.log1p(p.revenue_pct_per_10nps / 100)
    return Truth(
        parameters=arguments,
        horizon_days=int(horizon_days),
        brand_nps=brand_nps,
        **retention,
        revenue_log_per_10nps=gamma,
        revenue_pct_per_10nps=100 * math.expm1(gamma),
        ex_nps_points_per_10ex=_ex_effect(exp, p),
        attribute_weights_latent={f"attr_{a}": float(w) for a, w in zip(ATTRIBUTES, p.attribute_weights)},
        **key,
        location_nps=location_truth(loc, exp, counts, location_ids),
        location_quarter_nps=location_quarter_truth(ex, exp, counts, location_ids, cal),
    )


def _ex_effect(exp: _Experience, p: SynthParams) -> float:
    """Average over in-window location-quarters of dNPS/dEX * 10 = kappa * 100 (phi(a) + phi(b)) / S."""
    mean = exp.mean[:, 1:]
    density = (np.exp(-0.5 * ((PROMOTER_CUT - mean) / exp.sd) ** 2)
               + np.exp(-0.5 * ((DETRACTOR_CUT - mean) / exp.sd) ** 2)) / math.sqrt(2 * math.pi)
    return float(np.mean(100 * p.quality_per_10ex * density / exp.sd))


def _retention_truth(p: SynthParams, loc: dict, exp: _Experience, cust: dict, cal: _Calendar,
                     horizon: float) -> dict:
    """Retention within `horizon` days of the first purchase by its NPS group, exactly.

    First purchases form the first simulation pass, so the cohort whose realized mix sets a first
    purchase's return shift is the n customers with the same home l and first quarter k (n is fixed
    by arrivals alone). For customer i with group g and covariates x (home region, home format,
    segment): P(return | g, i) = E clip(rho_g + delta_x + base_l - (rho_g + S)/n, 0, 1), S the
    sum of rho over the other n - 1 first purchases of the cohort, whose groups are iid p(l, k);
    without the clip this is rho_g + delta_x + c_lk - (rho_g - sum_g' p_g'(l, k) rho_g')/n, c_lk the
    expected shift; `_expected_clipped` adds the clip exactly. P(ret | g, x_i) = F_x times the
    average of that over the first purchases of cell x that have group g (weights p_g(l, k)), which is
    what a model of retention on the first NPS group and x converges to; F_x = 1 - exp(-rate_x H).
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
        "retention_by_group": {g: float(rate[:, i].mean()) for i, g in enumerate(GROUPS)},
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
    like the brand's own (location-quarters in proportion to purchases): OLS of the 0-10 answer on
    the five 1-5 ratings (pooled), its R^2 and Johnson's relative weights as shares."""
    if len(locs) == 0:
        return {"attribute_weights": {}, "attribute_importance": {}, "attribute_r2": float("nan")}
    pick = rng.integers(0, len(locs), size)
    l, k = locs[pick], quarters[pick]
    z = exp.mean[l, k] + exp.sd * rng.standard_normal(size)
    _, ratings = _attributes_given_total(z - exp.mean[l, k], exp.alpha[l, k], exp, rng)
    nps = np.clip(np.rint(z), 0, 10)
    design = np.column_stack([np.ones(size), ratings])
    coef, *_ = np.linalg.lstsq(design, nps, rcond=None)
    resid = nps - design @ coef
    r2 = 1 - resid.var() / nps.var()
    shares = relative_weights(ratings, nps)
    names = [f"attr_{a}" for a in ATTRIBUTES]
    return {"attribute_weights": {n: float(c) for n, c in zip(names, coef[1:])},
            "attribute_importance": {n: float(s) for n, s in zip(names, shares)},
            "attribute_r2": float(r2)}


def relative_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Johnson's (2000) relative weights of the columns of x for y, as shares summing to 1.

    The predictors are replaced by their closest orthogonal counterparts Z = X R^-1/2 (R their
    correlation matrix); y's variance explained by Z is split back onto X through R^1/2."""
    rxx = np.corrcoef(x, rowvar=False)
    rxy = np.array([np.corrcoef(x[:, j], y)[0, 1] for j in range(x.shape[1])])
    values, vectors = np.linalg.eigh(rxx)
    root = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    beta = np.linalg.solve(root, rxy)
    raw = (root ** 2) @ (beta ** 2)
    return raw / raw.sum()


def location_truth(loc: dict, exp: _Experience, counts: np.ndarray, ids: pd.Series) -> pd.DataFrame:
    """Per location: nps, the true expected NPS of a response there over the window (quarters
    weighted by the location's purchases, the survey being a random sample of them); nps_persistent,
    at h = 0 (its persistent service quality); transactions in the window."""
    window = counts[:, 1:]
    weights = np.where(window.sum(axis=1, keepdims=True) > 0, window, 1.0)
    nps = (weights * exp.nps[:, 1:]).sum(axis=1) / weights.sum(axis=1)
    base = 100 * (exp.base_probs[:, 0] - exp.base_probs[:, 2])
    return pd.DataFrame({"location_id": ids, "region": np.array(REGIONS, dtype=object)[loc["region"]],
                         "format": np.array(FORMATS, dtype=object)[loc["format"]],
                         "nps": nps, "nps_persistent": base, "transactions": window.sum(axis=1).astype("int64")})


def location_quarter_truth(ex, exp, counts, ids, cal) -> pd.DataFrame:
    """Per location x quarter (including the quarter before the window, in_window False): the
    quarter start, EX score, true expected NPS, the previous quarter's true NPS (which sets spend
    this quarter), the expected return shift c_lk (a pass cohort's realized shift is
    sum_g (p_g(l, h=0) - realized share_g) rho_g) and the number of transactions."""
    n_loc, n_q = ex.shape
    locs = np.tile(np.arange(n_loc), n_q)
    quarters = np.repeat(np.arange(n_q), n_loc)
    previous = np.where(quarters > 0, exp.nps[locs, np.maximum(quarters - 1, 0)], np.nan)
    return pd.DataFrame({
        "location_id": _pick(ids, locs),
        "quarter_start": pd.Series(cal.quarter_starts[quarters]),
        "in_window": quarters >= 1,
        "ex_score": ex[locs, quarters],
        "nps": exp.nps[locs, quarters],
        "nps_previous": previous,
        "return_shift": exp.return_shift[locs, quarters],
        "transactions": counts[locs, quarters].astype("int64"),
    })


def _records(frame: pd.DataFrame) -> list[dict]:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [{k: _plain(v) for k, v in row.items()} for row in out.to_dict(orient="records")]


def _plain(value):
    """Numpy scalars, tuples and NaN to JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


# --------------------------------------------------------------------------------------------------
# Raw exports and dirt


def _to_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """A canonical table as strings, the way `pd.read_csv(dtype=str)` sees an export (NaN = empty)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            text = np.datetime_as_string(col.dt.tz_localize(None).to_numpy().astype("datetime64[s]"), unit="s")
            values = pd.Series(np.char.add(text, "Z"), dtype="str").where(col.notna().to_numpy())
        elif pd.api.types.is_float_dtype(col.dtype):
            values = col.astype("str").where(col.notna())
        else:
            values = col.astype("object").where(col.notna())
        out[name] = values.reset_index(drop=True).astype("str")
    return pd.DataFrame(out)


# Defects per table: name -> what the injected row looks like. Every kind except missing_optional is
# an extra row that a validating ingest must reject; missing_optional blanks one optional cell of a
# clean row, which must still be accepted.
DEFECTS = {
    "locations": ("duplicate_exact", "duplicate_conflict"),
    "customers": ("duplicate_exact", "duplicate_conflict", "unknown_location_id", "bad_timestamp"),
    "responses": ("duplicate_exact", "duplicate_conflict", "nps_out_of_range", "csat_out_of_range",
                  "ces_out_of_range", "no_score", "unknown_location_id", "bad_timestamp", "missing_timestamp"),
    "transactions": ("duplicate_exact", "duplicate_conflict", "unknown_location_id", "bad_timestamp",
                     "missing_timestamp", "negative_revenue", "non_numeric_revenue"),
    "employee_experience": ("duplicate_exact",),
}
OPTIONAL_BLANKS = {
    "locations": ("name", "latitude"),
    "customers": ("segment", "home_location_id"),
    "responses": ("channel", "journey_stage", "customer_id", "comment"),
    "transactions": ("channel",),
    "employee_experience": ("respondents",),
}
TIMESTAMP_COLUMN = {"customers": "first_seen_on", "responses": "responded_at", "transactions": "occurred_at"}
LOCATION_COLUMN = {"customers": "home_location_id", "responses": "location_id", "transactions": "location_id"}
BAD_TIMESTAMPS = ("2024-02-30T10:00:00Z", "not recorded", "13/45/2024 25:61", "2024-13-01T00:00:00Z")
BAD_REVENUE = ("$45.10", "12,50", "twenty", "45.1.2")


def _make_messy(raw: dict[str, pd.DataFrame], rng: np.random.Generator, rate: float, n_locations: int):
    """Blank some optional cells, then add dirty rows (one defect each) at random places; duplicates
    come after the row they copy so the first, clean, copy is the one an ingest keeps."""
    out, counts = {}, {}
    for table in schema.TABLE_ORDER:
        frame = raw[table].copy()
        n = len(frame)
        per_kind = max(1, int(round(rate * n))) if n else 0
        blanked = _blank_optional(frame, table, rng, per_kind)
        extra, sources, kinds = [], [], {}
        next_id = [n]
        for kind in DEFECTS[table] if n else ():
            rows = rng.integers(0, n, per_kind)
            dirty = _inject(frame, table, kind, rows, rng, next_id, n_locations)
            extra.append(dirty)
            sources.append(rows if kind.startswith("duplicate") else np.full(per_kind, -1))
            kinds[kind] = per_kind
        if extra:
            frame = _interleave(frame, pd.concat(extra, ignore_index=True), np.concatenate(sources), rng)
        out[table] = frame.astype("str")
        rejected = sum(kinds.values())
        counts[table] = {"rows": len(frame), "rejected": rejected, "accepted": len(frame) - rejected,
                         "defects": kinds, "missing_optional": blanked}
    return out, counts


def _blank_optional(frame: pd.DataFrame, table: str, rng: np.random.Generator, n: int) -> int:
    """Blank one optional cell in each of `n` distinct clean rows (cells that were not already blank)."""
    if not len(frame):
        return 0
    columns = OPTIONAL_BLANKS[table]
    rows = rng.choice(len(frame), size=min(n, len(frame)), replace=False)
    which = rng.integers(0, len(columns), len(rows))
    done = 0
    for j, col in enumerate(columns):
        target = rows[which == j]
        target = target[frame[col].iloc[target].notna().to_numpy()]
        frame.loc[target, col] = np.nan
        done += len(target)
    return done


def _inject(frame, table, kind, rows, rng, next_id, n_locations) -> pd.DataFrame:
    """Copies of `rows` changed to carry exactly the defect `kind`."""
    dirty = frame.iloc[rows].reset_index(drop=True).copy()
    key = schema.TABLES[table].key
    if not kind.startswith("duplicate"):  # a fresh id, so the only problem is the defect itself
        prefix = frame[key].iloc[0][0]
        width = len(frame[key].iloc[0]) - 1
        fresh = np.arange(next_id[0] + 1, next_id[0] + 1 + len(rows))
        next_id[0] += len(rows)
        dirty[key] = prefix + pd.Series(fresh).astype("str").str.zfill(width)
    m = len(dirty)
    if kind == "duplicate_conflict":
        _conflict(dirty, table, rng)
    elif kind.endswith("_out_of_range"):
        score = kind.split("_")[0]
        dirty[score] = {"nps": "11", "csat": "0", "ces": "9"}[score]
    elif kind == "no_score":
        dirty[["nps", "csat", "ces"]] = np.nan
    elif kind == "unknown_location_id":
        width = len(frame[LOCATION_COLUMN[table]].dropna().iloc[0]) - 1
        unknown = n_locations + 1 + rng.integers(0, 50, m)
        dirty[LOCATION_COLUMN[table]] = "L" + pd.Series(unknown).astype("str").str.zfill(width)
    elif kind == "bad_timestamp":
        dirty[TIMESTAMP_COLUMN[table]] = np.array(BAD_TIMESTAMPS)[rng.integers(0, len(BAD_TIMESTAMPS), m)]
    elif kind == "missing_timestamp":
        dirty[TIMESTAMP_COLUMN[table]] = np.nan
    elif kind == "negative_revenue":
        dirty["revenue"] = "-" + dirty["revenue"].where(dirty["revenue"] != "0.0", "1.0")
    elif kind == "non_numeric_revenue":
        dirty["revenue"] = np.array(BAD_REVENUE)[rng.integers(0, len(BAD_REVENUE), m)]
    return dirty


def _conflict(dirty: pd.DataFrame, table: str, rng: np.random.Generator) -> None:
    """Same key, one different (still valid) value."""
    if table == "locations":
        dirty["name"] = dirty["name"].fillna("Unnamed") + " (old)"
    elif table == "customers":
        dirty["segment"] = np.where(dirty["segment"] == "value", "premium", "value")
    elif table == "responses":
        old = pd.to_numeric(dirty["nps"]).fillna(-1).to_numpy()
        new = (old + 1 + rng.integers(0, 10, len(dirty))) % 11  # never the old answer
        dirty["nps"] = pd.Series(new.astype(np.int64)).astype("str")
    elif table == "transactions":
        dirty["revenue"] = pd.Series(np.round(pd.to_numeric(dirty["revenue"]).to_numpy() * 1.5 + 1, 2)).astype("str")
    else:
        dirty["ex_score"] = pd.Series(np.round(pd.to_numeric(dirty["ex_score"]).to_numpy() + 5, 1)).astype("str")


def _interleave(clean: pd.DataFrame, dirty: pd.DataFrame, source: np.ndarray, rng) -> pd.DataFrame:
    """Dirty rows at random positions; a duplicate strictly after the row it copies."""
    n = len(clean)
    low = np.where(source >= 0, source + 0.5, -0.5)
    position = low + rng.random(len(dirty)) * (n - low)
    keys = np.concatenate([np.arange(n, dtype="float64"), position])
    order = np.argsort(keys, kind="stable")
    return pd.concat([clean, dirty], ignore_index=True).iloc[order].reset_index(drop=True)
