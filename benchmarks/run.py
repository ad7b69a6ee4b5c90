"""Benchmark: the report suite, seconds and memory per notebook against the floor of an empty one.

    python benchmarks/run.py                          # data/sample and a 1,000-location brand
    python benchmarks/run.py --sizes sample           # the bundled sample only (about 2 minutes)
    python benchmarks/run.py --sizes 1000 --customers 1000000 --deep-dives 200 --brands /tmp/brands
    python benchmarks/run.py --sizes sample --cold    # also without kernels started ahead, for the ratio

Measures, in one process and on the same machine: (1) the floor, papermill executing an empty
notebook (kernel start and shutdown), the cost every report pays; (2) for each size, `cxresearch
run` of the whole suite (the six topic reports and one deep dive per location) into a temporary
folder. `sample` is data/sample; a number N is a synthetic brand of N locations and `--customers`
customers (`cxresearch synth`, seed 1, generated before the clock starts). Prints per size: the
wall time of the run and how much of it went before the first notebook (validation, brand results,
run store), the median and 95th-percentile seconds per topic notebook and per deep dive with their
ratio to the floor, and the peak resident memory of every kernel (read from /proc while it runs)
and of the runner itself. Targets (issue 19), on 2 workers: the median deep dive at most 2x the
floor at both sizes; the 1,000-location brand's full suite, all deep dives, under 30 minutes; no
kernel above 400 MB. Reports run in kernels started ahead (`kernels_ahead: true`, the default: a
worker starts its next report's kernel while the current one runs), so a report's seconds no
longer hold its kernel's start; `--cold` also runs each size with `kernels_ahead: false`, in the
same process, and prints the two suites' wall times side by side, which is the measure that
cannot be flattered by moving work out of a report's clock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import reset_peak, status_mib  # noqa: E402

from cxresearch.reports import runner as reporting  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def floor_seconds(folder: Path, repeats: int = 3) -> tuple[float, float]:
    """Median seconds for papermill to run a one-cell notebook: the cost every report pays; and the
    same plus rendering its page (`publish.render_page`), which every report of a run pays too."""
    from cxresearch.reports import publish

    empty = folder / "empty.ipynb"
    nb = new_notebook(cells=[new_code_cell("1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, empty)
    runs, pages = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        pm.execute_notebook(str(empty), str(folder / "out.ipynb"), progress_bar=False, kernel_name="python3")
        runs.append(time.perf_counter() - started)
        publish.render_page(folder / "out.ipynb", folder / "html" / "out.html")
        pages.append(time.perf_counter() - started)
    return statistics.median(runs), statistics.median(pages)


class KernelMemory:
    """Polls /proc for IPython kernels and keeps each one's peak resident size (VmHWM, MiB).

    The kernel's own high-water mark is monotonic, so the last reading before it exits is its peak
    to within what it allocated in the final `interval` seconds."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peaks, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    if b"ipykernel_launcher" not in (proc / "cmdline").read_bytes():
                        continue
                    for line in (proc / "status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak = int(line.split()[1]) / 1024
                            self.peaks[proc.name] = max(peak, self.peaks.get(proc.name, 0.0))
                except OSError:  # the kernel exited between listing and reading
                    continue
            self._stop.wait(self.interval)


def brand_folder(size: str, customers: int, folder: Path) -> Path:
    """data/sample, or a synthetic brand of `size` locations written by `cxresearch synth`."""
    if size == "sample":
        return ROOT / "data" / "sample"
    target = folder / f"brand-{size}-{customers}"
    if (target / "truth.json").is_file():
        print(f"reusing the brand in {target}", flush=True)
        return target
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "cxresearch"), "synth", "--locations", size, "--customers", str(customers),
                    "--seed", "1", "--out", str(target)], check=True, stdout=subprocess.DEVNULL)
    print(f"generated {size} locations x {customers:,} customers in {time.perf_counter() - started:.0f} s "
          "(not timed below)", flush=True)
    return target


