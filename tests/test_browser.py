"""A reader's view: the rendered index and a report open in headless Chromium, charts draw, links work.

Needs Debian's chromium and chromium-driver (`make test` installs them when it can); without them
the test is skipped with that message.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="headless Chromium not installed: apt-get install chromium chromium-driver")


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
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from cxresearch.reports import runner as reporting

    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("browser") / "reports"
    return reporting.run(root / "reports.yaml", out=out, only=["00_executive_summary", "10_location_deep_dive"],
                         locations=["L0001"], progress=False)


def test_index_and_report_render_with_working_links_and_charts(browser, published):
    from selenium.webdriver.common.by import By

    browser.get(published.index.as_uri())
    assert "Customer-experience reports" in browser.find_element(By.TAG_NAME, "h1").text
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "td a")]
    reports = [h for h in links if "/html/" in h]
    assert len(reports) == 2
    for href in links:
        browser.get(href)
        assert "ERR_FILE_NOT_FOUND" not in browser.page_source
    browser.get(next(h for h in reports if "00_executive_summary" in h))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Customer experience: executive summary")
    charts = browser.find_elements(By.CSS_SELECTOR, "img")
    assert charts, "the summary should show at least one chart"
    drawn = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100)")
    assert all(drawn)
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "95% CI" in text and "import " not in text and "brand_results" not in text
