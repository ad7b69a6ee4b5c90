"""The simulated world: calendar, locations, employee and customer experience, customers, purchases,
spend, surveys and comments."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from cxresearch import schema
from cxresearch.measures.measure import get as get_measure
from cxresearch.synth.params import (
    ATTRIBUTES,
    DETRACTOR_CUT,
    FORMATS,
    MEASURE_REFERENCE,
    PROMOTER_CUT,
    PURCHASE_CHANNELS,
    REGION_CENTRES,
    REGIONS,
    STREAMS,
    SynthParams,
)


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
    """Per location x quarter: attribute means alpha (L, K, 5), latent NPS mean M, the probabilities of
    the brand measure's groups (L, K, 3: top, middle, bottom), true NPS, the measure's true value in
    points, the return shift c; plus S, the attribute covariance and the measure's latent answer
    Y = a + b Z + c u_speed + noise (for NPS, Y = Z), whose mean is y_mean (L, K) and sd y_sd."""

    alpha: np.ndarray
    mean: np.ndarray
    probs: np.ndarray
    nps: np.ndarray
    return_shift: np.ndarray
    base_probs: np.ndarray  # (L, 3) at h = 0
    sd: float
    weights: np.ndarray
    cov: np.ndarray
    measure: str = "nps"
    value: np.ndarray | None = None  # the measure's true value (L, K): nps for NPS, 100 P(top) for CSAT, CES
    y_mean: np.ndarray | None = None
    y_sd: float = float("nan")
    answer: tuple = (0.0, 1.0, 0.0, 0.0)  # a, b, c, noise sd of the latent answer

    def speed_given_total(self) -> tuple[float, float]:
        """u_speed | w'u + e = t is N(gain t, sd^2): (gain, sd)."""
        s = ATTRIBUTES.index("speed")
        cw = self.cov @ self.weights
        return float(cw[s] / self.sd ** 2), math.sqrt(self.cov[s, s] - cw[s] ** 2 / self.sd ** 2)


def _group_probs(mean: np.ndarray, sd: float) -> np.ndarray:
    """P(promoter), P(passive), P(detractor) for Z ~ N(mean, sd^2): exact normal CDFs."""
    promoter = 1 - ndtr((PROMOTER_CUT - mean) / sd)
    detractor = ndtr((DETRACTOR_CUT - mean) / sd)
    return np.stack([promoter, 1 - promoter - detractor, detractor], axis=-1)


def _latent_cuts(measure: str) -> tuple[float, float]:
    """The latent answer Y is in the top group iff Y >= the first cut, in the bottom one iff Y < the second
    (a 1-5 answer clip(round(Y)) is 4-5 iff Y >= 3.5, 1-2 iff Y < 2.5, up to ties of probability zero)."""
    m = get_measure(measure)
    return m.top_min - 0.5, m.bottom_max + 0.5


def _answer_probs(y_mean: np.ndarray, y_sd: float, measure: str) -> np.ndarray:
    """P(top), P(middle), P(bottom) of a CSAT or CES answer with latent Y ~ N(y_mean, y_sd^2)."""
    top_cut, bottom_cut = _latent_cuts(measure)
    top = 1 - ndtr((top_cut - y_mean) / y_sd)
    bottom = ndtr((bottom_cut - y_mean) / y_sd)
    return np.stack([top, 1 - top - bottom, bottom], axis=-1)


def _measure_value(probs: np.ndarray, measure: str) -> np.ndarray:
    """The headline value in points from group probabilities: NPS = 100 (top - bottom), a share = 100 top."""
    return 100 * (probs[..., 0] - probs[..., 2]) if measure == "nps" else 100 * probs[..., 0]


