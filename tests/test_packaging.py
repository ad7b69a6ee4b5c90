"""Set-up a newcomer can trust: one dependency list, a conda file that cannot drift, a working command."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

import cxresearch as cx

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_package_and_lists_no_dependencies_of_its_own():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda_packages = sorted(d.split("=")[0] for d in deps if isinstance(d, str))
    assert conda_packages == ["pip", "python"], "dependencies belong in pyproject.toml, not environment.yml"
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip_section == ["-e .[dev]"]


def test_pyproject_lists_the_product_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    assert {"pandas", "statsmodels", "seaborn", "papermill", "nbval", "jupyterlab", "pyarrow"} <= names
    assert "dev" in project["optional-dependencies"]
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"]["cxresearch"] == "cxresearch.cli:main"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()[1:]]
    commands = [c for c in commands if c]
    assert commands == ["make reports", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_console_command_answers_help_and_version():
    out = subprocess.run([sys.executable, "-m", "cxresearch.cli", "--help"], capture_output=True, text=True, check=True)
    assert "validate" in out.stdout and "synth" in out.stdout
    out = subprocess.run([sys.executable, "-m", "cxresearch.cli", "--version"], capture_output=True, text=True, check=True)
    assert cx.__version__ in out.stdout
