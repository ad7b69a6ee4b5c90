"""What changed, where, since when: alerts per location with their likely cause (`cx.alerts`).

Per location and period (a month by default) the data are reduced to the brand's measure (each
answer's contribution: +100 / 0 / -100 for NPS, 100 or 0 for a top-box share) and to the mean of
each attribute rating (attr_*, 1-5), as counts, sums and sums of squares. Each of these series is
then scanned for an *epidemic* change: every segment of 1 to `max_periods` consecutive periods
(ending in the last period: an ongoing change) is compared with the location's other periods,

    z = (|mean during - mean outside| - margin) / sqrt(v / n_during + v / n_outside),

v the location's per-answer variance and `margin` the smallest change worth an alert (`min_change`
points of the measure, `min_rating_change` rating points, 5 and 0.1 by default): a change must be larger than that beyond
chance, so the real but small drift every location has does not raise alerts. The largest z over
segments is not normal; its p-value is 2 Phi(-z) times an effective number of segments, which a
Monte Carlo of the same scan under no change (the location's own answer counts, `sims` replicates)
calibrates at the 99th percentile. A location's p-value is the smallest over its series times the
number of series (Bonferroni), and alerts are the locations passing Benjamini-Hochberg at `fdr`
across all locations, so a brand of quiet locations raises about none.

The attribute ratings carry most of the power: a drop of 15 NPS points in a quarter at 100 answers
is about 1.9 standard errors of the NPS alone (a per-answer sd of ~80 points), but the rating that
caused it typically falls by most of a point on 60 ratings, ten standard errors. So an alert names
its signal, and its cause ranks the attributes by how far they fell (z), with each one's change in
rating points and its interval; it says whether the region and the brand moved too in the same
periods (a brand-wide dip is not a store problem) and how the measure moved within each channel and
journey stage. Given the comments (`comments=`, a `cx.text.corpus`) it lists the words the location's
comments used more during the alert than in its other months (weighted log-odds, as
`cx.text.distinctive_terms`, Benjamini-Hochberg over the terms), and given their topics (`topics=`,
a `cx.text.topics` result) each topic's share of the comments during and outside (Newcombe interval,
Benjamini-Hochberg over the topics). Words are the sharper evidence: at a few dozen comments a
topic's share rarely moves beyond chance, while "dirty" going from 7% to 41% of comments does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from cxresearch.measures import measure as measures
from cxresearch.measures.intervals import bh_q, proportion_difference, z_value

__all__ = ["AlertsResult", "alerts"]

SMALL_CELL = 10  # a channel or stage with fewer answers on either side is not shown on its own


@dataclass
class AlertsResult:
    """Alerts for a brand. `table`: one row per alert (location_id, start_period, end_period or
    'ongoing', periods, signal (the series that moved most: the measure or an attribute), change in
    the measure's points with change_low/change_high, n_before and n_during (answers outside and
    during), p, q, cause (the attribute that fell most), shared ('local', 'region' or 'brand') and
    why, in plain words). `causes`: per alert the change of every attribute, ranked. `scan`: per
    location its best segment (start_period, end_period), its z and p-value, alert or not.
    `breakdown`: per alert, channel and journey stage, the measure during and outside, its change with
    its interval, and the change's decomposition (Kitagawa): `within` (the level moved) and `mix` (the
    answers' mix moved), which add up to the alert's change over the levels with answers on both
    sides; `suppressed` where a side has fewer than SMALL_CELL (10) answers. `business`: per alert
    the transactions, customers and revenue per period during and outside, and their change in %
    with a Welch interval over periods (unit "%"); and the share of its purchase occasions whose
    customer came back within the horizon, during and outside, in points (unit "points").
    `topics` (with `topics=`): per alert and comment topic, its share of the location's comments
    during and outside, the change with its interval, z, q (across the
    alert's topics) and rank (mentioned more during the alert first). `terms` (with `comments=`): per
    alert the words and pairs its location's comments used more during it than outside, with z, the
    shares of comments using them, q (across the terms tested for that alert) and rank.
    `timeline(location_id)`: a location's (or the brand's) series. `settings`: what was asked."""

    table: pd.DataFrame
    causes: pd.DataFrame
    scan: pd.DataFrame
    measure: str
    settings: dict = field(default_factory=dict)
    breakdown: pd.DataFrame = field(default_factory=pd.DataFrame)  # the change within each channel and stage
    business: pd.DataFrame = field(default_factory=pd.DataFrame)  # purchases and revenue in the same periods
    topics: pd.DataFrame = field(default_factory=pd.DataFrame)  # the comment topics' shares, during and outside
    terms: pd.DataFrame = field(default_factory=pd.DataFrame)  # the words used more during the alert
    periods: tuple = ()  # the periods scanned, as text
    series: list = field(default_factory=list, repr=False)  # (n, sum, sumsq) per series, locations x periods
    names: tuple = ()  # the series' names: the measure's label, then the attributes

    def timeline(self, location_id: str | None = None) -> pd.DataFrame:
        """One location's series per period (or, with None, the brand's): period, n, the measure's
        value and each attribute's mean rating (missing where a period has no answer)."""
        locations = list(self.scan["location_id"])
        pick = slice(None) if location_id is None else [locations.index(location_id)]
        out = {"period": list(self.periods)}
        for k, (name, (n, s, _)) in enumerate(zip(self.names, self.series)):
            count, total = n[pick].sum(axis=0), s[pick].sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = np.where(count > 0, total / count, np.nan)
            if k == 0:
                out["n"], out["value"] = count.astype("int64"), mean
            else:
                out[name] = mean
        return pd.DataFrame(out)

    def summary(self) -> str:
        """The alerts in plain words."""
        n = len(self.scan)
        head = (f"{len(self.table)} alert(s) among {n:,} locations scanned, false alarms across locations kept to "
                f"{100 * self.settings.get('fdr', 0.05):.0f}% (Benjamini-Hochberg).")
        return "\n".join([head, *("- " + why for why in self.table["why"])])

    def __repr__(self) -> str:
        return self.summary()


