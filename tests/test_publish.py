"""What leadership opens, without running a notebook: a page is lean, self-contained, titled and safe
with hostile data; the index lists the reports by title and the locations by region, escaped; the
template ships with the package."""

from __future__ import annotations

import base64
import io
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from cxresearch.measures.measure import MEASURES
from cxresearch.reports import publish

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "Harbour <img src=x onerror=alert(1)>"


def png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def display(data: dict, metadata=None):
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata or {})


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """An executed notebook as papermill leaves it: code, prose and outputs, hostile data in them."""
    image = png()
    table = pd.DataFrame({"Responses": [12, 30]}, index=pd.Index(["A", "B"])).to_html()  # an empty corner header
    cells = [nbformat.v4.new_markdown_cell("# Location deep dive\n\nOne location against its peers."),
             nbformat.v4.new_code_cell("import cxresearch as cx\nlocation_id = 'L0001'", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("report = cx.reports.open_report()", outputs=[
                 display({"text/markdown": f"## {HOSTILE}\n\nScores of {HOSTILE}."})]),
             nbformat.v4.new_code_cell("plt.show()", outputs=[display({"image/png": image, "text/plain": "<Figure>"})]),
             nbformat.v4.new_code_cell("show(fig)", outputs=[
                 display({"image/png": image}, {"image/png": {"alt": "The notebook's own description"}})]),
             nbformat.v4.new_code_cell("table", outputs=[
                 display({"text/html": table + '<script>alert("x")</script><a href="javascript:alert(1)">here</a>'})]),
             nbformat.v4.new_code_cell("print('done')", outputs=[nbformat.v4.new_output("stream", text="done\n")])]
    notebook = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path_factory.mktemp("executed") / "10_location_deep_dive-L0001.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def rendered(executed, tmp_path_factory):
    target = tmp_path_factory.mktemp("run") / "html" / "10_location_deep_dive-L0001.html"
    return publish.render_page(executed, target, subtitle=True)


def test_a_page_fetches_nothing_and_shares_one_stylesheet(rendered):
    text = rendered.path.read_text()
    soup = BeautifulSoup(text, "html.parser")
    assert soup.find("html")["lang"] == "en"
    assert not soup.find_all("script") and "://" not in text.replace("data:image/png;base64,", "")
    assert "mathjax" not in text.lower() and "require" not in text.lower() and "@font-face" not in text
    assert [link["href"] for link in soup.find_all("link")] == ["report.css"]
    assert (rendered.path.parent / "report.css").is_file() and not soup.find_all("style")
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
    assert "default-src 'none'" in csp and "img-src data:" in csp
    assert len(text) < 30_000  # the two small charts are most of it


def test_a_page_has_landmarks_a_title_and_a_way_back(rendered):
    soup = BeautifulSoup(rendered.path.read_text(), "html.parser")
    assert rendered.title == "Location deep dive — Harbour"  # first h1 — first h2, as text
    assert soup.title.string == rendered.title
    assert soup.find("header").find("a")["href"] == "../index.html"
    assert soup.find("nav") is not None and len(soup.find_all("main")) == 1
    assert soup.find(attrs={"aria-current": "page"}).get_text() == rendered.title
    text = soup.find("main").get_text()
    assert "import cxresearch" not in text and "open_report" not in text and "done" in text


def test_hostile_data_in_a_page_is_inert(rendered):
    text = rendered.path.read_text()
    soup = BeautifulSoup(text, "html.parser")
    assert "onerror" not in text.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert not soup.find_all("img", src="x")  # (the notebook let it through as markup; the page drops it)
    assert not [t for t in soup.find_all(True) if any(a.startswith("on") for a in t.attrs)]
    assert "javascript:" not in text and "<script" not in text


def test_charts_keep_their_alt_text_or_get_a_better_one_than_nbconverts(rendered):
    soup = BeautifulSoup(rendered.path.read_text(), "html.parser")
    alts = [img["alt"] for img in soup.find("main").find_all("img")]
    assert publish.NBCONVERT_ALT not in alts
    assert alts[0] == "Chart in the section “Harbour”" and "The notebook's own description" in alts
    assert all(img.get("src", "").startswith("data:image/png;base64,") for img in soup.find_all("img"))


def test_tables_scroll_in_their_own_box_with_real_header_cells(rendered):
    soup = BeautifulSoup(rendered.path.read_text(), "html.parser")
    tables = soup.find("main").find_all("table")
    assert tables
    for table in tables:
        box = table.parent
        assert "cx-scroll" in box["class"] and box["tabindex"] == "0" and box["aria-label"]
        assert all(th.get_text(strip=True) and th["scope"] in ("col", "row") for th in table.find_all("th"))


def test_a_failed_report_says_so_at_the_top(executed, tmp_path):
    page = publish.render_page(executed, tmp_path / "html" / "x.html", error="KeyError: <b>value</b>")
    main = BeautifulSoup(page.path.read_text(), "html.parser").find("main")
    alert = main.find(class_="cx-alert")
    assert alert is not None and "did not finish" in alert.get_text() and "KeyError: <b>value</b>" in alert.get_text()
    assert alert.find("b") is None  # the error is text, not markup
    assert page.title == "Location deep dive"  # a topic page's title: its first h1 only


def test_chart_alt_is_the_figures_titles():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2)
    fig.suptitle("Retention")
    left.set_title("By  region")
    right.set_title("By format")
    assert publish.chart_alt(fig) == "Chart: Retention; By region; By format."
    bare, ax = plt.subplots()
    ax.set(xlabel="quarter", ylabel="NPS")
    assert publish.chart_alt(bare) == "Chart: NPS by quarter."
    assert publish.chart_alt(plt.figure()) is None and publish.chart_alt("not a figure") is None
    plt.close("all")


