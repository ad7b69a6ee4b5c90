"""A reader's view: the rendered index and reports open in headless Chromium, charts draw, links work,
nothing is fetched from outside the run, the pages fit a phone, and axe-core finds no accessibility
violation (best-practice rules included) on the index and on a page of each kind.

Needs Debian's chromium and chromium-driver (`make test` installs them when it can); without them
the tests are skipped with that message. axe-core's script comes from the `selenium-axe-python`
package of the dev extra; without it the accessibility test is skipped saying so.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="headless Chromium not installed: apt-get install chromium chromium-driver")
ROOT = Path(__file__).resolve().parents[1]
# every rule axe-core runs by default, named: WCAG 2.0-2.2 A and AA, and its best practices
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_script() -> str | None:
    """axe.min.js as a Python package ships it (selenium-axe-python; axe-selenium-python's older layout)."""
    for package, path in (("selenium_axe_python", "axe-core/axe.min.js"),
                          ("axe_selenium_python", "node_modules/axe-core/axe.min.js")):
        try:
            script = resources.files(package).joinpath(path)
        except ModuleNotFoundError:
            continue
        if script.is_file():
            return script.read_text(encoding="utf-8")
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def published(sample_suite):
    """The shared run on the sample (conftest.sample_suite): a topic report, the scorecard (a long
    table), location deep dives and a report that fails."""
    _, out = sample_suite
    folder = out / os.readlink(out / "latest")
    return SimpleNamespace(folder=folder, index=folder / "index.html")


def page(published, name: str) -> str:
    return (published.folder / "html" / f"{name}.html").as_uri()


def test_index_and_report_render_with_working_links_and_charts(browser, published):
    from selenium.webdriver.common.by import By

    browser.get(published.index.as_uri())
    assert "Customer-experience reports" in browser.find_element(By.TAG_NAME, "h1").text
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "main a")]
    reports = sorted({h for h in links if "/html/" in h})
    assert len(reports) == 5  # the summary, the scorecard, two deep dives and the failed report
    assert not [h for h in links if h.endswith((".ipynb", ".log"))]  # leadership's index: no notebooks or logs
    assert "West Outlet 1" in browser.find_element(By.TAG_NAME, "main").text  # a deep dive by its location's name
    for href in links:
        browser.get(href)
        assert "ERR_FILE_NOT_FOUND" not in browser.page_source
        home = browser.find_element(By.CSS_SELECTOR, "header a").get_attribute("href")
        assert home == published.index.as_uri()  # every page's header leads back to the index
    browser.get(page(published, "00_executive_summary"))
    assert browser.title == "Customer experience: executive summary"
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Customer experience: executive summary")
    charts = browser.find_elements(By.CSS_SELECTOR, "img")
    assert charts, "the summary should show at least one chart"
    drawn = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100)")
    assert all(drawn)
    assert all(c.get_attribute("alt").startswith("Chart: ") for c in charts)  # the chart's own title
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "95% range" in text and "import " not in text and "brand_results" not in text
    browser.get(page(published, "10_location_deep_dive-L0001"))
    assert browser.title.startswith("Location deep dive — West Outlet 1")


def requests(browser) -> list[str]:
    """The URLs the browser asked for since the last call (Chrome's network log)."""
    events = (json.loads(entry["message"])["message"] for entry in browser.get_log("performance"))
    return [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]


def test_pages_fetch_nothing_from_outside_the_run(browser, published):
    run = published.folder.resolve().as_uri()
    for url in (published.index.as_uri(), page(published, "00_executive_summary"),
                page(published, "10_location_deep_dive-L0001")):
        requests(browser)
        browser.get(url)
        fetched = [f for f in requests(browser) if not f.startswith("data:")]
        assert url in fetched and all(f.startswith(run) for f in fetched), fetched  # the page and its stylesheet
        assert any(f.endswith("/html/report.css") for f in fetched)
        assert browser.execute_script("return document.scripts.length") == 0
        styled = browser.execute_script("return getComputedStyle(document.querySelector('.cx-header')).borderBottomStyle")
        assert styled == "solid"  # the shared stylesheet applied


def test_pages_fit_a_phone(browser, published):
    browser.set_window_size(390, 844)
    try:
        for name in ("02_location_scorecard", "10_location_deep_dive-L0001"):
            browser.get(page(published, name))
            overflow = browser.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert overflow[0] <= overflow[1] + 1, f"{name}: the page scrolls sideways on a phone {overflow}"
            widths = browser.execute_script(
                "return Array.from(document.images).map(i => i.getBoundingClientRect().right <= innerWidth + 1)")
            assert all(widths), f"{name}: a chart is wider than the screen"
            boxes = browser.execute_script(
                "return Array.from(document.querySelectorAll('table')).map(t => t.parentElement.className)")
            assert boxes and set(boxes) == {"cx-scroll"}  # each table scrolls in its own box
    finally:
        browser.set_window_size(1200, 900)


@pytest.mark.parametrize("width", [1200, 390])
def test_axe_finds_no_accessibility_violation(browser, published, width):
    script = axe_script()
    if script is None:
        pytest.skip("axe-core not installed: pip install -e '.[dev]' (selenium-axe-python ships axe.min.js)")
    browser.set_window_size(width, 900)
    found = {}
    try:
        for url in (published.index.as_uri(), page(published, "00_executive_summary"),
                    page(published, "02_location_scorecard"), page(published, "10_location_deep_dive-L0001"),
                    page(published, "99_failing")):
            browser.get(url)
            browser.execute_script(script)
            violations = browser.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
                ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));",
                AXE_TAGS)
            if violations:
                found[url.rsplit("/", 1)[-1]] = [f"{v['id']}: {v['help']} ({len(v['nodes'])}: "
                                                 f"{', '.join(n['html'][:80] for n in v['nodes'][:3])})" for v in violations]
    finally:
        browser.set_window_size(1200, 900)
    assert not found, "axe-core found accessibility violations:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(items) for name, items in found.items())
