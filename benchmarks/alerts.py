"""Benchmark: how well cx.alerts finds planted incidents, and how fast it scans 1,000 locations.

    python benchmarks/alerts.py [--brands 20] [--locations 40] [--customers 100000] [--incidents 8]
                                [--speed-locations 1000] [--measure nps|csat|ces] [--drop POINTS]

Recovery: each simulated brand (36 months, about 100 answers per location and quarter) has
`--incidents` incidents planted at random locations (`SynthParams.incidents`): a drop of 15 NPS
points (with `--measure csat` or `ces`: 10 points of the top-box share) for three months from a
random month, caused by a random attribute. Printed: the share of
incidents found (an alert at that location whose segment overlaps it), the error of the found start
in months, the share whose planted attribute is named first in the cause, the reported change against
the planted 15 points (the scan picks the stretch that stood out most, so its change could be
inflated: the winner's curse) and how often its 95% range holds the planted fall, how often the comments' words
name the cause (a word of the attribute's complaints among the alert's top three beyond chance), and
the false alarms per 1,000 location-months at the locations without an incident. Targets (issue 21): >= 80% found, the
start within one period, >= 70% with the attribute first, < 5 false alarms per 1,000 quiet
location-months.

Speed: the scan alone on `--speed-locations` locations x 36 months (counts made with numpy), and
`cx.alerts` end to end (reductions on DuckDB included) on a synthetic brand of that many locations
and `--speed-customers` customers over 36 months; target under 30 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

ATTRIBUTES = ("staff", "speed", "cleanliness", "availability", "price")


def recovery(brands: int, locations: int, customers: int, incidents: int, measure: str = "nps", drop: float = 15.0,
             **options) -> pd.DataFrame:
    import cxresearch as cx
    from cxresearch.measures.alerts import alerts

    rows, words = [], cx.synth.COMMENT_TOPIC_TERMS
    for b in range(brands):
        rng = np.random.default_rng(1000 + b)
        where = rng.choice(locations, size=incidents, replace=False) + 1
        months = pd.period_range("2023-03", "2025-08", freq="M")  # room for 3 months before the end
        plant = tuple((int(w), str(months[rng.integers(len(months))]), 3, drop, ATTRIBUTES[rng.integers(5)])
                      for w in where)
        params = dataclasses.replace(cx.synth.SynthParams(), incidents=plant)
        ds, truth = cx.synth.generate(locations, customers, start="2023-01-01", end="2025-12-31", seed=1000 + b,
                                      survey_rate=0.2, params=params, measure=measure)
        found = alerts(ds, comments=cx.text.corpus(ds), **options)
        table = found.table
        planted = {i["location_id"]: i for i in truth.incidents}
        for location, incident in planted.items():
            hit = table[table["location_id"] == location]
            start = pd.Period(incident["start"], freq="M")
            end = pd.Period(incident["end"], freq="M")
            row = {"brand": b, "location_id": location, "attribute": incident["attribute"], "found": False,
                   "start_error": np.nan, "cause_first": False, "change": np.nan, "covers": False,
                   "comments_during": 0, "words_named": False}
            if len(hit):
                a = pd.Period(hit["start_period"].iloc[0], freq="M")
                last = hit["end_period"].iloc[0]
                e = pd.Period("2025-12", freq="M") if last == "ongoing" else pd.Period(last, freq="M")
                if a <= end and e >= start:
                    said = found.terms[(found.terms["location_id"] == location) & (found.terms["q"] < 0.05)].head(3)
                    row.update(found=True, start_error=abs((a - start).n),
                               cause_first=hit["cause"].iloc[0] == incident["attribute"],
                               change=hit["change"].iloc[0],
                               covers=hit["change_low"].iloc[0] <= -incident["drop"] <= hit["change_high"].iloc[0],
                               comments_during=int(said["comments_during"].max()) if len(said) else 0,
                               words_named=any(set(t.split()) & set(words[incident["attribute"]]) for t in said["term"]))
            rows.append(row)
        quiet = [loc for loc in found.scan["location_id"] if loc not in planted]
        false = table[~table["location_id"].isin(list(planted))]
        rows.append({"brand": b, "location_id": None, "false_alarms": len(false), "quiet_location_months": len(quiet) * 36})
        print(f"brand {b + 1}/{brands}: {int(sum(r.get('found', False) for r in rows if r.get('brand') == b))} of "
              f"{incidents} found, {len(false)} false alarm(s)", flush=True)
    return pd.DataFrame(rows)


def speed(locations: int, months: int = 36, per_month: int = 33) -> float:
    """Seconds for the scan of `locations` x `months` (NPS and five attributes), from counts made with numpy."""
    from cxresearch.measures import alerts as module

    rng = np.random.default_rng(1)
    n = rng.poisson(per_month, (locations, months)).astype(float)
    promoters = rng.binomial(n.astype(int), 0.45)
    detractors = rng.binomial((n - promoters).astype(int), 0.3)
    ratings_n = rng.binomial(n.astype(int), 0.6).astype(float)
    mean = 3.6 + 0.1 * rng.standard_normal((locations, months))
    series = [(n, 100.0 * (promoters - detractors), 100.0**2 * (promoters + detractors))]
    for _ in ATTRIBUTES:
        s = ratings_n * mean + np.sqrt(ratings_n) * 0.85 * rng.standard_normal(n.shape)
        series.append((ratings_n, s, s**2 / np.maximum(ratings_n, 1) + ratings_n * 0.85**2))
    started = time.perf_counter()
    draws = np.random.default_rng(0)
    for (a, b, c), margin in zip(series, [5.0] + [0.1] * 5):
        module._scan(a, b, c, margin, 20, 6, draws, 20)
    return time.perf_counter() - started


def end_to_end(locations: int, customers: int) -> tuple[float, int]:
    """Seconds for cx.alerts on a synthetic brand of `locations` x 36 months (reductions included)."""
    import cxresearch as cx

    ds, _ = cx.synth.generate(locations, customers, start="2023-01-01", end="2025-12-31", seed=5)
    started = time.perf_counter()
    cx.alerts(ds)
    return time.perf_counter() - started, len(ds.responses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brands", type=int, default=20)
    parser.add_argument("--locations", type=int, default=40)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--incidents", type=int, default=8)
    parser.add_argument("--speed-locations", type=int, default=1000)
    parser.add_argument("--speed-customers", type=int, default=1_000_000)
    parser.add_argument("--min-rating-change", type=float, default=0.1)
    parser.add_argument("--max-periods", type=int, default=6)
    parser.add_argument("--measure", choices=("nps", "csat", "ces"), default="nps",
                        help="the brands' measure; incidents of CSAT and CES brands are sized in top-box points")
    parser.add_argument("--drop", type=float, default=None,
                        help="the planted fall, in the measure's points (default 15 for NPS, 10 for a top-box share)")
    args = parser.parse_args()
    t = time.perf_counter()
    seconds = speed(args.speed_locations)
    print(f"scan of {args.speed_locations:,} locations x 36 months (NPS + 5 attributes): {seconds:.1f} s")
    whole, answers = end_to_end(args.speed_locations, args.speed_customers)
    print(f"cx.alerts on a synthetic brand of {args.speed_locations:,} locations x 36 months ({answers:,} responses, "
          f"reductions on DuckDB included): {whole:.1f} s (target < 30 s)")
    drop = args.drop if args.drop is not None else (15.0 if args.measure == "nps" else 10.0)
    unit = "NPS points" if args.measure == "nps" else f"points of {args.measure.upper()} top-box share"
    frame = recovery(args.brands, args.locations, args.customers, args.incidents, measure=args.measure, drop=drop,
                     min_rating_change=args.min_rating_change, max_periods=args.max_periods)
    planted = frame[frame["location_id"].notna()]
    quiet = frame[frame["location_id"].isna()]
    found = planted[planted["found"]]
    per_thousand = 1000 * quiet["false_alarms"].sum() / quiet["quiet_location_months"].sum()
    print(f"\n{len(planted)} incidents ({drop:g} {unit}, 3 months) in {args.brands} brands of {args.locations} locations:")
    print(f"  found: {100 * planted['found'].mean():.0f}% ({int(planted['found'].sum())} of {len(planted)}; target >= 80%)")
    print(f"  start within one month: {100 * (found['start_error'] <= 1).mean():.0f}% of found, "
          f"median error {found['start_error'].median():.0f} months")
    print(f"  planted attribute named first: {100 * found['cause_first'].mean():.0f}% of found (target >= 70%)")
    print(f"  reported change: median {found['change'].median():+.1f} points, mean {found['change'].mean():+.1f} "
          f"(planted {-drop:+g}); its 95% range holds {-drop:+g} for {100 * found['covers'].mean():.0f}% of found")
    print(f"  comments: a word of the planted attribute's complaints among the top three, beyond chance, for "
          f"{100 * found['words_named'].mean():.0f}% of found")
    print(f"  false alarms: {per_thousand:.2f} per 1,000 quiet location-months (target < 5)")
    print("  found by attribute: " + ", ".join(f"{a} {100 * g['found'].mean():.0f}%"
                                               for a, g in planted.groupby("attribute")))
    print(f"({time.perf_counter() - t:.0f} s in all)")


if __name__ == "__main__":
    main()
