"""Nothing is silently lost: on any input, every row read is accepted or rejected, exactly once.

The property tests run the one validation path twice per example: on the CSV folder (an embedded
DuckDB, as `load_dataset` reads it) and on the same raw tables stored as text in a DuckDB file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxresearch as cx
from cxresearch import schema

from .conftest import as_duckdb_file, write_brand

LOCATION_IDS = ["L1", "L2", "L3"]
# Cells a messy export really contains: good values, blanks, junk, out-of-range and odd spacing.
ids = st.sampled_from(["R1", "R2", "R3", "R4", " R5 ", "", "r1"])
locations = st.sampled_from(LOCATION_IDS + ["L9", "", " L1"])
stamps = st.sampled_from(["2024-01-05", "2024-01-05T10:00:00Z", "2024-02-30", "yesterday", "",
                          "2024-03-01 10:00:00+05:30", "1/2/2024"])
scores = st.one_of(st.integers(-3, 13).map(str), st.sampled_from(["", "7.5", "x", "NaN", " 9 "]))
channels = st.sampled_from(list(schema.CHANNELS) + ["In Store", "fax", ""])
revenues = st.one_of(st.floats(-50, 500, allow_nan=False).map(lambda v: f"{v:.2f}"),
                     st.sampled_from(["", "abc", "inf", "1e3", "-0"]))

response_rows = st.fixed_dictionaries({
    "response_id": ids, "location_id": locations, "responded_at": stamps, "channel": channels,
    "nps": scores, "csat": scores, "ces": scores})
transaction_rows = st.fixed_dictionaries({
    "transaction_id": st.sampled_from(["T1", "T2", "T3", "", "T4"]), "customer_id": st.sampled_from(["C1", "", "C2"]),
    "location_id": locations, "occurred_at": stamps, "revenue": revenues})


def loaded_both_ways(folder, table: str, raw: pd.DataFrame):
    """`table` written as CSV beside three known locations, loaded from the folder and from a
    DuckDB file: [(accepted, rejects), ...]."""
    tables = {"customers": None, "responses": None, "transactions": None} | {table: raw.to_csv(index=False)}
    write_brand(folder, locations="location_id\nL1\nL2\nL3\n", **tables)
    from_folder = cx.load_dataset(folder)
    with cx.connect(f"duckdb://{as_duckdb_file(folder)}") as source:
        from_file = source.to_dataset()
    return [(ds.table(table), ds.rejects[ds.rejects["table"] == table]) for ds in (from_folder, from_file)]


def check_accounted(raw: pd.DataFrame, accepted: pd.DataFrame, rejects: pd.DataFrame, table: str) -> None:
    spec = schema.TABLES[table]
    assert len(accepted) + len(rejects) == len(raw)
    assert sorted(rejects["row"].tolist() + []) == sorted(set(rejects["row"]))  # one record per row
    assert rejects["reason"].notna().all() and (rejects["table"] == table).all()
    assert accepted[spec.key].is_unique and accepted[spec.key].notna().all()
    assert accepted["location_id"].isin(LOCATION_IDS).all()
    for name in spec.required:
        assert accepted[name].notna().all()
    for col in spec.columns:
        if col.kind in ("score", "float") and col.name in accepted and col.low is not None:
            values = accepted[col.name].dropna().astype(float)
            assert (values >= col.low).all()
            if col.high is not None:
                assert (values <= col.high).all()


# each example writes files and loads them on DuckDB (about 1.5 s); 15 random tables per test plus the
# hand-made edge cases elsewhere in this file keep the suite within its time budget
EXAMPLES = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@EXAMPLES
@given(st.lists(response_rows, min_size=0, max_size=25))
def test_responses_every_row_accepted_or_rejected_once(tmp_path_factory, rows):
    raw = pd.DataFrame(rows, columns=["response_id", "location_id", "responded_at", "channel", "nps", "csat", "ces"],
                       dtype="str")
    for accepted, rejects in loaded_both_ways(tmp_path_factory.mktemp("r"), "responses", raw):
        check_responses(raw, accepted, rejects)


def check_responses(raw, accepted, rejects):
    check_accounted(raw, accepted, rejects, "responses")
    assert accepted[["nps", "csat", "ces"]].notna().any(axis=1).all()
    good_rows = sorted(set(range(1, len(raw) + 1)) - set(rejects["row"]))
    source = raw.iloc[[r - 1 for r in good_rows]].reset_index(drop=True)
    # an accepted row lost no value: its channel is missing exactly where the export's was blank
    assert (accepted["channel"].isna() == (source["channel"].str.strip() == "")).all()
    assert (accepted["response_id"] == source["response_id"].str.strip()).all()


@EXAMPLES
@given(st.lists(transaction_rows, min_size=0, max_size=25))
def test_transactions_every_row_accepted_or_rejected_once(tmp_path_factory, rows):
    raw = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "location_id", "occurred_at", "revenue"],
                       dtype="str")
    for accepted, rejects in loaded_both_ways(tmp_path_factory.mktemp("t"), "transactions", raw):
        check_accounted(raw, accepted, rejects, "transactions")
        assert np.isfinite(accepted["revenue"]).all()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(response_rows, min_size=1, max_size=15), st.lists(transaction_rows, min_size=1, max_size=15))
def test_load_dataset_balances_on_messy_files(tmp_path_factory, responses, transactions):
    folder = tmp_path_factory.mktemp("messy")
    write_brand(folder, customers=None, locations="location_id\nL1\nL2\nL3\n",
                responses=pd.DataFrame(responses).to_csv(index=False),
                transactions=pd.DataFrame(transactions).to_csv(index=False))
    acc = cx.load_dataset(folder).accounting()
    assert acc["balanced"].all()
    assert acc.loc["responses", "read"] == len(responses) and acc.loc["transactions", "read"] == len(transactions)
