"""Benchmark: cx.text on 1,000,000 comments, in memory and on the engine, time and peak memory.

    python benchmarks/text.py [--comments 1000000] [--locations 1000]

The comments are the synthetic brand's sentences (cx.synth's bank, with a planted topic at 15% of
the locations) plus two to eight words drawn from a Zipf-distributed vocabulary of 30,000 made-up
words, so the vocabulary has a real corpus's long tail. They are written once as a data folder
(locations.parquet, responses.parquet) under benchmarks/_data/ and then, each in its own process:

1. in memory: the responses read with pandas, then `cx.text.corpus`, `topics` (the number of topics
   chosen by stability) and `location_terms`;
2. on the engine: `cx.connect(folder)` (DuckDB), whose comments are fetched one block of locations
   at a time (200,000 comments a block), then the same three steps.

Printed: seconds per step, the peak resident memory of each process (the reading of the data
included), and whether the two paths gave the same topics table and location terms. Target (issue
20): under 3 minutes and under 2 GB for 1,000,000 comments, on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _memory import status_mib

CACHE = Path(__file__).parent / "_data"


def make_folder(n: int, locations: int, seed: int = 1) -> Path:
    """A data folder of `locations` locations and `n` responses, each with a comment and an NPS."""
    from cxresearch.synth.world import COMMENT_OPENINGS, COMMENT_SENTENCES

    folder = CACHE / f"comments_{n}_{locations}"
    if (folder / "responses.parquet").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"L{i:05d}" for i in range(1, locations + 1)])
    pd.DataFrame({"location_id": ids, "name": "Store " + ids, "region": "north", "format": "mall"}).to_parquet(
        folder / "locations.parquet", index=False)
    location = rng.integers(0, locations, n)
    nps = rng.choice(11, n, p=np.array([2, 1, 1, 2, 2, 4, 6, 10, 14, 22, 36]) / 100)
    group = np.where(nps >= 9, 0, np.where(nps >= 7, 1, 2))
    attributes = list(COMMENT_SENTENCES)
    planted = np.full(locations, -1)
    chosen = rng.choice(locations, size=int(0.15 * locations), replace=False)
    planted[chosen] = rng.integers(0, len(attributes), len(chosen))
    attribute = rng.integers(0, len(attributes), n)
    on_plant = (planted[location] >= 0) & (group > 0) & (rng.random(n) < 0.5)
    attribute = np.where(on_plant, planted[location], attribute)
    sentences = np.array([[COMMENT_OPENINGS[g][i % len(COMMENT_OPENINGS[g])] + " " +
                           COMMENT_SENTENCES[a][0 if g == 0 else 1][i % 3] for i in range(12)]
                          for g in range(3) for a in attributes], dtype=object).reshape(3, len(attributes), 12)
    base = sentences[group, attribute, rng.integers(0, 12, n)]
    vocabulary = np.array([_word(rng) for _ in range(30_000)], dtype=object)
    ranks = np.minimum(rng.zipf(1.3, size=n * 8) - 1, len(vocabulary) - 1).reshape(n, 8)
    extra = rng.integers(2, 9, n)
    tails = [" ".join(vocabulary[ranks[i, :extra[i]]]) for i in range(n)]
    comment = pd.Series(base).str.cat(pd.Series(tails), sep=" ")
    start = pd.Timestamp("2024-01-01", tz="UTC")
    responded = start + pd.to_timedelta(rng.integers(0, 730 * 24 * 3600, n), unit="s")
    pd.DataFrame({"response_id": [f"R{i:08d}" for i in range(n)], "location_id": ids.to_numpy()[location],
                  "responded_at": responded, "nps": nps, "comment": comment}).to_parquet(folder / "responses.parquet",
                                                                                           index=False)
    return folder


def _word(rng) -> str:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return "".join(rng.choice(letters, size=rng.integers(3, 10)))


def run_step(folder: Path, path: str) -> dict:
    """One path (memory | engine), in this process: timings and the peak memory."""
    import cxresearch as cx
    from cxresearch.measures import text

    timings = {}
    started = time.perf_counter()
    data = pd.read_parquet(folder / "responses.parquet") if path == "memory" else cx.connect(str(folder))
    timings["read_s"] = time.perf_counter() - started
    t = time.perf_counter()
    built = text.corpus(data)
    timings["corpus_s"] = time.perf_counter() - t
    t = time.perf_counter()
    found = text.topics(built, seed=0)
    timings["topics_s"] = time.perf_counter() - t
    t = time.perf_counter()
    terms = text.location_terms(built)
    timings["location_terms_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    out = CACHE / f"text_{path}.pkl"
    pd.to_pickle((found.table, terms), out)
    return {**timings, "peak_mib": status_mib("VmHWM"), "comments": len(built), "terms": int(built.counts.shape[1]),
            "topics": len(found.table), "labels": list(found.table["label"]), "result": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comments", type=int, default=1_000_000)
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--step", choices=("memory", "engine"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(Path(args.folder), args.step)))
        return
    t = time.perf_counter()
    folder = make_folder(args.comments, args.locations)
    print(f"data: {args.comments:,} comments at {args.locations:,} locations in {folder} ({time.perf_counter() - t:.0f} s)")
    results = {}
    for path in ("memory", "engine"):
        done = subprocess.run([sys.executable, __file__, "--step", path, "--folder", str(folder)], check=True,
                              capture_output=True, text=True)
        results[path] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{'path':8} {'read s':>7} {'corpus s':>9} {'topics s':>9} {'terms s':>8} {'total s':>8} {'peak MiB':>9}")
    for path, r in results.items():
        print(f"{path:8} {r['read_s']:7.1f} {r['corpus_s']:9.1f} {r['topics_s']:9.1f} {r['location_terms_s']:8.1f} "
              f"{r['total_s']:8.1f} {r['peak_mib']:9.0f}")
    memory, engine = (pd.read_pickle(results[p]["result"]) for p in ("memory", "engine"))
    same = memory[0].equals(engine[0]) and memory[1].equals(engine[1])
    r = results["memory"]
    print(f"{r['comments']:,} comments, {r['terms']:,} terms kept, {r['topics']} topics: {', '.join(r['labels'])}")
    print(f"same topics and location terms in memory and on the engine: {same}")
    print("target: under 180 s and under 2,048 MiB per path")


if __name__ == "__main__":
    main()
