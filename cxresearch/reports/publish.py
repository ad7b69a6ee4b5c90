"""What leadership opens: each report as a lean, self-contained page, and the run's index.

A run's folder (see `cxresearch.reports.runner`):

    index.html            the index: topic reports by title, then the location pages by region
    html/report.css       the one stylesheet of every page (written once per run)
    html/<report>.html    one page per report, code hidden
    manifest.json         the run's record
    analyst/notebooks/    the executed notebooks, code and all
    analyst/kernels.log   what the kernels wrote to stderr

A page is nbconvert's lab rendering through the `cxreport` template (templates/cxreport/): the
outputs and prose of the notebook without the lab template's inline stylesheet, require.js, MathJax
or web fonts, so opening a page fetches nothing (a Content-Security-Policy says so to the browser
too: no script runs, images come from the page itself). `render_page` then tidies nbconvert's
markup: the title from the page's first headings, a header linking back to the index, tables in a
box that scrolls sideways on a phone, chart images with alt text, no script or event handler.

Chart alt text: a notebook's own (image metadata `alt`, as `IPython.display.Image(alt=...)` or
`display(fig, metadata={"image/png": {"alt": ...}})` give) is kept. The runner's kernels describe
every matplotlib figure they display by its titles (`describe_charts`, run at kernel start by the
`kernel_arguments`), and a chart left without any alt text gets one naming the section it is in.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ANALYST", "PAGES", "STYLESHEET", "TEMPLATE", "Page", "chart_alt", "describe_charts", "index_html",
           "kernel_arguments", "link_locations", "location_summaries", "render_page", "write_stylesheet"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "cxreport"  # templates/cxreport: index.html.j2 (the page), conf.json, report.css
STYLESHEET = "report.css"
PAGES = "html"  # the pages' folder in a run, beside index.html
ANALYST = "analyst"  # the executed notebooks and kernels.log, for analysts; the index does not link them
SITE = "Customer-experience reports"
NBCONVERT_ALT = "No description has been provided for this image"  # what nbconvert writes when an image has none
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
VERDICTS = {"above": ("Above the brand", "above"), "within": ("In line with the brand", "within"),
            "below": ("Below the brand", "below"), "too few": ("Too few responses to compare", "few")}
CSP = ("default-src 'none'; img-src data:; style-src 'self' file: 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")


@dataclass(frozen=True)
class Page:
    """A rendered report: where its HTML is and its title."""

    path: Path
    title: str


# --- the pages --------------------------------------------------------------------------------------

def write_stylesheet(folder) -> Path:
    """Write the pages' shared stylesheet into `folder` (a run's html/ folder).

    Parameters
    ----------
    folder : str or Path
        The folder of the pages; created if missing.

    Returns
    -------
    Path
        `folder/report.css`, written atomically, and only when missing or different (parallel
        workers may each call this).
    """
    folder = Path(folder)
    target = folder / STYLESHEET
    css = (TEMPLATES / TEMPLATE / STYLESHEET).read_text(encoding="utf-8")
    if target.is_file() and target.read_text(encoding="utf-8") == css:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{STYLESHEET}.{os.getpid()}.tmp")
    temporary.write_text(css, encoding="utf-8")
    temporary.replace(target)
    return target


def render_page(notebook, target, subtitle: bool = False, index: str = "../index.html", error: str = "") -> Page:
    """Render an executed notebook as a page for leadership: outputs and prose, no code.

    Parameters
    ----------
    notebook : str or Path
        The executed notebook (.ipynb).
    target : str or Path
        The page to write; its folder gets the shared stylesheet (`write_stylesheet`) if it has none.
    subtitle : bool
        Whether the page's first h2 belongs in its title: a fan-out page names what it is about
        there (a deep dive's location), so its title is "<first h1> — <first h2>".
    index : str
        The index's address relative to the page (the header and footer link to it).
    error : str
        Why the notebook failed, if it did: said at the top of the page, above what it showed.

    Returns
    -------
    Page
        The page's path and title.
    """
    import nbformat
    from bs4 import BeautifulSoup

    notebook, target = Path(notebook), Path(target)
    fallback = _pretty(notebook.stem)
    body, _ = _exporter().from_notebook_node(nbformat.read(notebook, as_version=4),
                                          resources={"cx": {"title": fallback, "index": index, "stylesheet": STYLESHEET}})
    soup = BeautifulSoup(body, "html.parser")
    main = soup.find("main")
    _drop_scripts(main)
    _drop_empty_cells(main)
    title = _title(main, subtitle) or fallback
    soup.title.string = title
    soup.find(class_="cx-current").string = title
    if error:
        main.insert(0, _alert(soup, error))
    _describe_images(main)
    _tables(soup, main)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not (target.parent / STYLESHEET).is_file():
        write_stylesheet(target.parent)
    target.write_text(str(soup), encoding="utf-8")
    return Page(target, title)


@functools.cache
def _exporter():
    """The page exporter, made once per process: making one compiles its templates, which took as
    long as rendering a deep dive's page (nbconvert's exporters convert any number of notebooks)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True, exclude_anchor_links=True)
    exporter.log.setLevel(logging.ERROR)  # (it warns about every image without alt text; `_describe_images` gives one)
    return exporter