def _answer_coefficients(p: SynthParams, measure: str) -> tuple[float, float, float, float]:
    """(a, b, c, noise sd) of the latent answer Y = a + b Z + c u_speed + noise: CSAT has no speed term."""
    if measure == "csat":
        a, b, noise = p.csat
        return float(a), float(b), 0.0, float(noise)
    if measure == "ces":
        return tuple(float(v) for v in p.ces)
    return 0.0, 1.0, 0.0, 0.0


def _experience(loc: dict, h: np.ndarray, p: SynthParams, measure: str = "nps") -> _Experience:
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
    base_mean = c0 + (base + loading * loc["quality"][:, None]) @ w
    probs = _group_probs(mean, sd)
    nps = 100 * (probs[..., 0] - probs[..., 2])
    coefficients = _answer_coefficients(p, measure)
    if measure == "nps":
        base_probs, value, y_mean, y_sd = _group_probs(base_mean, sd), nps, mean, sd
    else:  # Y = a + b Z + c u_speed + noise: normal given (l, k), Cov(Z, u_speed) = (Sigma w)_speed
        a, b, c, noise = coefficients
        s = ATTRIBUTES.index("speed")
        y_sd = math.sqrt(b ** 2 * sd ** 2 + c ** 2 * cov[s, s] + 2 * b * c * (cov @ w)[s] + noise ** 2)
        y_mean = a + b * mean
        probs = _answer_probs(y_mean, y_sd, measure)
        base_probs = _answer_probs(a + b * base_mean, y_sd, measure)
        value = _measure_value(probs, measure)
    rho = np.array(p.return_prob)
    return_shift = (base_probs[:, None, :] - probs) @ rho
    return _Experience(alpha, mean, probs, nps, return_shift, base_probs, sd, w, cov, measure, value, y_mean, y_sd,
                       coefficients)


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
        if exp.measure == "nps":
            group = _group_of(z)
            parts.append((who, where, when, quarter, z, np.full(who.size, first)))
        else:  # the measure's answer decides the group; drawn here, where the return depends on it
            answer, speed = _draw_answer(z, exp.mean[where, quarter], exp, rng)
            group = _answer_group(answer, exp.measure)
            parts.append((who, where, when, quarter, z, np.full(who.size, first), answer, speed))
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
    names = ("customer", "location", "time", "quarter", "z", "first", "answer", "speed")[:len(parts[0])]
    columns = {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(names)}
    order = np.argsort(columns["time"], kind="stable")
    return {name: values[order] for name, values in columns.items()}


def _group_of(z: np.ndarray) -> np.ndarray:
    """0 promoter, 1 passive, 2 detractor, from the latent experience."""
    return np.where(z >= PROMOTER_CUT, 0, np.where(z < DETRACTOR_CUT, 2, 1)).astype(np.int8)