def suite_config(folder: Path, ahead: bool) -> Path:
    """reports.yaml, with `kernels_ahead` set as asked and its paths made absolute (the copy lives elsewhere)."""
    import yaml

    config = yaml.safe_load((ROOT / "reports.yaml").read_text(encoding="utf-8"))
    config["kernels_ahead"] = ahead
    for entry in config["notebooks"]:
        entry["notebook"] = str(ROOT / entry["notebook"])
    path = folder / f"reports-{'ahead' if ahead else 'cold'}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def measure_suite(data: Path, folder: Path, workers: int, deep_dives: str, ahead: bool = True) -> dict:
    """Run the suite on `data` and return its timings and memory peaks."""
    locations = None
    if deep_dives != "all":
        import cxresearch as cx

        locations = list(cx.load_dataset(data).locations["location_id"][: int(deep_dives)])
    reset_peak()
    with KernelMemory() as kernels:
        started = time.perf_counter()
        result = reporting.run(suite_config(folder, ahead), data=str(data), out=folder / "reports", workers=workers,
                               locations=locations, progress=True)
        wall = time.perf_counter() - started
    manifest = json.loads((result.folder / "manifest.json").read_text())
    jobs = manifest["notebooks"]
    return {"wall": wall, "prepare": manifest.get("prepare_s", float("nan")), "jobs": jobs,
            "ok": sum(j["status"] == "ok" for j in jobs), "kernel_peaks": list(kernels.peaks.values()),
            "runner_peak": status_mib("VmHWM")}


def report(size: str, m: dict, floor: float, page_floor: float, workers: int) -> None:
    """Print one size's figures against the targets."""
    jobs = m["jobs"]
    topic = [j["duration_s"] for j in jobs if j["group"] == "topic"]
    deep = [j["duration_s"] for j in jobs if j["group"] != "topic"]
    peaks = m["kernel_peaks"]
    print(f"\n{size}: {len(jobs)} notebooks ({m['ok']} ok) in {m['wall']:.0f} s wall on {workers} workers "
          f"({m['wall'] / 60:.1f} min); brand results and run store before the first notebook: "
          f"{m['prepare']:.0f} s")
    print(f"  {'':<22}{'n':>6}{'median s':>10}{'p95 s':>8}{'median x floor':>16}{'p95 x floor':>13}")
    for name, values in (("topic notebooks", topic), ("deep dives", deep)):
        if values:
            median, p95 = float(np.median(values)), float(np.percentile(values, 95))
            print(f"  {name:<22}{len(values):>6}{median:>10.2f}{p95:>8.2f}{median / floor:>16.2f}{p95 / floor:>13.2f}")
    for job in jobs:
        if job["group"] == "topic":
            print(f"    {job['name']:<28}{job['duration_s']:>8.1f} s")
    if peaks:
        print(f"  kernel peak memory: median {np.median(peaks):.0f} MiB, max {max(peaks):.0f} MiB over {len(peaks)} "
              f"kernels (target: none above 400 MB = {400 / 1.048576:.0f} MiB); runner process peak {m['runner_peak']:.0f} MiB")
    deep_median = float(np.median(deep)) if deep else float("nan")
    print(f"  targets: median deep dive <= 2x floor: {'yes' if deep_median <= 2 * floor else 'no'} "
          f"({deep_median / floor:.2f}x; {deep_median / page_floor:.2f}x the floor with its page rendered, "
          "as a report's seconds include its page); no kernel above 400 MB: "
          f"{'yes' if peaks and max(peaks) <= 400 / 1.048576 else 'no'}"
          + (f"; whole suite under 30 minutes: {'yes' if m['wall'] < 1800 else 'no'}" if size != "sample" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", default="sample,1000", help="comma-separated: sample and/or numbers of locations")
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers of a synthetic brand")
    parser.add_argument("--deep-dives", default="all", help="'all' or how many deep dives to run")
    parser.add_argument("--brands", default=None, help="folder to keep generated brands in and reuse (default: a temporary one)")
    parser.add_argument("--cold", action="store_true", help="also run each size without kernels started ahead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor, page_floor = floor_seconds(folder)
        print(f"floor (empty notebook through papermill): {floor:.2f} s; with its page rendered: {page_floor:.2f} s",
              flush=True)
        for size in args.sizes.split(","):
            data = brand_folder(size.strip(), args.customers, Path(args.brands) if args.brands else folder)
            measured = measure_suite(data, folder / size, args.workers, args.deep_dives)
            report(size, measured, floor, page_floor, args.workers)
            if args.cold:
                cold = measure_suite(data, folder / f"{size}-cold", args.workers, args.deep_dives, ahead=False)
                report(f"{size}, kernels_ahead: false", cold, floor, page_floor, args.workers)
                print(f"  whole suite: {measured['wall']:.0f} s with kernels started ahead, {cold['wall']:.0f} s without "
                      f"({measured['wall'] / cold['wall']:.2f}x)")


if __name__ == "__main__":
    main()
