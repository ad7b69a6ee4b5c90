"""The `cxresearch` command: run the report suite, validate a data folder, import an export, generate the synthetic brand.

    cxresearch run                                  # reports.yaml on data/sample -> reports/latest/index.html
    cxresearch validate data/sample                 # what loaded, the accounting, rejects by reason
    cxresearch import olist olist/ --out data/olist # the public Olist export as canonical tables
    cxresearch synth --locations 60 --customers 20000 --seed 7 --out data/sample

Exit codes: 0 success; 1 some reports failed (run) or rows were rejected with --strict (validate);
2 bad input, config or usage; 75 another run holds the output folder (run; try again later);
128 + the signal's number when SIGTERM (143) or SIGINT (130) stopped a run, with nothing published.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from cxresearch import __version__
from cxresearch.engine import connect
from cxresearch.io import IngestError, MappingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxresearch", description="Customer-experience research for "
                                     "multi-location brands: CX per location and how it moves retention and revenue.")
    parser.add_argument("--version", action="version", version=f"cxresearch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    suite = commands.add_parser("run", help="execute the report suite and publish HTML reports",
                                description="Execute the notebooks of a run config with papermill, render HTML "
                                "without code, write index.html and manifest.json, publish atomically.")
    suite.add_argument("--config", default="reports.yaml", help="run config (default reports.yaml)")
    suite.add_argument("--data", help="data folder or connection string: duckdb:///brand.duckdb, spark:<folder>, "
                                      "pandas:<folder>, or a warehouse URL (default: the config's data)")
    suite.add_argument("--out", help="where runs are published (default: the config's out, reports/)")
    suite.add_argument("--workers", type=int, help="notebooks in parallel (default: the config's, 2)")
    suite.add_argument("--only", help="comma-separated notebook names to run")
    suite.add_argument("--locations", help="comma-separated location ids for the fan-out notebooks")
    suite.add_argument("--retry-failed", metavar="RUN_ID", help="re-run only the notebooks that failed in RUN_ID")
    suite.add_argument("--quiet", action="store_true", help="no progress bar")
    suite.add_argument("--wait", action="store_true", help="when another run holds the output folder, wait for it "
                       "instead of exiting at once (exit code 75)")
    suite.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit of the whole run: notebooks "
                       "still running then are stopped and reported as failed (default: the config's timeout)")
    suite.add_argument("--timeout-per-notebook", type=float, metavar="SECONDS", help="time limit of one notebook: "
                       "it is stopped, kept with its partial output and reported as failed (default: the config's)")
    suite.add_argument("--keep", type=int, metavar="N", help="after publishing, remove runs beyond the newest N, "
                       "never the one latest points to (default: the config's keep, else keep all)")
    suite.set_defaults(func=cmd_run)

    check = commands.add_parser("validate", help="load a data folder, print what loaded and the accounting",
                                description="Load and validate a folder of exports; print the tables, "
                                "the accounting (read = accepted + rejected) and rejects by reason.")
    check.add_argument("data", help="folder with one file per table (locations, responses, ...), or a connection "
                                    "string as for run --data")
    check.add_argument("--mapping", help="YAML column mapping (default: DATA/mapping.yaml if present)")
    check.add_argument("--rejects", metavar="CSV", help="write every rejected row with its reason to this file")
    check.add_argument("--strict", action="store_true", help="exit 1 when any row was rejected")
    check.set_defaults(func=cmd_validate)

    synth = commands.add_parser("synth", help="write a synthetic brand with a published ground truth",
                                description="Generate a synthetic multi-location brand and its truth.json.")
    synth.add_argument("--locations", type=int, default=60, help="number of locations (default 60)")
    synth.add_argument("--customers", type=int, default=20000, help="number of customers (default 20000)")
    synth.add_argument("--start", default="2024-01-01", help="first day of data (default 2024-01-01)")
    synth.add_argument("--end", default="2025-12-31", help="last day of data (default 2025-12-31)")
    synth.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    synth.add_argument("--messy", action="store_true", help="add realistic dirt (raw CSV) for testing ingest")
    synth.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="file format (default parquet)")
    synth.add_argument("--out", required=True, help="folder to write")
    synth.add_argument("--force", action="store_true", help="overwrite data files in a non-empty folder")
    synth.set_defaults(func=cmd_synth)

    from cxresearch.io.importers import SOURCES

    reshape = commands.add_parser("import", help="turn a public or vendor export into a data folder",
                                  description="Read an export in its own layout, write the canonical tables as Parquet "
                                  "and import_report.json: per source file rows read, used and set aside by reason.")
    sources = reshape.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, about in SOURCES.items():
        source = sources.add_parser(name, help=about, description=f"Import {about}.")
        source.add_argument("src", help="folder holding the export's files")
        source.add_argument("--out", required=True, help="folder to write (created)")
        source.add_argument("--force", action="store_true", help="replace the tables in a non-empty folder")
        source.set_defaults(func=cmd_import)
    return parser


def cmd_run(args) -> int:
    from cxresearch.reports.guard import RunLocked, RunStopped
    from cxresearch.reports.runner import run

    if args.keep is not None and args.keep < 1:
        raise ValueError(f"--keep must be at least 1, not {args.keep}")
    for flag, limit in (("--timeout", args.timeout), ("--timeout-per-notebook", args.timeout_per_notebook)):
        if limit is not None and limit <= 0:
            raise ValueError(f"{flag} must be a number of seconds above 0, not {limit:g}")
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()] if text else None  # noqa: E731
    try:
        result = run(args.config, data=args.data, out=args.out, workers=args.workers, only=split(args.only),
                     locations=split(args.locations), retry_failed=args.retry_failed, progress=not args.quiet,
                     wait=args.wait, keep=args.keep, timeout=args.timeout,
                     timeout_per_notebook=args.timeout_per_notebook)
    except RunLocked as exc:
        print(f"cxresearch run: {exc}", file=sys.stderr)
        return 75
    except RunStopped as stop:
        print(f"cxresearch run: stopped by {stop.name}: {stop.finished} of {stop.total} reports finished; "
              "nothing was published", file=sys.stderr)
        return 128 + stop.signum
    ok = len(result.jobs) - len(result.failed)
    print(f"{ok} of {len(result.jobs)} reports ok; run {result.run_id}")
    for job in result.failed:
        print(f"  FAILED {job.name}: {job.error}  (see {result.folder / job.output})")
    print(f"open {result.folder.parent / 'latest' / 'index.html'}  (this run: {result.index})")
    return 1 if result.failed else 0


def cmd_validate(args) -> int:
    dataset = connect(args.data, mapping=args.mapping)
    print(f"cxresearch {__version__}: {args.data}")
    print(dataset.summary())
    if len(dataset.rejects):
        print("rejected rows by reason:")
        for row in dataset.rejects_by_reason().itertuples():
            print(f"  {row.table:<20} {row.rows:>7,}  {row.reason}")
    if args.rejects:
        dataset.rejects.to_csv(args.rejects, index=False)
        print(f"rejects written to {args.rejects}")
    return 1 if args.strict and len(dataset.rejects) else 0


def cmd_synth(args) -> int:
    from cxresearch import synth  # imported here: only this command needs the generator

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise IngestError(f"{out}: folder is not empty; pass --force to overwrite its data files")
    started = time.perf_counter()
    if args.messy:
        tables, truth = synth.generate_raw(args.locations, args.customers, args.start, args.end,
                                           seed=args.seed, messy=True)
        synth.write_raw(tables, out, format="csv")
    else:
        dataset, truth = synth.generate(args.locations, args.customers, args.start, args.end, seed=args.seed)
        dataset.to_dir(out, format=args.format)
    truth.save(out / "truth.json")
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s) with truth.json")
    return 0


def cmd_import(args) -> int:
    from cxresearch.io import importers

    importers.check_destination(args.out, args.force)  # (before the import: a refusal comes at once)
    result = getattr(importers, args.source)(args.src)
    out = result.write(args.out, force=args.force)
    print(result.summary())
    print(f"wrote {out} with {importers.REPORT_FILE}; check it with: cxresearch validate {out}")
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (IngestError, MappingError, FileNotFoundError, ValueError) as exc:  # ConfigError is a ValueError
        print(f"cxresearch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
