"""Benchmark: the report suite on data/sample, seconds per notebook against the floor of an empty one.

    python benchmarks/run.py [--workers 2] [--locations all|N]

Measures, in one process: (1) the floor, papermill executing an empty notebook (kernel start and
shutdown); (2) `cxresearch run` of the whole suite (six topic reports and one deep dive per
location) into a temporary folder. Prints wall time, each notebook's seconds and its ratio to the
floor. Target (issue 5): the whole suite, 60 deep dives included, well under 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

from cxresearch.reports import runner as reporting

ROOT = Path(__file__).resolve().parents[1]


def floor_seconds(folder: Path, repeats: int = 3) -> float:
    """Median seconds for papermill to run a one-cell notebook: the cost every report pays."""
    empty = folder / "empty.ipynb"
    nb = new_notebook(cells=[new_code_cell("1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, empty)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        pm.execute_notebook(str(empty), str(folder / "out.ipynb"), progress_bar=False, kernel_name="python3")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--locations", default="all", help="'all' or how many deep dives to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor = floor_seconds(folder)
        locations = None
        if args.locations != "all":
            import cxresearch as cx

            locations = list(cx.load_dataset(ROOT / "data" / "sample").locations["location_id"][: int(args.locations)])
        started = time.perf_counter()
        result = reporting.run(ROOT / "reports.yaml", out=folder / "reports", workers=args.workers,
                               locations=locations, progress=False)
        wall = time.perf_counter() - started
        manifest = json.loads((result.folder / "manifest.json").read_text())
    jobs = manifest["notebooks"]
    deep = [j["duration_s"] for j in jobs if j["group"] != "topic"]
    print(f"floor (empty notebook through papermill): {floor:.2f} s")
    print(f"whole suite: {len(jobs)} notebooks in {wall:.1f} s wall with {args.workers} workers "
          f"({sum(j['status'] == 'ok' for j in jobs)} ok)")
    print(f"{'notebook':<32}{'seconds':>9}{'x floor':>9}")
    for job in jobs:
        if job["group"] == "topic":
            print(f"{job['name']:<32}{job['duration_s']:>9.1f}{job['duration_s'] / floor:>9.1f}")
    if deep:
        print(f"{'deep dives (median of ' + str(len(deep)) + ')':<32}{statistics.median(deep):>9.1f}"
              f"{statistics.median(deep) / floor:>9.1f}")


if __name__ == "__main__":
    main()