def alerts(data, measure=None, period: str = "M", min_n: int = 20, max_periods: int = 6, min_change: float = 5.0,
           min_rating_change: float = 0.1, fdr: float = 0.05, sims: int = 20, seed: int = 0,
           level: float = 0.95, comments=None, topics=None, horizon_days: int = 180,
           min_gap_hours: float = 24.0) -> AlertsResult:
    """Alerts: the locations whose measure or attribute ratings changed, beyond chance and beyond the
    smallest change worth telling, with when, by how much and the likely cause (see the module).

    Parameters
    ----------
    data : CXDataset or Source
        The brand's data, in memory or on an engine (`cx.connect`); reduced on the engine.
    measure : str or Measure, optional
        The brand's measure (nps, csat, ces); default `measure.choose`.
    period : {"M", "Q"}, default "M"
        The periods scanned.
    min_n : int, default 20
        Answers a segment needs during it and outside it to be tested.
    max_periods : int, default 6
        The longest change scanned, in periods (a change still going on ends in the last period).
    min_change : float, default 5.0
        The smallest change of the measure worth an alert, in its points.
    min_rating_change : float, default 0.1
        The smallest change of an attribute's mean rating (1-5) worth an alert.
    fdr : float, default 0.05
        False-discovery rate across locations (Benjamini-Hochberg).
    sims : int, default 20
        Monte Carlo replicates per location that calibrate the scan's p-values.
    seed : int, default 0
        Seed of those replicates.
    level : float, default 0.95
        Level of the intervals.
    comments : Corpus, optional
        The comments' term counts (`cx.text.corpus` of the same data): each alert then lists the words
        its location's comments used more during it (`.terms`, and in `why` when beyond chance).
    topics : TopicsResult, optional
        The comments' topics (`cx.text.topics` of the same data): each topic's share of the location's
        comments during the alert and outside (`.topics`; in `why` when beyond chance and no word is).
    horizon_days, min_gap_hours : int, float
        For `.business`: a purchase occasion (purchases at least `min_gap_hours` apart) whose
        customer came back within `horizon_days`, as the retention reports count it.

    Returns
    -------
    AlertsResult
        `.table` (one row per alert), `.causes`, `.scan`, `.terms`, `.topics`, `.summary()`.
    """
    from cxresearch.engine import as_source
    from cxresearch.engine.reductions import rating_sums, score_counts

    source = as_source(data)
    m = measures.choose(source, measure)  # (counted on the engine: the responses are not fetched)
    counts = score_counts(source, ["location_id"], metrics=[m.name], period=period)
    attributes = [c for c in source.table("responses").columns if c.startswith("attr_")]
    ratings = rating_sums(source, attributes, ["location_id"], period=period) if attributes else None
    locations, periods, series = _series(counts, ratings, m, attributes)
    margins = [min_change] + [min_rating_change] * len(attributes)
    rng = np.random.default_rng(seed)
    best = [_scan(n, s, q, margin, min_n, max_periods, rng, sims) for (n, s, q), margin in zip(series, margins)]
    z = np.stack([b["z"] for b in best])  # series x locations
    p_series = np.stack([b["p"] for b in best])
    signal = np.nanargmin(np.where(np.isnan(p_series), np.inf, p_series), axis=0)
    p = np.minimum(1.0, np.nanmin(np.where(np.isnan(p_series), 1.0, p_series), axis=0) * len(series))
    q = bh_q(p)
    names = [m.label] + [a.removeprefix("attr_") for a in attributes]
    rows = np.arange(len(locations))
    scan = pd.DataFrame({"location_id": locations, "signal": [names[i] for i in signal], "z": z[signal, rows],
                         "start": [best[i]["start"][r] for i, r in zip(signal, rows)],
                         "end": [best[i]["end"][r] for i, r in zip(signal, rows)], "p": p, "q": q})
    scan["alert"] = scan["q"] < fdr
    labels = [str(x) for x in periods]
    scan["start_period"] = [labels[i] if i >= 0 else None for i in scan["start"]]
    scan["end_period"] = [labels[i] if i >= 0 else None for i in scan["end"]]
    table, causes = _describe(scan[scan["alert"]], list(locations), series, names, periods, m, source, level)
    settings = {"period": period, "min_n": min_n, "max_periods": max_periods, "min_change": min_change,
                "horizon_days": horizon_days, "min_gap_hours": min_gap_hours,
                "min_rating_change": min_rating_change, "fdr": fdr, "sims": sims, "seed": seed}
    breakdown = _breakdown(source, table, m, period, level)
    business = _business(source, table, period, level, horizon_days, min_gap_hours)
    topic_causes = _topic_causes(table, topics, period, fdr, level)
    term_causes = _term_causes(table, comments, period)
    table["why"] = _with_comments(table, term_causes, topic_causes, fdr)
    return AlertsResult(table=table, causes=causes, scan=scan, measure=m.name, settings=settings,
                        breakdown=breakdown, business=business, topics=topic_causes, terms=term_causes,
                        periods=tuple(labels),
                        series=series, names=tuple(names))