LOCATION_LINK = re.compile(r'<a class="cx-location" href="#location-([^"]*)">(.*?)</a>', re.S)


def link_locations(folder, pages: dict[str, str]) -> int:
    """Point every location name a report links (`prose.location_link`) at that location's page.

    Parameters
    ----------
    folder : str or Path
        The run's folder of pages (`PAGES`).
    pages : dict
        location_id -> the file name of its deep dive in that folder. A location without one (too
        few responses, not fanned out) keeps its name as plain text: a page never links nowhere.

    Returns
    -------
    int
        How many links now point at a page.
    """
    targets = {html.escape(str(k), quote=True): html.escape(str(v), quote=True) for k, v in pages.items()}
    linked = 0

    def replace(match) -> str:
        nonlocal linked
        target = targets.get(match.group(1))
        if target is None:
            return match.group(2)
        linked += 1
        return f'<a class="cx-location" href="{target}">{match.group(2)}</a>'

    for page in sorted(Path(folder).glob("*.html")):
        text = page.read_text(encoding="utf-8")
        if 'class="cx-location"' in text:
            page.write_text(LOCATION_LINK.sub(replace, text), encoding="utf-8")
    return linked


def _text(tag) -> str:
    return " ".join(tag.get_text(" ").split()) if tag is not None else ""


def _pretty(name: str) -> str:
    """A report's name as words, for when its page has no heading: '00_executive_summary' -> 'Executive summary'."""
    words = re.sub(r"^\d+[_-]+", "", name).replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def _title(main, subtitle: bool) -> str:
    parts = [_text(main.find("h1"))]
    if subtitle:
        parts.append(_text(main.find("h2")))
    return " — ".join(p for p in parts if p)


def _drop_scripts(main) -> None:
    """No script, event handler or javascript: address in a page (the CSP forbids them anyway), and no
    image from anywhere but the page itself (it could not load: a page fetches nothing)."""
    for tag in main.find_all(["script", "iframe", "object", "embed", "base", "form", "link", "meta"]):
        tag.decompose()
    for tag in main.find_all(["img", "source", "video", "audio", "input"]):
        if tag.name != "img" or not str(tag.get("src", "")).startswith("data:"):
            tag.decompose()
    for tag in main.find_all(True):
        for name in list(tag.attrs):
            value = tag.attrs[name]
            if name.lower().startswith("on"):
                del tag.attrs[name]
            elif isinstance(value, str) and re.match(r"\s*(javascript|vbscript):", value, re.I):
                del tag.attrs[name]


def _drop_empty_cells(main) -> None:
    """Less of nbconvert's markup: code cells without output, the collapsers (empty), papermill's own
    red error banner (the page says so in its alert instead), cells left empty and the tab stop on
    every output."""
    for tag in main.select(".celltag_papermill-error-cell-tag"):
        (tag.find_parent(class_="jp-Cell") or tag).decompose()
    for tag in main.select(".jp-mod-noOutputs, .jp-Collapser"):
        tag.decompose()
    for cell in main.select(".jp-Cell"):  # what is left empty (an output the page does not show, such as a traceback)
        if not cell.get_text(strip=True) and cell.find(["img", "svg", "table", "iframe"]) is None:
            cell.decompose()
    for tag in main.find_all(attrs={"tabindex": True}):
        del tag.attrs["tabindex"]
    for tag in main.find_all(attrs={"data-mime-type": True}):
        del tag.attrs["data-mime-type"]
    for span in main.select("pre span[style]"):  # a terminal's colours (ansi2html) are too faint on white
        del span.attrs["style"]


def _alert(soup, error: str):
    box = soup.new_tag("div", attrs={"class": "cx-alert"})
    first = soup.new_tag("p")
    strong = soup.new_tag("strong")
    strong.string = "This report did not finish."
    first.append(strong)
    first.append(f" {error}")
    second = soup.new_tag("p")
    second.string = "What it showed before it stopped is below; the run's analysts have its executed notebook."
    box.extend([first, second])
    return box


