"""The report runner end to end: outputs, index, manifest, hidden code, isolation of failures, validation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cxresearch.cli import main
from cxresearch.reports import runner as reporting

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def write_config(folder: Path, extra_notebooks=(), parameters=None) -> Path:
    config = {
        "data": str(ROOT / "data" / "sample"), "out": str(folder / "reports"), "workers": 2,
        "parameters": parameters or {"min_n": 30, "seed": 0},
        "notebooks": [
            {"name": "00_executive_summary", "notebook": str(ROOT / "notebooks" / "00_executive_summary.ipynb")},
            {"name": "10_location_deep_dive", "notebook": str(ROOT / "notebooks" / "10_location_deep_dive.ipynb"),
             "fan_out": {"parameter": "location_id", "locations": ["L0001", "L0002"]}},
            *extra_notebooks]}
    path = folder / "reports.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


FAILING = {"name": "99_failing", "notebook": str(FIXTURES / "failing.ipynb")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    config = write_config(folder, [FAILING])
    code = main(["run", "--config", str(config), "--quiet"])
    return code, folder / "reports"


def test_a_failing_notebook_is_isolated_reported_and_sets_the_exit_code(finished_run, capsys):
    code, out = finished_run
    assert code == 1
    manifest = json.loads((out / "latest" / "manifest.json").read_text())
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status == {"00_executive_summary": "ok", "10_location_deep_dive-L0001": "ok",
                      "10_location_deep_dive-L0002": "ok", "99_failing": "failed"}
    failed = next(n for n in manifest["notebooks"] if n["name"] == "99_failing")
    assert "RuntimeError: this report failed on purpose" in failed["error"]
    assert (out / "latest" / failed["output"]).is_file()  # the executed copy with the error is kept
    assert "this report failed on purpose" in (out / "latest" / "index.html").read_text()


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
        body = text.split("</style>")[-1]
        assert "jp-InputArea-editor" not in body and "hl-ipython3" not in body  # no code cell input rendered
        assert "brand_results(" not in text and "import cxresearch" not in text
    summary = (run / "html" / "00_executive_summary.html").read_text()
    assert "95% CI" in summary and "Recommended actions" in summary


def test_publish_is_atomic_and_latest_points_to_the_run(finished_run):
    _, out = finished_run
    assert os.path.islink(out / "latest")
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".lock"]  # no staging folder left
    assert (out / ".lock").read_text() == ""  # released: it names no run
    assert not (out / "latest" / "_cache").exists()


def test_kernels_talk_over_private_ipc_sockets_not_tcp(finished_run):
    _, out = finished_run
    log = (out / "latest" / "kernels.log").read_text()
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
    assert os.readlink(out / "latest") == result.run_id


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
