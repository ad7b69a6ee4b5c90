"""Charts in one house style: business-language titles and axis labels, intervals always drawn.

Each function takes the library's result tables and returns the matplotlib Axes, seaborn-style, so
a notebook can adjust it before `plt.show()`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler

from cxresearch.measures.measure import get

__all__ = ["among_peers", "by_group", "by_location", "cohort_heatmap", "coverage_heatmap", "describe", "drivers_chart",
           "estimates_compared", "funnel_plot", "metric_over_time", "nps_by_location", "retention_by_group", "set_style",
           "alert_timeline", "stage_funnel", "topic_gaps"]

FLAG_COLOURS = {"above": "#1b7837", "within": "#8c8c8c", "below": "#c51b7d"}
BRAND = "#2b5d8a"
MIN_FONT = 11  # no text on a chart smaller than this (points at the house figure size)


# seaborn's "whitegrid" style in its "notebook" context, written out so that a report's kernel does not
# import seaborn (and with it scipy and statsmodels, about 2.5 s) unless it draws a heatmap
HOUSE_STYLE = {
    "axes.axisbelow": True, "axes.edgecolor": ".8", "axes.grid": True, "axes.labelcolor": ".15", "axes.linewidth": 1.25,
    "axes.prop_cycle": cycler(color=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                                     "#8c8c8c", "#ccb974", "#64b5cd"]),
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "font.size": 12.0, "grid.color": ".8", "grid.linewidth": 1.0, "legend.title_fontsize": 12.0,
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True, "text.color": ".15",
    "xtick.bottom": False, "xtick.color": ".15", "xtick.major.size": 6.0, "xtick.major.width": 1.25,
    "xtick.minor.size": 4.0, "xtick.minor.width": 1.0, "ytick.color": ".15", "ytick.left": False,
    "ytick.major.size": 6.0, "ytick.major.width": 1.25, "ytick.minor.size": 4.0, "ytick.minor.width": 1.0,
    # the house's own sizes
    "figure.figsize": (9, 4.5), "figure.dpi": 100, "axes.titleweight": "bold", "axes.titlesize": 13,
    "axes.labelsize": 12, "xtick.labelsize": MIN_FONT, "ytick.labelsize": MIN_FONT, "legend.fontsize": MIN_FONT,
}


def set_style() -> None:
    """The house style: clean white grid, readable fonts, a fixed figure size and resolution."""
    plt.rcParams.update(HOUSE_STYLE)


def describe(ax, finding: str):
    """Store the chart's finding in words on `ax` (``ax.cx_finding``): the published page's alt text
    states it after the title (`publish.chart_alt`), so a reader who cannot see the chart gets its point."""
    ax.cx_finding = finding
    return ax


def _fit(ax, values, measure, axis: str = "y", least: float = 0.2) -> None:
    """An axis range that fits the data (not the whole scale), at least `least` of the measure's scale
    wide so that small moves do not look dramatic, and never past the scale's ends."""
    values = pd.Series(np.asarray(values, dtype=float)).dropna()
    if values.empty:
        return
    low_bound, high_bound = measure.bounds
    low, high = float(values.min()), float(values.max())
    pad = max((high - low) * 0.08, 1e-9)
    low, high = low - pad, high + pad
    span = least * (high_bound - low_bound)
    if high - low < span:
        middle = (high + low) / 2
        low, high = middle - span / 2, middle + span / 2
    low, high = max(low, low_bound), min(high, high_bound)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(low, high)


def _axes(ax, height: float | None = None):
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=(9, height) if height else None)
    return ax


def _measure(frame: pd.DataFrame, measure):
    return get(measure if measure is not None else frame.attrs.get("measure", "nps"))


