"""Benchmark: how much validation costs on top of plainly reading the files.

    python benchmarks/ingest.py [--locations 1000] [--customers 200000] [--format parquet|csv]

Generates a synthetic brand (cached under benchmarks/_data/), then times, in the same process,
`cx.load_dataset` (read + validate + rejects) against the floor of reading the same files with
pandas and nothing else. Prints rows, seconds, rows per second, peak memory and the ratio.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import pandas as pd
from _memory import reset_peak, status_mib

import cxresearch as cx
from cxresearch import schema, synth

CACHE = Path(__file__).parent / "_data"


def brand_folder(locations: int, customers: int, fmt: str) -> Path:
    folder = CACHE / f"ingest_{locations}_{customers}_{fmt}"
    if not (folder / "locations.parquet").exists() and not (folder / "locations.csv").exists():
        started = time.perf_counter()
        dataset, truth = synth.generate(n_locations=locations, n_customers=customers, seed=11)
        dataset.to_dir(folder, format=fmt)
        print(f"generated {folder} in {time.perf_counter() - started:.1f} s")
    return folder


def plain_read(folder: Path) -> int:
    """The floor: read every table file with pandas, no validation."""
    rows = 0
    for file in sorted(folder.iterdir()):
        if file.suffix == ".parquet":
            rows += len(pd.read_parquet(file))
        elif file.suffix == ".csv" and file.stem in schema.TABLES:
            rows += len(pd.read_csv(file, dtype=str))
    return rows


def timed(label: str, func):
    """Run `func`; seconds and the peak resident memory above the starting point (MiB).

    tracemalloc would slow pandas several-fold and miss Arrow's memory, so the Linux high-water mark
    is reset before the step instead."""
    before = reset_peak()
    started = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - started
    return result, seconds, status_mib("VmHWM") - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args()
    folder = brand_folder(args.locations, args.customers, args.format)

    rows, floor_s, floor_mb = timed("plain read", lambda: plain_read(folder))
    dataset, load_s, load_mb = timed("load_dataset", lambda: cx.load_dataset(folder))
    assert dataset.accounting()["balanced"].all()
    print(f"\n{args.format}: {args.locations:,} locations, {args.customers:,} customers, {rows:,} rows in all")
    print(f"{'step':<28}{'seconds':>9}{'rows/s':>14}{'peak MiB above start':>22}")
    print(f"{'plain pandas read (floor)':<28}{floor_s:>9.2f}{rows / floor_s:>14,.0f}{floor_mb:>22,.0f}")
    print(f"{'cx.load_dataset':<28}{load_s:>9.2f}{rows / load_s:>14,.0f}{load_mb:>22,.0f}")
    print(f"validation costs {load_s / floor_s:.1f}x the plain read; "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB")


if __name__ == "__main__":
    main()
