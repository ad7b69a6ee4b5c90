"""The `cxresearch` command: validate prints what loaded and the accounting; errors exit 2 with a message."""

from __future__ import annotations

import pandas as pd

from cxresearch.cli import main

from .conftest import with_row, write_brand


def test_validate_prints_the_accounting(brand, capsys):
    assert main(["validate", str(brand)]) == 0
    out = capsys.readouterr().out
    assert "3 locations, 3 customers, 5 responses, 4 transactions" in out
    assert "responses            read         5  accepted         5  rejected       0  ok" in out


def test_validate_lists_rejects_writes_them_and_strict_fails(tmp_path, capsys):
    folder = write_brand(tmp_path / "b", responses=with_row("responses", "R9,L1,2024-01-05,C1,in_store,act,11,,,,,"))
    out_csv = tmp_path / "rejects.csv"
    assert main(["validate", str(folder), "--rejects", str(out_csv), "--strict"]) == 1
    assert "nps outside 0-10" in capsys.readouterr().out
    assert pd.read_csv(out_csv)["row"].tolist() == [6]


def test_bad_folder_is_a_clear_error_with_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "validate" in capsys.readouterr().out
