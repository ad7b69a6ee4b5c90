"""Reports are safe with hostile data: names and comments that carry HTML, script or contact data are
shown as text, never run, and contact data never reach the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CLEAN, write_brand

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('owned')</script>"


def hostile_brand(folder: Path) -> Path:
    locations = CLEAN["locations"].replace("Market Street", f'"Harbour {PAYLOAD}"').replace(
        "North,street", f'"North {SCRIPT}",street')
    responses = CLEAN["responses"].replace("Great staff", f'"Great staff {SCRIPT} mail me at ana@example.com, '
                                                          f'call +44 20 7946 0958, see https://evil.example/x"')
    return write_brand(folder, locations=locations, responses=responses)


@pytest.mark.parametrize("notebook,parameters", [
    ("10_location_deep_dive", {"location_id": "L1", "min_n": 1}),
    ("00_executive_summary", {"min_n": 1}),
])
def test_a_hostile_brand_renders_as_text(tmp_path, notebook, parameters):
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    data = hostile_brand(tmp_path / "brand")
    executed = tmp_path / f"{notebook}.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(executed), cwd=str(ROOT / "notebooks"),
                        parameters={"data": str(data)} | parameters, progress_bar=False, kernel_name="python3")
    page, _ = HTMLExporter(exclude_input=True).from_notebook_node(nbformat.read(executed, as_version=4))
    assert PAYLOAD not in page and "onerror=alert(1)>" not in page  # text, never a tag
    assert SCRIPT not in page and "<script>alert" not in page
    if notebook.startswith("10"):
        assert "Harbour &lt;img" in page and "Great staff" in page  # shown, as text
        assert "ana@example.com" not in page and "7946" not in page and "evil.example" not in page
