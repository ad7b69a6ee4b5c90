"""Words and tables for readers: numbers with their intervals, plain sentences generated from results.

Notebooks show these instead of hand-typed figures, so every number a reader sees comes from the
data of the run, with its interval and n, and suppressed cells say so instead of showing a value.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown

from cxresearch.measures.terms import redact

__all__ = ["RANGE", "actions", "brand_sentence", "effect_sentence", "esc", "flags_sentence", "how_to_read", "label",
           "location_link", "md", "measure_value", "method_note", "money", "number", "per_thousand", "recent_comments",
           "redact", "significance", "table", "with_interval"]

RANGE = "95% range"  # what leadership reads for a 95% confidence interval (the how-to-read box explains it)

CONSISTENT_ICC = 0.05  # below this share of variance between locations the brand experience counts as consistent
WEAK_DRIVERS = 0.10  # drivers explaining less of the score's variation than this point to no action


def number(value, digits: int = 0, signed: bool = False, percent: bool = False) -> str:
    """A number for a reader: thousands separators, sign if asked, '—' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "—"
    if percent:
        value = 100 * value
    text = f"{value:{'+' if signed else ''},.{digits}f}"
    return text + ("%" if percent else "")


def with_interval(value, low, high, digits: int = 0, signed: bool = False, percent: bool = False,
                  unit: str = "", n: int | None = None) -> str:
    """'+31 (95% range +25 to +37, n=412)'; 'suppressed' when the value is missing."""
    if value is None or pd.isna(value):
        return "suppressed (too few responses)"
    fmt = dict(digits=digits, signed=signed, percent=percent)
    sizes = f", n={n:,}" if n is not None else ""
    return f"{number(value, **fmt)}{unit} ({RANGE} {number(low, **fmt)} to {number(high, **fmt)}{sizes})"


def effect_sentence(effect) -> str:
    """One plain sentence for a model's headline effect, with its interval and what it rests on."""
    sizes = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in effect.n.items()
                      if k in ("customers", "locations", "location_periods"))
    tail = "%" if effect.unit == "%" else ""  # percentages carry the sign on every number
    unit = "" if tail else f" {effect.unit}"
    value = (f"{number(effect.estimate, 1, signed=True)}{tail}{unit} ({RANGE} {number(effect.ci_low, 1, signed=True)}{tail}"
             f" to {number(effect.ci_high, 1, signed=True)}{tail})")
    return f"**{effect.name}: {value}** ({sizes})."


def significance(low, high) -> str:
    """'clearly positive', 'clearly negative' or 'not distinguishable from zero' from an interval."""
    if pd.isna(low) or pd.isna(high):
        return "not estimable"
    if low > 0:
        return "clearly positive"
    if high < 0:
        return "clearly negative"
    return "not distinguishable from zero"


MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")  # (< > & are HTML-escaped instead)


def esc(value) -> str:
    """A data-derived string (a location, region or format name, a segment) made safe to put inside
    generated Markdown: HTML special characters escaped (so a name such as ``Harbour <img src=x
    onerror=alert(1)>`` shows as text and runs nothing), Markdown's own characters backslashed (so
    ``Bed_Bath_2`` does not turn italic) and line breaks folded; missing is '—'."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    text = MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))  # Markdown first: the entities below hold '#'
    return html.escape(text, quote=True)


def md(text: str) -> Markdown:
    """Show generated text as Markdown (rendered as prose in the HTML report)."""
    return Markdown(text)


def how_to_read(measure, extra: str = "") -> Markdown:
    """The short box at the top of a page: what the headline measure is and what a range means."""
    text = (f"> **How to read this report.** The headline measure is {measure.value_text}. Every figure comes with a "
            f"*{RANGE}*: given how many customers answered, the true value lies in that range 95 times out of 100, "
            "so a narrow range means a precise figure. “Beyond chance” means a difference larger than the number "
            "of answers explains, with false alarms across many locations kept to 5%. Links between experience "
            "and money are associations in past data, not guarantees." + (f" {extra}" if extra else ""))
    return Markdown(text)


def method_note(*paragraphs: str, title: str = "How this was estimated") -> HTML:
    """Method details for the analyst, collapsed under `title` so a reader sees the findings first."""
    body = "".join(f"<p>{html.escape(' '.join(str(p).split()))}</p>" for p in paragraphs if p)
    return HTML(f'<details class="cx-method"><summary>{html.escape(title)}</summary>{body}</details>')


CODE_LABELS = {"in_store": "In store", "web": "Web", "app": "App", "email": "E-mail", "sms": "SMS", "phone": "Phone",
               "anchor_channel": "Channel of the first purchase"}


def label(value) -> str:
    """A code value as a reader's label: 'in_store' -> 'In store', 'mall' -> 'Mall' (escaped; '—' if missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    text = str(value)
    text = CODE_LABELS.get(text, text.replace("_", " ")[:1].upper() + text.replace("_", " ")[1:])
    return html.escape(text, quote=True)