def _section(tag) -> str:
    heading = tag.find_previous(["h2", "h3", "h4", "h1"])
    return _text(heading)


def _describe_images(main) -> None:
    """Every image keeps the alt text its output carries ("" marks a decorative one); one with none, or
    with nbconvert's stand-in, is named after the section it is in."""
    for img in main.find_all("img"):
        alt = img.get("alt")
        if alt is None or alt.strip() == NBCONVERT_ALT:
            section = _section(img)
            img["alt"] = f"Chart in the section “{section}”" if section else "Chart"


def _tables(soup, main) -> None:
    """Each table in a box that scrolls sideways (focusable and named, so a keyboard can scroll it);
    header cells get a scope, and an empty one (a pandas index's corner) becomes a data cell."""
    for number, table in enumerate(main.find_all("table"), start=1):
        table.attrs.pop("border", None)
        for th in table.find_all("th"):
            if not _text(th):
                th.name = "td"
                continue
            if "scope" not in th.attrs:
                th["scope"] = "col" if th.find_parent("thead") is not None else "row"
        if "cx-scroll" in (table.parent.get("class") or []):
            continue
        caption = _text(table.find("caption"))
        section = _section(table)
        label = caption or (f"Table {number}: {section}" if section else f"Table {number}")
        table.wrap(soup.new_tag("div", attrs={"class": "cx-scroll", "tabindex": "0", "role": "group",
                                              "aria-label": label}))


# --- chart alt text from the kernels -----------------------------------------------------------------

def kernel_arguments() -> list[str]:
    """Command-line arguments for a report's kernel: run `describe_charts` when it starts.

    Returns
    -------
    list of str
        For `papermill.execute_notebook(..., extra_arguments=...)` (nbclient passes them to the
        kernel). A kernel that cannot import this module runs on, without chart descriptions.
    """
    return ["--IPKernelApp.exec_lines=__import__('cxresearch.reports.publish', fromlist=['x']).describe_charts()"]


