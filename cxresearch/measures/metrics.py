"""CX scores with their uncertainty: NPS, CSAT, CES and proportions, alone or per group.

Every function works from counts, so the same arithmetic serves one location or ten thousand
groups at once (no Python loop over groups). The counts come from one reduction
(`reductions.score_counts`) on whatever holds the responses: a Source on its engine, a CXDataset
or a DataFrame on an embedded DuckDB (`engine.as_source`).

Intervals (docs/design.md, statistical conventions):
- NPS: the point estimate is the plain %promoters - %detractors. Its interval is the adjusted Wald
  interval of Rocks (2016): add 0.75 promoter, 1.5 passive and 0.75 detractor pseudo-responses
  (n + 3), compute the Wald interval on those shares, and clip to [-100, 100]. It stays inside the
  scale and keeps close to nominal coverage down to n of about 10, where the plain Wald interval
  collapses to a point for samples that are all promoters. `se` is the plain one of docs/design.md,
  100 * sqrt((pP + pD - (pP - pD)^2) / n).
- Proportions (CSAT top-2-box, the share of easy CES, retention rates): Wilson score interval.
- Means (CES on 1-7): t interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cxresearch.engine import as_source, reductions
from cxresearch.measures.intervals import (  # noqa: F401
    clip_to_scale,
    mean_from_moments,
    nps_from_counts,
    proportion_from_counts,
    wilson_interval,
    z_value,
)
from cxresearch.measures.measure import get
from cxresearch.schema import METRICS, PASSIVE_MIN, PROMOTER_MIN, SCALES

__all__ = ["CESResult", "NPSResult", "ProportionResult", "add_period", "ces", "csat", "nps", "period_of",
           "proportion", "readable_trend", "response_coverage", "score_counts", "score_missingness", "summarize",
           "summarize_counts", "summarize_measure", "trend"]

DEFAULT_MIN_N = 30


# --- single-sample API ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NPSResult:
    """Net Promoter Score of one sample with its interval (see module docstring for the method)."""

    nps: float
    n: int
    promoters: int
    passives: int
    detractors: int
    share_promoters: float
    share_passives: float
    share_detractors: float
    se: float
    ci_low: float
    ci_high: float
    level: float
    missing: int
    method: str = "adjusted Wald (Rocks 2016), clipped to [-100, 100]"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.n == 0:
            return f"NPS: no answers (n=0, {self.missing} missing)"
        return (f"NPS {self.nps:+.1f} (95% CI {self.ci_low:+.1f} to {self.ci_high:+.1f}, n={self.n})"
                if self.level == 0.95 else
                f"NPS {self.nps:+.1f} ({self.level:.0%} CI {self.ci_low:+.1f} to {self.ci_high:+.1f}, n={self.n})")


@dataclass(frozen=True)
class ProportionResult:
    """A share (e.g. CSAT top-2-box) with its Wilson interval."""

    share: float
    n: int
    successes: int
    se: float
    ci_low: float
    ci_high: float
    level: float
    missing: int
    label: str = "share"
    method: str = "Wilson score interval"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.n == 0:
            return f"{self.label}: no answers (n=0, {self.missing} missing)"
        return (f"{self.label} {self.share:.1%} ({self.level:.0%} CI {self.ci_low:.1%} to "
                f"{self.ci_high:.1%}, n={self.n})")


@dataclass(frozen=True)
class CESResult:
    """Customer effort: mean on 1-7 (t interval) and the share of easy answers 5-7 (Wilson)."""

    mean: float
    mean_ci_low: float
    mean_ci_high: float
    share_easy: float
    easy_ci_low: float
    easy_ci_high: float
    n: int
    level: float
    missing: int

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.n == 0:
            return f"CES: no answers (n=0, {self.missing} missing)"
        return (f"CES mean {self.mean:.2f} ({self.level:.0%} CI {self.mean_ci_low:.2f} to {self.mean_ci_high:.2f}), "
                f"easy {self.share_easy:.1%} ({self.easy_ci_low:.1%} to {self.easy_ci_high:.1%}), n={self.n}")


def _clean_scores(scores, name: str, low: int, high: int) -> tuple[np.ndarray, int]:
    """Scores as floats without missing values; out-of-scale or fractional values are an error."""
    values = pd.to_numeric(pd.Series(scores), errors="raise").astype("float64")
    missing = int(values.isna().sum())
    values = values.dropna().to_numpy()
    bad = (values < low) | (values > high) | (values != np.round(values))
    if bad.any():
        raise ValueError(f"{name} scores must be whole numbers from {low} to {high}; "
                         f"got {values[bad][:5].tolist()} ({int(bad.sum())} such)")
    return values, missing


def nps(scores, level: float = 0.95) -> NPSResult:
    """Net Promoter Score of 0-10 scores, with its adjusted-Wald interval.

    Promoters answer 9-10, passives 7-8, detractors 0-6; NPS = %promoters - %detractors.

    Parameters
    ----------
    scores : array-like
        Whole numbers from 0 to 10; missing values are ignored and counted.
    level : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    NPSResult
        nps, n, the counts and shares of each group, se, ci_low, ci_high, level, missing.

    Raises
    ------
    ValueError
        A score outside 0-10 or not a whole number.
    """
    values, missing = _clean_scores(scores, "nps", *SCALES["nps"])
    promoters, passives = values >= PROMOTER_MIN, (values >= PASSIVE_MIN) & (values < PROMOTER_MIN)
    counts = nps_from_counts([promoters.sum()], [passives.sum()], [(values < PASSIVE_MIN).sum()], level)
    row = counts.iloc[0]
    return NPSResult(**{k: (int(v) if k in ("n", "promoters", "passives", "detractors") else float(v))
                        for k, v in row.drop("se_adjusted").items()}, level=level, missing=missing)


def csat(scores, scale: int = 5, top_box: int = 2, level: float = 0.95) -> ProportionResult:
    """CSAT as the share of the `top_box` highest answers, with its Wilson interval.

    Parameters
    ----------
    scores : array-like
        Whole numbers from 1 to `scale`; missing values are ignored and counted.
    scale : int, default 5
        The highest answer.
    top_box : int, default 2
        How many of the highest answers count as satisfied (4-5 of 5 by default).
    level : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    ProportionResult
    """
    values, missing = _clean_scores(scores, "csat", 1, scale)
    if not 1 <= top_box < scale:
        raise ValueError(f"top_box must be between 1 and {scale - 1}, got {top_box}")
    row = proportion_from_counts([(values > scale - top_box).sum()], [len(values)], level).iloc[0]
    return ProportionResult(share=float(row.share), n=int(row.n), successes=int(row.successes), se=float(row.se),
                            ci_low=float(row.ci_low), ci_high=float(row.ci_high), level=level, missing=missing,
                            label=f"CSAT top-{top_box}-box")


def ces(scores, easy_from: int = 5, level: float = 0.95) -> CESResult:
    """Customer effort on 1-7 (higher is easier): the mean and the share of easy answers.

    Parameters
    ----------
    scores : array-like
        Whole numbers from 1 to 7; missing values are ignored and counted.
    easy_from : int, default 5
        The lowest answer that counts as easy.
    level : float, default 0.95
        Confidence level of the intervals (t for the mean, Wilson for the share).

    Returns
    -------
    CESResult
    """
    values, missing = _clean_scores(scores, "ces", *SCALES["ces"])
    m = mean_from_moments([values.sum()], [(values**2).sum()], [len(values)], level).iloc[0]
    e = proportion_from_counts([(values >= easy_from).sum()], [len(values)], level).iloc[0]
    low, high = SCALES["ces"]
    return CESResult(mean=float(m["mean"]), mean_ci_low=float(np.clip(m.ci_low, low, high)),
                     mean_ci_high=float(np.clip(m.ci_high, low, high)),
                     share_easy=float(e.share), easy_ci_low=float(e.ci_low), easy_ci_high=float(e.ci_high),
                     n=len(values), level=level, missing=missing)


def proportion(successes: int, n: int, level: float = 0.95, label: str = "share") -> ProportionResult:
    """A share of `successes` out of `n` (a retention rate, say) with its Wilson interval.

    Parameters
    ----------
    successes, n : int
        Counts, 0 <= successes <= n.
    level : float, default 0.95
        Confidence level of the interval.
    label : str, default "share"
        What the share is, for its printed form.

    Returns
    -------
    ProportionResult
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    row = proportion_from_counts([successes], [n], level).iloc[0]
    return ProportionResult(share=float(row.share), n=int(n), successes=int(successes), se=float(row.se),
                            ci_low=float(row.ci_low), ci_high=float(row.ci_high), level=level, missing=0, label=label)


