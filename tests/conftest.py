"""Shared fixtures: a tiny valid brand written as CSV, which tests then dirty one cell at a time; and one
published run of the report suite on the sample that the reporting and browser tests both read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run and machine: a failure in CI reproduces locally.
settings.register_profile("cxresearch", derandomize=True, database=None)
settings.load_profile("cxresearch")

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
FAILING = {"name": "99_failing", "notebook": str(FIXTURES / "failing.ipynb")}
SCORECARD = {"name": "02_location_scorecard", "notebook": str(ROOT / "notebooks" / "02_location_scorecard.ipynb")}


def write_config(folder: Path, extra_notebooks=(), parameters=None) -> Path:
    """A run config on the sample: the executive summary, two deep dives and `extra_notebooks`."""
    import yaml

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


@pytest.fixture(scope="session")
def sample_suite(tmp_path_factory):
    """One published run on the sample with a page of each kind: a topic report, the scorecard (a long
    table), two location deep dives and a report that fails on purpose. A run costs about 20 s, so the
    reporting and browser tests share it. Returns (exit code, the run's reports folder)."""
    from cxresearch.cli import main

    folder = tmp_path_factory.mktemp("run")
    config = write_config(folder, [SCORECARD, FAILING])
    code = main(["run", "--config", str(config), "--quiet"])
    return code, folder / "reports"

LOCATIONS = """location_id,name,region,format,opened_on,latitude,longitude
L1,Market Street,North,street,2019-05-01,51.5,-0.12
L2,Mall of the North,North,mall,2020-01-15,53.4,-2.2
L3,Outlet Park,South,outlet,2021-07-01,50.9,-1.4
"""
CUSTOMERS = """customer_id,home_location_id,first_seen_on,segment
C1,L1,2024-01-01,regular
C2,L2,2024-01-02,new
C3,L3,2024-02-01,regular
"""
RESPONSES = """response_id,location_id,responded_at,customer_id,channel,journey_stage,nps,csat,ces,attr_staff,attr_speed,comment
R1,L1,2024-01-05T10:00:00Z,C1,in_store,act,9,5,6,5,4,Great staff
R2,L1,2024-01-06T11:30:00+01:00,C2,web,ask,3,2,2,2,1,"Slow, and rude"
R3,L2,2024-01-07 09:15:00,C3,app,advocate,10,,,,,
R4,L3,2024-02-10,,phone,aware,,4,,,,
R5,L3,2024-02-11T08:00:00Z,C3,review,appeal,,,7,,,
"""
TRANSACTIONS = """transaction_id,customer_id,location_id,occurred_at,revenue,channel
T1,C1,L1,2024-01-01T12:00:00Z,25.50,in_store
T2,C1,L1,2024-02-01T12:00:00Z,13.00,web
T3,C2,L2,2024-01-02T12:00:00Z,0,in_store
T4,C3,L3,2024-02-01T12:00:00Z,99.99,app
"""
CLEAN = {"locations": LOCATIONS, "customers": CUSTOMERS, "responses": RESPONSES, "transactions": TRANSACTIONS}


def write_brand(folder: Path, **overrides: str | None) -> Path:
    """Write the tiny brand as CSVs into `folder`; a keyword replaces (or with None drops) a table."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, text in (CLEAN | overrides).items():
        if text is not None:
            (folder / f"{table}.csv").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def brand(tmp_path) -> Path:
    return write_brand(tmp_path / "brand")


def with_row(table: str, row: str) -> str:
    """The clean CSV text of `table` with one more data row appended."""
    return CLEAN[table] + row + "\n"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def frame_equal(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True))


def as_duckdb_file(folder: Path) -> Path:
    """The folder's tables stored in a DuckDB file beside it (CSV as text, Parquet as typed), one
    base table each: the same raw rows, read by the engine's other reader."""
    import duckdb

    file = folder.parent / f"{folder.name}.duckdb"
    file.unlink(missing_ok=True)
    with duckdb.connect(str(file)) as con:
        for path in sorted(folder.iterdir()):
            name, suffix = path.name.split(".", 1)
            if suffix == "csv":
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', all_varchar = true, "
                            "header = true, nullstr = '')")
            elif suffix == "parquet":
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}')")
    return file
