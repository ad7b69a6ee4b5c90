"""Importers: the Olist export becomes a data folder that loads with no rejects, and every source row is
accounted for (read = used + set aside, by reason).

The real-sample tests check the importer against plain pandas over the raw CSVs; they skip when the
sample is not beside the repository. The hand-made folder tests run everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.cli import main
from cxresearch.io import IngestError, importers

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "olist-4k"
real_sample = pytest.mark.skipif(not REAL.is_dir(), reason="the real Olist sample (../shared/realdata/olist-4k) is not "
                                 "here; a fresh clone without it skips these tests")


def raw(name: str, folder: Path = REAL) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def result():
    return cx.importers.olist(REAL)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    return result.write(tmp_path_factory.mktemp("olist") / "data")


# -- the real sample ---------------------------------------------------------------------------------

@real_sample
def test_counts_match_plain_pandas_over_the_raw_files(result):
    items, orders = raw("olist_order_items_dataset"), raw("olist_orders_dataset")
    customers, reviews = raw("olist_customers_dataset"), raw("olist_order_reviews_dataset")
    with_items = orders[orders["order_id"].isin(items["order_id"])]
    persons = with_items.merge(customers, on="customer_id")["customer_unique_id"].nunique()
    rated = reviews[reviews["order_id"].isin(items["order_id"])].drop_duplicates(["review_id", "order_id"])
    tables = result.tables
    assert len(tables["transactions"]) == len(items[["order_id", "seller_id"]].drop_duplicates())
    assert len(tables["responses"]) == len(rated)
    assert len(tables["customers"]) == persons
    assert len(tables["locations"]) == items["seller_id"].nunique()
    revenue = (items["price"].astype(float) + items["freight_value"].astype(float)).sum()
    assert tables["transactions"]["revenue"].sum() == pytest.approx(revenue, abs=0.005)
    assert tables["responses"]["csat"].astype(int).sum() == rated["review_score"].astype(int).sum()
    commented = (rated["review_comment_title"].str.strip() != "") | (rated["review_comment_message"].str.strip() != "")
    assert tables["responses"]["comment"].notna().sum() == commented.sum()


@real_sample
def test_every_source_row_is_used_or_set_aside_with_a_reason(result):
    accounting = result.accounting()
    assert accounting["balanced"].all()
    for file in accounting.index:  # rows read are the file's rows, as pandas reads them
        assert accounting.loc[file, "read"] == len(raw(file.removesuffix(".csv"))), file
    orders, items = raw("olist_orders_dataset"), raw("olist_order_items_dataset")
    aside = result.set_aside().set_index(["file", "reason"])["rows"]
    assert aside["olist_orders_dataset.csv", "order without items"] == (~orders["order_id"].isin(items["order_id"])).sum()
    assert aside["olist_sellers_dataset.csv", "seller without items in these orders"] == \
        len(raw("olist_sellers_dataset")) - items["seller_id"].nunique()
    assert accounting.loc["olist_order_items_dataset.csv", "used"] == len(items)
    statuses = result.report[result.report["detail"].str.startswith("orders imported with order_status")]
    assert statuses["rows"].sum() == orders["order_id"].isin(items["order_id"]).sum()
    written_rows = result.report[result.report["step"] == "written"].set_index("source")["rows"]
    assert written_rows.to_dict() == {name: len(frame) for name, frame in result.tables.items()}
    assert "read = used + set aside" in result.summary() and "MISMATCH" not in result.summary()


@real_sample
def test_the_written_folder_loads_with_no_rejects(result, written):
    assert sorted(p.name for p in written.iterdir()) == ["customers.parquet", "import_report.json", "locations.parquet",
                                                         "responses.parquet", "transactions.parquet"]
    dataset = cx.load_dataset(written)
    assert len(dataset.rejects) == 0
    accounting = dataset.accounting()
    assert (accounting["read"] == accounting["accepted"]).all() and (accounting["rejected"] == 0).all()
    for name, frame in result.tables.items():
        assert accounting.loc[name, "accepted"] == len(frame)
    assert dataset.transactions["revenue"].sum() == pytest.approx(result.tables["transactions"]["revenue"].sum())


@real_sample
def test_sao_paulo_times_become_utc(result):
    tx = result.tables["transactions"].set_index("transaction_id")["occurred_at"]
    at = {order: tx[tx.index.str.startswith(order)].iloc[0] for order in
          ("bb953a084ab406da9e19dfdc06df0245", "ed015bb6d682598924fe6583022668c0", "fd2af1836362513c249c7ae85941141f")}
    assert at["bb953a084ab406da9e19dfdc06df0245"] == pd.Timestamp("2018-07-29 16:54:51Z")  # 13:54:51, UTC-3
    assert at["ed015bb6d682598924fe6583022668c0"] == pd.Timestamp("2018-01-14 20:36:07Z")  # 18:36:07, summer time UTC-2
    # 2018-02-17 23:43:05 came twice (summer time ended at midnight): the earlier instant, as the engine reads it
    assert at["fd2af1836362513c249c7ae85941141f"] == pd.Timestamp("2018-02-18 01:43:05Z")
    assert str(tx.dtype) == "datetime64[us, UTC]"


@real_sample
def test_each_response_names_a_purchase_of_its_customer_at_its_location(result):
    responses, tx = result.tables["responses"], result.tables["transactions"]
    linked = responses.merge(tx, on="transaction_id", how="left", suffixes=("", "_tx"))
    assert linked["customer_id_tx"].notna().all()
    assert (linked["customer_id"] == linked["customer_id_tx"]).all()
    assert (linked["location_id"] == linked["location_id_tx"]).all()
    assert responses["response_id"].is_unique and result.tables["locations"]["name"].is_unique


@real_sample
def test_the_command_writes_the_folder_and_refuses_a_full_one(tmp_path, capsys):
    out = tmp_path / "olist"
    assert main(["import", "olist", str(REAL), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read = used + set aside" in printed and f"cxresearch validate {out}" in printed
    assert main(["import", "olist", str(REAL), "--out", str(out)]) == 2
    assert "folder is not empty; pass --force" in capsys.readouterr().err
    assert main(["import", "olist", str(REAL), "--out", str(out), "--force"]) == 0


# -- a hand-made folder in Olist's layout --------------------------------------------------------------

def write_olist(folder: Path) -> Path:
    """A few rows in the release's layout, with one of each problem the importer sets aside."""
    folder.mkdir()
    tables = {
        "olist_orders_dataset": [
            ("order_id", "customer_id", "order_status", "order_purchase_timestamp"),
            ("O1", "C1", "delivered", "2018-01-14 18:36:07"),
            ("O2", "C2", "delivered", "2018-07-29 13:54:51"),
            ("O3", "C3", "canceled", "2018-03-01 10:00:00"),  # no items
            ("O4", "C9", "delivered", "2018-03-02 10:00:00"),  # a customer not in the customers file
        ],
        "olist_customers_dataset": [
            ("customer_id", "customer_unique_id", "customer_state"),
            ("C1", "P1", "SP"), ("C2", "P1", "RJ"), ("C3", "P3", "MG"), ("C5", "P5", "SP"),
        ],
        "olist_order_items_dataset": [
            ("order_id", "order_item_id", "product_id", "seller_id", "price", "freight_value"),
            ("O1", "1", "PA", "abcd1111", "10.00", "1.00"),
            ("O1", "2", "PB", "abcd1111", "5.00", "1.00"),
            ("O1", "3", "PA", "abcd2222", "20.00", "2.00"),  # O1's largest seller
            ("O2", "1", "PA", "abcd1111", "7.00", "1.00"),
            ("O2", "2", "PA", "zz999999", "3.00", "1.00"),  # a seller not in the sellers file
            ("O2", "3", "PA", "abcd1111", "abc", "1.00"),  # a price that is no number
            ("O4", "1", "PA", "abcd1111", "4.00", "1.00"),  # of an order set aside
            ("O9", "1", "PA", "abcd1111", "4.00", "1.00"),  # of an order not in the orders file
        ],
        "olist_sellers_dataset": [
            ("seller_id", "seller_zip_code_prefix", "seller_city", "seller_state"),
            ("abcd1111", "01000", "sao paulo", "SP"), ("abcd2222", "01001", "sao paulo", "SP"),
            ("ef990000", "20000", "rio de janeiro", "RJ"),  # no items
        ],
        "olist_order_reviews_dataset": [
            ("review_id", "order_id", "review_score", "review_comment_title", "review_comment_message",
             "review_creation_date", "review_answer_timestamp"),
            ("R1", "O1", "5", "Ótimo", "Chegou rápido ", "2018-01-20 00:00:00", "2018-01-21 10:00:00"),
            ("R1", "O2", "4", "", "", "2018-08-01 00:00:00", "2018-08-02 10:00:00"),  # one review, two orders
            ("R1", "O1", "5", "", "", "2018-01-20 00:00:00", "2018-01-21 10:00:00"),  # the same key again
            ("R3", "O3", "1", "", "", "2018-03-05 00:00:00", "2018-03-06 10:00:00"),  # of an order without items
            ("R4", "O9", "1", "", "", "2018-03-05 00:00:00", "2018-03-06 10:00:00"),  # of an unknown order
            ("R5", "O1", "7", "", "", "2018-01-20 00:00:00", "2018-01-21 10:00:00"),  # a score outside 1-5
            ("R6", "O2", "3", "", "  bom  ", "2016-10-16 00:00:00", ""),  # no answer time; created in the skipped hour
            ("R7", "O4", "2", "", "", "2018-03-05 00:00:00", "2018-03-06 10:00:00"),  # of an order set aside
        ],
        "olist_products_dataset": [
            ("product_id", "product_category_name"), ("PA", "beleza_saude"), ("PB", ""), ("PC", "pc_gamer"),
        ],
        "product_category_name_translation": [
            ("product_category_name", "product_category_name_english"), ("beleza_saude", "health_beauty"),
            ("pc_gamer", "pc_gamer"),
        ],
        "olist_order_payments_dataset": [("order_id", "payment_value"), ("O1", "39.00"), ("O2", "12.00")],
    }
    for name, (header, *rows) in tables.items():
        pd.DataFrame(rows, columns=header).to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_a_hand_made_folder_sets_rows_aside_with_their_reasons(tmp_path):
    result = importers.olist(write_olist(tmp_path / "olist"))
    aside = result.set_aside().groupby(["file", "reason"])["rows"].sum().to_dict()
    assert aside == {
        ("olist_orders_dataset.csv", "customer_id not in the customers file (or set aside there)"): 1,
        ("olist_orders_dataset.csv", "order without items"): 1,
        ("olist_customers_dataset.csv", "customer without imported orders"): 2,
        ("olist_order_items_dataset.csv", "item of an order not in the orders file"): 1,
        ("olist_order_items_dataset.csv", "item of an order set aside"): 1,
        ("olist_order_items_dataset.csv", "item whose seller is not in the sellers file"): 1,
        ("olist_order_items_dataset.csv", "price or freight_value missing, not a number or below 0"): 1,
        ("olist_sellers_dataset.csv", "seller without items in these orders"): 1,
        ("olist_order_reviews_dataset.csv", "duplicate (review_id, order_id)"): 1,
        ("olist_order_reviews_dataset.csv", "review of an order not in the orders file"): 1,
        ("olist_order_reviews_dataset.csv", "review of an order without items"): 1,
        ("olist_order_reviews_dataset.csv", "review of an order set aside"): 1,
        ("olist_order_reviews_dataset.csv", "review_score missing or not a whole number 1-5"): 1,
        ("olist_products_dataset.csv", "product without items in these orders"): 1,
        ("product_category_name_translation.csv", "category without products in these orders"): 1,
        ("olist_order_payments_dataset.csv", "payments not imported: revenue is the items' price + freight_value"): 2,
    }
    assert result.accounting()["balanced"].all()
    assert result.accounting()["used"].to_dict() == {
        "olist_orders_dataset.csv": 2, "olist_order_items_dataset.csv": 4, "olist_customers_dataset.csv": 2,
        "olist_sellers_dataset.csv": 2, "olist_order_reviews_dataset.csv": 3, "olist_products_dataset.csv": 2,
        "product_category_name_translation.csv": 1, "olist_order_payments_dataset.csv": 0}