def by_location(scorecard: pd.DataFrame, top: int | None = None, ax=None, measure=None, at_most: int = 60):
    """Each compared location's value with the range its verdict rests on (`compare.verdicts`), coloured
    by the verdict, against the brand: a range wholly right of the brand line is green, wholly left
    pink, so the chart and the verdict agree. Locations without enough responses are left out.

    Beyond `at_most` locations the chart shows the lowest and highest `at_most / 2` each, with a line
    saying how many lie between (a chart of 1,000 rows is neither readable nor light; the scorecard
    table lists them all); the title and the description count every location."""
    m = _measure(scorecard, measure)
    everyone = scorecard[scorecard["funnel_flag"] != "too few"].dropna(subset=["value"]).sort_values("value")
    if top is not None:
        everyone = everyone.tail(top)
    left_out = max(0, len(everyone) - at_most)
    data = pd.concat([everyone.head(at_most // 2), everyone.tail(at_most - at_most // 2)]) if left_out else everyone
    ax = _axes(ax, height=max(3, 0.26 * len(data) + 1.2))
    y = np.arange(len(data))
    colours = data["funnel_flag"].map(FLAG_COLOURS).fillna("#8c8c8c")
    ax.hlines(y, data["verdict_ci_low"], data["verdict_ci_high"], color=colours, linewidth=2)
    ax.scatter(data["value"], y, color=colours, zorder=3, s=18)
    if len(data):
        ax.axvline(data["brand_value"].iloc[0], color=BRAND, linestyle="--", linewidth=1, label=f"brand {m.label}")
        ax.legend(loc="lower right")
    ax.set_yticks(y, data["name"].fillna(data["location_id"]), fontsize=MIN_FONT - 1 if len(data) > 40 else MIN_FONT)
    if left_out:
        ax.axhline(at_most // 2 - 0.5, color="#8c8c8c", linewidth=0.8, linestyle=":")
        ax.annotate(f"{left_out:,} locations in between, listed in the table", (0.02, at_most // 2 - 0.5),
                    xycoords=("axes fraction", "data"), va="center", fontsize=MIN_FONT, color="#555555",
                    backgroundcolor="white")
    level = f"{data['verdict_level'].iloc[0]:.1%}".replace(".0%", "%") if len(data) else "95%"
    data = everyone  # the counts and the description are about every location compared
    above, below = int((data["funnel_flag"] == "above").sum()), int((data["funnel_flag"] == "below").sum())
    colours_said = ", ".join(part for part, count in (("green above", above), ("pink below", below)) if count)
    ax.set(xlabel=f"{m.short()} with its {level} range (widened for the number of locations compared)", ylabel="",
           title=f"{m.label} by location" + (f": {colours_said} the brand beyond chance" if colours_said else
                                             ": none differs from the brand beyond chance")
           + (f"\n(the lowest and highest {at_most // 2} of {len(everyone):,} shown)" if left_out else ""))
    if len(data):
        names = data["name"].fillna(data["location_id"]).astype(str)
        describe(ax, f"{len(data):,} locations compared with the brand's {m.format(data['brand_value'].iloc[0])}: "
                     f"{above} above and {below} below it beyond chance. Highest {names.iloc[-1]} "
                     f"({m.format(data['value'].iloc[-1])}), lowest {names.iloc[0]} ({m.format(data['value'].iloc[0])}).")
    return ax


def nps_by_location(scorecard: pd.DataFrame, top: int | None = None, ax=None):
    """`by_location` for an NPS scorecard (kept for analysts' code)."""
    return by_location(scorecard, top, ax, "nps")


def funnel_plot(scorecard: pd.DataFrame, ax=None, measure=None, label_at_most: int = 8):
    """Each location's value of the measure as answered against its number of answers, inside 95% and
    99.8% funnel limits.

    The limits allow for the normal spread between locations as well as survey noise, so they are wider
    than the ranges on the scorecard: a point outside them is unusual even for a location of its size
    (the second signal beside the verdicts). Points outside the 95% limits are coloured and the
    `label_at_most` farthest are named."""
    from cxresearch.measures import compare  # (scipy: only this chart needs the funnel's curve)

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
    signal = data["funnel_flag_95"] if "funnel_flag_95" in data else pd.Series("within", index=data.index)
    colours = signal.map(FLAG_COLOURS).fillna("#8c8c8c")
    ax.scatter(data["value_n"], data["raw"], c=colours, s=22, zorder=3)
    outside = data[signal.isin(["above", "below"])]
    farthest = outside.assign(_far=(outside["raw"] - first["funnel_brand_value"]).abs()).nlargest(label_at_most, "_far")
    for i, row in enumerate(farthest.itertuples()):  # name the unusual locations, alternating sides
        ax.annotate(str(row.name if isinstance(row.name, str) else row.location_id), (row.value_n, row.raw),
                    xytext=(5, 4 if i % 2 == 0 else -12), textcoords="offset points", fontsize=MIN_FONT - 1,
                    color=FLAG_COLOURS.get(getattr(row, "funnel_flag_95", "within"), "#1f2328"))
    _fit(ax, pd.concat([data["raw"], pd.Series([first["funnel_brand_value"]])]), m, least=0.3)
    ax.set(xlabel="answers at the location", ylabel=f"{m.label} (as answered)",
           title="Unusual for their size: locations against the brand's funnel limits")
    ax.legend(loc="lower right")
    beyond = int(((data["raw"] > data["upper_998"]) | (data["raw"] < data["lower_998"])).sum()) if "upper_998" in data else 0
    named = ", ".join(str(n) for n in farthest["name"].fillna(farthest["location_id"]))
    describe(ax, f"{len(data)} locations against funnel limits around the brand's {m.format(first['funnel_brand_value'])} "
                 f"that allow for the normal spread between locations: {len(outside)} outside the 95% limits"
                 + (f" ({named})" if named else "") + f", {beyond} outside the 99.8% limits.")
    return ax


def metric_over_time(summary: pd.DataFrame, metric: str = "nps", label: str = "NPS", ax=None, brand=None,
                     name: str = "Brand", measure=None):
    """A metric per period with its 95% interval as a band (suppressed periods are gaps).

    `brand` (the brand's own per-period summary) adds the brand's line for comparison, so a
    location's trend is read against the brand's. With `measure` the y-axis fits the data but spans
    at least a fifth of the measure's scale, so that small moves do not look dramatic.
    """
    ax = _axes(ax)
    x = summary["period"].astype(str)
    ax.fill_between(x, summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"], color=BRAND, alpha=0.2,
                    label="95% range")
    ax.plot(x, summary[metric], marker="o", color=BRAND, label=f"{name} {label}" if brand is not None else label)
    shown = [summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"]]
    if brand is not None:
        line = brand[brand["period"].astype(str).isin(set(x))]
        ax.plot(line["period"].astype(str), line[metric], linestyle="--", color="#555555", marker=".",
                label=f"brand {label}")
        shown.append(line[metric])
    if measure is not None:
        _fit(ax, pd.concat(shown), get(measure))
    ax.set(xlabel="period", ylabel=label, title=f"{name} {label} over time")
    ax.legend(loc="best")
    values = summary.dropna(subset=[metric])
    if len(values):
        fmt = get(measure).format if measure is not None else (lambda v: f"{v:.1f}")
        first, last = values.iloc[0], values.iloc[-1]
        describe(ax, f"{name} {label} was {fmt(first[metric])} in {first['period']} and {fmt(last[metric])} in "
                     f"{last['period']} (95% range {fmt(last[f'{metric}_ci_low'])} to {fmt(last[f'{metric}_ci_high'])}).")
    return ax


def by_group(summary: pd.DataFrame, group: str, measure, ax=None, brand_value: float | None = None,
             what: str = "region"):
    """The measure per group (a region, a format, a channel) with its 95% interval, against the brand.

    `summary` is `metrics.summarize_measure(responses, measure, by=group)`; suppressed groups are left out.
    """
    m = get(measure)
    data = summary.dropna(subset=[m.name]).sort_values(m.name)
    ax = _axes(ax, height=max(2.5, 0.45 * len(data) + 1.2))
    labels = data[group].astype(str).str.replace("_", " ")
    y = np.arange(len(data))
    ax.hlines(y, data[f"{m.name}_ci_low"], data[f"{m.name}_ci_high"], color=BRAND, linewidth=3)
    ax.scatter(data[m.name], y, color=BRAND, zorder=3, s=30)
    if brand_value is not None and pd.notna(brand_value):
        ax.axvline(brand_value, color="#555555", linestyle="--", linewidth=1, label=f"brand {m.label}")
        ax.legend(loc="lower right")
    ax.set_yticks(y, labels)
    _fit(ax, pd.concat([data[f"{m.name}_ci_low"], data[f"{m.name}_ci_high"]]), m, axis="x")
    ax.set(xlabel=f"{m.short()} with its 95% range", ylabel="", title=f"{m.label} by {what}")
    if len(data):
        describe(ax, f"{m.label} by {what}: highest {labels.iloc[-1]} ({m.format(data[m.name].iloc[-1])}, "
                     f"n={int(data[f'{m.name}_n'].iloc[-1]):,}), lowest {labels.iloc[0]} "
                     f"({m.format(data[m.name].iloc[0])}, n={int(data[f'{m.name}_n'].iloc[0]):,}).")
    return ax


def among_peers(scorecard: pd.DataFrame, location_id: str, ax=None, measure=None):
    """One location among all compared locations: every location's value as a grey dot, this one
    highlighted with the range its verdict rests on, and the brand line."""
    m = _measure(scorecard, measure)
    data = scorecard[scorecard["funnel_flag"] != "too few"].dropna(subset=["value"])
    ax = _axes(ax, height=2.4)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(data))  # seeded: the same picture every run
    ax.scatter(data["value"], jitter, color="#b0b0b0", s=18, label="other locations")
    me = scorecard[scorecard["location_id"] == location_id]
    name = str(me["name"].iloc[0]) if len(me) else str(location_id)
    if len(data):
        ax.axvline(data["brand_value"].iloc[0], color=BRAND, linestyle="--", linewidth=1, label=f"brand {m.label}")
    if len(me) and pd.notna(me["value"].iloc[0]):
        row = me.iloc[0]
        colour = {"above": FLAG_COLOURS["above"], "below": FLAG_COLOURS["below"]}.get(row["funnel_flag"], "#1f2328")
        if pd.notna(row.get("verdict_ci_low")):
            ax.hlines(0, row["verdict_ci_low"], row["verdict_ci_high"], color=colour, linewidth=3)
        ax.scatter([row["value"]], [0], color=colour, s=90, zorder=4, edgecolor="black", label=name)
        higher = int((data["value"] > row["value"]).sum())
        describe(ax, f"{name}: {m.format(row['value'])} among {len(data)} compared locations; {higher} score higher; "
                     f"the brand is {m.format(row['brand_value'])}.")
    _fit(ax, pd.concat([data["value"], me.get("verdict_ci_low", pd.Series(dtype=float)),
                        me.get("verdict_ci_high", pd.Series(dtype=float))]), m, axis="x")
    ax.set_yticks([])
    ax.set_ylim(-0.6, 0.6)
    ax.set(xlabel=f"{m.short()}", title=f"{name} among the brand's locations")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, frameon=False)
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
           title=f"Retention by {m.label} group (95% ranges)")
    if len(data):
        describe(ax, "; ".join(f"{g}: {100 * r:.1f}% bought again" for g, r in zip(x, data["rate"])) + ".")
    return ax


def cohort_heatmap(matrix: pd.DataFrame, max_periods: int = 12, ax=None):
    """Share of each monthly cohort buying in each month since their first purchase."""
    ax = _axes(ax, height=5)
    shares = matrix.drop(columns="customers").iloc[:, 1:max_periods + 1] * 100
    shares.index = shares.index.astype(str)
    import seaborn as sns

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
    ax.set(xlabel=f"% of the explained variation in {label}", ylabel="", title=f"What drives {label} (95% ranges)")
    if len(data):
        describe(ax, f"Strongest driver of {label}: {labels.iloc[-1]} ({100 * data['importance'].iloc[-1]:.0f}% of the "
                     f"explained variation); weakest: {labels.iloc[0]} ({100 * data['importance'].iloc[0]:.0f}%).")
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
    import seaborn as sns

    ax = sns.heatmap(cells, cmap="Blues", cbar_kws={"label": "responses"}, yticklabels=False, ax=ax)
    ax.set(xlabel="period", ylabel=f"locations ({len(cells)})", title="Survey responses per location and period")
    return ax


def topic_gaps(topics: pd.DataFrame, ax=None, measure=None):
    """What comments talk about and how those customers score: per topic (`cx.text.topics(...).table`),
    the brand's measure among its comments minus the other comments', with its 95% range; the label
    says the topic's share of comments. Topics below the line come with worse scores."""
    m = get(measure)
    data = topics.dropna(subset=["gap"]).sort_values("gap")
    ax = _axes(ax, height=max(2.5, 0.5 * len(data) + 1.3))
    y = np.arange(len(data))
    colours = np.where(data["gap_high"] < 0, FLAG_COLOURS["below"], np.where(data["gap_low"] > 0, FLAG_COLOURS["above"],
                                                                             FLAG_COLOURS["within"]))
    ax.hlines(y, data["gap_low"], data["gap_high"], color=colours, linewidth=3)
    ax.scatter(data["gap"], y, color=colours, zorder=3, s=30)
    ax.axvline(0, color="#555555", linestyle="--", linewidth=1)
    labels = [f"{label} ({100 * share:.0f}% of comments)" for label, share in zip(data["label"], data["share"])]
    ax.set_yticks(y, labels)
    ax.set(xlabel=f"{m.label} of these comments minus the others', points (95% range)", ylabel="",
           title=f"What comments talk about, and the {m.label} that comes with it")
    if len(data):
        describe(ax, f"Topics of comments by their {m.label} gap: lowest {data['label'].iloc[0]} "
                     f"({data['gap'].iloc[0]:+.0f} points), highest {data['label'].iloc[-1]} ({data['gap'].iloc[-1]:+.0f}).")
    return ax


def alert_timeline(timeline: pd.DataFrame, alert, brand: pd.DataFrame | None = None, ax=None, measure=None,
                   name: str = ""):
    """One alert: the location's measure per month (`AlertsResult.timeline`), the brand's beside it,
    and the alert's months shaded; with the attribute that moved most on a second axis."""
    m = get(measure)
    ax = _axes(ax)
    x = np.arange(len(timeline))
    labels = timeline["period"].astype(str).tolist()
    ax.plot(x, timeline["value"], color=BRAND, marker="o", linewidth=1.5, label=name or "this location")
    if brand is not None and len(brand) == len(timeline):
        ax.plot(x, brand["value"], color="#555555", linestyle="--", linewidth=1, label=f"brand {m.label}")
    start = labels.index(alert["start_period"]) if alert["start_period"] in labels else 0
    end = len(labels) - 1 if alert["end_period"] == "ongoing" else labels.index(alert["end_period"])
    ax.axvspan(start - 0.5, end + 0.5, color=FLAG_COLOURS["below"] if alert["change"] < 0 else FLAG_COLOURS["above"],
               alpha=0.12, label="the alert's months")
    cause = alert.get("cause") or ""
    if cause and cause in timeline:
        other = ax.twinx()
        values = timeline[cause].astype(float)
        other.plot(x, values, color="#b35806", linewidth=1.2, marker=".", label=f"{cause} rating (1-5)")
        if values.notna().any():
            pad = 0.1 * max(values.max() - values.min(), 0.5)
            other.set_ylim(values.min() - pad, values.max() + pad)
        other.set_ylabel(f"{cause} rating, mean (1-5)")
        other.legend(loc="lower right")
    step = max(1, len(labels) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=45, ha="right")
    ax.set(ylabel=f"{m.label} per month", xlabel="month", title=f"{name or alert['location_id']}: what changed, and when")
    ax.legend(loc="lower left")
    describe(ax, f"{m.label} per month at {name or alert['location_id']} with the alert's months "
                 f"{alert['start_period']} to {alert['end_period']} shaded; change {alert['change']:+.0f} points.")
    return ax