def _series(counts: pd.DataFrame, ratings, m, attributes):
    """(locations, periods, [(n, sum, sumsq) arrays locations x periods] for the measure and each attribute)."""
    counts = counts.dropna(subset=["location_id", "period"])
    locations = np.array(sorted(counts["location_id"].astype(str).unique()), dtype=object)
    periods = pd.period_range(counts["period"].min(), counts["period"].max(), freq=counts["period"].dt.freq)
    li = pd.Index(locations).get_indexer(counts["location_id"].astype(str))
    ti = pd.Index(periods).get_indexer(counts["period"])
    shape = (len(locations), len(periods))

    def grid(values, rows, cols):
        out = np.zeros(shape)
        np.add.at(out, (rows, cols), np.asarray(values, dtype="float64"))
        return out

    n, s, sq = m.contribution_sums(counts)
    series = [(grid(n, li, ti), grid(s, li, ti), grid(sq, li, ti))]
    if ratings is not None:
        ratings = ratings.dropna(subset=["location_id", "period"])
        rl = pd.Index(locations).get_indexer(ratings["location_id"].astype(str))
        rt = pd.Index(periods).get_indexer(ratings["period"])
        keep = (rl >= 0) & (rt >= 0)
        for a in attributes:
            series.append(tuple(grid(ratings[f"{a}_{k}"].to_numpy(float)[keep], rl[keep], rt[keep])
                                for k in ("n", "sum", "sumsq")))
    return locations, periods, series


