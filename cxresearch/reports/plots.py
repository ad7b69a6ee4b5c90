"""Charts in one house style: business-language titles and axis labels, intervals always drawn.

Each function takes the library's result tables and returns the matplotlib Axes, seaborn-style, so
a notebook can adjust it before `plt.show()`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from cxresearch.measures import compare
from cxresearch.measures.measure import get

__all__ = ["by_location", "cohort_heatmap", "coverage_heatmap", "drivers_chart", "estimates_compared", "funnel_plot",
           "metric_over_time", "nps_by_location", "retention_by_group", "set_style", "stage_funnel"]

FLAG_COLOURS = {"above": "#1b7837", "within": "#8c8c8c", "below": "#c51b7d"}
BRAND = "#2b5d8a"


def set_style() -> None:
    """The house style: clean white grid, readable fonts, a fixed figure size and resolution."""
    sns.set_theme(style="whitegrid", context="notebook", rc={"figure.figsize": (9, 4.5), "figure.dpi": 100,
                                                               "axes.titleweight": "bold", "axes.titlesize": 13})


def _axes(ax, height: float | None = None):
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=(9, height) if height else None)
    return ax


def _measure(frame: pd.DataFrame, measure):
    return get(measure if measure is not None else frame.attrs.get("measure", "nps"))


def by_location(scorecard: pd.DataFrame, top: int | None = None, ax=None, measure=None):
    """Each compared location's value with the range its verdict rests on (`compare.verdicts`), coloured
    by the verdict, against the brand: a range wholly right of the brand line is green, wholly left
    pink, so the chart and the verdict agree. Locations without enough responses are left out."""
    m = _measure(scorecard, measure)
    data = scorecard[scorecard["funnel_flag"] != "too few"].dropna(subset=["value"]).sort_values("value")
    if top is not None:
        data = data.tail(top)
    ax = _axes(ax, height=max(3, 0.18 * len(data) + 1))
    y = np.arange(len(data))
    colours = data["funnel_flag"].map(FLAG_COLOURS).fillna("#8c8c8c")
    ax.hlines(y, data["verdict_ci_low"], data["verdict_ci_high"], color=colours, linewidth=2)
    ax.scatter(data["value"], y, color=colours, zorder=3, s=18)
    if len(data):
        ax.axvline(data["brand_value"].iloc[0], color=BRAND, linestyle="--", linewidth=1, label=f"brand {m.label}")
        ax.legend(loc="lower right")
    ax.set_yticks(y, data["name"].fillna(data["location_id"]), fontsize=7)
    level = f"{data['verdict_level'].iloc[0]:.1%}" if len(data) else "95%"
    ax.set(xlabel=f"{m.short()} with its {level} range (widened for the number of locations compared)", ylabel="",
           title=f"{m.label} by location: green above, pink below the brand beyond chance")
    return ax


def nps_by_location(scorecard: pd.DataFrame, top: int | None = None, ax=None):
    """`by_location` for an NPS scorecard (kept for analysts' code)."""
    return by_location(scorecard, top, ax, "nps")


def funnel_plot(scorecard: pd.DataFrame, ax=None, measure=None):
    """Each location's raw value of the measure against its number of answers, inside 95% and 99.8%
    funnel limits."""
    m = _measure(scorecard, measure)
    ax = _axes(ax)
    data = scorecard.dropna(subset=["raw"])
    first = data.iloc[0]
    curve = compare.funnel_curve(first["funnel_brand_value"], first["funnel_sd"], first["funnel_tau"],
                                 data["value_n"].max() * 1.05, metric=m)
    for name, style in (("95", "--"), ("998", ":")):
        ax.plot(curve["n"], curve[f"lower_{name}"], style, color="#555555", linewidth=1,
                label=f"{'95%' if name == '95' else '99.8%'} limits")
        ax.plot(curve["n"], curve[f"upper_{name}"], style, color="#555555", linewidth=1)
    ax.axhline(first["funnel_brand_value"], color=BRAND, linewidth=1, label=f"brand {m.label}")
    colours = data["funnel_flag"].map(FLAG_COLOURS).fillna("#8c8c8c")
    ax.scatter(data["value_n"], data["raw"], c=colours, s=22, zorder=3)
    ax.set(xlabel="answers at the location", ylabel=f"{m.label} (raw)",
           title="Funnel plot: how far each location is from the brand, for its number of answers")
    ax.legend(loc="lower right")
    return ax


def metric_over_time(summary: pd.DataFrame, metric: str = "nps", label: str = "NPS", ax=None):
    """A metric per period with its 95% interval as a band (suppressed periods are gaps)."""
    ax = _axes(ax)
    x = summary["period"].astype(str)
    ax.fill_between(x, summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"], color=BRAND, alpha=0.2,
                    label="95% interval")
    ax.plot(x, summary[metric], marker="o", color=BRAND, label=label)
    ax.set(xlabel="period", ylabel=label, title=f"Brand {label} over time")
    ax.legend(loc="best")
    return ax


def retention_by_group(rates: pd.DataFrame, group: str = "cx_group", ax=None, measure=None):
    """Retention rate per group of the measure (bottom, middle, top) with Wilson intervals."""
    m = get(measure if measure is not None else "nps")
    ax = _axes(ax)
    data = rates.dropna(subset=["rate", group])
    x = list(data[group].astype(str))
    colours = dict(zip(m.groups, ("#c51b7d", "#8c8c8c", "#1b7837")))
    ax.bar(x, 100 * data["rate"], color=[colours.get(g, BRAND) for g in x])
    ax.errorbar(x, 100 * data["rate"], yerr=[100 * (data["rate"] - data["ci_low"]), 100 * (data["ci_high"] - data["rate"])],
                fmt="none", color="black", capsize=6)
    ax.set(xlabel=f"{m.label} group at the first purchase", ylabel="% buying again within the horizon",
           title=f"Retention by {m.label} group (95% intervals)")
    return ax


def cohort_heatmap(matrix: pd.DataFrame, max_periods: int = 12, ax=None):
    """Share of each monthly cohort buying in each month since their first purchase."""
    ax = _axes(ax, height=5)
    shares = matrix.drop(columns="customers").iloc[:, 1:max_periods + 1] * 100
    shares.index = shares.index.astype(str)
    sns.heatmap(shares, ax=ax, cmap="Blues", cbar_kws={"label": "% of cohort buying"}, vmin=0)
    ax.set(xlabel="months since first purchase", ylabel="cohort (month of first purchase)",
           title="Cohorts: who comes back, month by month")
    return ax


def drivers_chart(drivers: pd.DataFrame, ax=None, label: str = "NPS"):
    """Importance of each driver (share of explained variance in `label`) with its bootstrap interval."""
    ax = _axes(ax)
    data = drivers.sort_values("importance")
    labels = data["driver"].str.replace("attr_", "", regex=False).str.replace("_", " ")
    ax.barh(labels, 100 * data["importance"], color=BRAND)
    ax.errorbar(100 * data["importance"], labels, xerr=[100 * (data["importance"] - data["ci_low"]),
                                                         100 * (data["ci_high"] - data["importance"])],
                fmt="none", color="black", capsize=4)
    ax.set(xlabel=f"% of the explained variation in {label}", ylabel="", title=f"What drives {label} (95% intervals)")
    return ax


def stage_funnel(funnel: pd.DataFrame, ax=None):
    """Customers reaching each 5A stage (aware -> advocate)."""
    ax = _axes(ax)
    ax.bar(funnel["stage"].astype(str), funnel["customers"], color=BRAND)
    ax.set(xlabel="journey stage (Kotler's 5A)", ylabel="customers reaching the stage",
           title="The customer journey: how far customers go")
    return ax


def estimates_compared(details: pd.DataFrame, truth_label: str = "pct_per_10", ax=None, label: str = "NPS"):
    """Naive vs within-location estimates side by side, to show what confounding does."""
    ax = _axes(ax, height=3)
    ax.barh(details["estimate"], details[truth_label], color=[BRAND, "#8c8c8c", "#d9a441"][: len(details)])
    ax.set(xlabel=f"% revenue change per +10 {label} points", ylabel="", title="Same data, different designs")
    return ax


def coverage_heatmap(cells: pd.DataFrame, ax=None):
    """Responses per location (rows) and period (columns), from `metrics.response_coverage`."""
    ax = sns.heatmap(cells, cmap="Blues", cbar_kws={"label": "responses"}, yticklabels=False, ax=ax)
    ax.set(xlabel="period", ylabel=f"locations ({len(cells)})", title="Survey responses per location and period")
    return ax
