"""Words and tables for readers: numbers with their intervals, plain sentences generated from results.

Notebooks show these instead of hand-typed figures, so every number a reader sees comes from the
data of the run, with its interval and n, and suppressed cells say so instead of showing a value.
"""

from __future__ import annotations

import math
import re

import pandas as pd
from IPython.display import HTML, Markdown

__all__ = ["actions", "brand_sentence", "effect_sentence", "md", "number", "recent_comments", "redact",
           "significance", "table", "with_interval"]

CONSISTENT_ICC = 0.05  # below this share of variance between locations the brand experience counts as consistent


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
    """'+31 (95% CI +25 to +37, n=412)'; 'suppressed' when the value is missing."""
    if value is None or pd.isna(value):
        return "suppressed (too few responses)"
    fmt = dict(digits=digits, signed=signed, percent=percent)
    sizes = f", n={n:,}" if n is not None else ""
    return f"{number(value, **fmt)}{unit} (95% CI {number(low, **fmt)} to {number(high, **fmt)}{sizes})"


def effect_sentence(effect) -> str:
    """One plain sentence for a model's headline effect, with its interval and what it rests on."""
    sizes = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in effect.n.items()
                      if k in ("customers", "locations", "location_periods"))
    tail = "%" if effect.unit == "%" else ""  # percentages carry the sign on every number
    unit = "" if tail else f" {effect.unit}"
    value = (f"{number(effect.estimate, 1, signed=True)}{tail}{unit} (95% CI {number(effect.ci_low, 1, signed=True)}{tail}"
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


def md(text: str) -> Markdown:
    """Show generated text as Markdown (rendered as prose in the HTML report)."""
    return Markdown(text)


def table(frame: pd.DataFrame, columns: dict[str, tuple[str, object]]) -> HTML:
    """An HTML table of `frame` with readable headers and formats: {column: (header, formatter)}.

    Deterministic output (no random ids), so nbval can check it.
    """
    headers = [header for header, _ in columns.values()]
    if len(set(headers)) != len(headers):
        raise ValueError(f"table headers must be unique: {headers}")
    shown = frame[list(columns)].copy()
    shown.columns = headers
    formatters = {header: (fmt if callable(fmt) else (lambda v, f=fmt: _format(f, v)))
                  for header, fmt in columns.values()}
    html = shown.to_html(index=False, formatters=formatters, border=0, classes="cx-table", na_rep="—", escape=True)
    return HTML(html)


def _format(fmt: str, value) -> str:
    """Format a table cell; missing is '—', and a value that rounds to zero never shows as '-0'."""
    if pd.isna(value):
        return "—"
    text = fmt.format(value)
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        text = ("+" if "+" in fmt else "") + text[1:]
    return text


def brand_sentence(summary_row: pd.Series) -> str:
    """The brand's NPS, CSAT and CES with intervals in one sentence."""
    row = summary_row
    nps = with_interval(row["nps"], row["nps_ci_low"], row["nps_ci_high"], signed=True, n=int(row["nps_n"]))
    csat = with_interval(row["csat"], row["csat_ci_low"], row["csat_ci_high"], percent=True)
    ces = with_interval(row["ces"], row["ces_ci_low"], row["ces_ci_high"], digits=2)
    return (f"Brand NPS is **{nps}**; CSAT (share satisfied, 4–5 of 5) is **{csat}**; "
            f"customer effort averages **{ces}** on 1–7 (higher is easier).")


def actions(scorecard: pd.DataFrame, retention=None, revenue=None, drivers: pd.DataFrame | None = None,
            consistency: pd.Series | None = None, limit: int = 5) -> list[str]:
    """Three to five actions in plain words, each derived from a number in this run."""
    out = []
    below = scorecard[scorecard["funnel_flag"] == "below"]
    if len(below):
        names = ", ".join(below.sort_values("nps_shrunk")["name"].fillna(below["location_id"]).head(5))
        out.append(f"Visit the {len(below)} location(s) whose NPS is below the brand beyond chance ({names}): "
                   "start with their lowest-rated attributes in the deep-dive reports.")
    if drivers is not None and len(drivers):
        top = drivers.iloc[0]
        out.append(f"Invest first in **{top['driver'].replace('attr_', '').replace('_', ' ')}**: it accounts for "
                   f"{number(top['importance'], percent=True)} of the explained variation in NPS "
                   f"(95% CI {number(top['ci_low'], percent=True)} to {number(top['ci_high'], percent=True)}).")
    if retention is not None and retention.ci_low > 0:
        out.append(f"Treat detractors as a retention risk: promoters come back "
                   f"{number(retention.estimate, 1)} percentage points more often "
                   f"(95% CI {number(retention.ci_low, 1)} to {number(retention.ci_high, 1)}); follow up with "
                   "every detractor within a week.")
    if revenue is not None:
        verdict = significance(revenue.ci_low, revenue.ci_high)
        if verdict == "clearly positive":
            out.append(f"Count NPS in location targets: within a location, +10 NPS points go with "
                       f"{number(revenue.estimate, 1, signed=True)}% revenue the next period "
                       f"(95% CI {number(revenue.ci_low, 1, signed=True)}% to {number(revenue.ci_high, 1, signed=True)}%).")
        else:
            out.append("Collect more responses per location before tying targets to revenue: the revenue link "
                       f"is {verdict} with today's survey volume "
                       f"(95% CI {number(revenue.ci_low, 1, signed=True)}% to {number(revenue.ci_high, 1, signed=True)}%).")
    if consistency is not None and pd.notna(consistency.get("icc")):
        share = (f"{number(consistency['icc'], 1, percent=True)} of the variation in NPS lies between locations "
                 f"(95% CI {number(consistency['ci_low'], 1, percent=True)} to "
                 f"{number(consistency['ci_high'], 1, percent=True)})")
        if consistency["ci_low"] > CONSISTENT_ICC:
            out.append(f"Standardize the experience: {share}; share what the best locations do.")
        else:
            out.append(f"Work on brand-wide drivers rather than single stores: {share}, so the experience is "
                       "consistent across locations and most variation is between customers within a location.")
    bright = scorecard[scorecard["funnel_flag"] == "above"]
    if len(bright) and len(out) < limit:
        names = ", ".join(bright.sort_values("nps_shrunk", ascending=False)["name"].fillna(bright["location_id"]).head(3))
        out.append(f"Learn from the bright spots ({names}): their NPS is above the brand beyond chance.")
    return out[:limit]


# e-mail addresses and phone numbers: what a comment must not carry into a report
PERSONAL_DATA = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d\s()-]{6,}\d")


def redact(text: str) -> str:
    """`text` with e-mail addresses and phone numbers replaced by [removed]."""
    return PERSONAL_DATA.sub("[removed]", text)


def recent_comments(responses: pd.DataFrame, location_id: str, n: int = 5) -> pd.DataFrame:
    """A location's `n` most recent comments, redacted, with their date, channel and NPS: no
    customer identifier is carried."""
    mine = responses[(responses["location_id"] == location_id) & responses["comment"].notna()]
    recent = mine.sort_values("responded_at", ascending=False).head(n)
    return pd.DataFrame({"date": recent["responded_at"].dt.strftime("%d %b %Y"), "channel": recent["channel"],
                         "nps": recent["nps"], "comment": recent["comment"].map(redact)})
