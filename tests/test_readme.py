"""The README's analyst example runs as written on the bundled sample."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_analyst_example_runs(capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Analyst examples", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "NPS +30" in out and "Retention gap" in out and "Revenue link not estimated: " in out
    assert "Revenue change per +10 NPS points" in out and "truth +" in out  # the bigger brand's, with its interval


def test_readme_text_and_alerts_examples_run(capsys):
    readme = (ROOT / "README.md").read_text()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for title in ("## What customers write", "## What changed, where"):
            code = re.search(r"```python\n(.*?)```", readme.split(title, 1)[1], re.S).group(1)
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "topics in 4,063 comments" in out and "alert(s) among 60 locations" in out
