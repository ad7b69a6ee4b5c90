"""A run's store: what the reports need, reduced once from the data, read by every notebook.

`cxresearch run` validates and reduces the data once, on the configured engine, and writes the store
into the run (`analyst/store/`): the brand results (without the customer table and without the
fitted statsmodels objects, which no page shows), and per location its trend, its attribute ratings
against the brand's and its most recent comments, already redacted. A location deep dive reads only
the store: it never opens or validates the raw data, and its kernel imports neither the engines
(Ibis, DuckDB, Spark) nor statsmodels, so its cost stays flat however large the brand.

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

FORMAT = 1  # bump when the files change; a store of another format is rebuilt, never misread
TABLES = ("trends", "brand_trends", "gaps", "comments")


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


@dataclass
class Store:
    """The brand results and the per-location tables of one run's data and settings."""

    results: BrandResults
    trends: pd.DataFrame
    brand_trends: pd.DataFrame
    gaps: pd.DataFrame
    comments: pd.DataFrame
    settings: dict

    def location(self, location_id: str) -> LocationView:
        """One location's view; ValueError when the location is not in the data."""
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
                            pick(self.gaps).reset_index(drop=True), pick(self.comments).reset_index(drop=True))

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
    return Store(results=results, settings=meta["settings"], **tables)


def build(dataset, results: BrandResults, comments: int = 10) -> Store:
    """The store of `dataset` (a Source or CXDataset) for brand results already computed on it.

    Per location: the measure per period at the report's period, or per year where fewer than half
    of its periods reach min_n (`metrics.readable_trend`, for every location in two reductions); the
    attribute gaps; and its `comments` most recent comments, redacted.
    """
    from cxresearch.measures import metrics as mx
    from cxresearch.measures.scorecard import attribute_gaps
    from cxresearch.reports.prose import recent_comments

    m, settings = results.measure, dict(results.settings)
    period, min_n = settings["period"], settings["min_n"]
    trends, brand_trends = _readable_trends(mx, dataset, m, period, min_n)
    responses = dataset.responses  # one fetch, for the ratings and the comments of every location
    light = dataclasses.replace(results, customers=None, retention=_plain(results.retention),
                                survival=_plain(results.survival), revenue=_plain(results.revenue), ex=_plain(results.ex))
    return Store(results=light, trends=trends, brand_trends=brand_trends, gaps=attribute_gaps(responses),
                 comments=recent_comments(responses, None, comments, score=m.name), settings=settings)


def open_store(data=None, mapping=None, *, store=None, horizon_days: int = 180, min_n: int = 30, period: str = "Q",
               seed: int = 0, measure: str | None = "auto", score_window_days: int = 30, min_gap_hours: float = 24,
               comments: int = 10) -> Store:
    """The run's store at `store` when it holds one (a scheduled run); otherwise the store of `data`,
    built now (an analyst's session) and written to `store` if given.

    The keyword arguments are the notebooks' parameters; a store read back carries the settings it
    was built with (`Store.settings`). Also sets the charts' style.
    """
    import warnings

    from cxresearch.reports import plots

    warnings.filterwarnings("ignore", category=FutureWarning)
    plots.set_style()
    if store is not None and (Path(store) / "store.json").is_file():
        return read(store)
    if data is None:
        raise ValueError("open_store needs the data (a folder or connection string) or a folder holding a run store")
    from cxresearch.engine import connect
    from cxresearch.reports.brand import brand_results

    dataset = connect(data, mapping=mapping)
    results = brand_results(dataset, horizon_days=horizon_days, min_n=min_n, period=period, seed=seed,
                            measure=measure, score_window_days=score_window_days, min_gap_hours=min_gap_hours)
    built = build(dataset, results, comments=comments)
    if store is not None:
        built.write(store)
    return built


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