def manifest(jobs) -> dict:
    return {"run_id": "20261201T020000Z-abcdef", "created_utc": "2026-12-01T02:10:00+00:00", "package_version": "0.1.0",
            "data": "/exports/sample", "notebooks": jobs}


def job(name, group="topic", status="ok", error="", title="", location=None):
    return {"name": name, "group": group, "status": status, "error": error, "title": title,
            "html": f"html/{name}.html", "output": f"analyst/notebooks/{name}.ipynb", "duration_s": 1.0,
            "parameters": {"location_id": location} if location else {}}


SCORECARD = pd.DataFrame({
    "location_id": ["L0001", "L0002", "L0003", "L0004"],
    "name": [HOSTILE, "East Street 2", "Central Mall 1", "West Outlet 1"],
    "region": ["North <script>", "East", "Central", "East"],
    "format": ["street", "street", "mall", "outlet"],
    "value": [31.2, 50.7, float("nan"), 12.0], "value_ci_low": [20.0, 38.7, float("nan"), 1.0],
    "value_ci_high": [40.4, 60.7, float("nan"), 22.5], "value_n": [210, 150, 4, 90],
    "shrunk": [30.0, 46.0, float("nan"), 15.0], "funnel_flag": ["within", "above", "too few", "below"]})


@pytest.fixture(scope="module")
def index():
    places = publish.location_summaries(SCORECARD, MEASURES["nps"])
    jobs = [job("00_executive_summary", title="Customer experience: executive summary"),
            job("02_location_scorecard", status="failed", error="KeyError: <img src=x onerror=alert(2)>"),
            *[job(f"10_location_deep_dive-{i}", group="10_location_deep_dive", title="Location deep dive — x",
                  location=i) for i in ("L0001", "L0002", "L0003", "L0004")]]
    return publish.index_html(manifest(jobs), places, "NPS")


def test_the_index_lists_topics_by_title_and_locations_by_region(index):
    soup = BeautifulSoup(index, "html.parser")
    topics = soup.find("section", attrs={"aria-labelledby": "topics"})
    assert [a.get_text() for a in topics.find("ul").find_all("a")] == ["Customer experience: executive summary",
                                                                      "Location scorecard"]
    assert [h.get_text() for h in soup.find_all("h3")] == ["Central", "East", "North <script>"]
    east = soup.find("h3", string="East").find_next("table")
    rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in east.find("tbody").find_all("tr")]
    assert rows == [["East Street 2", "street", "+51", "+39 to +61", "150", "Above the brand"],
                    ["West Outlet 1", "outlet", "+12", "+1 to +22", "90", "Below the brand"]]
    central = soup.find("h3", string="Central").find_next("tbody").get_text(" ", strip=True)
    assert "Too few responses to compare" in central and "—" in central
    assert soup.find("a", string="East Street 2")["href"] == "html/10_location_deep_dive-L0002.html"


def test_the_index_shows_status_and_failures_and_links_no_notebook_or_log(index):
    soup = BeautifulSoup(index, "html.parser")
    text = soup.get_text(" ")
    assert "5 of 6 reports ok" in text and "1 of 6 reports failed" in text
    assert "KeyError: <img src=x onerror=alert(2)>" in text  # shown, as text
    hrefs = [a["href"] for a in soup.find_all("a")]
    assert not [h for h in hrefs if h.endswith((".ipynb", ".log", ".json"))]
    assert soup.find("main") and soup.find("header") and soup.find("nav") and soup.find("html")["lang"] == "en"
    assert [link["href"] for link in soup.find_all("link")] == ["html/report.css"]


def test_hostile_names_in_the_index_are_escaped(index):
    soup = BeautifulSoup(index, "html.parser")
    assert soup.find("img") is None and soup.find("script") is None
    assert not [t for t in soup.find_all(True) if any(a.startswith("on") for a in t.attrs)]
    assert "&lt;img src=x onerror=alert(1)&gt;" in index and "North &lt;script&gt;" in index
    assert soup.find("a", string=HOSTILE)["href"] == "html/10_location_deep_dive-L0001.html"


