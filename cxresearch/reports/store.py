"""A run's store: what the reports need, reduced once from the data, read by every notebook.

`cxresearch run` validates and reduces the data once, on the configured engine, and writes the store
into the run (`analyst/store/`): the brand results (without the customer table and without the
fitted statsmodels objects, which no page shows); per location its trend, its attribute ratings
against the brand's and its most recent comments, already redacted; and the topic reports' own
tables and figures (`topic_tables`: accounting, coverage, the measure by region, format, channel
and stage, retention by group, cohorts, ...). Every report reads only the store: none opens or
validates the raw data again, and a deep dive's kernel imports neither the engines (Ibis, DuckDB,
Spark) nor statsmodels, so its cost stays flat however large the brand.

An analyst who opens a notebook in JupyterLab without a store gets one built in memory from `data`
on first use (`open_store(data=...)`), with the same numbers.

    store = cx.reports.open_store("data/sample")           # built from the data, in memory
    store.write("/tmp/store"); cx.reports.open_store(store="/tmp/store")   # read back, no data needed
    here = store.location("L0001")                         # its scorecard row, trend, attributes, comments
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxresearch.reports.results import BrandResults

__all__ = ["LocationView", "Store", "build", "open_store", "read"]

FORMAT = 5  # bump when the files change; a store of another format is rebuilt, never misread
TABLES = ("trends", "brand_trends", "gaps", "comments", "terms", "alerts", "alert_causes", "timelines")
TOPIC = "topic.pkl"  # the topic reports' tables and figures: one pickle, as their shapes vary (a wide coverage grid)


@dataclass
class LocationView:
    """What a deep dive shows about one location, from the store."""

    location_id: str
    row: pd.Series  # its scorecard row
    trend: pd.DataFrame  # its measure per period (`grain`), suppressed below min_n
    grain: str  # the period of `trend`: the report's, or a year when its quarters are too thin
    brand_trend: pd.DataFrame  # the brand's measure at the same grain
    gaps: pd.DataFrame  # its attribute ratings against the brand's (`scorecard.attribute_gaps`)
    comments: pd.DataFrame  # its most recent comments, redacted (`prose.recent_comments`)
    terms: pd.DataFrame  # the terms its customers use more than the brand's (`text.location_terms`)
    alerts: pd.DataFrame  # its alerts (`cx.alerts`), at most one
    alert_causes: pd.DataFrame  # their attributes' changes, ranked
    timeline: pd.DataFrame  # its monthly measure and ratings, when it has an alert (else empty)
    scan: pd.Series | None = None  # its best segment in the alert scan, alert or not


@dataclass
class Store:
    """The brand results, the per-location tables and the topic reports' tables of one run's data.

    `results` is None when the brand results could not be computed on these data (`facts['results_problem']`
    says why); the data-quality tables are there all the same."""

    results: BrandResults | None
    trends: pd.DataFrame
    brand_trends: pd.DataFrame
    gaps: pd.DataFrame
    comments: pd.DataFrame
    terms: pd.DataFrame
    alerts: pd.DataFrame
    alert_causes: pd.DataFrame
    timelines: pd.DataFrame  # per alerted location (and the brand, location_id "") its monthly series
    settings: dict
    tables: dict = dataclasses.field(default_factory=dict)  # name -> DataFrame (`topic_tables`)
    facts: dict = dataclasses.field(default_factory=dict)  # name -> a single figure or small dict

    def table(self, name: str) -> pd.DataFrame:
        """One of the topic reports' tables; ValueError saying why when it could not be computed on
        these data, KeyError naming the tables there are when there is no such table."""
        if name in self.facts.get("unavailable", {}):
            raise ValueError(f"{name} could not be computed on these data: {self.facts['unavailable'][name]}")
        if name not in self.tables:
            raise KeyError(f"the run store has no table {name!r}; it has {', '.join(sorted(self.tables)) or 'none'}")
        return self.tables[name]

    def location(self, location_id: str) -> LocationView:
        """One location's view; ValueError when the location is not in the data."""
        if self.results is None:
            raise ValueError(f"no brand results in this store: {self.facts.get('results_problem', 'not computed')}")
        card = self.results.scorecard
        row = card[card["location_id"] == location_id]
        if row.empty:
            raise ValueError(f"location {location_id!r} is not in the data")
        mine = self.trends[self.trends["location_id"] == location_id]
        grain = str(mine["grain"].iloc[0]) if len(mine) else self.settings["period"]
        brand = self.brand_trends[self.brand_trends["grain"] == grain]
        pick = lambda frame: frame[frame["location_id"] == location_id].drop(columns="location_id")  # noqa: E731
        return LocationView(location_id, row.iloc[0], mine.drop(columns=["location_id", "grain"]).reset_index(drop=True),
                            grain, brand.drop(columns="grain").reset_index(drop=True),
                            pick(self.gaps).reset_index(drop=True), pick(self.comments).reset_index(drop=True),
                            pick(self.terms).reset_index(drop=True), pick(self.alerts).reset_index(drop=True),
                            pick(self.alert_causes).reset_index(drop=True), pick(self.timelines).reset_index(drop=True),
                            self._scan_row(location_id))

    def _scan_row(self, location_id: str):
        scan = self.tables.get("alert_scan")
        if scan is None or location_id not in set(scan["location_id"]):
            return None
        return scan[scan["location_id"] == location_id].iloc[0]

    def write(self, folder) -> Path:
        """Write the store to `folder`: results.pkl, one Parquet file per table, store.json.

        Atomic: the files are written beside it and the folder renamed into place, so a reader sees a
        whole store or none; when another process has just written one there, that one is kept."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        (temporary / "results.pkl").write_bytes(pickle.dumps(self.results))
        for name in TABLES:
            getattr(self, name).to_parquet(temporary / f"{name}.parquet", index=False)
        (temporary / TOPIC).write_bytes(pickle.dumps({"tables": self.tables, "facts": self.facts}))
        (temporary / "store.json").write_text(json.dumps({"format": FORMAT, "settings": self.settings}, indent=2,
                                                         default=str), encoding="utf-8")
        try:
            os.rename(temporary, folder)
        except OSError:  # a store is there already (written meanwhile by another report of the run)
            shutil.rmtree(temporary, ignore_errors=True)
        return folder


def read(folder) -> Store:
    """A store written by `Store.write`; ValueError when `folder` holds none (or one of another format)."""
    folder = Path(folder)
    meta_path = folder / "store.json"
    if not meta_path.is_file():
        raise ValueError(f"{folder} holds no run store (no store.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder} holds a run store of format {meta.get('format')}, not {FORMAT}")
    results = pickle.loads((folder / "results.pkl").read_bytes())
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    topic = pickle.loads((folder / TOPIC).read_bytes())
    return Store(results=results, settings=meta["settings"], tables=topic["tables"], facts=topic["facts"], **tables)


def build(dataset, results: BrandResults | None, comments: int = 10, settings: dict | None = None,
          problem: str = "") -> Store:
    """The store of `dataset` (a Source or CXDataset) for brand results already computed on it.

    Per location: the measure per period at the report's period, or per year where fewer than half
    of its periods reach min_n (`metrics.readable_trend`, for every location in two reductions); the
    attribute gaps; and its `comments` most recent comments, redacted. Plus `topic_tables`. With
    `results` None (they could not be computed: `problem` says why) only the data-quality tables are
    built, with `settings` (period, min_n) given here.
    """
    from cxresearch.measures import metrics as mx
    from cxresearch.measures.scorecard import attribute_gaps
    from cxresearch.reports.prose import recent_comments

    language = (settings or {}).get("language") or "auto"
    settings = dict(results.settings) if results is not None else dict(settings or {})
    period, min_n = settings.setdefault("period", "Q"), settings.setdefault("min_n", mx.DEFAULT_MIN_N)
    settings["language"] = language
    tables, facts = topic_tables(dataset, results, period, min_n)
    empty = pd.DataFrame({"location_id": pd.Series(dtype="string")})
    if results is None:
        return Store(results=None, trends=empty, brand_trends=pd.DataFrame({"grain": pd.Series(dtype="string")}),
                     gaps=empty, comments=empty, terms=empty, alerts=empty, alert_causes=empty, timelines=empty,
                     settings=settings, tables=tables,
                     facts=facts | {"results_problem": problem or "the brand results were not computed"})
    m = results.measure
    trends, brand_trends = _readable_trends(mx, dataset, m, period, min_n)
    responses = dataset.responses  # one fetch, for the ratings and the comments of every location
    light = dataclasses.replace(results, customers=None, retention=_plain(results.retention),
                                survival=_plain(results.survival), revenue=_plain(results.revenue), ex=_plain(results.ex))
    voice, voice_facts, terms, said = voice_tables(dataset, m, period, min_n, settings.get("seed", 0), language)
    alert, alert_facts, per_location = alert_tables(dataset, m, settings.get("seed", 0), *said,
                                                    horizon_days=settings.get("horizon_days", 180),
                                                    min_gap_hours=settings.get("min_gap_hours", 24.0))
    return Store(results=light, trends=trends, brand_trends=brand_trends, gaps=attribute_gaps(responses),
                 comments=recent_comments(responses, None, comments, score=m.name), terms=terms if terms is not None
                 else empty, **(per_location or dict.fromkeys(("alerts", "alert_causes", "timelines"), empty)),
                 settings=settings, tables=tables | voice | alert,
                 facts=_merge_facts(_merge_facts(facts, voice_facts), alert_facts))


def alert_tables(dataset, m, seed: int = 0, comments=None, topics=None, horizon_days: int = 180,
                 min_gap_hours: float = 24.0):
    """What changed (`cx.alerts`, by month), reduced once: (tables, facts, per-location tables).

    Tables `alert_scan` (every location's best segment, alert or not), `alert_breakdown` (each alert
    within channels and journey stages), `alert_business` (purchases, revenue and customers
    who came back, in the alert's periods) and, given the comments' corpus and topics (from
    `voice_tables`), `alert_terms` (the words
    used more during each alert) and `alert_topics`; facts `alerts` (locations
    scanned, those with enough answers to test, the months, the series, the settings); per location
    `alerts`, `alert_causes` and `timelines` (the monthly series of each alerted location, and the
    brand's as location_id ""). When the scan cannot run on these data the reason is kept and the
    per-location tables are None."""

    from cxresearch.measures.alerts import alerts

    try:
        found = alerts(dataset, measure=m, seed=seed, comments=comments, topics=topics, horizon_days=horizon_days,
                       min_gap_hours=min_gap_hours)
    except (ValueError, KeyError) as exc:
        return {}, {"unavailable": {"alert_scan": str(exc)}}, None
    timelines = [found.timeline(None).assign(location_id="")]
    timelines += [found.timeline(location).assign(location_id=location) for location in found.table["location_id"]]
    facts = {"alerts": {"locations": len(found.scan), "tested": int(found.scan["z"].notna().sum()),
                        "alerts": len(found.table), "periods": list(found.periods), "series": list(found.names),
                        **found.settings}}
    per_location = {"alerts": found.table, "alert_causes": found.causes,
                    "timelines": pd.concat(timelines, ignore_index=True)}
    tables = {"alert_scan": found.scan, "alert_breakdown": found.breakdown, "alert_business": found.business,
              "alert_terms": found.terms, "alert_topics": found.topics}
    return tables, facts, per_location


def voice_tables(dataset, m, period: str, min_n: int, seed: int = 0, language: str = "auto"):
    """What the comments say (`cx.text`), reduced once: (tables, facts, per-location terms, (corpus, topics)).

    Tables `voice_topics` (one row per topic), `voice_by_period`, `voice_by_location`, and the terms of
    the bottom and the top group's comments against the rest (`voice_low_terms`, `voice_high_terms`);
    facts `voice` (comments, language, share of responses with a comment, the stability table); the
    per-location terms (`text.location_terms`); the corpus and the topics, for the alerts to say what
    the comments said during each. Without enough comments each table is unavailable with the reason,
    and the terms and the corpus and topics are None."""
    from cxresearch.measures import text

    names = ("voice_topics", "voice_by_period", "voice_by_location", "voice_low_terms", "voice_high_terms")
    try:
        built = text.corpus(dataset, language=None if language in (None, "auto") else language)
        result = text.topics(built, seed=seed, measure=m, period=period, min_n=min_n)
    except ValueError as exc:
        return {}, {"unavailable": dict.fromkeys(names, str(exc))}, None, (None, None)
    tables = {"voice_topics": result.table, "voice_by_period": result.by_period, "voice_by_location": result.by_location}
    unavailable = {}
    groups = m.group(built.docs[m.name])
    for name, label in (("voice_low_terms", m.groups[0]), ("voice_high_terms", m.groups[2])):
        try:
            tables[name] = text.distinctive_terms(built, (groups == label).fillna(False).to_numpy(bool), top=15)
        except ValueError as exc:
            unavailable[name] = str(exc)
    answered = len(dataset.responses) if hasattr(dataset, "responses") else 0
    facts = {"voice": {"comments": len(built), "language": built.language, "responses": answered,
                       "language_name": text.language_name(built.language),
                       "language_detected": language in (None, "auto"),
                       "stability": result.stability.to_dict("records"), "periods": list(result.periods),
                       "compared": list(result.compared)},
             "unavailable": unavailable}
    return tables, facts, text.location_terms(built, min_comments=min_n), (built, result)


def _merge_facts(facts: dict, more: dict) -> dict:
    """`facts` with `more`, their `unavailable` reasons joined."""
    out = facts | {k: v for k, v in more.items() if k != "unavailable"}
    out["unavailable"] = facts.get("unavailable", {}) | more.get("unavailable", {})
    return out


def topic_tables(dataset, results: BrandResults | None, period: str, min_n: int) -> tuple[dict, dict]:
    """The tables and figures the topic reports show, each reduced once from the data.

    Data quality (always): `accounting`, `rejects_by_reason`, `coverage` (responses per location and
    period) and facts `rejected`, `ignored_columns`, `small_cells`, `span`, `with_customer`,
    `with_transaction`, `missingness`. With results: the measure `by_region`, `by_format`,
    `by_channel`, `by_journey_stage`; `consistency` (ICC brand-wide and within region and format),
    `reach` (multichannel share), `stage_funnel`, `cohorts`; and from the customer table (which
    the store does not keep) `retention_rates` by the measure's group and `loyalty_tiers`."""
    from cxresearch.measures import compare, journey, retention, revenue
    from cxresearch.measures import metrics as mx

    responses = dataset.responses
    coverage, small = mx.response_coverage(dataset, period=period, min_n=min_n)
    accounting = dataset.accounting().reset_index()
    tables = {"accounting": accounting, "rejects_by_reason": dataset.rejects_by_reason(),
              "coverage": coverage, "missingness": mx.score_missingness(responses)}
    facts = {"rejected": int(accounting["rejected"].sum()), "ignored_columns": dict(dataset.ignored_columns or {}),
             "small_cells": float(small), "span": revenue.purchase_span(dataset),
             "with_customer": float(responses["customer_id"].notna().mean()) if len(responses) else float("nan"),
             "with_transaction": float(responses["transaction_id"].notna().mean()) if len(responses) else float("nan")}
    if results is None:
        return tables, facts
    m, customers, unavailable = results.measure, results.customers, {}
    reductions = {f"by_{by}": (lambda by=by: mx.summarize_measure(dataset, m, by=by, min_n=min_n))
                  for by in ("region", "format", "channel", "journey_stage")}
    reductions |= {"consistency": lambda: compare.consistency_by(dataset, groups=("region", "format"), metric=m),
                   "reach": lambda: journey.channel_reach(dataset, min_n=min_n),
                   "stage_funnel": lambda: journey.stage_funnel(responses),
                   "cohorts": lambda: retention.cohort_matrix(dataset)}
    if customers is not None:
        reductions |= {"retention_rates": lambda: retention.retention_rates(customers, by="cx_group", min_n=min_n),
                       "loyalty_tiers": lambda: retention.loyalty_tiers(customers, by=[])}
    for name, reduce in reductions.items():
        try:
            tables[name] = reduce()
        except ValueError as exc:  # e.g. too few groups for an ICC: the report that shows it says why
            unavailable[name] = str(exc)
    return tables, facts | {"unavailable": unavailable}


def open_store(data=None, mapping=None, *, store=None, horizon_days: int = 180, min_n: int = 30, period: str = "Q",
               seed: int = 0, measure: str | None = "auto", score_window_days: int = 30, min_gap_hours: float = 24,
               comments: int = 10, results: bool = True, language: str = "auto") -> Store:
    """The run's store at `store` when it holds one (a scheduled run); otherwise the store of `data`,
    built now (an analyst's session) and written to `store` if given.

    The keyword arguments are the notebooks' parameters (`language`: of the comments, an ISO 639-1
    code, or auto to detect it); a store read back carries the settings it
    was built with (`Store.settings`). With `results=False` (the data-quality report) a store whose
    brand results could not be computed is fine; otherwise that is a ValueError saying why. Also
    sets the charts' style.
    """
    import warnings

    from cxresearch.reports import plots

    warnings.filterwarnings("ignore", category=FutureWarning)
    plots.set_style()
    if store is not None and (Path(store) / "store.json").is_file():
        return _checked(read(store), results)
    if data is None:
        raise ValueError("open_store needs the data (a folder or connection string) or a folder holding a run store")
    from cxresearch.engine import connect
    from cxresearch.reports.brand import brand_results

    dataset = connect(data, mapping=mapping)
    settings = {"horizon_days": horizon_days, "min_n": min_n, "period": period, "seed": seed, "language": language}
    try:
        shared, problem = brand_results(dataset, horizon_days=horizon_days, min_n=min_n, period=period, seed=seed,
                                        measure=measure, score_window_days=score_window_days,
                                        min_gap_hours=min_gap_hours), ""
    except Exception as exc:  # noqa: BLE001  the data-quality tables do not need the results
        if results:
            raise
        shared, problem = None, str(exc)
    built = build(dataset, shared, comments=comments, settings=settings, problem=problem)
    if store is not None:
        built.write(store)
    return built


def _checked(store: Store, results: bool) -> Store:
    if results and store.results is None:
        raise ValueError(f"the brand results could not be computed on these data: {store.facts.get('results_problem')}")
    return store


def _plain(effect):
    """An effect without its fitted model object (statsmodels), which no page shows and which would
    make every reader of the store import statsmodels."""
    return dataclasses.replace(effect, model=None) if effect is not None else None


def _readable_trends(mx, dataset, measure, period: str, min_n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per location, the measure per `period`, or per year where fewer than half its periods reach
    min_n (as `metrics.readable_trend` decides for one location); and the brand's at both grains."""
    fine = mx.summarize_measure(dataset, measure, by="location_id", period=period, min_n=min_n).assign(grain=period)
    coarse = mx.summarize_measure(dataset, measure, by="location_id", period="Y", min_n=min_n).assign(grain="Y")
    readable = fine.groupby("location_id")[measure.name].apply(lambda v: v.notna().mean() >= 0.5)
    chosen = pd.concat([fine[fine["location_id"].map(readable).fillna(False).astype(bool)],
                        coarse[~coarse["location_id"].map(readable).fillna(False).astype(bool)]])
    chosen = chosen.assign(period=chosen["period"].astype(str)).sort_values(["location_id", "period"], kind="stable")
    brand = pd.concat([mx.summarize_measure(dataset, measure, period=grain, min_n=min_n).assign(grain=grain)
                       for grain in dict.fromkeys((period, "Y"))])
    return chosen.reset_index(drop=True), brand.assign(period=brand["period"].astype(str)).reset_index(drop=True)
