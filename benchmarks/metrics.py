"""Benchmark: grouped metrics and the customer table at brand scale, against a groupby-apply baseline.

    python benchmarks/metrics.py [--responses 10000000] [--customers 1000000] [--transactions 10000000]

1. `cx.metrics.summarize` by location x month on N responses over 1,000 locations, against the
   straightforward `groupby(...).apply(per-group nps/csat/ces)`.
2. `cx.retention.customer_table` on C customers / T transactions, against a `groupby(customer).apply`
   that finds each customer's first and next purchase. That baseline is far too slow for the full
   size, so it runs on a 1/20 sample of customers and the ratio compares throughput (rows per second).

Each step runs in its own process. Memory is reported twice: the resident size once the input is
loaded, and the peak while the step runs (Linux: the high-water mark is reset after loading), both
including the input data.
Data are made with numpy and cached as Parquet under benchmarks/_data/. Figures are printed, not
asserted. Targets (issue 3): at least 5x faster than the baseline, under 2 GB peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _memory import reset_peak as restart_peak
from _memory import status_mib

CACHE = Path(__file__).parent / "_data"
START = pd.Timestamp("2024-01-01", tz="UTC")


def make_responses(n: int, locations: int = 1000, seed: int = 1) -> Path:
    path = CACHE / f"responses_{n}.parquet"
    if not path.exists():
        rng = np.random.default_rng(seed)
        CACHE.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({
            "location_id": pd.Series(np.char.add("L", rng.integers(0, locations, n).astype(str)), dtype="str"),
            "responded_at": START + pd.to_timedelta(rng.integers(0, 730 * 86400, n), unit="s"),
            "nps": pd.array(rng.integers(0, 11, n), dtype="Int8"),
            "csat": pd.array(np.where(rng.random(n) < 0.7, rng.integers(1, 6, n), None), dtype="Int8"),
            "ces": pd.array(np.where(rng.random(n) < 0.4, rng.integers(1, 8, n), None), dtype="Int8")})
        frame.to_parquet(path, index=False)
    return path


def make_transactions(customers: int, n: int, locations: int = 1000, seed: int = 2) -> Path:
    path = CACHE / f"transactions_{customers}_{n}.parquet"
    if not path.exists():
        rng = np.random.default_rng(seed)
        CACHE.mkdir(parents=True, exist_ok=True)
        who = np.concatenate([np.arange(customers), rng.integers(0, customers, n - customers)])
        frame = pd.DataFrame({
            "transaction_id": pd.Series(np.char.add("T", np.arange(n).astype(str)), dtype="str"),
            "customer_id": pd.Series(np.char.add("C", who.astype(str)), dtype="str"),
            "location_id": pd.Series(np.char.add("L", rng.integers(0, locations, n).astype(str)), dtype="str"),
            "occurred_at": START + pd.to_timedelta(rng.integers(0, 730 * 86400, n), unit="s"),
            "revenue": rng.lognormal(3, 0.6, n), "channel": "in_store"})
        frame.to_parquet(path, index=False)
    return path


# --- the measured steps (each run in a child process) -------------------------------------------

LOADED = {"mib": float("nan")}


def reset_peak() -> None:
    """Remember the resident size with the input loaded and restart the peak from there."""
    LOADED["mib"] = restart_peak()


def step_summarize(args) -> int:
    import cxresearch.measures.metrics as m
    responses = pd.read_parquet(args.path)
    reset_peak()
    started = time.perf_counter()
    out = m.summarize(responses, by="location_id", period="M")
    return len(out), time.perf_counter() - started, len(responses)


def step_summarize_baseline(args) -> int:
    import cxresearch.measures.metrics as m
    responses = pd.read_parquet(args.path)
    reset_peak()
    started = time.perf_counter()
    responses["period"] = responses["responded_at"].dt.tz_localize(None).dt.to_period("M")

    def per_group(g):
        a, b, c = m.nps(g["nps"]), m.csat(g["csat"]), m.ces(g["ces"])
        return pd.Series({"nps": a.nps, "nps_lo": a.ci_low, "nps_hi": a.ci_high, "csat": b.share,
                          "csat_lo": b.ci_low, "ces": c.mean, "n": a.n})

    out = responses.groupby(["location_id", "period"]).apply(per_group)
    return len(out), time.perf_counter() - started, len(responses)


def step_customer_table(args) -> int:
    import cxresearch as cx
    from cxresearch import retention

    tx = pd.read_parquet(args.path)
    locations = pd.DataFrame({"location_id": tx["location_id"].unique()})
    dataset = cx.CXDataset(locations=locations, transactions=tx)
    del tx
    reset_peak()
    started = time.perf_counter()
    table = retention.customer_table(dataset, horizon_days=180)
    return len(table), time.perf_counter() - started, len(dataset.transactions)


def step_customer_table_baseline(args) -> int:
    tx = pd.read_parquet(args.path)
    keep = tx["customer_id"].isin(tx["customer_id"].drop_duplicates().sample(frac=1 / 20, random_state=0))
    tx = tx[keep]
    end = tx["occurred_at"].max()
    reset_peak()
    started = time.perf_counter()

    def per_customer(g):
        g = g.sort_values("occurred_at")
        first = g["occurred_at"].iloc[0]
        nxt = g["occurred_at"].iloc[1] if len(g) > 1 else pd.NaT
        censored = first + pd.Timedelta(days=180) > end
        retained = None if censored else bool(pd.notna(nxt) and (nxt - first).days <= 180)
        window = g[(g["occurred_at"] > first) & (g["occurred_at"] <= first + pd.Timedelta(days=180))]
        return pd.Series({"anchor_at": first, "anchor_location_id": g["location_id"].iloc[0], "next": nxt,
                          "retained": retained, "censored": censored, "horizon_purchases": len(window),
                          "horizon_revenue": window["revenue"].sum(), "purchases": len(g), "revenue": g["revenue"].sum()})

    out = tx.groupby("customer_id").apply(per_customer)
    return len(out), time.perf_counter() - started, len(tx)


STEPS = {"summarize": step_summarize, "summarize_baseline": step_summarize_baseline,
         "customer_table": step_customer_table, "customer_table_baseline": step_customer_table_baseline}


def run_child(step: str, path: Path) -> dict:
    """Run one step in a fresh interpreter; it prints a JSON line with rows, seconds and peak RSS."""
    out = subprocess.run([sys.executable, __file__, "--child", step, "--path", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(step: str, path: str) -> None:
    result_rows, seconds, input_rows = STEPS[step](argparse.Namespace(path=path))
    peak = status_mib("VmHWM")
    if peak != peak:  # no /proc: fall back to the whole process's maximum
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(json.dumps({"rows_out": result_rows, "seconds": seconds, "input_rows": input_rows, "peak_mib": peak,
                      "loaded_mib": LOADED["mib"]}))


def report(name: str, ours: dict, base: dict, note: str = "") -> None:
    ours_rate, base_rate = ours["input_rows"] / ours["seconds"], base["input_rows"] / base["seconds"]
    print(f"\n{name}{note}")
    print(f"  {'':<22}{'input rows':>12}{'seconds':>10}{'rows/s':>14}{'input MiB':>11}{'peak MiB':>10}")
    for label, r in (("cxresearch", ours), ("groupby-apply", base)):
        print(f"  {label:<22}{r['input_rows']:>12,}{r['seconds']:>10.2f}{r['input_rows'] / r['seconds']:>14,.0f}"
              f"{r['loaded_mib']:>11,.0f}{r['peak_mib']:>10,.0f}")
    print(f"  speed-up: {ours_rate / base_rate:,.1f}x (throughput ratio); peak {ours['peak_mib'] / 1024:.2f} GiB "
          f"with the input loaded, {(ours['peak_mib'] - ours['loaded_mib']) / 1024:.2f} GiB above it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.path)
    responses = make_responses(args.responses)
    transactions = make_transactions(args.customers, args.transactions)
    report("summarize by location x month", run_child("summarize", responses), run_child("summarize_baseline", responses))
    report("customer_table (180-day retention)", run_child("customer_table", transactions),
           run_child("customer_table_baseline", transactions), " [baseline on a 1/20 sample of customers]")


if __name__ == "__main__":
    main()