def describe_charts() -> bool:
    """In an IPython kernel: every matplotlib figure displayed from now on carries alt text, its titles.

    The figure's image output gets metadata ``{"image/png": {"alt": "Chart: <titles>"}}`` unless
    the display already gives that image an alt text (`display(fig, metadata=...)` replaces it).

    Returns
    -------
    bool
        Whether the kernel's display formatter now describes figures (False outside IPython).
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatter = shell.display_formatter
    if getattr(formatter.format, "describes_charts", False):
        return True
    plain = formatter.format

    def format(obj, include=None, exclude=None):  # noqa: A001 - DisplayFormatter.format's own name
        data, metadata = plain(obj, include=include, exclude=exclude)
        if any(mime in data for mime in IMAGE_TYPES):
            try:
                alt = chart_alt(obj)
            except Exception:  # noqa: BLE001 - a description must never break a display
                alt = None
            if alt:
                metadata = dict(metadata or {})
                for mime in IMAGE_TYPES:
                    if mime in data:
                        entry = dict(metadata.get(mime) or {})
                        entry.setdefault("alt", alt)
                        metadata[mime] = entry
        return data, metadata

    format.describes_charts = True
    formatter.format = format
    return True


def chart_alt(figure) -> str | None:
    """Alt text for a matplotlib figure: its suptitle and axes titles, else its axes' labels, then the
    finding each chart states (`plots.describe` stores it on the axes as ``cx_finding``).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure (anything else gives None).

    Returns
    -------
    str or None
        "Chart: <title>; <title>", or None when the figure has no title or label to tell.
    """
    if not (hasattr(figure, "get_axes") and hasattr(figure, "savefig")):
        return None
    titles = []

    def add(text):
        text = " ".join(str(text or "").split())
        if text and text not in titles:
            titles.append(text)

    suptitle = getattr(figure, "_suptitle", None)  # (matplotlib has no public getter before 3.10)
    if suptitle is not None:
        add(suptitle.get_text())
    axes = figure.get_axes()
    for ax in axes:
        for where in ("left", "center", "right"):
            add(ax.get_title(where))
    if not titles:
        for ax in axes:
            y, x = ax.get_ylabel().strip(), ax.get_xlabel().strip()
            if x or y:
                add(f"{y} by {x}" if x and y else x or y)
    findings = [" ".join(str(ax.cx_finding).split()) for ax in axes if getattr(ax, "cx_finding", None)]
    if not titles and not findings:
        return None
    return f"Chart: {'; '.join(titles)}." + "".join(f" {text}" for text in findings) if titles else " ".join(findings)


# --- the index ----------------------------------------------------------------------------------------

def location_summaries(table, measure=None) -> dict[str, dict]:
    """What the index says about each location, as text ready to print (not yet escaped).

    Parameters
    ----------
    table : pandas.DataFrame
        `BrandResults.scorecard` (location_id, name, region, format, value, value_ci_low,
        value_ci_high, value_n, funnel_flag); or, when the scorecard could not be computed, the
        locations table (location_id, name, region, format), whose locations then show no value.
    measure : Measure, optional
        The brand's measure, to format the values ('+31', '86%'); None shows no values.

    Returns
    -------
    dict
        location_id -> {name, region, format, value, interval, n, verdict, verdict_class}.
    """
    summaries = {}
    for row in table.to_dict("records"):
        location = str(row.get("location_id"))
        flag = row.get("funnel_flag") if measure is not None else None
        verdict, kind = VERDICTS.get(flag, ("", "")) if isinstance(flag, str) else ("", "")
        # the range the verdict rests on (compare.verdicts), so a range wholly above or below the brand is
        # exactly a location called above or below; a plain 95% interval where there is none
        low_col, high_col = (("verdict_ci_low", "verdict_ci_high") if "verdict_ci_low" in row
                             else ("value_ci_low", "value_ci_high"))
        value, low, high, n = (_number(row.get(c)) for c in ("value", low_col, high_col, "value_n"))
        shown = measure is not None and math.isfinite(value)
        summaries[location] = {
            "name": _words(row.get("name")) or location, "region": _words(row.get("region")),
            "format": _words(row.get("format")),
            "value": measure.format(value) if shown else "—",
            "interval": (f"{measure.format(low)} to {measure.format(high)}"
                         if shown and math.isfinite(low) and math.isfinite(high) else "—"),
            "n": f"{int(n):,}" if math.isfinite(n) else "—", "verdict": verdict, "verdict_class": kind}
    return summaries


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _words(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        if value != value:  # pandas' NA and NaT
            return ""
    except (TypeError, ValueError):
        return ""
    return " ".join(str(value).split())


def index_html(manifest: dict, locations: dict | None = None, measure_label: str = "") -> str:
    """The run's index page: status, the topic reports by title, the location pages by region.

    Parameters
    ----------
    manifest : dict
        The run's manifest (`runner._manifest`): run_id, created_utc, package_version, data and
        notebooks, each with name, group, status, error, html, title and parameters.
    locations : dict, optional
        `location_summaries` of the run's locations; a fan-out page whose `location_id` is among
        them is listed under its region with its value, interval and verdict.
    measure_label : str
        The measure's short name for the value column ('NPS', 'CSAT').

    Returns
    -------
    str
        The HTML, every data-derived string escaped. It links the pages, not the executed
        notebooks or the kernels' log (those are for analysts, in the run's analyst folder).
    """
    e = _escape
    locations = locations or {}
    jobs = manifest["notebooks"]
    topics = [j for j in jobs if j.get("group", "topic") == "topic"]
    fanned = [j for j in jobs if j.get("group", "topic") != "topic"]
    ok = sum(j["status"] == "ok" for j in jobs)
    failed = [j for j in jobs if j["status"] != "ok"]
    parts = [f"<h1>{SITE}</h1>",
             f'<p class="cx-run">Run {e(manifest["run_id"])}, {e(manifest.get("created_utc", ""))}; data '
             f'{e(Path(str(manifest.get("data", ""))).name)}; cxresearch {e(manifest.get("package_version", ""))}. '
             f"<strong>{ok} of {len(jobs)} reports ok.</strong></p>"]
    if failed:
        items = "".join(f"<li>{_link(j)}: {e(j['error'] or 'failed')}</li>" for j in failed)
        parts.append(f'<div class="cx-alert"><p><strong>{len(failed)} of {len(jobs)} reports failed</strong>; the '
                     f"others are complete.</p><ul>{items}</ul></div>")
    if topics:
        first = topics[0]
        start = f"<p>Start with {_link(first)}.</p>" if first.get("html") else ""
        items = "".join(f"<li>{_link(j)}{_failure(j)}</li>" for j in topics)
        parts.append(f'<section aria-labelledby="topics"><h2 id="topics">Topic reports</h2>{start}'
                     f'<ul class="cx-reports">{items}</ul></section>')
    groups: dict[str, list] = {}
    for job in fanned:
        groups.setdefault(job["group"], []).append(job)
    for number, (group, members) in enumerate(groups.items(), start=1):
        parts.append(_fan_out_section(number, group, members, locations, measure_label))
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>{SITE}, run {e(manifest["run_id"])}</title>
<link rel="stylesheet" href="{PAGES}/{STYLESHEET}">
</head>
<body class="cx-index">
<a class="cx-skip" href="#reports">Skip to the reports</a>
<header class="cx-header"><nav aria-label="Breadcrumb"><ol class="cx-crumbs">
<li><a href="index.html" aria-current="page">{SITE}</a></li></ol></nav></header>
<main id="reports">
{body}
</main>
<footer class="cx-footer"><p>For analysts: the run's record is manifest.json in this folder; the executed notebooks and
the kernels' log are in its {ANALYST} folder.</p></footer>
</body>
</html>
"""


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _label(job: dict) -> str:
    return job.get("title") or _pretty(job["name"])


