"""Qualtrics exports: three header rows, the account time zone, choice text, test/spam responses."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.io import qualtrics

from .conftest import write_brand


@pytest.fixture
def export(fixtures):
    return fixtures / "qualtrics_export.csv"


@pytest.fixture
def mapping(fixtures):
    return fixtures / "qualtrics_mapping.yaml"


def test_reads_every_real_response_and_sets_aside_the_rest(export, mapping):
    ds = cx.read_qualtrics(export, mapping, locations=["L0001", "L0002", "L0003"])
    assert ds.responses["response_id"].tolist() == ["R_1a2B3c4D5e6F7g8", "R_2b3C4d5E6f7G8h9",
                                                    "R_4d5E6f7G8h9I0j1", "R_5e6F7g8H9i0J1k2"]
    reasons = ds.rejects.set_index("row")["reason"].to_dict()
    assert reasons == {3: "Qualtrics survey preview", 7: "Qualtrics flagged as spam",
                       6: "no score: needs at least one of nps, csat, ces", 8: "unknown location_id"}
    acc = ds.accounting().loc["responses"]
    assert (acc["read"], acc["accepted"], acc["rejected"]) == (8, 4, 4)


def test_choice_text_becomes_scores(export, mapping):
    got = cx.read_qualtrics(export, mapping).responses.set_index("response_id")
    first, second, third = got.loc["R_1a2B3c4D5e6F7g8"], got.loc["R_2b3C4d5E6f7G8h9"], got.loc["R_4d5E6f7G8h9I0j1"]
    assert (first["nps"], first["csat"], first["ces"]) == (10, 5, 7)  # "10 - Extremely likely", "Extremely satisfied"
    assert (second["nps"], second["csat"], second["ces"]) == (6, 2, 3)  # "Somewhat dissatisfied", "Somewhat disagree"
    assert (third["nps"], third["csat"], third["ces"]) == (0, 1, 1)  # "0 - Not at all likely"
    assert (first["attr_staff"], first["attr_speed"]) == (5, 4)


def test_columns_are_found_by_name_question_text_or_import_id(export, mapping):
    got = cx.read_qualtrics(export, mapping).responses.set_index("response_id")
    assert got.loc["R_2b3C4d5E6f7G8h9", "channel"] == "phone"  # custom label "Call centre" via values
    assert got.loc["R_1a2B3c4D5e6F7g8", "customer_id"] == "C0001"  # ExternalReference by default
    assert got.loc["R_4d5E6f7G8h9I0j1", "comment"].endswith('"as usual".')


def test_recorded_date_is_read_in_the_exports_time_zone(export, mapping):
    got = cx.read_qualtrics(export, mapping).responses.set_index("response_id")["responded_at"]
    assert got["R_1a2B3c4D5e6F7g8"] == pd.Timestamp("2024-03-01 16:14:03", tz="UTC")  # MST, UTC-7
    assert got["R_4d5E6f7G8h9I0j1"] == pd.Timestamp("2024-03-10 18:06:30", tz="UTC")  # MDT, UTC-6
    # 01:31 on 2024-11-03 happens twice in Denver; the first (daylight) one is taken.
    assert got["R_8h9I0j1K2l3M4n5"] == pd.Timestamp("2024-11-03 07:31:00", tz="UTC")


def test_mapping_time_zone_overrides_the_export(export, fixtures):
    import yaml
    mapping = yaml.safe_load((fixtures / "qualtrics_mapping.yaml").read_text())["responses"]
    mapping["timezone"] = "UTC"
    got = cx.read_qualtrics(export, mapping).responses.set_index("response_id")["responded_at"]
    assert got["R_1a2B3c4D5e6F7g8"] == pd.Timestamp("2024-03-01 09:14:03", tz="UTC")


def test_personal_metadata_is_not_loaded(export, mapping):
    ds = cx.read_qualtrics(export, mapping)
    assert "IPAddress" in ds.ignored_columns["responses"]
    assert not any(c in ds.responses for c in ("IPAddress", "RecipientEmail", "LocationLatitude"))


def test_a_folder_can_name_a_qualtrics_export_for_responses(export, fixtures, tmp_path):
    import yaml
    locations = "location_id,name\nL0001,One\nL0002,Two\nL0003,Three\n"
    folder = write_brand(tmp_path / "b", locations=locations, customers=None, responses=None, transactions=None)
    shutil.copy(export, folder / "survey.csv")
    mapping = yaml.safe_load((fixtures / "qualtrics_mapping.yaml").read_text())
    mapping["responses"] |= {"file": "survey.csv", "format": "qualtrics"}
    ds = cx.load_dataset(folder, mapping)
    assert len(ds.responses) == 4 and ds.accounting()["balanced"].all()


def test_a_plain_csv_is_not_taken_for_an_export(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(cx.IngestError, match="ImportId"):
        cx.read_qualtrics(plain, {})


def test_a_mapped_column_missing_from_the_export_is_an_error(export):
    with pytest.raises(cx.IngestError, match="'Q99'.*not in the export"):
        cx.read_qualtrics(export, {"columns": {"Q99": "nps"}})


def test_choice_to_number_leaves_unknown_text_for_validation():
    got = qualtrics.choice_to_number(pd.Series(["9", "10 - Extremely likely", "Very satisfied", "Meh", None]),
                                     qualtrics.CHOICE_LABELS["csat"])
    assert got.tolist()[:4] == ["9", "10", "5", "Meh"] and pd.isna(got.iloc[4])
