"""Data flows one way: no module imports a later stage, and no two modules import each other.

The stages, in the order data flows (docs/design.md): the data model, ingest (and the synthetic
brand, another source of data), reduce, measures, models, reports. A module may import its own
stage or an earlier one, at the top or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cxresearch"
STAGES = {
    "schema": 0, "dataset": 0,
    "mapping": 1, "qualtrics": 1, "ingest": 1, "checks": 1, "engine": 1, "synth": 1,
    "reductions": 2,
    "metrics": 3, "compare": 3, "retention": 3, "revenue": 3, "journey": 3, "scorecard": 3,
    "models": 4,
    "brand": 5, "report": 5, "plots": 5, "reporting": 5, "cli": 5,
}
NAMES = ["data model", "ingest", "reduce", "measures", "models", "reports"]


def package_imports(module: str) -> set[str]:
    """The package modules `module` imports anywhere in its file (relative or absolute imports)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 0 and not base.startswith("cxresearch"):
                continue
            base = base.removeprefix("cxresearch").lstrip(".")
            if base:
                found.add(base.split(".")[0])
            else:  # from . import a, b
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("cxresearch."))
    return found & set(STAGES)


def test_every_module_has_a_stage():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(STAGES), "give new modules a stage here and in docs/design.md"


@pytest.mark.parametrize("module", sorted(STAGES))
def test_no_module_imports_a_later_stage(module):
    later = {m for m in package_imports(module) if STAGES[m] > STAGES[module]}
    assert not later, (f"{module} ({NAMES[STAGES[module]]}) imports a later stage: "
                       + ", ".join(f"{m} ({NAMES[STAGES[m]]})" for m in sorted(later)))


def test_no_import_cycles():
    graph = {module: package_imports(module) - {module} for module in STAGES}
    state: dict[str, str] = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(path + [module])
        state[module] = "open"
        for other in sorted(graph[module]):
            visit(other, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_the_layer_test_sees_a_later_import(tmp_path, monkeypatch):
    """The test itself can fail: a measure importing the reports is caught."""
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    (tmp_path / "metrics.py").write_text("from .brand import brand_results\nfrom . import schema\n")
    assert package_imports("metrics") == {"brand", "schema"}