# --- grouped summaries ----------------------------------------------------------------------------

def add_period(frame: pd.DataFrame, period: str, time_column: str = "responded_at") -> pd.DataFrame:
    """A copy of a (small) frame with a `period` column: the calendar period of `time_column` in UTC."""
    return frame.assign(period=period_of(frame[time_column], period))


def period_of(stamps: pd.Series, period: str) -> pd.Series:
    """Calendar period of each timestamp (UTC) as a pandas Period series ('M' months, 'Q' quarters...)."""
    return _naive_utc(stamps).dt.to_period(period)


def _naive_utc(stamps: pd.Series) -> pd.Series:
    if getattr(stamps.dt, "tz", None) is not None:
        return stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps


def score_counts(responses, by: list[str], metrics=METRICS, csat_top_box: int = 2,
                 ces_easy_from: int = 5) -> pd.DataFrame:
    """Sufficient statistics per group: NPS category counts, CSAT top-box counts, CES sums.

    `responses` is a Source, a CXDataset or a responses DataFrame: one reduction
    (`reductions.score_counts`) counts on its engine, and everything else works on the small
    result. Rows whose `by` values are missing form their own group (nothing is dropped).
    """
    return reductions.score_counts(as_source(responses), by, metrics, csat_top_box=csat_top_box,
                                   ces_easy_from=ces_easy_from)