def _segments(n_periods: int, max_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """All (start, end) of 1 to max_periods consecutive periods, end inclusive."""
    starts, ends = [], []
    for length in range(1, max_periods + 1):
        for start in range(0, n_periods - length + 1):
            starts.append(start)
            ends.append(start + length - 1)
    return np.array(starts, dtype=int), np.array(ends, dtype=int)


def _segment_z(n, s, var, starts, ends, margin, min_n):
    """z of every segment (locations x segments), NaN where a side has fewer than min_n answers."""
    cn, cs = np.cumsum(np.pad(n, ((0, 0), (1, 0))), axis=1), np.cumsum(np.pad(s, ((0, 0), (1, 0))), axis=1)
    n_in = cn[:, ends + 1] - cn[:, starts]
    s_in = cs[:, ends + 1] - cs[:, starts]
    n_out, s_out = cn[:, -1:] - n_in, cs[:, -1:] - s_in
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = s_in / n_in - s_out / n_out
        se = np.sqrt(var[:, None] * (1 / n_in + 1 / n_out))
        z = (np.abs(diff) - margin) / se
    z[(n_in < min_n) | (n_out < min_n) | ~np.isfinite(z)] = np.nan
    return z, diff


def _scan(n, s, sq, margin, min_n, max_periods, rng, sims) -> dict:
    """The best segment of each location's series, its z and a calibrated p-value."""
    starts, ends = _segments(n.shape[1], max_periods)
    total = n.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s.sum(axis=1) / total
        var = np.maximum(sq.sum(axis=1) / total - mean**2, 1e-12) * total / np.maximum(total - 1, 1)
    z, _ = _segment_z(n, s, var, starts, ends, margin, min_n)
    has = ~np.all(np.isnan(z), axis=1)
    best = np.where(has, np.nanargmax(np.where(np.isnan(z), -np.inf, z), axis=1), 0)
    top = np.where(has, z[np.arange(len(z)), best], np.nan)
    effective = _effective_segments(n, var, starts, ends, min_n, rng, sims)
    p = np.where(has, np.minimum(1.0, effective * 2 * stats.norm.sf(top)), np.nan)
    return {"z": top, "p": p, "start": np.where(has, starts[best], -1), "end": np.where(has, ends[best], -1)}


def _effective_segments(n, var, starts, ends, min_n, rng, sims: int) -> float:
    """How many independent tests the scan is worth: under no change (each period's mean drawn with
    the location's own answer counts), the 99th percentile q of the largest |z| over segments gives
    K with K * 2 Phi(-q) = 0.01. At least 1, at most the number of segments."""
    draws = []
    sd = np.sqrt(var)[:, None]
    for _ in range(max(1, sims)):
        noise = rng.standard_normal(n.shape) * sd * np.sqrt(np.maximum(n, 0))  # sums of n answers, mean 0
        z, _ = _segment_z(n, np.where(n > 0, noise, 0.0), var, starts, ends, 0.0, min_n)
        draws.append(np.nanmax(np.where(np.isnan(z), -np.inf, z), axis=1))
    pooled = np.concatenate(draws)
    pooled = pooled[np.isfinite(pooled)]
    if len(pooled) < 20:
        return float(len(starts))
    q = np.quantile(pooled, 0.99)
    return float(np.clip(0.01 / (2 * stats.norm.sf(q)), 1.0, len(starts)))


def _describe(found, locations, series, names, periods, m, source, level):
    """The alert table and the ranked attribute changes of each alert."""
    columns = ["location_id", "start_period", "end_period", "periods", "signal", "change", "change_low",
               "change_high", "n_before", "n_during", "p", "q", "cause", "shared", "why"]
    if found.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=["location_id", "attribute", "change",
                                                                     "change_low", "change_high", "z", "rank"])
    region, crit = _regions(source, locations), z_value(level)
    rows, cause_rows = [], []
    for r in found.itertuples():
        i, a, b = locations.index(r.location_id), int(r.start), int(r.end)
        change, half, n_in, n_out = _change(series[0], i, a, b, crit)
        ranked = []
        for k, name in enumerate(names[1:], start=1):
            d, h, _, _ = _change(series[k], i, a, b, crit)
            ranked.append({"location_id": r.location_id, "attribute": name, "change": d, "change_low": d - h,
                           "change_high": d + h, "z": d / (h / crit) if h > 0 else np.nan})
        moved, _, _, _ = _change(series[names.index(r.signal)], i, a, b, crit)
        sign = -1.0 if not moved > 0 else 1.0  # a fall is explained by what fell, a rise by what rose
        ranked = sorted(ranked, key=lambda x: -sign * np.nan_to_num(x["z"], nan=-sign * np.inf))
        for rank, item in enumerate(ranked, start=1):
            cause_rows.append({**item, "rank": rank})
        cause = ranked[0]["attribute"] if ranked and sign * ranked[0]["z"] > crit else ""
        shared = _shared(series[0], i, a, b, region, crit, change)
        end = "ongoing" if b == len(periods) - 1 else str(periods[b])
        rows.append({"location_id": r.location_id, "start_period": str(periods[a]),
                     "end_period": end, "periods": b - a + 1, "signal": r.signal,
                     "change": change, "change_low": change - half, "change_high": change + half, "n_before": n_out,
                     "n_during": n_in, "p": r.p, "q": r.q, "cause": cause, "shared": shared,
                     "why": _why(r.location_id, str(periods[a]), end, m, change, half, n_in, cause,
                                 ranked[0] if ranked else None, shared)})
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(cause_rows)


