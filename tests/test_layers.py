"""Data flows one way: no module imports a later stage, and no two modules import each other.

The stages, in the order data flows (docs/design.md): the data model (`schema`), ingest (`io`), the
engine (validation and reductions), measures, models, the synthetic brand (which states its truth
with the measures' statistics) and reports (with the command line). A module may import its own
stage or an earlier one, at the top or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cxresearch"
STAGES = {"schema": 0, "io": 1, "engine": 2, "measures": 3, "models": 4, "synth": 5, "reports": 6, "cli": 6}
NAMES = ["data model", "ingest", "engine", "measures", "models", "synthetic brand", "reports"]


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        found[".".join(("cxresearch",) + parts)] = path
    return found


def stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGES.get(parts[1]) if len(parts) > 1 else None


def package_imports(path: Path, known) -> set[str]:
    """The package modules a file imports anywhere in it (`from cxresearch.x import y` counts as
    cxresearch.x.y when that is a module, else as cxresearch.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cxresearch"):
            assert node.level == 0, f"{path}: a relative import; the package imports absolutely"
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cxresearch."))
    return found & set(known)


def test_every_module_has_a_stage():
    unstaged = [m for m in modules() if m != "cxresearch" and stage(m) is None]
    assert not unstaged, f"give {unstaged} a stage here and in docs/design.md"


@pytest.mark.parametrize("module", [m for m in modules() if m != "cxresearch"])
def test_no_module_imports_a_later_stage(module):
    known = modules()
    later = {m for m in package_imports(known[module], known) if m != "cxresearch" and stage(m) > stage(module)}
    assert not later, (f"{module} ({NAMES[stage(module)]}) imports a later stage: "
                       + ", ".join(f"{m} ({NAMES[stage(m)]})" for m in sorted(later)))


def test_no_import_cycles():
    known = modules()
    graph = {m: package_imports(path, known) - {m, "cxresearch"} for m, path in known.items() if m != "cxresearch"}
    # a package's __init__ re-exports its modules: importing the package reaches them, not the reverse
    state: dict[str, str] = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(path + [module])
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if not module.startswith(other + "."):  # (a module importing names its own package re-exports)
                visit(other, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_the_layer_test_sees_a_later_import(tmp_path):
    """The test itself can fail: a measure importing the reports is caught."""
    (tmp_path / "measures").mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "measures" / "metrics.py").write_text("from cxresearch.reports.brand import brand_results\n")
    (tmp_path / "reports" / "brand.py").write_text("from cxresearch.measures import metrics\n")
    known = modules(tmp_path)
    imports = package_imports(tmp_path / "measures" / "metrics.py", known)
    assert imports == {"cxresearch.reports.brand"} and stage("cxresearch.reports.brand") > stage("cxresearch.measures.metrics")