def summarize(responses, by=None, metrics=METRICS, min_n: int = DEFAULT_MIN_N,
              period: str | None = None, level: float = 0.95, time_column: str = "responded_at") -> pd.DataFrame:
    """One row per group with each metric, its interval and n; small cells suppressed.

    Parameters
    ----------
    responses : Source, CXDataset or DataFrame
        The responses; one reduction counts them on their engine.
    by : str or list of str, optional
        Columns of the responses (location_id, channel, journey_stage, ...) and, where there is a
        locations table (a Source, a CXDataset), location columns (region, format).
    metrics : str or sequence of str, default ("nps", "csat", "ces")
        The metrics to report.
    min_n : int, default 30
        Cells with fewer answers are suppressed: their value and interval are NaN, never shown.
    period : {"D", "W", "M", "Q", "Y"}, optional
        Also group by the calendar period (UTC) of `time_column`.
    level : float, default 0.95
        Confidence level of the intervals.
    time_column : str, default "responded_at"

    Returns
    -------
    DataFrame
        The group columns, ``responses``, and per metric ``<m>`` (NPS points, CSAT top-2-box share,
        CES mean), ``<m>_ci_low``, ``<m>_ci_high``, ``<m>_se``, ``<m>_n`` and ``<m>_suppressed``.
    """
    by = [by] if isinstance(by, str) else list(by or [])
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {METRICS}")
    counts = reductions.score_counts(as_source(responses), by, metrics, period=period, time_column=time_column)
    return summarize_counts(counts, by + (["period"] if period is not None and "period" not in by else []),
                            metrics, min_n, level)


def summarize_counts(counts: pd.DataFrame, by: list[str], metrics=METRICS, min_n: int = DEFAULT_MIN_N,
                     level: float = 0.95) -> pd.DataFrame:
    """`summarize` from the sufficient statistics of `score_counts` (or an engine that computed them)."""
    out = counts[by].copy() if by else pd.DataFrame(index=counts.index)
    out["responses"] = counts["responses"].astype("int64")
    for metric in metrics:
        est = _metric_from_counts(counts, metric, level)
        suppressed = est["n"] < min_n
        out[metric] = est["value"].where(~suppressed)
        out[f"{metric}_ci_low"] = est["ci_low"].where(~suppressed)
        out[f"{metric}_ci_high"] = est["ci_high"].where(~suppressed)
        out[f"{metric}_se"] = est["se"].where(~suppressed)
        out[f"{metric}_n"] = est["n"]
        out[f"{metric}_suppressed"] = suppressed
    return out.reset_index(drop=True)


