"""Benchmark: the whole reduce step at brand scale on DuckDB, on Spark local[2] and on the pandas path.

    python benchmarks/scale.py [--locations 1000] [--customers 2000000] [--transactions 50000000]
                               [--responses 10000000] [--engines duckdb,duckdb-file,pandas,spark]
                               [--memory-limit 2GB] [--threads N]

Engines: duckdb (over the Parquet folder), duckdb-file (the same tables stored in a DuckDB file,
`cx.connect("duckdb:///...")`), pandas and spark. Data are made with numpy and pyarrow (seeded),
written once as Parquet under benchmarks/_data/ and reused; so is the DuckDB file (its one-off
conversion is timed apart). Each engine runs in its own process, so its peak memory (max RSS,
children included: a Spark JVM counts) is its own. The reduce step is everything that reads raw
events:

    connect / load      read and validate every table (rejects kept where the engine keeps them)
    summarize           NPS/CSAT/CES by location x month, and by channel x journey stage
    location panel      revenue, customers and NPS per location x quarter (the revenue model's input)
    customer table      first purchase, score and 180-day retention per customer
    touchpoints         responses + purchases per customer, distinct channels

The pandas path is cx.load_dataset (DuckDB, fetched into memory) plus the same functions on the
in-memory dataset, which registers it in an embedded DuckDB again (there is one implementation). Figures are
printed, not asserted; the ratio is pandas time / engine time in this run. Targets (issue 6): DuckDB
at least 5x faster than pandas and under 4 GB peak at 1,000 locations / 2M customers / 50M
transactions / 10M responses; Spark local[2] completes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "_data"
CHUNK = 5_000_000
START = np.datetime64("2024-01-01T00:00:00", "s").astype("int64")
SPAN = 2 * 365 * 86400


def ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """String ids like C42 from integers, formatted by Arrow (no Python loop)."""
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def stamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("datetime64[s]").astype("datetime64[us]"), pa.timestamp("us", tz="UTC"))


def make_data(folder: Path, locations: int, customers: int, transactions: int, responses: int, seed: int) -> None:
    """A brand of the asked size as Parquet (one file per table), written chunk by chunk."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    loc = np.arange(1, locations + 1)
    pq.write_table(pa.table({
        "location_id": ids("L", loc), "name": ids("Store ", loc),
        "region": pa.array(np.array(["North", "South", "East", "West"])[rng.integers(0, 4, locations)]),
        "format": pa.array(np.array(["flagship", "mall", "street", "outlet"])[rng.integers(0, 4, locations)]),
        "opened_on": stamps(START - rng.integers(0, 3650, locations) * 86400)}), folder / "locations.parquet")
    home = rng.integers(1, locations + 1, customers)
    pq.write_table(pa.table({"customer_id": ids("C", np.arange(1, customers + 1)), "home_location_id": ids("L", home),
                             "segment": pa.array(np.array(["new", "regular", "vip"])[rng.integers(0, 3, customers)])}),
                   folder / "customers.parquet")
    channels = np.array(["in_store", "phone", "email", "web", "app", "social", "review"])
    activity = rng.lognormal(0, 1, customers)
    activity /= activity.sum()
    with pq.ParquetWriter(folder / "transactions.parquet", _tx_schema()) as writer:
        for first in range(0, transactions, CHUNK):
            n = min(CHUNK, transactions - first)
            who = rng.choice(customers, n, p=activity)
            where = np.where(rng.random(n) < 0.8, home[who], rng.integers(1, locations + 1, n))
            writer.write_table(pa.table({
                "transaction_id": ids("T", np.arange(first + 1, first + n + 1)), "customer_id": ids("C", who + 1),
                "location_id": ids("L", where), "occurred_at": stamps(START + rng.integers(0, SPAN, n)),
                "revenue": pa.array(np.round(rng.lognormal(3.5, 0.6, n), 2)),
                "channel": pa.array(channels[rng.choice(7, n, p=[.7, .05, .02, .1, .1, .02, .01])])},
                schema=_tx_schema()))
    stages = np.array(["aware", "appeal", "ask", "act", "advocate"])
    with pq.ParquetWriter(folder / "responses.parquet", _response_schema()) as writer:
        for first in range(0, responses, CHUNK):
            n = min(CHUNK, responses - first)
            who = rng.choice(customers, n, p=activity)
            nps = np.clip(np.round(rng.normal(7.5, 2.2, n)), 0, 10).astype("int8")
            writer.write_table(pa.table({
                "response_id": ids("R", np.arange(first + 1, first + n + 1)), "location_id": ids("L", home[who]),
                "responded_at": stamps(START + rng.integers(0, SPAN, n)), "customer_id": ids("C", who + 1),
                "channel": pa.array(channels[rng.integers(0, 7, n)]), "journey_stage": pa.array(stages[rng.integers(0, 5, n)]),
                "nps": pa.array(nps), "csat": pa.array(np.clip(nps // 2, 1, 5).astype("int8")),
                "ces": pa.array(rng.integers(1, 8, n).astype("int8"))}, schema=_response_schema()))
    quarters = np.arange(8)
    pq.write_table(pa.table({
        "measurement_id": ids("E", np.arange(1, locations * 8 + 1)), "location_id": ids("L", np.repeat(loc, 8)),
        "measured_at": stamps(START + np.tile(quarters, locations) * (SPAN // 8)),
        "ex_score": pa.array(np.round(rng.normal(65, 10, locations * 8).clip(0, 100), 1))}),
        folder / "employee_experience.parquet")


def _tx_schema():
    return pa.schema([("transaction_id", pa.string()), ("customer_id", pa.string()), ("location_id", pa.string()),
                      ("occurred_at", pa.timestamp("us", tz="UTC")), ("revenue", pa.float64()), ("channel", pa.string())])


def _response_schema():
    return pa.schema([("response_id", pa.string()), ("location_id", pa.string()),
                      ("responded_at", pa.timestamp("us", tz="UTC")), ("customer_id", pa.string()),
                      ("channel", pa.string()), ("journey_stage", pa.string()), ("nps", pa.int8()),
                      ("csat", pa.int8()), ("ces", pa.int8())])


def reduce_step(folder: str, engine: str, memory_limit: str, threads: int | None = None) -> dict:
    """Run the whole reduce step on one engine; seconds per stage and what came out."""
    import warnings

    import cxresearch as cx

    warnings.filterwarnings("ignore", category=FutureWarning)
    timings, started = {}, time.perf_counter()

    def stage(name, work):
        t0 = time.perf_counter()
        result = work()
        timings[name] = round(time.perf_counter() - t0, 1)
        return result

    if engine == "pandas":
        data = stage("connect / load", lambda: cx.load_dataset(folder))
        responses = data.responses
    elif engine == "duckdb-file":
        data = stage("connect / load", lambda: cx.connect(f"duckdb:///{duckdb_file(Path(folder))}",
                                                                memory_limit=memory_limit, threads=threads))
        responses = data
    else:
        spark = "local[2]" if engine == "spark" else None
        data = stage("connect / load", lambda: cx.connect(folder, spark=spark, memory_limit=memory_limit,
                                                                threads=threads))
        responses = data
    stage("summarize", lambda: (cx.summarize(responses, by="location_id", period="M"),
                                cx.summarize(responses, by=["channel", "journey_stage"])))
    panel = stage("location panel", lambda: cx.revenue.location_panel(data, period="Q"))
    table = stage("customer table", lambda: cx.retention.customer_table(data, horizon_days=180))
    touch = stage("touchpoints", lambda: cx.journey.touchpoints(data))
    accounting = data.accounting()
    return {"engine": engine, "seconds": round(time.perf_counter() - started, 1), "stages": timings,
            "read": int(accounting["read"].sum()), "rejected": int(accounting["rejected"].sum()),
            "panel_rows": len(panel), "customers": len(table), "retained": int(table["retained"].sum()),
            "touchpoints": int(touch["touchpoints"].sum())}


def duckdb_file(folder: Path) -> Path:
    return folder / "brand.duckdb"


def make_duckdb_file(folder: Path) -> None:
    """The Parquet tables copied into one DuckDB file (once; reused like the Parquet files)."""
    import duckdb

    target, partial = duckdb_file(folder), folder / "brand.duckdb.partial"
    partial.unlink(missing_ok=True)
    with duckdb.connect(str(partial)) as con:
        for file in sorted(folder.glob("*.parquet")):
            con.execute(f"CREATE TABLE {file.stem} AS SELECT * FROM read_parquet('{file}')")
    partial.rename(target)


class TreePeak:
    """Peak resident memory of this process and its children (a Spark JVM is one), sampled every 0.2 s."""

    def __init__(self):
        import psutil

        self.me, self.peak, self.running = psutil.Process(), 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while self.running:
            try:
                rss = self.me.memory_info().rss + sum(c.memory_info().rss for c in self.me.children(recursive=True))
            except Exception:  # a child that ended between listing and reading
                continue
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # catches a spike between samples
        return max(self.peak, own) / 2**30


def child(args) -> None:
    peak = TreePeak()
    result = reduce_step(args.folder, args.child, args.memory_limit, args.threads)
    result["peak_gib"] = round(peak.stop(), 2)
    print("RESULT " + json.dumps(result))


def run_engine(engine: str, folder: Path, memory_limit: str, threads: int | None) -> dict:
    command = [sys.executable, __file__, "--child", engine, "--folder", str(folder), "--memory-limit", memory_limit]
    command += ["--threads", str(threads)] if threads else []
    out = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        tail = "\n".join(out.stderr.strip().splitlines()[-8:])
        return {"engine": engine, "error": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--transactions", type=int, default=50_000_000)
    parser.add_argument("--responses", type=int, default=10_000_000)
    parser.add_argument("--engines", default="duckdb,duckdb-file,pandas,spark",
                        help="comma-separated, in the order to run")
    parser.add_argument("--memory-limit", default="2GB",
                        help="DuckDB's memory limit (it spills beyond it); 2GB keeps the process under 4 GB")
    parser.add_argument("--threads", type=int, help="DuckDB's threads (default: one per core)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    folder = DATA / f"scale-{args.locations}-{args.customers}-{args.transactions}-{args.responses}-{args.seed}"
    if not (folder / "employee_experience.parquet").exists():
        t0 = time.perf_counter()
        make_data(folder, args.locations, args.customers, args.transactions, args.responses, args.seed)
        print(f"made the data in {time.perf_counter() - t0:.0f} s: {folder}")
    size = sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2**30
    print(f"{args.locations:,} locations, {args.customers:,} customers, {args.transactions:,} transactions, "
          f"{args.responses:,} responses ({size:.1f} GiB of Parquet); {os.cpu_count()} cores")
    if "duckdb-file" in args.engines and not duckdb_file(folder).exists():
        t0 = time.perf_counter()
        make_duckdb_file(folder)
        print(f"copied the Parquet tables into {duckdb_file(folder).name} in {time.perf_counter() - t0:.0f} s (once)")
    results = []
    for engine in args.engines.split(","):
        result = run_engine(engine.strip(), folder, args.memory_limit, args.threads)
        results.append(result)
        print(json.dumps(result), flush=True)
    report(results)


def report(results: list[dict]) -> None:
    ok = {r["engine"]: r for r in results if "error" not in r}
    base = ok.get("pandas")
    print(f"\n{'engine':<12} {'seconds':>8} {'peak GiB':>9} {'pandas/engine':>14}   stages (s)")
    for r in results:
        if "error" in r:
            print(f"{r['engine']:<12} failed: {r['error']}")
            continue
        ratio = f"{base['seconds'] / r['seconds']:.1f}x" if base else "-"
        stages = ", ".join(f"{k} {v}" for k, v in r["stages"].items())
        print(f"{r['engine']:<12} {r['seconds']:>8.1f} {r['peak_gib']:>9.2f} {ratio:>14}   {stages}")
    same = {(r["read"], r["rejected"], r["panel_rows"], r["customers"], r["retained"], r["touchpoints"])
            for r in ok.values()}
    print("engines agree on rows read, rejected, panel rows, customers, retained, touchpoints:", len(same) == 1)


if __name__ == "__main__":
    main()