def _change(block, i, a, b, crit):
    """Change of a series at location i in periods a..b against its other periods: (change, half-width, n in, n out)."""
    n, s, sq = (x[i] for x in block)
    n_in, s_in, q_in = n[a:b + 1].sum(), s[a:b + 1].sum(), sq[a:b + 1].sum()
    n_out, s_out, q_out = n.sum() - n_in, s.sum() - s_in, sq.sum() - q_in
    if n_in < 2 or n_out < 2:
        return np.nan, np.nan, int(n_in), int(n_out)
    m_in, m_out = s_in / n_in, s_out / n_out
    v_in = max(q_in / n_in - m_in**2, 0) * n_in / (n_in - 1)
    v_out = max(q_out / n_out - m_out**2, 0) * n_out / (n_out - 1)
    return m_in - m_out, crit * np.sqrt(v_in / n_in + v_out / n_out), int(n_in), int(n_out)


def _regions(source, locations):
    """Each location's region (None when the data have no locations table or no region)."""
    if not source.has("locations"):
        return None
    frame = source.fetch("locations")
    if "region" not in frame:
        return None
    return frame.set_index(frame["location_id"].astype(str))["region"].reindex(locations).astype(str).to_numpy()


def _shared(block, i, a, b, region, crit, mine: float) -> str:
    """'brand' when the other locations, all together, moved the same way (the sign of `mine`, this
    location's change) beyond chance in the same periods; 'region' when those of its region did; else
    'local'."""
    n, s, sq = block
    others = np.ones(len(n), dtype=bool)
    others[i] = False
    groups = [("brand", others)]
    if region is not None:
        groups.insert(0, ("region", others & (region == region[i])))
    for name, members in groups:
        if members.sum() == 0:
            continue
        pooled = tuple(x[members].sum(axis=0, keepdims=True) for x in block)
        change, half, _, _ = _change(pooled, 0, a, b, crit)
        if np.isfinite(change) and np.sign(change) == np.sign(mine) and abs(change) > half:
            return name
    return "local"


def _why(location, start, end, m, change, half, n_in, cause, top, shared) -> str:
    """One sentence for leadership."""
    when = f"since {start}" if end == "ongoing" else f"from {start} to {end}"
    direction = "fell" if change < 0 else "rose"
    text = (f"{location}: {m.label} {direction} by {abs(change):.0f} points {when} (95% range "
            f"{change - half:+.0f} to {change + half:+.0f}, n={n_in:,} during)")
    if cause and top is not None:
        lower = "lower" if top["change"] < 0 else "higher"
        text += (f"; its customers rated {cause} {abs(top['change']):.1f} points {lower} (95% range "
                 f"{top['change_low']:+.1f} to {top['change_high']:+.1f})")
    if shared != "local":
        text += f"; the rest of the {shared} moved the same way at the same time, so it is not this location's alone"
    return text + "."


