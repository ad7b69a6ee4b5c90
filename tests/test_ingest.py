"""Ingest: every validation rule, mappings, file-level errors, round trips and the accounting."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import cxresearch as cx
from cxresearch import schema

from .conftest import CLEAN, as_duckdb_file, frame_equal, with_row, write_brand


def test_clean_brand_loads_everything_in_canonical_dtypes(brand):
    ds = cx.load_dataset(brand)
    assert (len(ds.locations), len(ds.customers), len(ds.responses), len(ds.transactions)) == (3, 3, 5, 4)
    assert ds.rejects.empty
    assert ds.responses["responded_at"].dtype == "datetime64[us, UTC]"
    assert str(ds.responses["nps"].dtype) == "Int8"
    assert list(ds.responses["channel"].cat.categories) == list(schema.CHANNELS)
    assert ds.responses["journey_stage"].cat.ordered
    assert ds.transactions["revenue"].dtype == "float64"
    assert ds.accounting()["balanced"].all()


def test_timestamps_are_utc_whatever_their_offset(brand):
    stamps = cx.load_dataset(brand).responses.set_index("response_id")["responded_at"]
    assert stamps["R1"] == pd.Timestamp("2024-01-05 10:00", tz="UTC")
    assert stamps["R2"] == pd.Timestamp("2024-01-06 10:30", tz="UTC")  # +01:00 converted
    assert stamps["R3"] == pd.Timestamp("2024-01-07 09:15", tz="UTC")  # naive read as UTC by default


def test_naive_timestamps_use_the_mapping_timezone(tmp_path):
    folder = write_brand(tmp_path / "b")
    ds = cx.load_dataset(folder, mapping={"timezone": "Europe/Berlin"})
    stamps = ds.responses.set_index("response_id")["responded_at"]
    assert stamps["R3"] == pd.Timestamp("2024-01-07 08:15", tz="UTC")
    assert stamps["R1"] == pd.Timestamp("2024-01-05 10:00", tz="UTC")  # explicit offset wins


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
def test_offsets_lower_case_and_fractions_are_read(tmp_path, timezone):
    """'+02' and lower-case 'z' offsets (RFC 3339 allows lower case) are honoured whatever the time
    zone, nanoseconds are floored to the stored microseconds, and a time without an offset is local."""
    folder = write_brand(tmp_path / "b", transactions=None)
    (folder / "responses.csv").write_text(
        "response_id,location_id,responded_at,nps\n"
        "R1,L1,2024-01-05T10:00:00+02,9\nR2,L1,2024-01-05t10:00:00z,9\n"
        "R3,L1,2024-01-05T10:00:00.123456789Z,9\nR4,L1,2024-01-05 10:00,9\n")
    stamps = cx.load_dataset(folder, mapping={"timezone": timezone}).responses["responded_at"].tolist()
    local = pd.Timestamp("2024-01-05 10:00", tz=timezone).tz_convert("UTC")
    assert stamps == [pd.Timestamp("2024-01-05 08:00", tz="UTC"), pd.Timestamp("2024-01-05 10:00", tz="UTC"),
                      pd.Timestamp("2024-01-05 10:00:00.123456", tz="UTC"), local]


def test_local_times_in_the_hours_clocks_repeat_or_skip_are_read_one_way(tmp_path):
    """Europe/Berlin: 02:30 on 27 Oct 2024 happened twice (the first, daylight-saving one is taken);
    02:30 on 31 Mar 2024 never happened (it moves forward by the hour skipped, to 03:30 CEST)."""
    folder = write_brand(tmp_path / "b", transactions=None)
    (folder / "responses.csv").write_text("response_id,location_id,responded_at,nps\n"
                                          "R1,L1,2024-10-27 02:30:00,9\nR2,L1,2024-03-31 02:30:00,9\n"
                                          "R3,L1,2024-07-01 12:00:00,9\nR4,L1,2024-12-01 12:00:00,9\n")
    stamps = cx.load_dataset(folder, mapping={"timezone": "Europe/Berlin"}).responses["responded_at"].tolist()
    assert stamps == [pd.Timestamp(t, tz="UTC") for t in ("2024-10-27 00:30", "2024-03-31 01:30",
                                                           "2024-07-01 10:00", "2024-12-01 11:00")]


def test_typed_naive_times_are_local_in_the_mapping_timezone(tmp_path):
    folder = write_brand(tmp_path / "b", transactions=None, responses=None)
    pd.DataFrame({"response_id": ["R1"], "location_id": ["L1"], "nps": [9],
                  "responded_at": [pd.Timestamp("2024-07-01 12:00")]}).to_parquet(folder / "responses.parquet")
    ds = cx.load_dataset(folder, mapping={"timezone": "America/New_York"})
    assert ds.responses["responded_at"].tolist() == [pd.Timestamp("2024-07-01 16:00", tz="UTC")]


def test_dates_that_are_not_iso_need_a_date_format(tmp_path):
    """01/02/2024 is 1 February in Berlin and 2 January in Boston: without a date_format it is not
    guessed but rejected, with a reason that says what to do; with one it is read as told."""
    folder = write_brand(tmp_path / "b", transactions=None)
    (folder / "responses.csv").write_text("response_id,location_id,responded_at,nps\nR1,L1,01/02/2024 10:00,9\n")
    rejects = cx.load_dataset(folder).rejects
    assert rejects["reason"].tolist() == [
        "responded_at is not an ISO 8601 timestamp (for other forms, give the mapping a date_format)"]
    day_first = {"timezone": "Europe/Berlin", "responses": {"date_format": "%d/%m/%Y %H:%M"}}
    assert cx.load_dataset(folder, day_first).responses["responded_at"].tolist() == [
        pd.Timestamp("2024-02-01 09:00", tz="UTC")]
    bad = cx.load_dataset(folder, {"responses": {"date_format": "%Y-%m-%d"}}).rejects
    assert bad["reason"].tolist() == ["responded_at is not a valid timestamp"]


BAD_ROWS = [  # (table, the row appended to its clean CSV, the column and the reason of its reject)
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,11,,,,,", "nps", "nps outside 0-10"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,-1,,,,,", "nps", "nps outside 0-10"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,7.5,,,,,", "nps", "nps is not a whole number"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,ten,,,,,", "nps", "nps is not a number"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,,0,,,,", "csat", "csat outside 1-5"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,,,8,,,", "ces", "ces outside 1-7"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,9,,,6,,", "attr_staff", "attr_staff outside 1-5"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,act,,,,4,,", "nps,csat,ces",
     "no score: needs at least one of nps, csat, ces"),
    ("responses", "R9,L1,yesterday-ish,C1,in_store,act,9,,,,,", "responded_at",
     "responded_at is not an ISO 8601 timestamp (for other forms, give the mapping a date_format)"),
    ("responses", "R9,L1,,C1,in_store,act,9,,,,,", "responded_at", "missing responded_at"),
    ("responses", "R9,L7,2024-01-05,C1,in_store,act,9,,,,,", "location_id", "unknown location_id"),
    ("responses", "R9,L1,2024-01-05,C99,in_store,act,9,,,,,", "customer_id", "unknown customer_id"),
    ("responses", "R1,L1,2024-01-05,C1,in_store,act,9,,,,,", "response_id", "duplicate response_id"),
    ("responses", ",L1,2024-01-05,C1,in_store,act,9,,,,,", "response_id", "missing response_id"),
    ("responses", "R9,L1,2024-01-05,C1,carrier pigeon,act,9,,,,,", "channel",
     "channel not one of in_store, phone, email, web, app, social, review"),
    ("responses", "R9,L1,2024-01-05,C1,in_store,purchase,9,,,,,", "journey_stage",
     "journey_stage not one of aware, appeal, ask, act, advocate"),
    ("transactions", "T9,C1,L1,2024-01-01,-5,in_store", "revenue", "revenue below 0"),
    ("transactions", "T9,C1,L1,2024-01-01,$12,in_store", "revenue", "revenue is not a number"),
    ("transactions", "T9,C1,L1,2024-01-01,,in_store", "revenue", "missing revenue"),
    ("transactions", "T9,C1,L1,2024-01-01,inf,in_store", "revenue", "revenue is not a finite number"),
    ("transactions", "T9,C1,L1,31/31/2024,5,in_store", "occurred_at",
     "occurred_at is not an ISO 8601 timestamp (for other forms, give the mapping a date_format)"),
    ("transactions", "T9,C1,L8,2024-01-01,5,in_store", "location_id", "unknown location_id"),
    ("transactions", "T9,C77,L1,2024-01-01,5,in_store", "customer_id", "unknown customer_id"),
    ("transactions", "T1,C1,L1,2024-01-01,5,in_store", "transaction_id", "duplicate transaction_id"),
    ("customers", "C9,L5,2024-01-01,regular", "home_location_id", "unknown home_location_id"),
    ("locations", "L9,Far,North,street,2019-05-01,91,0", "latitude", "latitude outside -90-90"),
]


@pytest.mark.parametrize("table,row,column,reason", BAD_ROWS)
@pytest.mark.parametrize("reader", ["folder", "duckdb_file"])
def test_each_bad_row_is_rejected_with_its_reason_and_the_rest_loads(tmp_path, table, row, column, reason, reader):
    """The one rule set, as DuckDB reads a CSV folder and as it reads text tables of a DuckDB file."""
    folder = write_brand(tmp_path / "b", **{table: with_row(table, row)})
    if reader == "folder":
        ds, source = cx.load_dataset(folder), f"{table}.csv"
    else:
        with cx.connect(f"duckdb://{as_duckdb_file(folder)}") as on_file:
            ds, source = on_file.to_dataset(), f"b.duckdb:{table}"
    rejects = ds.rejects
    assert len(rejects) == 1, rejects
    got = rejects.iloc[0]
    assert (got["table"], got["column"], got["reason"]) == (table, column, reason)
    assert got["source"] == source
    assert got["row"] == CLEAN[table].count("\n")  # the appended row: header not counted, 1-based
    expected_rows = CLEAN[table].count("\n") - 1
    assert len(ds.table(table)) == expected_rows
    assert ds.accounting().loc[table, ["read", "accepted", "rejected"]].tolist() == [expected_rows + 1, expected_rows, 1]


def test_rejected_value_is_the_raw_text(tmp_path):
    folder = write_brand(tmp_path / "b", responses=with_row("responses", "R9,L1,2024-01-05,C1,in_store,act,11,,,,,"))
    assert cx.load_dataset(folder).rejects.iloc[0]["value"] == "11"


def test_first_of_duplicate_ids_is_kept_even_if_a_later_copy_differs(tmp_path):
    folder = write_brand(tmp_path / "b", transactions=with_row("transactions", "T1,C2,L2,2024-03-01,7,web"))
    ds = cx.load_dataset(folder)
    kept = ds.transactions.set_index("transaction_id").loc["T1"]
    assert kept["revenue"] == 25.5 and ds.rejects.iloc[0]["row"] == 5


def test_a_bad_duplicate_does_not_block_a_later_good_row(tmp_path):
    text = CLEAN["transactions"] + "T9,C1,L1,2024-01-01,oops,web\nT9,C1,L1,2024-01-01,5,web\n"
    ds = cx.load_dataset(write_brand(tmp_path / "b", transactions=text))
    assert ds.transactions["transaction_id"].tolist()[-1] == "T9"
    assert ds.rejects["reason"].tolist() == ["revenue is not a number"]


def test_rows_referencing_a_rejected_location_are_rejected_too(tmp_path):
    locations = CLEAN["locations"].replace("L3,Outlet Park,South,outlet,2021-07-01,50.9,-1.4",
                                           "L3,Outlet Park,South,outlet,2021-07-01,99,-1.4")
    ds = cx.load_dataset(write_brand(tmp_path / "b", locations=locations))
    by_table = ds.rejects.groupby("table").size().to_dict()
    # L3 goes, so does C3 (home L3), R4 and R5 (at L3), R3 (by C3) and T4 (C3 at L3)
    assert by_table == {"locations": 1, "customers": 1, "responses": 3, "transactions": 1}
    assert ds.accounting()["balanced"].all()


def test_customer_ids_are_not_checked_without_a_customers_table(tmp_path):
    folder = write_brand(tmp_path / "b", customers=None,
                         transactions=with_row("transactions", "T9,C77,L1,2024-01-01,5,in_store"))
    ds = cx.load_dataset(folder)
    assert ds.rejects.empty and len(ds.transactions) == 5 and ds.customers.empty


def test_ids_keep_leading_zeros_and_lose_surrounding_space(tmp_path):
    locations = "location_id,name\n 007 ,Bond Street\n"
    responses = "response_id,location_id,responded_at,nps\nR1,007,2024-01-01,9\n"
    ds = cx.load_dataset(write_brand(tmp_path / "b", locations=locations, customers=None,
                                     responses=responses, transactions=None))
    assert ds.locations["location_id"].tolist() == ["007"] and len(ds.responses) == 1


def test_category_labels_are_forgiving_about_case_spaces_and_hyphens(tmp_path):
    rows = "R9,L1,2024-01-05,C1,In-Store,ACT,9,,,,,\nR10,L1,2024-01-05,C1, Social ,Advocate,9,,,,,"
    ds = cx.load_dataset(write_brand(tmp_path / "b", responses=with_row("responses", rows)))
    got = ds.responses.set_index("response_id")
    assert (got.loc["R9", "channel"], got.loc["R10", "journey_stage"]) == ("in_store", "advocate")


# --- file-level errors: clear, naming file and column, nothing half-loaded -------------------------

def test_missing_required_column_names_file_and_column(tmp_path):
    text = CLEAN["transactions"].replace("revenue", "amount")
    with pytest.raises(cx.IngestError, match=r"transactions\.csv.*required transactions column\(s\) missing: revenue"):
        cx.load_dataset(write_brand(tmp_path / "b", transactions=text))


def test_unknown_table_file_is_an_error(tmp_path):
    folder = write_brand(tmp_path / "b")
    (folder / "orders.csv").write_text("a,b\n1,2\n")
    with pytest.raises(cx.IngestError, match=r"unknown table file\(s\) orders\.csv"):
        cx.load_dataset(folder)


def test_unreadable_file_is_an_error(tmp_path):
    folder = write_brand(tmp_path / "b", transactions=None)
    (folder / "transactions.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(cx.IngestError, match=r"transactions\.parquet: cannot be read as Parquet"):
        cx.load_dataset(folder)


def test_non_utf8_file_is_an_error(tmp_path):
    folder = write_brand(tmp_path / "b")
    (folder / "locations.csv").write_bytes("location_id,name\nL1,Caf\xe9\n".encode("utf-16"))
    with pytest.raises(cx.IngestError, match=r"locations\.csv"):
        cx.load_dataset(folder)


def test_empty_file_is_an_error(tmp_path):
    folder = write_brand(tmp_path / "b", customers="")
    with pytest.raises(cx.IngestError, match=r"customers\.csv: the file is empty"):
        cx.load_dataset(folder)


def test_the_same_table_twice_is_an_error(tmp_path):
    folder = write_brand(tmp_path / "b")
    cx.load_dataset(folder).locations.to_parquet(folder / "locations.parquet")
    with pytest.raises(cx.IngestError, match="locations is in more than one file"):
        cx.load_dataset(folder)


def test_locations_and_some_facts_are_required(tmp_path):
    with pytest.raises(cx.IngestError, match="no locations table"):
        cx.load_dataset(write_brand(tmp_path / "a", locations=None))
    with pytest.raises(cx.IngestError, match="neither a responses nor a transactions table"):
        cx.load_dataset(write_brand(tmp_path / "b", responses=None, transactions=None))
    with pytest.raises(cx.IngestError, match="not a folder"):
        cx.load_dataset(tmp_path / "nowhere")


def test_columns_outside_the_schema_are_reported_not_loaded(tmp_path):
    text = CLEAN["locations"].replace("longitude\n", "longitude,manager\n", 1)
    text = "\n".join(line + ",x" if i else line for i, line in enumerate(text.strip().split("\n"))) + "\n"
    ds = cx.load_dataset(write_brand(tmp_path / "b", locations=text))
    assert ds.ignored_columns == {"locations": ["manager"]} and "manager" not in ds.locations
    assert "manager" in ds.summary()


# --- mappings ------------------------------------------------------------------------------------

def test_yaml_mapping_renames_columns_recodes_values_and_names_files(tmp_path):
    folder = write_brand(tmp_path / "b", responses=None)
    (folder / "survey_export.csv").write_text(
        "Resp ID,Store #,Submitted,Q1_NPS,Touchpoint\n"
        "A1,L1,2024-01-05 10:00,9,Kiosk\nA2,L2,2024-01-06 10:00,Extremely likely,Call centre\n")
    mapping = {"timezone": "America/New_York",
               "responses": {"file": "survey_export.csv",
                             "columns": {"Resp ID": "response_id", "Store #": "location_id",
                                         "Submitted": "responded_at", "Q1_NPS": "nps", "Touchpoint": "channel"},
                             "values": {"channel": {"Kiosk": "in_store", "Call centre": "phone"},
                                        "nps": {"Extremely likely": 10}}}}
    (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    ds = cx.load_dataset(folder)  # mapping.yaml in the folder is used by default
    got = ds.responses.set_index("response_id")
    assert got["channel"].tolist() == ["in_store", "phone"]
    assert got["nps"].tolist() == [9, 10]
    assert got.loc["A1", "responded_at"] == pd.Timestamp("2024-01-05 15:00", tz="UTC")
    assert ds.rejects.empty


def test_headers_match_canonical_names_ignoring_case_and_spaces(tmp_path):
    locations = " Location_ID ,NAME\nL1,One\n"
    ds = cx.load_dataset(write_brand(tmp_path / "b", locations=locations, customers=None,
                                     responses="response_id,location_id,responded_at,nps\nR1,L1,2024-01-01,9\n",
                                     transactions=None))
    assert ds.locations["name"].tolist() == ["One"]


def test_semicolon_separated_exports_with_a_day_first_date_format(tmp_path):
    folder = write_brand(tmp_path / "b", transactions=None)
    (folder / "transactions.csv").write_text("transaction_id;customer_id;location_id;occurred_at;revenue\n"
                                             "T1;C1;L1;05/02/2024 14:30;12.5\n")
    ds = cx.load_dataset(folder, {"transactions": {"delimiter": ";", "date_format": "%d/%m/%Y %H:%M"}})
    assert ds.transactions["occurred_at"].tolist() == [pd.Timestamp("2024-02-05 14:30", tz="UTC")]


@pytest.mark.parametrize("mapping,message", [
    ({"ordres": {}}, "unknown table 'ordres'"),
    ({"responses": {"colums": {}}}, "unknown setting"),
    ({"responses": {"columns": {"Q1": "npss"}}}, "maps to 'npss', which is not a responses column"),
    ({"responses": {"values": {"chanel": {}}}}, "values given for 'chanel'"),
    ({"responses": {"format": "excel"}}, "format must be one of"),
    ({"responses": {"file": "nope.csv"}}, "nope.csv: the mapping names this file"),
])
def test_mapping_mistakes_are_errors_before_reading(brand, mapping, message):
    with pytest.raises((cx.MappingError, cx.IngestError), match=message):
        cx.load_dataset(brand, mapping)


def test_mapping_file_that_is_not_yaml(brand, tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("responses: [unclosed")
    with pytest.raises(cx.MappingError, match="not valid YAML"):
        cx.load_dataset(brand, bad)


def test_two_columns_mapped_to_one_name_is_an_error(tmp_path):
    folder = write_brand(tmp_path / "b")
    with pytest.raises(cx.IngestError, match="two columns map to 'name'"):
        cx.load_dataset(folder, {"locations": {"columns": {"region": "name"}}})


# --- round trip ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip_loses_nothing(brand, tmp_path, fmt):
    original = cx.load_dataset(brand)
    again = cx.load_dataset(original.to_dir(tmp_path / "out", format=fmt))
    for table in schema.TABLE_ORDER:
        frame_equal(again.table(table), original.table(table))
    assert again.rejects.empty


def test_round_trip_keeps_rejects_beside_the_tables(tmp_path):
    folder = write_brand(tmp_path / "b", responses=with_row("responses", "R9,L1,2024-01-05,C1,in_store,act,11,,,,,"))
    out = cx.load_dataset(folder).to_dir(tmp_path / "out")
    assert pd.read_csv(out / "rejects.csv")["reason"].tolist() == ["nps outside 0-10"]
    assert cx.load_dataset(out).rejects.empty  # the record is skipped, not reloaded as data


def test_to_dir_rejects_an_unknown_format(brand, tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        cx.load_dataset(brand).to_dir(tmp_path / "x", format="xlsx")


def test_integer_parquet_columns_with_nulls_stay_integers(tmp_path):
    """A Parquet file not written by pandas (DuckDB, Spark): an int8 score with nulls reads as a
    nullable integer, so an out-of-range 9 is rejected as "9", as the engines report it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = write_brand(tmp_path / "b", responses=with_row("responses", "R9,L1,2024-01-05,C1,web,act,8,9,,,,"))
    frame = pd.read_csv(folder / "responses.csv", dtype=str)
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    for name in ("nps", "csat", "ces", "attr_staff", "attr_speed"):
        table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.int8()))
    (folder / "responses.csv").unlink()
    pq.write_table(table, folder / "responses.parquet")
    dataset = cx.load_dataset(folder)
    assert dataset.rejects[["row", "column", "value"]].values.tolist() == [[6, "csat", "9"]]
    assert dataset.responses["csat"].dropna().tolist() == [5, 2, 4]
