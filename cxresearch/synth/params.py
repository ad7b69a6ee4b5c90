"""The generator's structural parameters (`SynthParams`), its constants and the published `Truth`."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxresearch.measures.measure import get as get_measure

__all__ = ["SynthParams", "Truth"]

REGIONS = ("North", "South", "East", "West", "Central")
FORMATS = ("flagship", "mall", "street", "outlet")
SEGMENTS = ("premium", "regular", "value")
GROUPS = ("promoter", "passive", "detractor")
ATTRIBUTES = ("staff", "speed", "cleanliness", "availability", "price")
PURCHASE_CHANNELS = ("in_store", "web", "app", "phone")
PROMOTER_CUT, DETRACTOR_CUT = 8.5, 6.5  # latent thresholds: round(Z) >= 9 and round(Z) <= 6
NPS_REFERENCE = 30.0  # spend is centred here; only differences matter
MEASURE_REFERENCE = {"nps": NPS_REFERENCE, "csat": 70.0, "ces": 70.0}  # spend is centred here (points)
SHARE_REVENUE_PCT = 15.0  # default % revenue per +10 points of a CSAT or CES top-box share (see revenue_pct)
# each measure's groups top, middle, bottom (the generator's group index 0, 1, 2)
MEASURE_GROUPS = {name: tuple(reversed(get_measure(name).groups)) for name in MEASURE_REFERENCE}
STREAMS = ("locations", "ex", "customers", "purchases", "spend", "survey", "keydrivers", "messy", "comments")
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
    revenue_pct_per_10: float | None = None  # per +10 points of the brand's measure; None: see revenue_pct
    # customers and purchases
    month_arrivals: tuple = (0.85, 0.80, 0.90, 0.95, 1.0, 1.0, 1.0, 0.95, 0.95, 1.0, 1.25, 1.5)
    segment_mix: tuple = ((0.35, 0.45, 0.20), (0.20, 0.50, 0.30), (0.20, 0.50, 0.30), (0.08, 0.42, 0.50))
    home_share: float = 0.88
    purchase_channel_probs: tuple = (0.82, 0.08, 0.07, 0.03)
    # retention: P(return) = rho_g + delta_region + delta_format + delta_segment + c_lk
    return_prob: tuple = (0.80, 0.64, 0.46)  # by the group of the brand's measure: top, middle, bottom
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
    comment_rate: float = 0.4  # (the real Olist sample: 43% of reviews carry a comment)
    comment_topic_share: float = 0.15  # share of locations with a planted comment topic (truth.comment_topics)
    comment_topic_rate: float = 0.5  # share of their unhappy customers' comments on it
    response_delay_hours: float = 4.0
    # planted incidents (truth.incidents): (location number, first month "YYYY-MM", months, points of
    # the brand's measure lost (NPS points, or points of the top-box share for CSAT and CES), attribute
    # that causes it), e.g. ((7, "2025-04", 3, 15.0, "speed"),)
    incidents: tuple = ()

    @classmethod
    def from_dict(cls, values: dict) -> SynthParams:
        """Rebuild from `dataclasses.asdict` output or its JSON (lists become tuples again)."""
        def tup(v):
            return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v
        return cls(**{k: tup(v) for k, v in values.items()})

    def revenue_pct(self, measure: str = "nps") -> float:
        """% revenue per +10 points of the brand's `measure` in the previous quarter.

        Parameters
        ----------
        measure : {"nps", "csat", "ces"}, default "nps"
            The brand's measure.

        Returns
        -------
        float
            `revenue_pct_per_10` when set; else `revenue_pct_per_10nps` for NPS and SHARE_REVENUE_PCT
            (15) for CSAT and CES: about the same link to the latent experience, since a change of
            service quality moves a top-box share 2.4 (CSAT) to 2.9 (CES) times less than it moves NPS.
        """
        if self.revenue_pct_per_10 is not None:
            return self.revenue_pct_per_10
        return self.revenue_pct_per_10nps if measure == "nps" else SHARE_REVENUE_PCT


@dataclass(frozen=True)
class Truth:
    """The effects built into a generated brand, as the population values estimators should recover.

    measure: the brand's measure, "nps", "csat" or "ces" (see `generate`). Its headline value is in
    points: NPS -100..100, CSAT the share of answers 4-5 of 5, CES the share of answers 5-7 of 7, in
    percent. Every truth is stated in the brand's measure; the fields named after NPS hold the NPS
    values for an NPS brand and are NaN for the others, whose values are in the measure-neutral
    fields (brand_score, revenue_log_per_10, revenue_pct_per_10, ex_points_per_10ex), which an NPS
    brand fills too.

    Measure: brand_score (= brand_nps for NPS), the expected value of a response in the window;
    location_nps (per location: the measure over the window, in a column named after it (nps, csat
    or ces), the same at zero within-location fluctuation (nps_persistent, csat_persistent, ...),
    region, format, transactions); location_quarter_nps (per location x quarter, including the
    quarter before the window: quarter_start, in_window, ex_score, the measure (nps, ...) and its
    previous quarter's value (nps_previous, ...), return_shift (the expected shift c_lk; each pass
    cohort's realized shift depends on its realized mix), transactions). The frames keep their NPS
    names for every measure.

    Retention (within horizon_days of the first purchase, by the group of the measure its experience
    falls in: promoter / passive / detractor for NPS, satisfied / neutral / dissatisfied (4-5, 3,
    1-2) for CSAT, easy / neutral / hard (5-7, 4, 1-3) for CES): retention_by_group, proportions
    P(ret | group, x) averaged over all customers' covariates x = (home region, home format,
    segment), keyed by the group names (every next purchase counts, also one within hours of the
    first: the generator makes no split checkouts, so `customer_table(..., min_gap_hours=0)` measures
    exactly this; its default of 24 hours counts the ~1% of returns within a day only when another purchase
    follows, which lowers a measured gap by 0.1-0.25 points); retention_gap_pp = top minus bottom group in percentage points (the
    average marginal effect); retention_gap_pp_by_region (by home region);
    retention_gap_pp_structural, the gap with the return shift held fixed (larger by about 0.1 pp plus
    the structural gap times the mean of 1/n, n the customer's first-purchase cohort: see the module).

    Revenue: revenue_log_per_10, the location + quarter fixed-effects coefficient of log quarterly
    revenue on the previous quarter's true value of the measure, per 10 points (= 10 x the per-point
    coefficient); revenue_pct_per_10 = 100 (exp(that) - 1); revenue_log_per_10nps and
    revenue_pct_per_10nps are the same for an NPS brand. ex_points_per_10ex (ex_nps_points_per_10ex
    for NPS): true points of the measure per +10 EX points within a location.

    Key drivers: attribute_weights, the population OLS coefficients of the measure's answer (0-10,
    1-5 or 1-7) on the 1-5 ratings (pooled over responses; what a key-driver regression reports),
    attribute_r2 its R^2, attribute_importance Johnson's relative weights of that regression (shares
    summing to 1); attribute_weights_latent, the structural weights on the latent scale of the answer
    (larger: rounding and the limits of the answer scales attenuate the observed ones).

    messy_counts: per table, the defects injected by generate_raw(messy=True) (see there).
    comment_topics: location_id -> the attribute ("speed", ...) whose complaints were planted in that
    location's comments (`SynthParams.comment_topic_share`, `comment_topic_rate`); the words of each
    topic are `cx.synth.COMMENT_TOPIC_TERMS`. Other locations' comments follow each customer's own
    best and worst attribute only.
    incidents: the planted incidents (`SynthParams.incidents`), each a dict of location_id, start and
    end (months, "YYYY-MM"), months, attribute, shift (how far the latent answer and, divided by the
    attribute's weight, the attribute's perception fall), drop (the points of the brand's measure it
    costs the location's responses in expectation, as asked) and measure. An incident changes what
    customers answer and write during those months, not what they buy.
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
    comment_topics: dict = field(default_factory=dict)  # location_id -> the attribute its comments single out
    incidents: list = field(default_factory=list)  # planted incidents, one dict each (see `SynthParams.incidents`)
    measure: str = "nps"
    brand_score: float | None = None  # None (a truth saved before measures existed): taken from the NPS fields
    revenue_log_per_10: float | None = None
    revenue_pct_per_10: float | None = None
    ex_points_per_10ex: float | None = None

    NPS_TWINS = {"brand_score": "brand_nps", "revenue_log_per_10": "revenue_log_per_10nps",
                 "revenue_pct_per_10": "revenue_pct_per_10nps", "ex_points_per_10ex": "ex_nps_points_per_10ex"}

    def __post_init__(self):
        for neutral, nps in self.NPS_TWINS.items():
            if self.measure == "nps" and getattr(self, neutral) is None:
                object.__setattr__(self, neutral, getattr(self, nps))
            for name in (neutral, nps):  # JSON stores NaN as null: back to NaN
                if getattr(self, name) is None:
                    object.__setattr__(self, name, float("nan"))

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
            for col in ("nps_previous", "csat_previous", "ces_previous"):
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
        from cxresearch.synth import generate, generate_raw  # (the entry points build on this module)

        args = self.generator_arguments()
        return generate_raw(**args) if args.get("messy") else generate(**args)


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