def _window(frame: pd.DataFrame, alert) -> np.ndarray:
    """Which rows of a per-period frame fall in the alert's periods."""
    labels = frame["period"].astype(str)
    end = labels.max() if alert.end_period == "ongoing" else alert.end_period
    return ((labels >= alert.start_period) & (labels <= end)).to_numpy()


def _breakdown(source, table: pd.DataFrame, m, period: str, level: float) -> pd.DataFrame:
    """The change of each alert within each channel and journey stage, and its decomposition."""
    from cxresearch.engine.reductions import score_counts

    columns = ["location_id", "dimension", "level", "n_during", "n_outside", "during", "outside", "change",
               "change_low", "change_high", "within", "mix", "suppressed"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    crit, rows = z_value(level), []
    for dimension in ("channel", "journey_stage"):
        if dimension not in source.table("responses").columns:
            continue
        counts = score_counts(source, ["location_id", dimension], metrics=[m.name], period=period)
        counts = counts[counts["location_id"].astype(str).isin(set(table["location_id"]))]
        numeric = [c for c in counts.columns if c not in ("location_id", dimension, "period")]
        for alert in table.itertuples():
            mine = counts[counts["location_id"].astype(str) == alert.location_id]
            inside = _window(mine, alert)
            sides = [mine[inside].groupby(dimension, observed=True)[numeric].sum(),
                     mine[~inside].groupby(dimension, observed=True)[numeric].sum()]
            both = sides[0].index.intersection(sides[1].index)
            if len(both) == 0:
                continue
            est = [m.estimates(side.loc[both].reset_index()) for side in sides]
            weights = [e["n"].to_numpy(float) / max(e["n"].sum(), 1) for e in est]
            v_in, v_out = est[0]["value"].to_numpy(), est[1]["value"].to_numpy()
            half = crit * np.sqrt(est[0]["se"].to_numpy() ** 2 + est[1]["se"].to_numpy() ** 2)
            for k, name in enumerate(both):
                rows.append({"location_id": alert.location_id, "dimension": dimension, "level": str(name),
                             "n_during": int(est[0]["n"].iloc[k]), "n_outside": int(est[1]["n"].iloc[k]),
                             "during": v_in[k], "outside": v_out[k], "change": v_in[k] - v_out[k],
                             "change_low": v_in[k] - v_out[k] - half[k], "change_high": v_in[k] - v_out[k] + half[k],
                             "within": (v_in[k] - v_out[k]) * (weights[0][k] + weights[1][k]) / 2,
                             "mix": (weights[0][k] - weights[1][k]) * (v_in[k] + v_out[k]) / 2,
                             "suppressed": bool(est[0]["n"].iloc[k] < SMALL_CELL or est[1]["n"].iloc[k] < SMALL_CELL)})
    return pd.DataFrame(rows, columns=columns)


def _business(source, table: pd.DataFrame, period: str, level: float, horizon_days: int = 180,
              min_gap_hours: float = 24.0) -> pd.DataFrame:
    """Transactions, customers and revenue per period at each alerted location, during its alert
    and outside, with the change in % (unit "%": a Welch interval over periods, by the delta method);
    and the share of its purchase occasions whose customer came back within `horizon_days` (unit
    "points": Newcombe's interval), over the occasions old enough to know (`periods_during` counts
    the alert's periods with any)."""
    from cxresearch.engine.reductions import repeat_counts, revenue_sums

    columns = ["location_id", "what", "unit", "during", "outside", "change", "change_low", "change_high",
               "periods_during", "n_during", "n_outside"]
    if table.empty or not source.has("transactions"):
        return pd.DataFrame(columns=columns)
    sums = revenue_sums(source, ["location_id"], period)
    repeats = repeat_counts(source, ["location_id"], period, horizon_days, min_gap_hours)
    crit, rows = z_value(level), []
    for alert in table.itertuples():
        mine = sums[sums["location_id"].astype(str) == alert.location_id]
        if mine.empty:
            continue
        inside = _window(mine, alert)
        for what in ("transactions", "customers", "revenue"):
            a, b = mine.loc[inside, what].to_numpy(float), mine.loc[~inside, what].to_numpy(float)
            if len(a) < 1 or len(b) < 2 or b.mean() <= 0:
                continue
            ratio = a.mean() / b.mean()
            var_a = a.var(ddof=1) / len(a) if len(a) > 1 else b.var(ddof=1)  # one period: the usual spread
            se = ratio * np.sqrt(var_a / a.mean() ** 2 + b.var(ddof=1) / len(b) / b.mean() ** 2) if a.mean() > 0 else np.nan
            rows.append({"location_id": alert.location_id, "what": what, "unit": "%", "during": a.mean(),
                         "outside": b.mean(), "change": 100 * (ratio - 1), "change_low": 100 * (ratio - 1 - crit * se),
                         "change_high": 100 * (ratio - 1 + crit * se), "periods_during": len(a),
                         "n_during": int(a.sum()) if what != "revenue" else np.nan,
                         "n_outside": int(b.sum()) if what != "revenue" else np.nan})
        rows.extend(_came_back(repeats, alert, horizon_days, level))
    return pd.DataFrame(rows, columns=columns)


def _came_back(repeats: pd.DataFrame, alert, horizon_days: int, level: float) -> list[dict]:
    """The alert's row of customers who came back within the horizon, during against outside (none
    when fewer than SMALL_CELL occasions of the alert's periods are old enough to know)."""
    mine = repeats[repeats["location_id"].astype(str) == alert.location_id]
    mine = mine[mine["eligible"] > 0]
    if mine.empty:
        return []
    inside = _window(mine, alert)
    n_in, n_out = mine.loc[inside, "eligible"].sum(), mine.loc[~inside, "eligible"].sum()
    if n_in < SMALL_CELL or n_out < SMALL_CELL:
        return []
    d = proportion_difference(mine.loc[~inside, "came_back"].sum(), n_out, mine.loc[inside, "came_back"].sum(), n_in, level)
    return [{"location_id": alert.location_id, "what": f"came back within {horizon_days} days", "unit": "points",
             "during": 100 * d["share_2"], "outside": 100 * d["share_1"], "change": 100 * d["change"],
             "change_low": 100 * d["low"], "change_high": 100 * d["high"], "periods_during": int(inside.sum()),
             "n_during": int(n_in), "n_outside": int(n_out)}]


TOPIC_COLUMNS = ["location_id", "topic", "label", "comments_during", "comments_outside", "total_during",
                 "total_outside", "share_during",
                 "share_outside", "change", "change_low", "change_high", "z", "q", "rank", "suppressed"]


def _topic_causes(table: pd.DataFrame, topics, period: str, fdr: float, level: float) -> pd.DataFrame:
    """Per alert and comment topic: its share of the location's comments during the alert and outside
    it, the change (in share points, 0-1) with Newcombe's interval, the z of the pooled test, q across
    the alert's topics (Benjamini-Hochberg), rank (the topic mentioned more during the alert first);
    `suppressed` (shares hidden) where either side has fewer than SMALL_CELL comments."""
    if table.empty or topics is None or getattr(topics, "comments", None) is None:
        return pd.DataFrame(columns=TOPIC_COLUMNS)
    comments = topics.comments[topics.comments["location_id"].astype(str).isin(set(table["location_id"]))]
    stamps = pd.to_datetime(comments["responded_at"], utc=True).dt.tz_localize(None)
    comments = comments.assign(period=stamps.dt.to_period(period).astype(str), location_id=comments["location_id"].astype(str))
    labels = topics.table.set_index("topic")["label"]
    rows = []
    for alert in table.itertuples():
        mine = comments[comments["location_id"] == alert.location_id]
        inside = _window(mine, alert)
        topic = mine["topic"].to_numpy()
        found = []
        for t, label in labels.items():
            on = topic == t
            d = proportion_difference(on[~inside].sum(), (~inside).sum(), on[inside].sum(), inside.sum(), level)
            small = inside.sum() < SMALL_CELL or (~inside).sum() < SMALL_CELL
            found.append({"location_id": alert.location_id, "topic": int(t), "label": label,
                          "comments_during": int(on[inside].sum()), "comments_outside": int(on[~inside].sum()),
                          "total_during": int(inside.sum()), "total_outside": int((~inside).sum()),
                          "share_during": d["share_2"], "share_outside": d["share_1"], "change": d["change"],
                          "change_low": d["low"], "change_high": d["high"], "z": d["z"], "p": np.nan if small else d["p"],
                          "suppressed": bool(small)})
        frame = pd.DataFrame(found)
        frame["q"] = bh_q(frame["p"])
        frame = frame.sort_values("z", ascending=False, kind="stable", na_position="last")
        frame["rank"] = np.arange(1, len(frame) + 1)
        rows.append(frame)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=TOPIC_COLUMNS)
    shown = out["suppressed"].astype(bool)
    out.loc[shown, ["share_during", "share_outside", "change", "change_low", "change_high"]] = np.nan
    return out[TOPIC_COLUMNS]