def test_a_hand_made_folder_becomes_these_tables(tmp_path):
    result = importers.olist(write_olist(tmp_path / "olist"))
    tx = result.tables["transactions"].set_index("transaction_id")
    assert tx["revenue"].to_dict() == {"O1-abcd1111": 17.0, "O1-abcd2222": 22.0, "O2-abcd1111": 8.0}
    assert set(tx["customer_id"]) == {"P1"} and set(tx["channel"]) == {"web"}
    customers = result.tables["customers"]
    assert customers[["customer_id", "segment"]].values.tolist() == [["P1", "RJ"]]  # the state of the latest order
    assert customers["first_seen_on"].iloc[0] == pd.Timestamp("2018-01-14 20:36:07Z")
    locations = result.tables["locations"].set_index("location_id")
    assert locations["name"].to_dict() == {"abcd1111": "Sao Paulo seller abcd1", "abcd2222": "Sao Paulo seller abcd2"}
    assert set(locations["format"]) == {"health beauty"} and set(locations["region"]) == {"SP"}
    responses = result.tables["responses"].set_index("response_id")
    assert responses["location_id"].to_dict() == {"R1-O1": "abcd2222", "R1-O2": "abcd1111", "R6-O2": "abcd1111"}
    assert responses["transaction_id"].to_dict() == {"R1-O1": "O1-abcd2222", "R1-O2": "O2-abcd1111", "R6-O2": "O2-abcd1111"}
    assert responses["comment"].tolist()[0] == "Ótimo\nChegou rápido" and pd.isna(responses["comment"].iloc[1])
    assert responses.loc["R6-O2", "comment"] == "bom"
    # no answer time: the creation date, 00:00 of the day summer time began (a skipped hour): 01:00 local, 03:00 UTC
    assert responses.loc["R6-O2", "responded_at"] == pd.Timestamp("2016-10-16 03:00Z")
    assert responses.loc["R1-O1", "responded_at"] == pd.Timestamp("2018-01-21 12:00Z")
    notes = result.report[result.report["step"] == "note"].set_index("detail")["rows"]
    assert notes["responded_at from review_creation_date (no readable review_answer_timestamp)"] == 1
    assert notes["imported reviews whose review_id covers more than one order"] == 2
    assert notes["orders set aside with order_status canceled"] == 1


