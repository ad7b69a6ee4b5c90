"""The runner's papermill engine (`execution.SparingEngine`): fewer saves of a running notebook, the
same executed notebook, and the final state always on disk, a failure's included."""

from __future__ import annotations

import nbformat
import papermill as pm
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cxresearch.reports import execution


def _notebook(path, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def saves(monkeypatch):
    """How many times papermill writes the output notebook."""
    import papermill.engines

    written = []
    original = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (written.append(path), original(nb, path)))
    return written


def test_quick_cells_are_saved_once_at_the_start_and_once_at_the_end_with_every_output(tmp_path, saves):
    cells = [new_markdown_cell("# twenty quick cells")] + [new_code_cell(f"print({i})") for i in range(20)]
    source = _notebook(tmp_path / "in.ipynb", cells)
    pm.execute_notebook(str(source), str(tmp_path / "plain.ipynb"), progress_bar=False, kernel_name="python3")
    plain = len(saves)
    saves.clear()
    pm.execute_notebook(str(source), str(tmp_path / "out.ipynb"), progress_bar=False, kernel_name="python3",
                        engine_name=execution.register())
    assert plain >= 2 * len(cells) and len(saves) <= 4  # papermill's: two per cell; here: start, end (and a second's)
    out, reference = nbformat.read(tmp_path / "out.ipynb", 4), nbformat.read(tmp_path / "plain.ipynb", 4)
    assert [c.get("outputs") for c in out.cells] == [c.get("outputs") for c in reference.cells]
    assert {c.metadata.papermill["status"] for c in out.cells} == {"completed"}
    assert all(c.metadata.papermill["duration"] is not None for c in out.cells)


def test_a_slow_notebook_is_saved_while_it_runs(tmp_path, saves):
    cells = [new_code_cell("import time; time.sleep(0.4)") for _ in range(6)]
    pm.execute_notebook(str(_notebook(tmp_path / "in.ipynb", cells)), str(tmp_path / "out.ipynb"), progress_bar=False,
                        kernel_name="python3", engine_name=execution.register())
    assert len(saves) >= 3  # 2.4 s of cells: saved during the run, not only at its ends


def test_a_failing_notebook_ends_on_disk_with_its_error(tmp_path, saves):
    cells = [new_code_cell("x = 1"), new_code_cell("raise ValueError('no such location')"), new_code_cell("x")]
    with pytest.raises(pm.PapermillExecutionError, match="no such location"):
        pm.execute_notebook(str(_notebook(tmp_path / "in.ipynb", cells)), str(tmp_path / "out.ipynb"),
                            progress_bar=False, kernel_name="python3", engine_name=execution.register())
    code = [c for c in nbformat.read(tmp_path / "out.ipynb", 4).cells if c.cell_type == "code"]  # (papermill adds a note)
    assert [c.metadata.papermill["status"] for c in code] == ["completed", "failed", "pending"]
    assert code[1].outputs[0]["ename"] == "ValueError"