TERM_COLUMNS = ["location_id", "term", "z", "count_during", "count_outside", "share_during", "share_outside",
                "comments_during", "q", "rank"]


def _term_causes(table: pd.DataFrame, built, period: str, top: int = 10, min_count: int = 5) -> pd.DataFrame:
    """Per alert, the `top` words and pairs its location's comments used more during the alert than in
    its other periods (`distinctive_terms` on the location's comments alone, at least `min_count`
    uses during), with q, Benjamini-Hochberg over the terms tested for that alert (one-sided p of z).
    An alert with fewer than SMALL_CELL comments during it, or none outside, lists none."""
    if table.empty or built is None or len(built) == 0:
        return pd.DataFrame(columns=TERM_COLUMNS)
    import dataclasses

    from cxresearch.measures.terms import distinctive_terms

    docs = built.docs
    where = docs["location_id"].astype(str).to_numpy()
    labels = pd.to_datetime(docs["responded_at"], utc=True).dt.tz_localize(None).dt.to_period(period).astype(str)
    frames = []
    for alert in table.itertuples():
        rows = np.flatnonzero(where == alert.location_id)
        mine = pd.DataFrame({"period": labels.to_numpy()[rows]})
        inside = _window(mine, alert)
        if inside.sum() < SMALL_CELL or inside.all():
            continue
        local = dataclasses.replace(built, counts=built.counts[rows], docs=docs.iloc[rows].reset_index(drop=True))
        found = distinctive_terms(local, inside, top=None, min_count=min_count)
        found["q"] = bh_q(stats.norm.sf(found["z"].to_numpy(float)))  # over every term tested
        found = found[found["z"] > 0]  # used more during the alert
        if found.empty:
            continue
        found = found.head(top).rename(columns={"count_group": "count_during", "count_rest": "count_outside",
                                                "share_group": "share_during", "share_rest": "share_outside"})
        frames.append(found.assign(location_id=alert.location_id, comments_during=int(inside.sum()),
                                   rank=np.arange(1, len(found) + 1)))
    return pd.concat(frames, ignore_index=True)[TERM_COLUMNS] if frames else pd.DataFrame(columns=TERM_COLUMNS)


