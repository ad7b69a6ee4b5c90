"""Benchmark: how long `synth.generate` takes and how much memory it needs, at full size and at 1/10.

    python benchmarks/synth.py [--locations 1000] [--customers 1000000] [--seed 7] [--no-trace]

Runs the generator at a tenth of the size and then at full size in the same process, untraced for
the wall time, then once more under tracemalloc for the peak of traced allocations (numpy and
pandas report theirs to tracemalloc). Prints rows per table, seconds, seconds per 1,000 customers
at both sizes (their ratio shows whether the cost grows linearly), and the process's max RSS.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc

from cxresearch import schema, synth


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB


def timed_generate(locations: int, customers: int, seed: int):
    started = time.perf_counter()
    dataset, truth = synth.generate(locations, customers, seed=seed)
    return dataset, truth, time.perf_counter() - started


def traced_peak_mib(locations: int, customers: int, seed: int) -> float:
    gc.collect()
    tracemalloc.start()
    dataset, truth = synth.generate(locations, customers, seed=seed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del dataset, truth
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    args = parser.parse_args()
    sizes = [(max(1, args.locations // 10), max(1, args.customers // 10)), (args.locations, args.customers)]

    synth.generate(5, 200, seed=args.seed)  # warm imports and caches out of the timings
    results = []
    for locations, customers in sizes:
        dataset, truth, seconds = timed_generate(locations, customers, args.seed)
        rows = {name: len(dataset.table(name)) for name in schema.TABLE_ORDER}
        results.append((locations, customers, seconds, rows, max_rss_mib()))
        del dataset, truth
        gc.collect()
    peaks = [None if args.no_trace else traced_peak_mib(loc, cus, args.seed) for loc, cus in sizes]

    print(f"synth.generate, seed {args.seed}")
    header = f"{'size':<24}{'seconds':>9}{'s/1k cust':>11}{'rows/s':>12}{'traced peak MiB':>17}{'max RSS MiB':>13}"
    print(header)
    for (locations, customers, seconds, rows, rss), peak in zip(results, peaks):
        total = sum(rows.values())
        peak_text = "-" if peak is None else f"{peak:,.0f}"
        print(f"{f'{locations:,} x {customers:,}':<24}{seconds:>9.2f}{1000 * seconds / customers:>11.4f}"
              f"{total / seconds:>12,.0f}{peak_text:>17}{rss:>13,.0f}")
    print("rows per table:")
    for name in schema.TABLE_ORDER:
        print(f"  {name:<20}" + "".join(f"{r[3][name]:>14,}" for r in results))
    small, full = results
    ratio = (full[2] / full[1]) / (small[2] / small[1])
    print(f"seconds per 1,000 customers, full / tenth: {ratio:.2f} (1.0 = linear)")
    print(f"process max RSS {max_rss_mib():,.0f} MiB (includes the traced runs)")


if __name__ == "__main__":
    main()