def location_link(name, location_id) -> str:
    """A location's name (escaped) as a link to its deep dive. The link is a placeholder the publish step
    points at the deep-dive page when the run has one, and unwraps to plain text when it has not."""
    return f'<a class="cx-location" href="#location-{html.escape(str(location_id), quote=True)}">{esc(name)}</a>'


PERIOD_NAMES = {"M": "month", "Q": "quarter", "Y": "year"}


def money(value, currency: str = "", period: str | None = None, signed: bool = False, digits: int = 0) -> str:
    """An amount with its currency and period: 'R$ 1,954 per quarter', '+€120 per month'; '—' if missing."""
    text = number(value, digits, signed=signed)
    if text == "—":
        return text
    sign, digits_text = (text[0], text[1:]) if text[0] in "+-" else ("", text)
    code = currency.strip()
    amount = f"{sign}{code}{' ' if len(code) > 1 else ''}{digits_text}" if code else text
    return amount + (f" per {PERIOD_NAMES.get(period, period)}" if period else "")


def per_thousand(count, base) -> float:
    """`count` people per 1,000 of `base` people (nan when the base is zero), for counts that are too
    small to read as whole people ('+0.5 customers')."""
    return 1000 * count / base if base else float("nan")


def table(frame: pd.DataFrame, columns: dict[str, tuple[str, object]], caption: str = "",
          html_columns: tuple[str, ...] = ()) -> HTML:
    """An HTML table of `frame` with readable headers and formats: {column: (header, formatter)}.

    `caption` (plain text, escaped) says what the table shows, for readers and screen readers alike.
    Cells are escaped, except in `html_columns`, whose formatter returns markup it has made safe
    itself (a location's name linked to its deep dive, `location_link`). Missing cells show '—' and
    true/false 'Yes'/'No'. Deterministic output (no random ids), so nbval can check it.
    """
    headers = [header for header, _ in columns.values()]
    if len(set(headers)) != len(headers):
        raise ValueError(f"table headers must be unique: {headers}")
    shown = frame[list(columns)].copy()
    shown.columns = headers
    trusted = {}  # placeholder -> markup, put back after pandas has escaped every cell

    def keep(markup: str) -> str:
        token = f"\u2063cx{len(trusted)}\u2063"
        trusted[token] = markup
        return token

    formatters = {}
    for column, (header, fmt) in columns.items():
        plain = fmt if callable(fmt) else (lambda v, f=fmt: _format(f, v))
        formatters[header] = (lambda v, p=plain: keep(p(v))) if column in html_columns else plain
    markup = shown.to_html(index=False, formatters=formatters, border=0, classes="cx-table", na_rep="—", escape=True)
    for token, value in trusted.items():
        markup = markup.replace(token, value)
    if caption:
        opening = markup.index(">", markup.index("<table")) + 1
        markup = markup[:opening] + f"\n  <caption>{esc(caption)}</caption>" + markup[opening:]
    return HTML(markup)


