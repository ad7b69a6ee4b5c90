"""The report runner end to end: outputs, index, manifest, hidden code, isolation of failures, validation,
and where a run keeps what: pages for leadership beside the index, notebooks and logs for analysts."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from cxresearch.cli import main
from cxresearch.reports import publish
from cxresearch.reports import runner as reporting

from .conftest import FAILING, ROOT, write_config  # noqa: F401  (test_guard imports write_config from here)


@pytest.fixture(scope="module")
def finished_run(sample_suite):
    return sample_suite


def test_a_failing_notebook_is_isolated_reported_and_sets_the_exit_code(finished_run, capsys):
    code, out = finished_run
    assert code == 1
    manifest = json.loads((out / "latest" / "manifest.json").read_text())
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status == {"00_executive_summary": "ok", "02_location_scorecard": "ok", "10_location_deep_dive-L0001": "ok",
                      "10_location_deep_dive-L0002": "ok", "99_failing": "failed"}
    failed = next(n for n in manifest["notebooks"] if n["name"] == "99_failing")
    assert "RuntimeError: this report failed on purpose" in failed["error"]
    assert (out / "latest" / failed["output"]).is_file()  # the executed copy with the error is kept
    assert failed["output"] == "analyst/notebooks/99_failing.ipynb"  # for analysts, not beside the pages
    assert "this report failed on purpose" in (out / "latest" / "index.html").read_text()
    page = (out / "latest" / failed["html"]).read_text()
    assert "This report did not finish." in page and "this report failed on purpose" in page
    assert "Traceback" not in page and "raise RuntimeError" not in page  # a traceback is code


def test_manifest_records_what_a_run_needs_to_be_trusted(finished_run):
    _, out = finished_run
    manifest = json.loads((out / "latest" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["package_version"]
    assert {f["file"] for f in manifest["inputs"]} >= {"locations.parquet", "responses.parquet", "transactions.parquet"}
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in manifest["inputs"])
    deep = next(n for n in manifest["notebooks"] if n["name"] == "10_location_deep_dive-L0002")
    assert deep["parameters"]["location_id"] == "L0002" and deep["parameters"]["min_n"] == 30
    assert deep["duration_s"] > 0 and manifest["config"]["workers"] == 2


def test_index_links_every_report_and_no_html_shows_code(finished_run):
    _, out = finished_run
    run = out / "latest"
    index = (run / "index.html").read_text()
    manifest = json.loads((run / "manifest.json").read_text())
    for job in manifest["notebooks"]:
        assert f'href="{job["html"]}"' in index and (run / job["html"]).is_file()
    for page in (run / "html").glob("*.html"):
        text = page.read_text()
        assert "jp-InputArea-editor" not in text and "hl-ipython3" not in text  # no code cell input rendered
        assert "brand_results(" not in text and "import cxresearch" not in text
    summary = (run / "html" / "00_executive_summary.html").read_text()
    assert "95% range" in summary and "Recommended actions" in summary


def test_pages_share_one_stylesheet_and_fetch_nothing(finished_run):
    _, out = finished_run
    run = out / "latest"
    assert (run / "html" / "report.css").is_file()
    for page in (run / "html").glob("*.html"):
        text = page.read_text()
        assert '<link href="report.css" rel="stylesheet"/>' in text and "<style" not in text and "<script" not in text
        assert "cdnjs" not in text and "require.min.js" not in text and "MathJax" not in text
        assert '<html lang="en">' in text and '<a href="../index.html">' in text
        assert publish.NBCONVERT_ALT not in text
        assert len(text.encode()) < 400_000, page.name  # the charts are most of a page now
    summary = (run / "html" / "00_executive_summary.html").read_text()
    assert '<img alt="Chart: ' in summary  # its title, from the figure


def test_pages_have_titles_and_the_index_names_reports_and_locations(finished_run):
    _, out = finished_run
    run = out / "latest"
    manifest = json.loads((run / "manifest.json").read_text())
    titles = {job["name"]: job["title"] for job in manifest["notebooks"]}
    assert titles["00_executive_summary"] == "Customer experience: executive summary"
    assert titles["10_location_deep_dive-L0001"].startswith("Location deep dive — West Outlet 1")
    assert "<title>Location deep dive — West Outlet 1" in (run / "html" / "10_location_deep_dive-L0001.html").read_text()
    index = (run / "index.html").read_text()
    assert ">Customer experience: executive summary</a>" in index and ">00_executive_summary<" not in index
    assert '<a href="html/10_location_deep_dive-L0001.html">West Outlet 1</a>' in index
    assert "<h3" in index and "<th scope=\"col\">Range</th>" in index  # by region, with the range the verdict rests on
    assert "the brand</span>" in index
    assert ".ipynb" not in index and "kernels.log" not in index  # leadership's index links no notebook or log
    scorecard = (run / "html" / "02_location_scorecard.html").read_text()
    assert '<a class="cx-location" href="10_location_deep_dive-L0001.html">West Outlet 1</a>' in scorecard
    assert "#location-" not in scorecard  # a location without a page in this run is plain text, not a dead link


def test_publish_is_atomic_and_latest_points_to_the_run(finished_run):
    _, out = finished_run
    assert os.path.islink(out / "latest")
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".lock"]  # no staging folder left
    assert (out / ".lock").read_text() == ""  # released: it names no run
    assert not (out / "latest" / "_cache").exists()


def test_kernels_talk_over_private_ipc_sockets_not_tcp(finished_run):
    _, out = finished_run
    manifest = json.loads((out / "latest" / "manifest.json").read_text())
    assert manifest["analyst"]["kernels_log"] == "analyst/kernels.log"
    log = (out / "latest" / manifest["analyst"]["kernels_log"]).read_text()
    assert "without encryption" not in log and "Invalid Signature" not in log


def test_retry_failed_reruns_only_the_failures(finished_run):
    _, out = finished_run
    first = os.readlink(out / "latest")
    result = reporting.run(out.parent / "reports.yaml", retry_failed=first, progress=False)
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["retry_of"] == first
    old = json.loads((out / first / "manifest.json").read_text())
    durations = {n["name"]: n["duration_s"] for n in old["notebooks"]}
    for job in manifest["notebooks"]:
        if job["name"] != "99_failing":
            assert job["duration_s"] == durations[job["name"]]  # copied, not executed again
            assert (result.folder / job["html"]).read_text() == (out / first / job["html"]).read_text()
            assert (result.folder / job["output"]).is_file() and job["output"].startswith("analyst/notebooks/")
            assert job["title"] == next(o["title"] for o in old["notebooks"] if o["name"] == job["name"])
    assert os.readlink(out / "latest") == result.run_id


def test_retry_failed_takes_a_run_of_the_older_layout(finished_run):
    """A run published before the analyst folder kept its notebooks in notebooks/ (and no titles)."""
    _, out = finished_run
    older = "20200101T000000Z-0a0a0a"
    shutil.copytree(out / os.readlink(out / "latest"), out / older)
    shutil.move(out / older / "analyst" / "notebooks", out / older / "notebooks")
    manifest = json.loads((out / older / "manifest.json").read_text())
    for job in manifest["notebooks"]:
        job["output"] = job["output"].replace("analyst/notebooks/", "notebooks/")
        del job["title"]
    (out / older / "manifest.json").write_text(json.dumps(manifest))
    result = reporting.run(out.parent / "reports.yaml", retry_failed=older, progress=False, only=["00_executive_summary"])
    [job] = json.loads((result.folder / "manifest.json").read_text())["notebooks"]
    assert job["output"] == "analyst/notebooks/00_executive_summary.ipynb" and (result.folder / job["output"]).is_file()
    assert (result.folder / job["html"]).is_file() and job["duration_s"] == next(
        o["duration_s"] for o in manifest["notebooks"] if o["name"] == "00_executive_summary")


@pytest.mark.parametrize("parameters,message", [
    ({"min_n": 30, "colour": "blue"}, "unknown parameter 'colour'"),
    ({"min_n": "thirty"}, "parameter 'min_n' must be int, got str"),
])
def test_bad_parameters_are_refused_before_any_kernel_starts(tmp_path, capsys, parameters, message):
    config = write_config(tmp_path, parameters=parameters)
    assert main(["run", "--config", str(config), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    out = tmp_path / "reports"  # nothing written but the (released) lock
    assert [p.name for p in out.iterdir()] == [".lock"] and (out / ".lock").read_text() == ""


def test_unknown_only_name_and_bad_config_are_clear_errors(tmp_path):
    config = write_config(tmp_path)
    with pytest.raises(reporting.ConfigError, match="--only names unknown notebook"):
        reporting.run(config, only=["nope"], progress=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebooks: []\n")
    with pytest.raises(reporting.ConfigError, match="no notebooks listed"):
        reporting.load_config(bad)


def test_every_notebook_declares_commented_parameters():
    import papermill as pm

    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        declared = pm.inspect_notebook(str(notebook))
        assert {"data", "min_n", "period"} <= set(declared), notebook.name
        assert all(p["help"] for p in declared.values()), f"{notebook.name}: every parameter needs a comment"


@pytest.mark.slow
def test_a_hostile_location_name_is_text_in_the_index_and_the_page(tmp_path):
    from tests.test_hostile import PAYLOAD, SCRIPT, hostile_brand

    data = hostile_brand(tmp_path / "brand")
    config = {"data": str(data), "out": str(tmp_path / "reports"), "workers": 1, "parameters": {"min_n": 1},
              "notebooks": [{"name": "10_location_deep_dive", "notebook": str(ROOT / "notebooks" / "10_location_deep_dive.ipynb"),
                             "fan_out": {"parameter": "location_id", "locations": ["L1"]}}]}
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(config))
    result = reporting.run(path, progress=False)
    assert [j.status for j in result.jobs] == ["ok"]
    index = result.index.read_text()
    page = (result.folder / result.jobs[0].html).read_text()
    for text in (index, page):
        assert PAYLOAD not in text and "onerror=alert(1)>" not in text and SCRIPT not in text and "<script" not in text
    assert "Harbour &lt;img src=x onerror=alert(1)&gt;</a>" in index  # the location's name, shown as text, links its page
    assert "<title>Location deep dive — Harbour &lt;img src=x onerror=alert(1)&gt;" in page