def summarize_measure(responses, measure, by=None, min_n: int = DEFAULT_MIN_N, period: str | None = None,
                      level: float = 0.95, time_column: str = "responded_at") -> pd.DataFrame:
    """`summarize` for the brand's measure alone, in its points (`cxresearch.measures.measure`): NPS
    from -100 to +100, CSAT as the % satisfied (4-5 of 5), CES as the % easy (5-7 of 7).

    `measure` is 'nps', 'csat', 'ces' or a Measure. The columns are those of `summarize` for one
    metric, named after the measure (``csat`` is then a percentage, not a share).
    """
    chosen = get(measure)
    by = [by] if isinstance(by, str) else list(by or [])
    counts = reductions.score_counts(as_source(responses), by, [chosen.name], period=period, time_column=time_column)
    keys = by + (["period"] if period is not None and "period" not in by else [])
    return _table_from_estimates(counts, keys, chosen.name, chosen.estimates(counts, level), min_n)


def _table_from_estimates(counts, by, name, est, min_n) -> pd.DataFrame:
    out = counts[by].copy() if by else pd.DataFrame(index=counts.index)
    out["responses"] = counts["responses"].astype("int64")
    suppressed = est["n"].to_numpy() < min_n
    for suffix, column in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"), ("_se", "se")):
        out[f"{name}{suffix}"] = est[column].where(~suppressed).to_numpy()
    out[f"{name}_n"] = est["n"].to_numpy()
    out[f"{name}_suppressed"] = suppressed
    return out.reset_index(drop=True)


def _metric_from_counts(counts: pd.DataFrame, metric: str, level: float) -> pd.DataFrame:
    """value, se, ci_low, ci_high, n for one metric from its sufficient statistics."""
    if metric == "nps":
        est = nps_from_counts(counts["nps_promoters"], counts["nps_passives"], counts["nps_detractors"], level)
        value = est["nps"]
    elif metric == "csat":
        est = proportion_from_counts(counts["csat_top"], counts["csat_n"], level)
        value = est["share"]
    else:
        est = clip_to_scale(mean_from_moments(counts["ces_sum"], counts["ces_sumsq"], counts["ces_n"], level),
                            *SCALES["ces"])
        value = est["mean"]
    return pd.DataFrame({"value": value.to_numpy(), "se": est["se"].to_numpy(), "ci_low": est["ci_low"].to_numpy(),
                         "ci_high": est["ci_high"].to_numpy(), "n": est["n"].to_numpy()}, index=counts.index)


def trend(responses, metric="nps", by=("location_id",), period: str = "Q",
          periods: tuple | None = None, min_n: int = DEFAULT_MIN_N, level: float = 0.95,
          time_column: str = "responded_at") -> pd.DataFrame:
    """Change of a metric per group between two periods, with the interval of the change.

    The interval combines the two periods' own intervals by MOVER (Zou & Donner 2008; Newcombe's
    method for proportions), so each side keeps its small-sample interval.

    Parameters
    ----------
    responses : Source, CXDataset or DataFrame
    metric : {"nps", "csat", "ces"} or Measure, default "nps"
        A name gives the metric in `summarize`'s units (CSAT as a share, CES as a mean); a Measure
        (`cxresearch.measures.measure.get`) its headline value in points.
    by : str or sequence of str, default ("location_id",)
        Group columns; None for the whole brand.
    period : str, default "Q"
    periods : tuple of two period labels, optional
        ``(earlier, later)``, e.g. ``("2024Q4", "2025Q1")``; by default the last two periods whose
        answers (all groups together) reach `min_n`, so a period just begun is not compared.
    min_n : int, default 30
        Either side below it suppresses the row.
    level : float, default 0.95
    time_column : str, default "responded_at"

    Returns
    -------
    DataFrame
        Per group: the metric in each period with n, ``change`` with ``change_ci_low`` and
        ``change_ci_high``, ``significant`` (the interval excludes zero) and ``suppressed``.

    Raises
    ------
    ValueError
        Fewer than two periods with at least `min_n` answers.
    """
    by = [by] if isinstance(by, str) else list(by or [])
    if isinstance(metric, str):
        table = summarize(responses, by, [metric], min_n=0, period=period, level=level, time_column=time_column)
    else:
        table = summarize_measure(responses, metric, by, min_n=0, period=period, level=level, time_column=time_column)
        metric = metric.name
    if periods is None:
        answers = table.groupby("period")[f"{metric}_n"].sum()
        available = sorted(answers.index[answers >= max(min_n, 1)])
        if len(available) < 2:
            raise ValueError(f"trend needs two periods with at least {min_n} answers ({period}); found "
                             f"{len(available)} of {len(answers)}")
        earlier, later = available[-2], available[-1]
    else:
        earlier, later = (pd.Period(p, freq=period) for p in periods)
    wide = _two_periods(table, by, metric, earlier, later)
    return _change_with_interval(wide, metric, min_n)