def _format(fmt: str, value) -> str:
    """Format a table cell; missing is '—', and a value that rounds to zero never shows as '-0'."""
    if value is None or (not isinstance(value, (str, bool, np.bool_)) and pd.isna(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "Yes" if value else "No"
    text = fmt.format(value)
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        text = ("+" if "+" in fmt else "") + text[1:]
    return text


def measure_value(measure, value, low, high, n: int | None = None) -> str:
    """The measure's value with its interval in its own units: '+31 (95% range +25 to +37, n=412)' for NPS,
    '86% (95% range 84% to 88%, n=1,203)' for a share; 'suppressed' when missing."""
    if value is None or pd.isna(value):
        return "suppressed (too few responses)"
    sizes = f", n={int(n):,}" if n is not None else ""
    return f"{measure.format(value)} ({RANGE} {measure.format(low)} to {measure.format(high)}{sizes})"


def brand_sentence(summary_row: pd.Series, measure=None) -> str:
    """The brand's headline measure with its interval, then the other scores the brand collects
    (a score it does not collect is said to be not measured, never 'suppressed')."""
    from cxresearch.measures.measure import get

    row = summary_row
    m = get(measure if measure is not None else "nps")
    parts = {
        "nps": lambda: f"NPS (likelihood to recommend) is **{with_interval(row['nps'], row['nps_ci_low'], row['nps_ci_high'], signed=True, n=int(row['nps_n']))}**",  # noqa: E501
        "csat": lambda: f"satisfaction (share answering 4–5 of 5) is **{with_interval(row['csat'], row['csat_ci_low'], row['csat_ci_high'], percent=True, n=int(row['csat_n']))}**",  # noqa: E501
        "ces": lambda: f"customer effort averages **{with_interval(row['ces'], row['ces_ci_low'], row['ces_ci_high'], digits=2, n=int(row['ces_n']))}** on 1–7 (higher is easier)",  # noqa: E501
    }
    measured = [name for name in ("nps", "csat", "ces") if row.get(f"{name}_n", 0) > 0]
    order = [m.name] + [name for name in measured if name != m.name]
    text = "; ".join(parts[name]() for name in order if name in measured)
    absent = [{"nps": "likelihood to recommend", "csat": "satisfaction", "ces": "customer effort"}[n]
              for n in ("nps", "csat", "ces") if n not in measured]
    text = f"Brand-wide, {text}." if text else "No score was collected."
    if absent:
        text += f" Not measured by this brand: {', '.join(absent)}."
    return f"The headline measure of this report is **{m.title}**. " + text


def flags_sentence(scorecard: pd.DataFrame, measure=None) -> str:
    """How many locations were compared and flagged, how many chance alone would flag, and what the
    ranges beside the verdicts are."""
    from cxresearch.measures.measure import get

    m = get(measure if measure is not None else scorecard.attrs.get("measure", "nps"))
    compared = int((scorecard["funnel_flag"] != "too few").sum())
    few = int(len(scorecard) - compared)
    flagged = int(scorecard["funnel_flag"].isin(["above", "below"]).sum())
    level = scorecard["verdict_level"].dropna()
    level_text = f"{level.iloc[0]:.1%}".replace(".0%", "%") if len(level) else "95%"
    brand = scorecard["brand_value"].dropna()
    brand_text = m.format(brand.iloc[0]) if len(brand) else "—"
    return (f"{compared:,} locations with at least the minimum number of responses are compared with the brand's "
            f"{m.label} of {brand_text}" + (f" ({few:,} with fewer are not)" if few else "") + ". Comparing that many "
            f"at once, about {0.05 * compared:,.0f} would look different at the usual 95% by chance alone, so a "
            f"location is called above or below the brand only when its range, widened to {level_text} for the number "
            f"of comparisons, lies wholly above or below it (a false-discovery rate of 5%): **{flagged:,}** "
            f"location{'s' if flagged != 1 else ''} {'are' if flagged != 1 else 'is'} so.")


def actions(scorecard: pd.DataFrame, retention=None, revenue=None, drivers: pd.DataFrame | None = None,
            consistency: pd.Series | None = None, limit: int = 5, measure=None) -> list[str]:
    """Three to five actions in plain words, each derived from a number in this run."""
    from cxresearch.measures.measure import get

    m = get(measure if measure is not None else scorecard.attrs.get("measure", "nps"))
    out = []
    below = scorecard[scorecard["funnel_flag"] == "below"]
    if len(below):
        names = ", ".join(map(esc, below.sort_values("shrunk")["name"].fillna(below["location_id"]).head(5)))
        out.append(f"Visit the {len(below)} location(s) whose {m.label} is below the brand beyond chance ({names}): "
                   "start with their lowest-rated attributes in the deep-dive reports.")
    bright = scorecard[scorecard["funnel_flag"] == "above"]
    if len(bright):  # second, so the cap on the number of actions never hides them
        names = ", ".join(map(esc, bright.sort_values("shrunk", ascending=False)["name"].fillna(bright["location_id"]).head(3)))
        out.append(f"Learn from the bright spots ({names}): their {m.label} is above the brand beyond chance; "
                   "their deep dives show what their customers rate high.")
    if drivers is not None and len(drivers):
        top, r2 = drivers.iloc[0], drivers.attrs.get("r2", float("nan"))
        name = esc(top["driver"].replace("attr_", "").replace("_", " "))
        if not r2 >= WEAK_DRIVERS:
            out.append(f"Ask customers what matters to them: the data hold no strong driver of {m.label} (what they "
                       f"have, such as {', '.join(map(esc, drivers['driver'].str.replace('attr_', '').str.replace('_', ' ')))}, "
                       f"explains only {number(r2, percent=True)} of its variation); add a few attribute questions "
                       "(delivery, product, service) to the survey.")
        else:
            out.append(f"Look first at **{name}**: it accounts for {number(top['importance'], percent=True)} of the "
                       f"explained variation in {m.label} ({RANGE} {number(top['ci_low'], percent=True)} to "
                       f"{number(top['ci_high'], percent=True)}; the drivers together explain {number(r2, percent=True)}).")
    if retention is not None and retention.ci_low > 0:
        base = retention.extra.get("base_rate") if retention.extra else None
        scale = f"; overall {number(base, 1, percent=True)} of customers come back" if base is not None else ""
        out.append(f"Treat {m.people(0)} as a retention risk: {m.people(2)} come back "
                   f"{number(retention.estimate, 1)} percentage points more often "
                   f"({RANGE} {number(retention.ci_low, 1)} to {number(retention.ci_high, 1)}{scale}); follow up "
                   f"with {m.people(0)} within a week.")
    if revenue is not None:
        verdict = significance(revenue.ci_low, revenue.ci_high)
        if verdict == "clearly positive":
            out.append(f"Count {m.label} in location targets: within a location, +10 points go with "
                       f"{number(revenue.estimate, 1, signed=True)}% revenue the next period "
                       f"({RANGE} {number(revenue.ci_low, 1, signed=True)}% to {number(revenue.ci_high, 1, signed=True)}%).")
        else:
            out.append("Collect more responses per location before tying targets to revenue: the revenue link "
                       f"is {verdict} with today's survey volume "
                       f"({RANGE} {number(revenue.ci_low, 1, signed=True)}% to {number(revenue.ci_high, 1, signed=True)}%).")
    if consistency is not None and pd.notna(consistency.get("icc")):
        share = (f"{number(consistency['icc'], 1, percent=True)} of the variation in {m.label} lies between locations "
                 f"({RANGE} {number(consistency['ci_low'], 1, percent=True)} to "
                 f"{number(consistency['ci_high'], 1, percent=True)})")
        if consistency["ci_low"] > CONSISTENT_ICC:
            out.append(f"Standardize the experience: {share}; share what the best locations do.")
        else:
            out.append(f"Work on brand-wide drivers rather than single locations: {share}, so the experience is "
                       "consistent across locations and most variation is between customers within a location.")
    return out[:limit]


def recent_comments(responses: pd.DataFrame, location_id: str | None, n: int = 5, score: str = "nps") -> pd.DataFrame:
    """A location's `n` most recent comments, redacted (`redact`, with every customer id of the
    responses), with their date, channel and `score` (the brand's measure): no customer identifier
    is carried. With `location_id` None, every location's `n` most recent, with a location_id column
    (what a run's store keeps)."""
    mine = responses[responses["comment"].notna()]
    if location_id is not None:
        mine = mine[mine["location_id"] == location_id]
    order = mine.assign(_at=mine["responded_at"]).sort_values(["location_id", "_at"], ascending=[True, False],
                                                                kind="stable")
    recent = order.groupby("location_id", sort=False).head(n)
    ids = set(responses["customer_id"].dropna().astype(str))
    out = pd.DataFrame({"location_id": recent["location_id"], "date": recent["responded_at"].dt.strftime("%d %b %Y"),
                        "channel": recent["channel"], "score": recent[score],
                        "comment": recent["comment"].map(lambda text: redact(text, ids))}).reset_index(drop=True)
    return out if location_id is None else out.drop(columns="location_id")
