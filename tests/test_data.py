"""The committed sample and its documentation: deterministic, clean, and described by the schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cxresearch as cx
from cxresearch import schema

DATA = Path(__file__).resolve().parents[1] / "data"


def test_data_readme_carries_the_current_data_dictionary():
    readme = (DATA / "README.md").read_text()
    assert readme.rstrip().endswith(schema.data_dictionary().rstrip()), (
        "data/README.md is out of date: regenerate its data dictionary from cxresearch.schema.data_dictionary()")


def test_sample_loads_clean_and_is_what_the_generator_makes():
    loaded = cx.load_dataset(DATA / "sample")
    assert loaded.rejects.empty and loaded.accounting()["balanced"].all()
    truth = cx.synth.Truth.load(DATA / "sample" / "truth.json")
    regenerated, again = truth.regenerate()
    for table in schema.TABLE_ORDER:
        pd.testing.assert_frame_equal(loaded.table(table), regenerated.table(table))
    # The truth is a float sum; vectorised summation may differ in the last bit between CPUs.
    assert again.retention_gap_pp == pytest.approx(truth.retention_gap_pp, rel=1e-12)