def _two_periods(table, by, metric, earlier, later) -> pd.DataFrame:
    cols = [metric, f"{metric}_ci_low", f"{metric}_ci_high", f"{metric}_n"]
    first = table[table["period"] == earlier].drop(columns="period")
    second = table[table["period"] == later].drop(columns="period")
    if by:
        wide = first[by + cols].merge(second[by + cols], on=by, how="outer", suffixes=("_from", "_to"))
    else:
        wide = pd.concat([first[cols].add_suffix("_from").reset_index(drop=True),
                          second[cols].add_suffix("_to").reset_index(drop=True)], axis=1)
    wide.insert(len(by), "period_from", earlier)
    wide.insert(len(by) + 1, "period_to", later)
    return wide


def _change_with_interval(wide: pd.DataFrame, metric: str, min_n: int) -> pd.DataFrame:
    v1, l1, u1 = (wide[f"{metric}{s}_from"] for s in ("", "_ci_low", "_ci_high"))
    v2, l2, u2 = (wide[f"{metric}{s}_to"] for s in ("", "_ci_low", "_ci_high"))
    n1, n2 = wide[f"{metric}_n_from"].fillna(0), wide[f"{metric}_n_to"].fillna(0)
    change = v2 - v1
    low = change - np.sqrt((v2 - l2) ** 2 + (u1 - v1) ** 2)
    high = change + np.sqrt((u2 - v2) ** 2 + (v1 - l1) ** 2)
    suppressed = (n1 < min_n) | (n2 < min_n)
    out = wide.assign(**{f"{metric}_n_from": n1.astype("int64"), f"{metric}_n_to": n2.astype("int64")})
    for name, series in ((f"{metric}_from", v1), (f"{metric}_to", v2), ("change", change),
                         ("change_ci_low", low), ("change_ci_high", high)):
        out[name] = series.where(~suppressed)
    out["significant"] = ((out["change_ci_low"] > 0) | (out["change_ci_high"] < 0)) & ~suppressed
    out["suppressed"] = suppressed
    return out.drop(columns=[c for c in out.columns if c.endswith(("_ci_low_from", "_ci_high_from",
                                                                    "_ci_low_to", "_ci_high_to"))])


def readable_trend(responses, metric="nps", period: str = "Q", min_n: int = DEFAULT_MIN_N,
                   coarser=("Y",), level: float = 0.95) -> tuple[pd.DataFrame, str]:
    """`metric` over time at the finest of `period`, then `coarser` periods, where at least half the
    periods reach `min_n` (a small location's quarters are mostly suppressed; its years may not be).
    `metric` is a name (summarize's units) or a Measure (its points). Returns the summary and the period used."""
    for candidate in (period, *coarser):
        if isinstance(metric, str):
            table, name = summarize(responses, period=candidate, metrics=metric, min_n=min_n, level=level), metric
        else:
            table = summarize_measure(responses, metric, period=candidate, min_n=min_n, level=level)
            name = metric.name
        if len(table) and table[name].notna().mean() >= 0.5:
            return table, candidate
    return table, candidate


def response_coverage(responses, period: str = "Q", min_n: int = DEFAULT_MIN_N) -> tuple[pd.DataFrame, float]:
    """Responses per location and period, as a table (locations x periods, 0 where none), and the
    share of location-periods with responses that fall below `min_n` (their numbers are suppressed)."""
    coverage = summarize(responses, by="location_id", period=period, metrics="nps", min_n=min_n)
    cells = coverage.pivot(index="location_id", columns="period", values="responses").fillna(0)
    return cells, float((coverage["responses"] < min_n).mean())


def score_missingness(responses: pd.DataFrame) -> pd.DataFrame:
    """The share of responses without each score (nps, csat, ces): columns score and 'share missing'."""
    missing = responses[list(METRICS)].isna().mean()
    return missing.rename("share missing").reset_index().rename(columns={"index": "score"})