def test_a_hand_made_folder_writes_a_folder_that_loads_with_no_rejects(tmp_path):
    result = importers.olist(write_olist(tmp_path / "olist"))
    out = result.write(tmp_path / "data")
    dataset = cx.load_dataset(out)
    assert len(dataset.rejects) == 0 and (dataset.accounting()["read"] == dataset.accounting()["accepted"]).all()
    with pytest.raises(IngestError, match="folder is not empty"):
        result.write(out)
    (out / "responses.csv").write_text("stale\n")  # a table file of an earlier export: replaced, not read twice
    (out / "notes.txt").write_text("mine\n")
    result.write(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["customers.parquet", "import_report.json", "locations.parquet",
                                                     "notes.txt", "responses.parquet", "transactions.parquet"]


def test_a_folder_without_a_required_file_or_column_is_a_clear_error(tmp_path):
    folder = write_olist(tmp_path / "olist")
    (folder / "olist_order_reviews_dataset.csv").unlink()  # optional: no responses
    assert len(importers.olist(folder).tables["responses"]) == 0
    raw("olist_sellers_dataset", folder).drop(columns="seller_state").to_csv(folder / "olist_sellers_dataset.csv", index=False)
    with pytest.raises(IngestError, match="olist_sellers_dataset.csv: column.s. missing: seller_state"):
        importers.olist(folder)
    (folder / "olist_orders_dataset.csv").unlink()
    with pytest.raises(IngestError, match="olist_orders_dataset.csv: file missing"):
        importers.olist(folder)
    with pytest.raises(IngestError, match="not a folder"):
        importers.olist(tmp_path / "nowhere")


# -- the whole suite on the real sample ---------------------------------------------------------------

@real_sample
def test_the_suite_runs_on_the_real_sample_in_csat_terms(written, tmp_path):
    """Every report of reports.yaml on the imported sample is ok, in CSAT terms: no page speaks of NPS,
    promoters or detractors (deep dives for two sellers, to keep the test short; the fan-out's default
    covers the sellers with enough reviews, see test_the_fan_out_skips_locations_without_enough_responses)."""
    import json
    import re

    busiest = (cx.load_dataset(written).responses["location_id"].value_counts().index[:2]).tolist()
    root = Path(__file__).resolve().parents[1]
    code = main(["run", "--config", str(root / "reports.yaml"), "--data", str(written), "--out", str(tmp_path / "out"),
                 "--locations", ",".join(busiest), "--quiet"])
    assert code == 0
    latest = tmp_path / "out" / "latest"
    manifest = json.loads((latest / "manifest.json").read_text())
    assert {n["status"] for n in manifest["notebooks"]} == {"ok"} and len(manifest["notebooks"]) == 10
    for page in (latest / "html").glob("*.html"):
        text = re.sub(r"<(style|script)[^>]*>.*?</\1>|data:image[^\"']*|<[^>]+>", " ", page.read_text(), flags=re.S)
        assert not re.search(r"\bNPS\b|promoter|detractor", text), page.name
    summary = (latest / "html" / "00_executive_summary.html").read_text()
    assert "customer satisfaction (CSAT" in summary and "not estimated" in summary
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "out").iterdir())


@real_sample
def test_the_fan_out_skips_locations_without_enough_responses(written):
    from cxresearch.reports import runner

    config = runner.load_config(Path(__file__).resolve().parents[1] / "reports.yaml")
    config["notebooks"] = [e for e in config["notebooks"] if e.get("fan_out")]
    source = cx.connect(str(written))
    jobs = runner.plan(config, dataset=source)
    counts = source.responses["location_id"].value_counts()
    assert len(jobs) == int((counts >= 30).sum()) and len(jobs) < len(source.locations) / 10
    config["notebooks"][0]["fan_out"]["min_responses"] = 0
    assert len(runner.plan(config, dataset=source)) == len(source.locations)