def test_the_index_without_a_scorecard_still_names_the_locations():
    places = publish.location_summaries(SCORECARD[["location_id", "name", "region", "format"]])
    page = publish.index_html(manifest([job("10_location_deep_dive-L0002", group="10_location_deep_dive",
                                            location="L0002"), job("10_location_deep_dive-L0009",
                                                                   group="10_location_deep_dive", location="L0009")]),
                              places)
    soup = BeautifulSoup(page, "html.parser")
    assert [h.get_text() for h in soup.find_all("h3")] == ["East", "Not in the scorecard"]
    assert soup.find("a", string="East Street 2") and soup.find("a", string="L0009")


def test_the_stylesheet_is_lean_and_fetches_nothing(tmp_path):
    css = publish.write_stylesheet(tmp_path).read_text()
    assert len(css) < 10_000 and "url(" not in css and "@import" not in css and "@font-face" not in css
    assert publish.write_stylesheet(tmp_path) == tmp_path / "report.css"  # again: unchanged, no error


def test_the_template_ships_with_the_package():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["cxresearch.reports"]
    folder = ROOT / "cxresearch" / "reports"
    files = [p.relative_to(folder).as_posix() for p in (folder / "templates").rglob("*") if p.is_file()]
    assert {"templates/cxreport/index.html.j2", "templates/cxreport/conf.json", "templates/cxreport/report.css"} <= set(files)
    assert all(any(fnmatch(f, pattern) for pattern in patterns) for f in files), (files, patterns)


def test_the_index_shows_the_range_the_verdict_rests_on():
    """With the scorecard's verdict ranges present, the index shows them, not the plain 95% interval, so
    a range wholly below the brand sits beside 'below' and one that spans it beside 'in line'."""
    card = SCORECARD.assign(verdict_ci_low=[15.0, 32.0, float("nan"), -5.0], verdict_ci_high=[45.0, 66.0, float("nan"), 29.0])
    places = publish.location_summaries(card, MEASURES["nps"])
    assert places["L0004"]["interval"] == "-5 to +29" and places["L0002"]["interval"] == "+32 to +66"
    assert publish.location_summaries(SCORECARD, MEASURES["nps"])["L0004"]["interval"] == "+1 to +22"  # no ranges: 95%


def test_location_names_link_to_their_deep_dive_or_stay_plain_text(tmp_path):
    from cxresearch.reports import prose

    page = tmp_path / "00_executive_summary.html"
    page.write_text("<p>" + prose.location_link("Harbour <1>", "L1") + " and " + prose.location_link("Quiet", "L2")
                    + "</p>", encoding="utf-8")
    assert publish.link_locations(tmp_path, {"L1": "10_location_deep_dive-L1.html"}) == 1
    assert page.read_text(encoding="utf-8") == ('<p><a class="cx-location" href="10_location_deep_dive-L1.html">'
                                                "Harbour &lt;1&gt;</a> and Quiet</p>")


def test_a_chart_states_its_finding_in_its_alt_text():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cxresearch.reports import plots

    summary = pd.DataFrame({"region": ["North", "South_East"], "csat": [70.0, 82.0], "csat_ci_low": [65.0, 78.0],
                            "csat_ci_high": [75.0, 86.0], "csat_n": [120, 300]})
    ax = plots.by_group(summary, "region", "csat", brand_value=78.0)
    assert publish.chart_alt(ax.figure) == ("Chart: CSAT by region. CSAT by region: highest South East (82%, n=300), "
                                            "lowest North (70%, n=120).")
    low, high = ax.get_xlim()
    assert 55 <= low < 65 and 86 < high <= 100  # fits the data (and the scale), not 0-100
    plt.close("all")


def test_a_ranking_chart_of_many_locations_shows_the_ends_and_counts_everyone():
    """1,000 locations: the chart keeps the 30 lowest and 30 highest (a readable, light figure), says how
    many lie between, and its title and description still count every location."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cxresearch.reports import plots

    rng = np.random.default_rng(0)
    value = rng.normal(30, 10, 1000)
    flags = np.where(value > 50, "above", np.where(value < 10, "below", "within"))
    card = pd.DataFrame({"location_id": [f"L{i:04d}" for i in range(1000)], "name": [f"Store {i}" for i in range(1000)],
                         "value": value, "verdict_ci_low": value - 8, "verdict_ci_high": value + 8, "funnel_flag": flags,
                         "brand_value": 30.0, "verdict_level": 0.995, "metric": "nps"})
    ax = plots.by_location(card, measure="nps")
    assert len(ax.get_yticks()) == 60 and ax.figure.get_size_inches()[1] < 20
    assert "the lowest and highest 30 of 1,000 shown" in ax.get_title()
    assert any("940 locations in between" in t.get_text() for t in ax.texts)
    above = int((flags == "above").sum())
    assert "1,000 locations compared" in ax.cx_finding and f"{above} above" in ax.cx_finding
    plt.close("all")
