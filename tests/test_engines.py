"""One validation and reduction path on every engine: DuckDB (the default, which `load_dataset` and
data in memory use too) and Spark give the same tables, the same rejects and the same reduced
statistics, on the sample and on messy exports; DuckDB's readers (CSV copied, Parquet and DuckDB
files read in place) agree with one another.

Counts must match exactly; sums of money to floating-point rounding (rtol 1e-12), since engines add
in a different order. The Spark tests share one local session and are marked `spark`.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

import cxresearch as cx
from cxresearch import engine, journey, retention, revenue, schema, synth
from cxresearch import metrics as mx
from cxresearch.engine import backends
from cxresearch.engine import rules as checks

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
SAME = {"check_exact": False, "rtol": 1e-12}
NOT_ISO = "is not an ISO 8601 timestamp (for other forms, give the mapping a date_format)"


def assert_same(a: pd.DataFrame, b: pd.DataFrame):
    pd.testing.assert_frame_equal(a, b, **SAME)


@pytest.fixture(scope="module")
def sample_pair():
    source = cx.connect(SAMPLE)
    yield source, cx.load_dataset(SAMPLE)
    source.close()


@pytest.fixture(scope="module")
def messy_folders(tmp_path_factory):
    raw, truth = synth.generate_raw(20, 3000, seed=11, messy=True, messy_rate=0.01)
    root = tmp_path_factory.mktemp("messy")
    return {fmt: synth.write_raw(raw, root / fmt, fmt) for fmt in ("csv", "parquet")}, truth


def reductions_agree(source, dataset, every_grouping: bool = True):
    """Every reduction the statistics use, on two sources (an engine's, or a dataset in memory).

    `every_grouping=False` checks each reduction once per kind of grouping rather than for every
    grouping and anchor (Spark pays about a second per query; the DuckDB and pandas checks run all)."""
    groupings = [(None, None), ("location_id", None), ("location_id", "Q"), (["channel", "journey_stage"], "M"),
                 ("channel", "W"), ("journey_stage", "Y")]
    for by, period in groupings if every_grouping else groupings[2:4]:
        assert_same(mx.summarize(source, by=by, period=period), mx.summarize(dataset, by=by, period=period))
    assert_same(mx.score_counts(source, ["location_id"]), mx.score_counts(dataset, ["location_id"]))
    assert_same(revenue.revenue_summary(source), revenue.revenue_summary(dataset))
    assert_same(revenue.revenue_summary(source, by=None, period="M"),
                revenue.revenue_summary(dataset, by=None, period="M"))
    assert_same(revenue.location_panel(source), revenue.location_panel(dataset))
    anchors = [(a, d) for a in ("first_purchase", "response") for d in (None, "2025-06-30")]
    for anchor, as_of in anchors if every_grouping else anchors[::3]:
        assert_same(retention.customer_table(source, anchor=anchor, as_of=as_of),
                    retention.customer_table(dataset, anchor=anchor, as_of=as_of))
    assert_same(retention.first_purchases(source), retention.first_purchases(dataset))
    assert_same(journey.touchpoints(source, by="home_location_id"), journey.touchpoints(dataset, by="home_location_id"))
    assert_same(retention.cohort_matrix(source), retention.cohort_matrix(dataset))
    from cxresearch.engine.reductions import repeat_counts  # (the alerts' customers who came back)

    assert_same(repeat_counts(source, ["location_id"], "M", 90), repeat_counts(cx.as_source(dataset), ["location_id"], "M", 90))


def tables_and_rejects_agree(source, dataset):
    for name in schema.TABLE_ORDER:
        assert_same(source.fetch(name), dataset.table(name))
    pd.testing.assert_frame_equal(source.rejects, dataset.rejects)
    pd.testing.assert_frame_equal(source.accounting(), dataset.accounting())
    assert source.accounting()["balanced"].all()


# -- DuckDB --------------------------------------------------------------------------------------------

def test_duckdb_is_the_default_and_load_dataset_is_connect_fetched(sample_pair):
    source, dataset = sample_pair
    assert isinstance(source, cx.Source) and source.engine == "duckdb"
    tables_and_rejects_agree(source, dataset)
    assert source.summary() == dataset.summary()


def test_a_dataset_in_memory_is_reduced_as_its_source_is(sample_pair):
    """A CXDataset (and a DataFrame) is registered in an embedded DuckDB: its times as naive UTC,
    its labels as text, its rows numbered in order; the reductions then give the Source's numbers."""
    source, dataset = sample_pair
    reductions_agree(source, dataset)
    assert_same(mx.summarize(source, by="channel", period="Q"), mx.summarize(dataset.responses, by="channel", period="Q"))
    assert cx.engine.as_source(dataset) is cx.engine.as_source(dataset)  # registered once per dataset


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_messy_exports_lose_exactly_the_rows_the_generator_dirtied(messy_folders, fmt):
    folders, truth = messy_folders
    with cx.connect(folders[fmt]) as source:
        rejected = source.accounting()["rejected"]
        assert all(rejected[t] == counts["rejected"] for t, counts in truth.messy_counts.items())
        assert source.accounting()["balanced"].all()
        by_reason = source.rejects_by_reason()
        assert by_reason["rows"].sum() == len(source.rejects) and by_reason["rows"].is_monotonic_decreasing


def typed_messy_copy(folder, every_channel_cleaned: bool = False):
    """The sample as typed Parquet with faults a typed export can carry: padded, blank and missing
    ids, blank text, labels to normalize, missing times, NaN and negative money, out-of-range and fractional
    scores, unknown references and repeated keys."""
    shutil.copytree(SAMPLE, folder)
    tx = pd.read_parquet(folder / "transactions.parquet")
    tx["channel"] = tx["channel"].astype("str")
    tx.loc[::97, "customer_id"] = " " + tx.loc[::97, "customer_id"] + "\t"   # cleaned, kept
    tx.loc[5::211, "channel"] = "In-Store"                                    # cleaned, kept
    tx.loc[3::229, "location_id"] = "\n" + tx.loc[3::229, "location_id"]      # cleaned, kept
    tx.loc[9::233, "transaction_id"] = tx.loc[9::233, "transaction_id"] + "\r"  # cleaned, kept
    tx.loc[7::307, "revenue"] = float("nan")                                  # missing revenue
    tx.loc[11::401, "revenue"] = -5.0                                         # below 0
    tx.loc[13::503, "customer_id"] = "C-unknown"                              # unknown reference
    tx.loc[17::601, "location_id"] = None                                     # missing id
    tx.loc[19::701, "occurred_at"] = pd.NaT                                   # missing time
    if every_channel_cleaned:
        tx["channel"] = tx["channel"].str.upper()
    tx = pd.concat([tx, tx.iloc[[3, 50, 700]]], ignore_index=True)            # repeated keys
    tx.to_parquet(folder / "transactions.parquet")
    r = pd.read_parquet(folder / "responses.parquet")
    r["nps"] = r["nps"].astype("float64")
    r.loc[::89, "nps"] = 7.5                                                  # not whole
    r.loc[3::97, "csat"] = 9                                                  # outside 1-5
    r.loc[5::103, "location_id"] = "L9999"                                    # unknown reference
    r.loc[::211, ["nps", "csat", "ces"]] = None                               # no score
    r.loc[7::113, "customer_id"] = ""                                         # blank: kept as missing
    r.loc[9::127, "comment"] = "  "                                           # blank: kept as missing
    r.to_parquet(folder / "responses.parquet")
    return folder


def copied_dataset(folder, monkeypatch):
    """The folder loaded with typed sources copied when checked (as CSVs are), not read in place."""
    with monkeypatch.context() as patch:
        patch.setattr(backends, "READ_IN_PLACE", False)
        return cx.load_dataset(folder)


@pytest.mark.parametrize("every_channel_cleaned", [False, True])
def test_typed_parquet_read_in_place_agrees_with_a_copy(tmp_path, monkeypatch, every_channel_cleaned):
    folder = typed_messy_copy(tmp_path / "typed", every_channel_cleaned)
    with cx.connect(folder) as source:
        dataset = copied_dataset(folder, monkeypatch)
        tables_and_rejects_agree(source, dataset)
        reductions_agree(source, dataset)
        stored = source.con.table("cx_transactions_checked").count().execute()
        kept = source.con.list_tables()
        assert source.accounting().loc["transactions", "rejected"] > 0
    if every_channel_cleaned:  # most rows needed cleaning: the accepted rows are stored after all
        assert "cx_transactions_valid" in kept
    else:  # only the exceptions are stored; the clean rows are read from the file
        assert "cx_transactions_valid" not in kept and 0 < stored < len(dataset.transactions) / 10


def padded_copy(folder, fmt: str):
    """The sample with white space an engine's own trim leaves (no-break, em and ideographic spaces,
    a line separator, the \\x1f separator) around ids, labels, times and numbers; in CSV the numbers
    and times are text too. Python strips all of it, and so must the engines; wide white space
    around a number makes it no number, as in pandas."""
    shutil.copytree(SAMPLE, folder)
    tx = pd.read_parquet(folder / "transactions.parquet")
    r = pd.read_parquet(folder / "responses.parquet")
    tx["channel"] = tx["channel"].astype("str")
    original = tx.copy()
    tx.loc[::97, "customer_id"] = "\u00a0" + tx.loc[::97, "customer_id"] + "\u3000"   # cleaned, kept
    tx.loc[3::229, "location_id"] = tx.loc[3::229, "location_id"] + "\x1f"            # cleaned, kept
    tx.loc[9::233, "transaction_id"] = "\u2003" + tx.loc[9::233, "transaction_id"]    # cleaned, kept
    tx.loc[5::211, "channel"] = "In\u00a0Store\u2028"                                 # normalised, kept
    tx.loc[13::503, "customer_id"] = "\u00a0"                                          # missing customer_id
    r.loc[9::127, "comment"] = "\u00a0\u3000"                                          # blank: kept as missing
    r.loc[7::113, "customer_id"] = "\u2028"                                            # blank: kept as missing
    wide = tx.index[(tx == original).all(axis=1)][::239]
    tx.loc[wide, "transaction_id"] = "é" + tx.loc[wide, "transaction_id"] + "中"           # kept as it is
    if fmt == "csv":
        for frame, stamp in ((tx, "occurred_at"), (r, "responded_at")):
            frame[stamp] = frame[stamp].astype("str")
            frame.loc[1::89, stamp] = "\u3000" + frame.loc[1::89, stamp] + "\u00a0"   # cleaned, kept
            frame.loc[2::401, stamp] = "\x01" + frame.loc[2::401, stamp]                # not a valid timestamp
        tx["revenue"] = tx["revenue"].astype("str")
        tx.loc[2::97, "revenue"] = " " + tx.loc[2::97, "revenue"] + "\t"              # kept (ASCII white space)
        tx.loc[4::301, "revenue"] = "\u00a0" + tx.loc[4::301, "revenue"]              # not a number
        tx.loc[6::307, "revenue"] = "\u00a0"                                           # missing revenue
        r["nps"] = r["nps"].astype("Int8").astype("str")
        r.loc[8::131, "nps"] = "\x1f" + r.loc[8::131, "nps"]                           # not a number
        for column, frame in (("revenue", tx), ("nps", r)):  # what an engine's cast reads and pandas not, or
            tricky = ["inf", "-Infinity", "NaN", "1_000", "1d", " 5f", "1e400", "0x10", "0x1p3", "7.5", "+7", ".5e1"]
            frame.loc[frame.index[10::53][:len(tricky)], column] = tricky               # the other way round
        stamps = ["2024-03-01T10:00:00.123456789Z", "2024-03-01T10:00:00+02", "2024-03-01 10:00:00+0200",
                  "2024-03-01T10:00:00-05:30", "2024-03-01T10:00:00.5", "now", "today", "epoch"]
        tx.loc[tx.index[12::59][:len(stamps)], "occurred_at"] = stamps                  # offsets, fractions
        r.loc[r.index[12::59][:len(stamps)], "responded_at"] = stamps
        tx.loc[tx.index[14::61][:3], "channel"] = ["REVIEW", "Social", "E-Mail"]        # normalised, or not
    for name, frame in (("transactions", tx), ("responses", r)):
        (folder / f"{name}.parquet").unlink()
        frame.to_csv(folder / f"{name}.csv", index=False) if fmt == "csv" else frame.to_parquet(folder / f"{name}.parquet")
    return folder


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_unicode_white_space_is_stripped_as_python_strips_it(tmp_path, monkeypatch, fmt):
    folder = padded_copy(tmp_path / fmt, fmt)
    with cx.connect(folder) as source:
        dataset = copied_dataset(folder, monkeypatch)
        tables_and_rejects_agree(source, dataset)
        reasons = set(dataset.rejects["reason"])
        padded = source.fetch("transactions")["customer_id"]
        assert padded.str.strip().eq(padded).all() and padded.str.match(r"^C\d+$").all()
        if fmt == "parquet":  # an id that begins or ends with a wide character is read in place, not stored
            stored = source.con.table("cx_transactions_checked")
            assert stored.filter(stored["transaction_id"].startswith("é")).count().execute() == 0
            assert dataset.transactions["transaction_id"].str.startswith("é").sum() > 100
    assert "missing customer_id" in reasons and "unknown customer_id" not in reasons
    if fmt == "csv":
        assert {"revenue is not a number", "missing revenue", "nps is not a number", "revenue is not a finite number",
                "nps is not a whole number", f"occurred_at {NOT_ISO}", f"responded_at {NOT_ISO}"} <= reasons
        numbers = source.fetch("transactions")["revenue"]
        assert numbers.notna().all() and np.isfinite(numbers).all()  # 1_000, 1d, 0x10, NaN: none read
        assert len(dataset.rejects) < len(dataset.transactions) / 50  # the padded ids, times and labels were kept


def test_the_white_space_engines_strip_is_what_python_strips():
    assert checks.WHITESPACE == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def test_times_with_fractions_of_a_second_count_in_whole_seconds(tmp_path):
    """Sub-second times: a purchase in the same whole second as the first one is not "after" it
    (seconds are rounded down; DuckDB's epoch cast to an integer would round 10.6 s up to 11), and
    the next purchase keeps its fraction."""
    folder = tmp_path / "subsecond"
    shutil.copytree(SAMPLE, folder)
    rng = np.random.default_rng(5)
    tx = pd.read_parquet(folder / "transactions.parquet")
    tx["occurred_at"] += pd.to_timedelta(rng.integers(0, 1_000_000, len(tx)), unit="us")
    earliest = tx.sort_values("occurred_at").groupby("customer_id").head(2).groupby("customer_id")
    pairs = []
    for customer, rows in list(earliest)[:200]:  # a first and second purchase 0.4 s and 0.6 s into one second
        if len(rows) == 2:
            second = rows["occurred_at"].iloc[0].floor("s")
            tx.loc[rows.index, "occurred_at"] = [second + pd.Timedelta("400ms"), second + pd.Timedelta("600ms")]
            pairs.append(customer)
    tx.to_parquet(folder / "transactions.parquet")
    with cx.connect(folder) as source:
        table = retention.customer_table(source).set_index("customer_id")
    paired = table.loc[pairs]
    assert (paired["anchor_at"].dt.microsecond == 400_000).all()
    assert (paired["next_purchase_at"].isna() | (paired["next_purchase_at"].dt.floor("s")
                                                 > paired["anchor_at"].dt.floor("s"))).all()
    later = table["next_purchase_at"].dropna()
    assert (later.dt.microsecond != 0).mean() > 0.99


def test_rejects_stay_on_the_engine_as_a_table(messy_folders):
    folders, _ = messy_folders
    with cx.connect(folders["csv"]) as source:
        assert "cx_rejects" in source.con.list_tables()
        on_engine = source.rejects_table.count().execute()
        assert on_engine == len(source.rejects) > 0


def duckdb_file_of(folder: Path, file: Path):
    """A DuckDB file holding the folder's Parquet tables, one base table each; returns the open connection."""
    con = duckdb.connect(str(file))
    for name in schema.TABLE_ORDER:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{folder / f'{name}.parquet'}')")
    return con


def test_a_duckdb_database_file_with_canonical_tables(tmp_path):
    file = tmp_path / "brand.duckdb"
    duckdb_file_of(SAMPLE, file).close()
    with cx.connect(f"duckdb:///{file}") as source:
        dataset = cx.load_dataset(SAMPLE)
        for name in schema.TABLE_ORDER:
            assert_same(source.fetch(name), dataset.table(name))
        assert_same(revenue.location_panel(source), revenue.location_panel(dataset))


def test_a_duckdb_database_file_is_checked_in_place_like_its_parquet_twin(tmp_path):
    """Base tables of a DuckDB file are read in place (numbered by rowid) and only their exceptions
    stored; a view is numbered in scan order and copied. Either way: the results of its Parquet twin."""
    folder = typed_messy_copy(tmp_path / "typed")
    file = tmp_path / "messy.duckdb"
    with duckdb.connect(str(file)) as con:
        for name in schema.TABLE_ORDER:
            parquet = folder / f"{name}.parquet"
            if name == "employee_experience":
                con.execute(f"CREATE TABLE ex_store AS SELECT * FROM read_parquet('{parquet}')")
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM ex_store")
            else:
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{parquet}')")
    with cx.connect(f"duckdb:///{file}") as source:
        dataset = cx.load_dataset(folder)  # (its Parquet files read in place too)
        for name in schema.TABLE_ORDER:
            assert_same(source.fetch(name), dataset.table(name))
        pd.testing.assert_frame_equal(source.rejects.drop(columns="source"), dataset.rejects.drop(columns="source"))
        pd.testing.assert_frame_equal(source.accounting().drop(columns="source"),
                                      dataset.accounting().drop(columns="source"))
        reductions_agree(source, dataset)
        stored = {name: source.con.table(f"cx_{name}_checked").count().execute()
                  for name in ("transactions", "employee_experience")}
        read = source.read["employee_experience"]
    assert 0 < stored["transactions"] < len(dataset.transactions) / 10  # the exceptions only
    assert stored["employee_experience"] == read  # the view: every checked row


def test_a_duckdb_table_whose_rowids_do_not_number_its_rows_is_copied_and_numbered_in_order(tmp_path):
    """A DELETE leaves gaps in rowids, and a column named rowid hides DuckDB's: such tables are
    numbered in scan order, as their Parquet export is, so rejects name the same rows."""
    folder = typed_messy_copy(tmp_path / "typed")
    file, export = tmp_path / "gaps.duckdb", tmp_path / "export"
    export.mkdir()
    with duckdb_file_of(folder, file) as con:
        con.execute("DELETE FROM transactions WHERE rowid % 7 = 3")  # gaps in the rowids
        con.execute("ALTER TABLE responses ADD COLUMN RowId INTEGER DEFAULT 7")  # a column hiding rowid
        for name in schema.TABLE_ORDER:
            con.execute(f"COPY {name} TO '{export / f'{name}.parquet'}'")
    with cx.connect(f"duckdb:///{file}") as source:
        dataset = cx.load_dataset(export)
        pd.testing.assert_frame_equal(source.rejects.drop(columns="source"), dataset.rejects.drop(columns="source"))
        pd.testing.assert_frame_equal(source.accounting().drop(columns="source"),
                                      dataset.accounting().drop(columns="source"))
        for name in schema.TABLE_ORDER:
            assert_same(source.fetch(name), dataset.table(name))
        stored = {name: (source.con.table(f"cx_{name}_checked").count().execute(), source.read[name])
                  for name in ("transactions", "responses", "customers")}
    assert stored["transactions"][0] == stored["transactions"][1]  # copied: every checked row
    assert stored["responses"][0] == stored["responses"][1]
    assert stored["customers"][0] < stored["customers"][1]  # untouched: read in place, exceptions stored


def test_customers_are_told_apart_by_a_hash_only_where_that_is_exact(sample_pair, tmp_path):
    from cxresearch.engine import reductions

    source, _dataset = sample_pair
    assert reductions._customer_hash_is_exact(source)  # so the sample's reductions go by the hash
    folder = tmp_path / "no_customers"
    shutil.copytree(SAMPLE, folder)
    (folder / "customers.parquet").unlink()
    with cx.connect(folder) as by_id:  # no reference check on customer_id: the id itself is the key
        assert not reductions._customer_hash_is_exact(by_id)
        assert_same(revenue.revenue_summary(by_id), revenue.revenue_summary(source))
        assert_same(retention.cohort_matrix(by_id), retention.cohort_matrix(source))
        for anchor in ("first_purchase", "response"):
            assert_same(retention.customer_table(by_id, anchor=anchor).drop(columns="segment"),
                        retention.customer_table(source, anchor=anchor).drop(columns="segment"))


@pytest.mark.parametrize("values, repeated", [(["a", "b", "c"], False), (["b", "a", "c", "a"], True),
                                              (["a", None, "b", None], False), ([], False)])
def test_repeats_finds_a_value_that_occurs_twice_by_value_and_by_hash(values, repeated):
    import ibis

    from cxresearch.engine.rules import has_repeated_keys, hash64, repeats

    con = ibis.duckdb.connect()
    t = con.create_table("keys", pd.DataFrame({"key": pd.Series(values, dtype="str")}))
    assert repeats(t["key"]).execute() == repeated
    assert has_repeated_keys(t, "key").execute() == repeated  # (by hash, nulls left out first)
    present = t.filter(t["key"].notnull())
    assert repeats(hash64(present["key"])).execute() == repeated


def test_duckdb_takes_memory_and_thread_limits():
    with cx.connect(SAMPLE, memory_limit="1GB", threads=1) as source:
        threads, memory = source.con.raw_sql(
            "SELECT current_setting('threads'), current_setting('memory_limit')").fetchone()
        assert threads == 1 and memory.replace(" ", "") in ("953.6MiB", "1.0GB", "1GB")
        assert source.accounting()["balanced"].all()


def test_duckdb_spills_to_a_folder_made_only_when_needed_and_removed_at_close(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with cx.connect(SAMPLE) as source:  # the sample fits in memory: nothing spills, no folder is made
        spill = Path(source.con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0])
        private = spill.parent  # one per user, readable by that user only
        assert private.parent == tmp_path and private.name.startswith("cxresearch-duckdb-")
        assert private.stat().st_mode & 0o777 == 0o700
        assert list(private.iterdir()) == []  # a kernel killed here leaves nothing behind
        source.con.raw_sql("SET memory_limit = '64MB'")
        source.con.raw_sql("SELECT count(*) FROM (SELECT DISTINCT md5(range::VARCHAR) FROM range(4000000))").fetchall()
        assert spill.is_dir()  # beyond the limit DuckDB made it
    assert list(private.iterdir()) == []
    private.chmod(0o755)  # a folder others can read is refused, not used
    with pytest.raises(PermissionError, match="readable by others"):
        cx.connect(SAMPLE)


def test_connection_strings_pick_the_engine(tmp_path):
    assert isinstance(cx.connect(f"pandas:{SAMPLE}"), cx.CXDataset)
    dataset = cx.load_dataset(SAMPLE)
    assert cx.connect(dataset) is dataset
    with pytest.raises(cx.IngestError, match="not a folder"):
        cx.connect(tmp_path / "nowhere")
    with pytest.raises(cx.IngestError, match="no such DuckDB file"):
        cx.connect(f"duckdb:///{tmp_path / 'missing.duckdb'}")


def test_unsupported_period_on_an_engine_is_a_clear_error(sample_pair):
    with pytest.raises(ValueError, match="not supported on an engine"):
        mx.summarize(sample_pair[0], period="2Q")


# -- Spark ---------------------------------------------------------------------------------------------

def _spark_or_skip():
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install '.[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17+ on PATH")
    warnings.filterwarnings("ignore", category=FutureWarning)
    return engine.spark_session("local[2]")


@pytest.fixture(scope="module")
def spark():
    session = _spark_or_skip()
    session.sparkContext.setLogLevel("ERROR")
    yield session


@pytest.mark.spark
@pytest.mark.slow
def test_spark_agrees_with_duckdb_on_messy_csv(spark, messy_folders):
    folders, _ = messy_folders
    source = cx.connect(folders["csv"], spark=spark)
    assert source.engine == "spark"
    with cx.connect(folders["csv"]) as duck:
        tables_and_rejects_agree(source, duck.to_dataset())
        reductions_agree(source, duck, every_grouping=False)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_strips_unicode_white_space_as_duckdb_does(spark, tmp_path):
    folder = padded_copy(tmp_path / "csv", "csv")
    tables_and_rejects_agree(cx.connect(folder, spark=spark), cx.load_dataset(folder))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_parquet_and_the_spark_prefix(spark, messy_folders):
    folders, _ = messy_folders
    source = cx.connect(f"spark:{folders['parquet']}")
    dataset = cx.load_dataset(folders["parquet"])
    pd.testing.assert_frame_equal(source.accounting(), dataset.accounting())
    assert_same(revenue.location_panel(source), revenue.location_panel(dataset))
    other = cx.connect(SAMPLE, spark=spark)  # a second Source on the same session keeps to its own views
    assert other.table("transactions").count().execute() != len(dataset.transactions)
    assert source.table("transactions").count().execute() == len(dataset.transactions)
    assert_same(revenue.location_panel(source), revenue.location_panel(dataset))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_applies_time_zones_date_formats_and_qualtrics_as_duckdb_does(spark, tmp_path):
    """The pre-steps and local times are the same code on every engine: DST edges included."""
    from .conftest import FIXTURES, write_brand

    folder = write_brand(tmp_path / "b")
    (folder / "transactions.csv").write_text(
        "transaction_id;customer_id;location_id;occurred_at;revenue\n"
        "T1;C1;L1;27/10/2024 02:30;12.5\nT2;C1;L1;31/03/2024 02:30;1\nT3;C2;L2;5/2/2024 14:30;2\n"
        "T4;C3;L3;2024-02-05;3\n")
    (folder / "responses.csv").unlink()
    shutil.copy(FIXTURES / "qualtrics_export.csv", folder / "survey.csv")
    qualtrics = yaml.safe_load((FIXTURES / "qualtrics_mapping.yaml").read_text())["responses"]
    mapping = {"timezone": "Europe/Berlin", "transactions": {"delimiter": ";", "date_format": "%d/%m/%Y %H:%M"},
               "responses": qualtrics | {"file": "survey.csv", "format": "qualtrics"}}
    with cx.connect(folder, mapping=mapping) as duck:
        expected = duck.to_dataset()
    on_spark = cx.connect(folder, spark=spark, mapping=mapping)
    tables_and_rejects_agree(on_spark, expected)
    assert expected.transactions["occurred_at"].tolist()[:2] == [pd.Timestamp("2024-10-27 00:30", tz="UTC"),
                                                                 pd.Timestamp("2024-03-31 01:30", tz="UTC")]
    reasons = set(expected.rejects["reason"])  # (the export's stores and customers are not this brand's)
    assert {"Qualtrics survey preview", "unknown location_id", "occurred_at is not a valid timestamp"} <= reasons


@pytest.mark.spark
@pytest.mark.slow
def test_spark_rejects_every_bad_row_as_duckdb_does(spark, tmp_path):
    """Every row of the ingest rule tests, all in one brand: the same rejects on Spark as on DuckDB."""
    from .conftest import CLEAN, write_brand
    from .test_ingest import BAD_ROWS

    texts = dict(CLEAN)
    for table, row, _column, _reason in BAD_ROWS:
        texts[table] = texts[table] + row + "\n"
    folder = write_brand(tmp_path / "b", **texts)
    expected = cx.load_dataset(folder)
    tables_and_rejects_agree(cx.connect(folder, spark=spark), expected)
    found = set(zip(expected.rejects["table"], expected.rejects["column"], expected.rejects["reason"]))
    assert {(table, column, reason) for table, _row, column, reason in BAD_ROWS} <= found