def _with_comments(table: pd.DataFrame, term_causes: pd.DataFrame, topic_causes: pd.DataFrame, fdr: float) -> pd.Series:
    """Each alert's `why`, with what its comments said more often during it when that is beyond chance:
    the words first (sharper), else the topic."""
    why = table["why"].copy()
    words = term_causes[term_causes["q"] < fdr] if not term_causes.empty else term_causes
    topic = (topic_causes[(topic_causes["rank"] == 1) & (topic_causes["q"] < fdr) & (topic_causes["change"] > 0)]
             .set_index("location_id") if not topic_causes.empty else None)
    for i, location in enumerate(table["location_id"]):
        mine = words[words["location_id"] == location] if not words.empty else words
        if len(mine):
            quoted = ", ".join(f'"{t}"' for t in mine["term"].head(3))
            first = mine.iloc[0]
            extra = (f"; and their comments said {quoted} more often than in its other months ("
                     f"\"{first['term']}\" in {100 * first['share_during']:.0f}% of {int(first['comments_during']):,} "
                     f"comments during, {100 * first['share_outside']:.0f}% outside)")
        elif topic is not None and location in topic.index:
            t = topic.loc[location]
            extra = (f"; and their comments were about \"{t['label']}\" more often ({100 * t['share_during']:.0f}% of its "
                     f"{int(t['total_during']):,} comments during, {100 * t['share_outside']:.0f}% outside)")
        else:
            continue
        why.iloc[i] = why.iloc[i].removesuffix(".") + extra + "."
    return why
