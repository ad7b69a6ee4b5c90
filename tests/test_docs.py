"""The repository explains itself: its documents link only to files inside it, and the top-level API
carries numpydoc docstrings that name every parameter."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import cxresearch as cx

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", ROOT / "data" / "README.md",
             ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted((ROOT / "cxresearch").rglob("*.py"))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_link_only_inside_the_repository(document):
    text = document.read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" in target:
            continue
        resolved = (document.parent / target).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{document.name} links to {target}"
    assert "../shared" not in text and "DESIGN.md" not in text


def test_docstrings_point_at_no_file_outside_the_repository():
    for source in SOURCES:
        text = source.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, source


TOP_LEVEL = [name for name in cx.__all__ if inspect.isfunction(getattr(cx, name))]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_functions_have_numpydoc_docstrings(name):
    function = getattr(cx, name)
    doc = inspect.getdoc(function) or ""
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc, f"cx.{name}: numpydoc sections missing"
    for parameter in inspect.signature(function).parameters:
        assert re.search(rf"^{parameter}\b|, {parameter}\b", doc, re.M), f"cx.{name}: parameter {parameter} undocumented"