def _draw_answer(z: np.ndarray, mean: np.ndarray, exp: _Experience, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The CSAT or CES answer clip(round(a + b z + c u_speed + noise)) of purchases with latent
    experience z (latent mean `mean`), and u_speed, the speed perception's deviation from its location-
    quarter mean, drawn from its exact conditional given z (zeros for CSAT, which has no speed term)."""
    a, b, c, noise = exp.answer
    low, high = get_measure(exp.measure).scale
    if c:
        gain, sd = exp.speed_given_total()
        speed = gain * (z - mean) + sd * rng.standard_normal(len(z))
    else:
        speed = np.zeros(len(z))
    latent = a + b * z + c * speed + noise * rng.standard_normal(len(z))
    return np.clip(np.rint(latent), low, high), speed


def _answer_group(answer: np.ndarray, measure: str) -> np.ndarray:
    """0 top, 1 middle, 2 bottom group of the measure's answers (CSAT 4-5, 3, 1-2; CES 5-7, 4, 1-3)."""
    m = get_measure(measure)
    return np.where(answer >= m.top_min, 0, np.where(answer <= m.bottom_max, 2, 1)).astype(np.int8)


def _spend(buys: dict, cust: dict, loc: dict, exp: _Experience, p: SynthParams,
           rng: np.random.Generator, cal: _Calendar) -> np.ndarray:
    """Revenue per purchase: lognormal around the location/segment/month level, times
    exp(gamma * (previous quarter's true value of the measure - reference)/10), the reference 30 for NPS
    and 70 for a share. Independent of the purchase's experience."""
    gamma = math.log1p(p.revenue_pct(exp.measure) / 100)
    l, k = buys["location"], buys["quarter"]
    month = cal.day_month[np.minimum(buys["time"].astype(np.int64), cal.n_days - 1)]
    log_spend = (math.log(p.spend_median) + loc["spend_level"][l]
                 + np.array(p.segment_spend)[cust["segment"][buys["customer"]]]
                 + np.array(p.month_spend)[month]
                 + gamma * (exp.value[l, k - 1] - MEASURE_REFERENCE[exp.measure]) / 10
                 + p.spend_sd * rng.standard_normal(len(l)))
    return np.round(np.exp(log_spend), 2)


def _attributes_given_total(total: np.ndarray, alpha: np.ndarray, exp: _Experience,
                            rng: np.random.Generator, speed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Latent attribute perceptions A = alpha + u drawn from the exact conditional of u given
    w'u + e = total (Gaussian conditioning), and the 1-5 ratings round(A) clipped. Returns (A, ratings).
    With `speed` (a CES brand, whose answer was drawn with the speed perception) u_speed is that and the
    other four are drawn given both."""
    w, cov = exp.weights, exp.cov
    if speed is None:
        gain = cov @ w / exp.sd ** 2
        cond = cov - np.outer(cov @ w, cov @ w) / exp.sd ** 2
        chol = np.linalg.cholesky(cond)
        u = total[:, None] * gain + rng.standard_normal((len(total), len(w))) @ chol.T
    else:
        s = ATTRIBUTES.index("speed")
        cross = np.column_stack([cov @ w, cov[:, s]])  # Cov(u, (w'u + e, u_speed))
        given = np.array([[exp.sd ** 2, (cov @ w)[s]], [(cov @ w)[s], cov[s, s]]])
        gain = cross @ np.linalg.inv(given)  # (5, 2)
        others = [j for j in range(len(w)) if j != s]
        cond = (cov - gain @ cross.T)[np.ix_(others, others)]
        u = np.column_stack([total, speed]) @ gain.T
        u[:, others] += rng.standard_normal((len(total), len(others))) @ np.linalg.cholesky(cond).T
        u[:, s] = speed
    latent = alpha + u
    return latent, np.clip(np.rint(latent), 1, 5)


# What customers write: an opening in the tone of their group (top, middle, bottom), then a sentence on
# one attribute, praise from the top group and a complaint from the others. Several wordings per
# attribute share its key terms (COMMENT_TOPIC_TERMS), so a text method has a topic to find.
COMMENT_OPENINGS = {
    0: ("Great visit.", "Lovely experience.", "Really impressed.", "Will be back."),
    1: ("It was okay.", "Fine overall.", "Nothing special.", "Average visit."),
    2: ("Disappointed.", "Not happy.", "Will not come back.", "Poor visit."),
}
COMMENT_SENTENCES = {  # attribute -> (praise, complaint) wordings, in ATTRIBUTES order
    "staff": (("The staff were friendly and helpful.", "Lovely staff, very helpful.", "Helpful friendly staff."),
              ("The staff were rude.", "Rude staff, nobody helped.", "Unhelpful staff at the counter.")),
    "speed": (("Quick service, no queue.", "Fast service and no waiting.", "No queue, quick checkout."),
              ("Waited ages in the queue.", "Slow service and a long wait.", "Long queue, the wait was too slow.")),
    "cleanliness": (("Very clean and tidy.", "Clean tidy shop.", "Spotless, really clean."),
                    ("The place was dirty.", "Dirty floors and messy shelves.", "Dirty toilets, not clean at all.")),
    "availability": (("Everything I wanted was in stock.", "Good range, all in stock.", "In stock and easy to find."),
                     ("What I wanted was out of stock.", "Empty shelves, out of stock again.",
                      "Out of stock, shelves half empty.")),
    "price": (("Good prices and fair value.", "Cheap, good value.", "Fair prices for the quality."),
              ("Too expensive for what you get.", "Prices too high, poor value.", "Expensive, prices keep rising.")),
}
COMMENT_TOPIC_TERMS = {"staff": ("staff", "rude", "helpful"), "speed": ("queue", "wait", "slow"),
                       "cleanliness": ("dirty", "clean"), "availability": ("stock", "shelves"),
                       "price": ("prices", "expensive", "value")}


def _comment_bank() -> tuple[np.ndarray, np.ndarray]:
    """All comment texts, indexed [group, opening, attribute, wording]."""
    n_open = max(len(o) for o in COMMENT_OPENINGS.values())
    n_word = max(len(w) for pair in COMMENT_SENTENCES.values() for w in pair)
    bank = np.empty((3, n_open, len(ATTRIBUTES), n_word), dtype=object)
    for g, openings in COMMENT_OPENINGS.items():
        for o in range(n_open):
            for j, attribute in enumerate(ATTRIBUTES):
                wordings = COMMENT_SENTENCES[attribute][0 if g == 0 else 1]
                for w in range(n_word):
                    bank[g, o, j, w] = f"{openings[o % len(openings)]} {wordings[w % len(wordings)]}"
    return bank, np.array([n_open, n_word])


def planted_comment_topics(n_locations: int, p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """The attribute (index) each location's unhappy customers single out, or -1: a random
    `comment_topic_share` of locations gets one local problem that its middle- and bottom-group
    commenters mention in `comment_topic_rate` of their comments (scores are not changed)."""
    planted = np.full(n_locations, -1, dtype=np.int64)
    count = int(round(p.comment_topic_share * n_locations))
    where = rng.choice(n_locations, size=count, replace=False)
    planted[np.sort(where)] = rng.integers(0, len(ATTRIBUTES), size=count)
    return planted


def incident_shifts(incidents, exp: _Experience, cal: _Calendar) -> list[dict]:
    """Each planted incident (`SynthParams.incidents`) with the latent shift that costs its location's
    responses `drop` points of the brand's measure in expectation: NPS points for an NPS brand (the
    latent answer is normal, so the NPS of a mean is 100 (P(z >= 8.5) - P(z < 6.5))), points of the
    top-box share for a CSAT or CES brand (its latent answer Y = a + b Z + ... falls by b times the
    shift); solved at the location's mean over the incident's quarters."""
    from scipy import optimize

    out = []
    for number, start, months, drop, attribute in incidents:
        if attribute not in ATTRIBUTES:
            raise ValueError(f"incident attribute must be one of {', '.join(ATTRIBUTES)}, not {attribute!r}")
        location = int(number) - 1
        if not 0 <= location < exp.mean.shape[0]:
            raise ValueError(f"incident location {number} is not among the {exp.mean.shape[0]} locations")
        first = pd.Period(start, freq="M")
        last = first + int(months) - 1
        days = [(pd.Timestamp(m.start_time, tz="UTC") - cal.origin) / pd.Timedelta(days=1) for m in (first, last + 1)]
        quarters = np.unique(cal.quarter_of(np.array([days[0], days[1] - 1e-6])))
        value = _value_after(exp, location, quarters)
        if not 0 < float(drop) < value(0.0) - value(10.0):
            raise ValueError(f"incident at location {number}: a drop of {drop} points is not possible there "
                             f"(its {exp.measure.upper()} is {value(0.0):.0f})")
        shift = optimize.brentq(lambda d, drop=float(drop), value=value: value(0.0) - value(d) - drop, 0.0, 10.0)
        out.append({"location": location, "from_day": days[0], "to_day": days[1], "start": str(first), "end": str(last),
                    "months": int(months), "attribute": attribute, "shift": shift, "drop": float(drop),
                    "measure": exp.measure})
    return out


def _value_after(exp: _Experience, location: int, quarters: np.ndarray):
    """The location's expected measure (in its points) over `quarters` when the latent experience
    falls by d: a function of d."""
    if exp.measure == "nps":
        mu = float(exp.mean[location, quarters].mean())
        return lambda d: _nps_of(mu - d, exp.sd)
    y_mean, b = float(exp.y_mean[location, quarters].mean()), exp.answer[1]
    return lambda d: float(_measure_value(_answer_probs(np.array(y_mean - b * d), exp.y_sd, exp.measure), exp.measure))


def _nps_of(mean: float, sd: float) -> float:
    """Expected NPS of normal latent answers with this mean and sd."""
    from scipy import stats

    return 100 * (stats.norm.sf((PROMOTER_CUT - mean) / sd) - stats.norm.cdf((DETRACTOR_CUT - mean) / sd))


def _answer_after(answer: np.ndarray, z: np.ndarray, speed, down: np.ndarray, exp: _Experience,
                  rng: np.random.Generator) -> np.ndarray:
    """A CSAT or CES answer when the experience behind it falls by `down` (0 outside incidents): its
    latent Y = a + b z + c u_speed + noise is drawn from its law given the answer given (the noise
    truncated to the answer's rounding interval), lowered by b * down, and rounded again; so outside
    incidents every answer stays as it was, and inside the share falls as `incident_shifts` solved."""
    from scipy.special import ndtri

    hit = down > 0
    if not hit.any():
        return answer
    a, b, c, noise = exp.answer
    low, high = get_measure(exp.measure).scale
    centre = a + b * z[hit] + (c * speed[hit] if c and speed is not None else 0.0)
    given = answer[hit]
    below = np.where(given <= low, -np.inf, given - 0.5)
    above = np.where(given >= high, np.inf, given + 0.5)
    if noise > 0:
        lo, hi = ndtr((below - centre) / noise), ndtr((above - centre) / noise)
        u = lo + (hi - lo) * rng.random(len(given))
        latent = centre + noise * ndtri(np.clip(u, 1e-12, 1 - 1e-12))
        latent = np.clip(latent, below, above)  # (rounding at the tails)
    else:
        latent = centre
    out = answer.copy()
    out[hit] = np.clip(np.rint(latent - b * down[hit]), low, high)
    return out


def _incident_offsets(time: np.ndarray, location: np.ndarray, shifts: list[dict], exp: _Experience):
    """Per response: how far its latent answer falls (0 outside incidents) and its attributes' offsets."""
    down = np.zeros(len(time))
    attributes = np.zeros((len(time), len(ATTRIBUTES)))
    for incident in shifts:
        hit = (location == incident["location"]) & (time >= incident["from_day"]) & (time < incident["to_day"])
        j = ATTRIBUTES.index(incident["attribute"])
        down[hit] += incident["shift"]
        attributes[hit, j] -= incident["shift"] / exp.weights[j]
    return down, attributes


def _survey(buys: dict, channel: np.ndarray, exp: _Experience, p: SynthParams, survey_rate: float,
            rng: np.random.Generator, cal: _Calendar, words: tuple[np.ndarray, np.random.Generator],
            shifts: list[dict] = ()) -> dict:
    """Responses: a random subset of purchases, with scores revealing their experience. An NPS brand
    asks NPS, CSAT and CES in the `score_patterns` mix; a CSAT or CES brand asks only its measure, whose
    answer (drawn with the purchase) it reveals."""
    idx = np.flatnonzero(rng.random(len(buys["time"])) < survey_rate)
    n = len(idx)
    l, k, z = buys["location"][idx], buys["quarter"][idx], buys["z"][idx]
    usual = exp.alpha[l, k]
    if exp.measure == "nps":
        down, offsets = _incident_offsets(buys["time"][idx], l, list(shifts), exp)
        z = z - down  # during an incident the answer falls, through the attribute that caused it
        group = _group_of(z)
        latent, ratings = _attributes_given_total(z - (exp.mean[l, k] - down), usual + offsets, exp, rng)
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
    else:
        answer = buys["answer"][idx]
        down, offsets = _incident_offsets(buys["time"][idx], l, list(shifts), exp)
        speed = buys["speed"][idx] if exp.answer[2] else None
        if shifts:  # (its own stream, spawned: without incidents every draw is as before)
            answer = _answer_after(answer, z, speed, down, exp, words[1].spawn(1)[0])
        group = _answer_group(answer, exp.measure)
        latent, ratings = _attributes_given_total(z - exp.mean[l, k], usual + offsets, exp, rng, speed)
        scores = {name: answer if name == exp.measure else np.full(n, np.nan) for name in schema.METRICS}
    battery = rng.random(n) < p.attribute_rate
    asked = battery[:, None] & (rng.random((n, len(ATTRIBUTES))) >= p.attribute_skip)
    ratings = np.where(asked, ratings, np.nan)
    # channel: the purchase's own channel when it was not in store, else the survey touchpoint mix
    purchase_channel = np.array([schema.CHANNELS.index(c) for c in PURCHASE_CHANNELS])[channel[idx]]
    drawn = _draw_fixed(rng, p.response_channel_probs, n)
    resp_channel = np.where(purchase_channel == schema.CHANNELS.index("in_store"), drawn, purchase_channel)
    stage = _draw_fixed(rng, p.journey_stage_probs, n)
    comment = _comments(group, latent - usual, rng, p, words[1], words[0][l])
    delay = np.minimum(rng.standard_exponential(n) * p.response_delay_hours, 48.0) / 24
    when = buys["time"][idx] + delay
    same = (cal.quarter_of(when) == k) & (when < cal.n_days)
    when = np.where(same, when, buys["time"][idx])  # never let the delay cross a quarter or the end
    order = np.argsort(when, kind="stable")
    out = {"purchase": idx, "time": when, "channel": resp_channel, "stage": stage, "comment": comment,
           "ratings": ratings, **scores}
    return {name: values[order] for name, values in out.items()}


def _comments(group: np.ndarray, deviation: np.ndarray, rng: np.random.Generator, p: SynthParams,
              words: np.random.Generator, planted: np.ndarray) -> np.ndarray:
    """Short comments for a random `comment_rate` of responses: praise of the best-perceived attribute
    from the top group, a complaint about the worst from the others, except that at a location with a
    planted topic (`planted` >= 0, per response) the others name that topic in `comment_topic_rate` of
    their comments. Which comment is written uses `rng` as before this option existed; the wording and
    the plant use their own stream (`words`), so the scores of a seed do not change."""
    bank, (n_open, n_word) = _comment_bank()
    n = len(group)
    has = rng.random(n) < p.comment_rate
    rng.random(n)  # (the draw that chose the wording before the wordings had their own stream)
    attribute = np.where(group == 0, deviation.argmax(axis=1), deviation.argmin(axis=1))
    on_plant = (planted >= 0) & (group > 0) & (words.random(n) < p.comment_topic_rate)
    attribute = np.where(on_plant, planted, attribute)
    text = bank[group, words.integers(0, n_open, n), attribute, words.integers(0, n_word, n)]
    text[~has] = None
    return text


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    digits = max(width, len(str(n)))
    return prefix + pd.Series(np.arange(1, n + 1)).astype("str").str.zfill(digits)


def _pick(ids: pd.Series, index: np.ndarray) -> pd.Series:
    """ids[index] as a fresh str Series (a take on the Arrow array, no Python objects)."""
    return ids.take(index).reset_index(drop=True)