def _link(job: dict, label: str | None = None) -> str:
    text = _escape(label if label is not None else _label(job))
    return f'<a href="{_escape(job["html"])}">{text}</a>' if job.get("html") else text


def _failure(job: dict) -> str:
    if job["status"] == "ok":
        return ""
    reason = f'<span class="cx-error">{_escape(job["error"])}</span>' if job.get("error") else ""
    return f' <span class="cx-status-failed">(failed)</span>{reason}'


def _fan_out_section(number: int, group: str, jobs: list[dict], locations: dict, measure_label: str) -> str:
    """One fan-out's pages: by region when they are about locations, else a list by title."""
    e = _escape
    titled = next((j["title"] for j in jobs if j.get("title")), "")
    kind = titled.split(" — ")[0] if titled else _pretty(group)
    anchor = f"fan-{number}"
    by_region: dict[str, list] = {}
    others = []
    for job in jobs:
        location = str((job.get("parameters") or {}).get("location_id", ""))
        if location and location in locations:
            by_region.setdefault(locations[location]["region"] or "No region", []).append((locations[location], job))
        elif location:
            by_region.setdefault("Not in the scorecard", []).append(({"name": location, "region": "", "format": "",
                                                                      "value": "—", "interval": "—", "n": "—",
                                                                      "verdict": "", "verdict_class": ""}, job))
        else:
            others.append(job)
    parts = [f'<section aria-labelledby="{anchor}"><h2 id="{anchor}">{e(kind)}: one page per '
             f'{"location" if by_region else "report"}</h2>']
    if by_region:
        label = e(measure_label or "Value")
        parts.append(f"<p>Each location's {label} with its range and number of responses, and whether it is above "
                     "or below the brand by more than chance explains (the scorecard's verdict). The range is widened "
                     "for the number of locations compared, so a location is called above or below exactly when its "
                     "range lies wholly above or below the brand.</p>")
    for index, region in enumerate(sorted(by_region, key=lambda r: (r in ("No region", "Not in the scorecard"), r.lower())),
                                   start=1):
        rows = []
        for place, job in sorted(by_region[region], key=lambda pair: (pair[0]["name"].lower(), pair[1]["name"])):
            verdict = (f'<span class="cx-verdict-{e(place["verdict_class"])}">{e(place["verdict"])}</span>'
                       if place["verdict"] else "—")
            rows.append(f'<tr><th scope="row">{_link(job, place["name"])}{_failure(job)}</th><td>{e(place["format"])}</td>'
                        f'<td>{e(place["value"])}</td><td>{e(place["interval"])}</td><td>{e(place["n"])}</td>'
                        f"<td>{verdict}</td></tr>")
        heading = f"{anchor}-region-{index}"
        parts.append(f'<h3 id="{heading}">{e(region)}</h3>'
                     f'<div class="cx-scroll" tabindex="0" role="group" aria-labelledby="{heading}">'
                     f'<table><thead><tr><th scope="col">Location</th><th scope="col">Format</th>'
                     f'<th scope="col">{e(measure_label or "Value")}</th><th scope="col">Range</th>'
                     f'<th scope="col">Responses</th><th scope="col">Versus the brand</th></tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table></div>')
    if others:
        items = "".join(f"<li>{_link(j)}{_failure(j)}</li>" for j in sorted(others, key=lambda j: _label(j).lower()))
        parts.append(f'<ul class="cx-reports">{items}</ul>')
    parts.append("</section>")
    return "".join(parts)
