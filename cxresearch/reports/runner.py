"""Run the report suite: papermill executions in parallel, HTML for leadership, index, manifest, atomic publish.

    cxresearch run --config reports.yaml --data data/sample --out reports --workers 2

A run is described by a YAML config (see reports.yaml): the data source, default parameters, the
notebooks and which one fans out over which locations. Every parameter is checked against the
notebook's declared ones before any kernel starts. Each notebook runs in its own kernel; a failure
is kept (its executed copy shows the error), reported, and does not stop the others. The run is
written to a hidden temporary folder and published by one atomic rename, then `latest` is switched
to it, so a reader never sees a half-written run. One run at a time works on an output folder (a
lock; `wait=True` waits for the other), SIGTERM and SIGINT stop a run cleanly with nothing published,
kernels talk over private IPC sockets, and `keep` prunes old runs (see `cxresearch.reports.guard`).

What leadership opens, the index and one page per report with their shared stylesheet, is made by
`cxresearch.reports.publish`; the executed notebooks and the kernels' log go to the run's analyst
folder (`analyst/notebooks/`, `analyst/kernels.log`), which the index does not link.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from cxresearch import __version__
from cxresearch.reports import execution, guard, kernels, publish, store

__all__ = ["ConfigError", "Job", "OverTime", "RunResult", "declared_parameters", "execute", "load_config", "plan", "render_html",
           "run", "validate_parameters"]

KERNELS_LOG = f"{publish.ANALYST}/kernels.log"  # the kernels' stderr, relative to the run's folder
STORE = f"{publish.ANALYST}/store"  # the run's store (`store`), built once, read by the deep dives
TYPE_CHECKS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "Optional[str]": (str, type(None)),
               "Optional[int]": (int, type(None)), "Optional[float]": (int, float, type(None))}


class ConfigError(ValueError):
    """The run config or a parameter is wrong; raised before any notebook runs."""


@dataclass
class Job:
    """One notebook execution: which notebook, under which name, with which parameters."""

    name: str
    notebook: str
    parameters: dict
    group: str = ""
    status: str = "pending"
    duration_s: float = 0.0
    error: str = ""
    output: str = ""
    html: str = ""
    title: str = ""


@dataclass
class RunResult:
    run_id: str
    folder: Path
    jobs: list[Job] = field(default_factory=list)

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.status != "ok"]

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


# --- config and planning ---------------------------------------------------------------------------

def load_config(path) -> dict:
    """Read and check a run config; paths in it are relative to the config file."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the run config ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    unknown = set(config) - {"data", "mapping", "out", "parameters", "notebooks", "workers", "keep", "timeout",
                             "timeout_per_notebook", "kernels_ahead"}
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}; expected data, mapping, out, "
                          "parameters, notebooks, workers, keep, timeout, timeout_per_notebook, kernels_ahead")
    if not isinstance(config.get("kernels_ahead", True), bool):
        raise ConfigError(f"{path}: kernels_ahead must be true or false; got {config['kernels_ahead']!r}")
    for name in ("timeout", "timeout_per_notebook"):
        limit = config.get(name)
        if limit is not None and (not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit <= 0):
            raise ConfigError(f"{path}: {name} must be a number of seconds above 0; got {limit!r}")
    keep = config.get("keep")
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
        raise ConfigError(f"{path}: keep must be a whole number of runs, at least 1; got {keep!r}")
    measure = (config.get("parameters") or {}).get("measure", "auto")
    if measure not in ("auto", "nps", "csat", "ces"):
        raise ConfigError(f"{path}: parameters.measure must be auto, nps, csat or ces; got {measure!r}")
    if not config.get("notebooks"):
        raise ConfigError(f"{path}: no notebooks listed")
    base = path.resolve().parent
    for entry in config["notebooks"]:
        if not {"name", "notebook"} <= set(entry):
            raise ConfigError(f"{path}: each notebook needs a name and a notebook path; got {entry}")
        entry["notebook"] = str((base / entry["notebook"]).resolve())
        if not Path(entry["notebook"]).is_file():
            raise ConfigError(f"{path}: notebook {entry['notebook']} does not exist")
    config["_base"] = str(base)
    return config


def plan(config: dict, only=None, locations=None, dataset=None) -> list[Job]:
    """The jobs of a run: one per notebook, one per location for a fan-out notebook."""
    only = set(only or [])
    names = {e["name"] for e in config["notebooks"]}
    if only - names:
        raise ConfigError(f"--only names unknown notebook(s) {', '.join(sorted(only - names))}; "
                          f"the config has {', '.join(sorted(names))}")
    jobs = []
    for entry in config["notebooks"]:
        if only and entry["name"] not in only:
            continue
        params = dict(entry.get("parameters") or {})
        fan = entry.get("fan_out")
        if not fan:
            jobs.append(Job(entry["name"], entry["notebook"], params, group="topic"))
            continue
        for location in _fan_out_locations(fan, locations, dataset, (config.get("parameters") or {}) | params):
            jobs.append(Job(f"{entry['name']}-{location}", entry["notebook"],
                            params | {fan.get("parameter", "location_id"): location}, group=entry["name"]))
    return jobs


def _fan_out_locations(fan: dict, override, dataset, params) -> list[str]:
    """Which locations a fan-out covers: 'all', a list, or {below_funnel: N} (the N lowest flagged below).

    With 'all', only locations with at least `min_responses` responses (the fan-out's setting, else the
    run's `min_n` parameter; 0 for every location), since a page about a location with too few
    responses to show any number is a page of blanks. A list or --locations is taken as given."""
    if override:
        return list(override)
    which = fan.get("locations", "all")
    if isinstance(which, list):
        return [str(x) for x in which]
    if which == "all":
        least = fan.get("min_responses", params.get("min_n", 30))
        if not isinstance(least, int) or isinstance(least, bool) or least < 0:
            raise ConfigError(f"fan_out min_responses must be a whole number, 0 or more; got {least!r}")
        ids = sorted(dataset.locations["location_id"])
        if least == 0:
            return ids
        from cxresearch.measures.metrics import score_counts

        counts = score_counts(dataset, ["location_id"], ()).set_index("location_id")["responses"]
        return [i for i in ids if counts.get(i, 0) >= least]
    if isinstance(which, dict) and "below_funnel" in which:
        from cxresearch.measures.scorecard import location_scorecard

        card = location_scorecard(dataset, min_n=params.get("min_n", 30), measure=params.get("measure"))
        below = card[card["funnel_flag"] == "below"].sort_values("shrunk")
        return list(below["location_id"].head(int(which["below_funnel"])))
    raise ConfigError(f"fan_out locations must be 'all', a list of ids or {{below_funnel: N}}; got {which!r}")


@functools.cache
def declared_parameters(notebook: str) -> dict:
    """The parameters a notebook declares (papermill's inspection), read once per notebook per process:
    a fan-out of 60 deep dives asks for the same notebook 60 times."""
    import papermill as pm

    return pm.inspect_notebook(notebook)


def validate_parameters(jobs: list[Job], defaults: dict | None = None, notebooks=()) -> None:
    """Every parameter must be declared by its notebook with a matching type, and every default
    parameter by at least one notebook of the run (a typo would otherwise do nothing). Checked
    before any kernel starts."""
    declared_by = {notebook: declared_parameters(notebook) for notebook in [j.notebook for j in jobs] + list(notebooks)}
    problems = []
    anywhere = set().union(*[set(d) for d in declared_by.values()]) if declared_by else set()
    for name in sorted(set(defaults or {}) - anywhere):
        problems.append(f"parameters: unknown parameter {name!r}; no notebook of this run declares it "
                        f"(declared: {', '.join(sorted(anywhere))})")
    for job in jobs:
        declared = declared_by[job.notebook]
        for name, value in job.parameters.items():
            if name not in declared:
                problems.append(f"{job.name}: unknown parameter {name!r}; {Path(job.notebook).name} declares "
                                f"{', '.join(declared)}")
                continue
            kind = declared[name]["inferred_type_name"]
            allowed = TYPE_CHECKS.get(kind)
            if allowed and (not isinstance(value, allowed) or (kind == "int" and isinstance(value, bool))):
                problems.append(f"{job.name}: parameter {name!r} must be {kind}, got {type(value).__name__} {value!r}")
    if problems:
        raise ConfigError("invalid parameters:\n  " + "\n  ".join(problems))


# --- execution ---------------------------------------------------------------------------------------

def execute(job: Job, folder: str, time_limit: float | None = None, warm: bool = False) -> Job:
    """Run one notebook with papermill and render its HTML; never raises (the job records the failure).

    The executed notebook goes to `<folder>/analyst/notebooks/`, its page to `<folder>/html/`. Past
    `time_limit` seconds the worker interrupts papermill (a signal to itself, which raises in its
    main thread), kills its own kernel, and fails the job saying why; papermill keeps what the
    notebook ran so far. The kernel describes the charts it shows (`publish.kernel_arguments`).
    With `warm` (a worker of a run with more reports than workers) the report runs in the kernel
    this process started during its previous report, and starts the next one (`kernels.WarmKernel`:
    one kernel per report, never reused)."""
    import papermill as pm

    started = time.perf_counter()
    output = _notebook_path(Path(folder), job.name)
    output.parent.mkdir(parents=True, exist_ok=True)
    expired, timer, previous = threading.Event(), None, None
    if time_limit:
        def expire():
            expired.set()
            os.kill(os.getpid(), signal.SIGUSR1)
        previous = signal.signal(signal.SIGUSR1, _over_time)
        timer = threading.Timer(time_limit, expire)
        timer.daemon = True
        timer.start()
    cwd, arguments = str(Path(job.notebook).parent), publish.kernel_arguments()
    km = _ahead().take(cwd, arguments) if warm else None
    if warm:
        _ahead().prepare(cwd, arguments)  # the next report's kernel boots while this one runs
    try:
        pm.execute_notebook(job.notebook, str(output), parameters=job.parameters, cwd=cwd,
                            progress_bar=False, log_output=False, kernel_name="python3",
                            kernel_manager_class=guard.PrivateKernelManager, shutdown_kernel="immediate",
                            engine_name=execution.register(),
                            extra_arguments=arguments, **({"km": km} if km is not None else {}))
        job.status = "ok"
    except pm.PapermillExecutionError as exc:
        job.status, job.error = "failed", f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a broken kernel or notebook must not stop the run
        job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        if timer is not None:
            timer.cancel()
            signal.signal(signal.SIGUSR1, previous)
        if km is not None:
            _ahead().retire(km)  # killed now, reaped at the next report (papermill stops only kernels it started)
    if expired.is_set():
        guard.kill_kernels(os.environ.get("JUPYTER_RUNTIME_DIR", "/nonexistent") + f"/kernel-{os.getpid()}-")
        job.status, job.error = "failed", f"stopped after its time limit of {time_limit:g} s (timeout_per_notebook)"
    job.output = str(output.relative_to(folder)) if output.exists() else ""
    if output.exists():
        try:
            page = publish.render_page(output, Path(folder) / publish.PAGES / f"{job.name}.html",
                                       subtitle=job.group != "topic", error=job.error)
            job.html, job.title = str(page.path.relative_to(folder)), page.title
        except Exception as exc:  # noqa: BLE001 - a page that cannot be rendered fails its report, not the run
            job.status, job.error = "failed", job.error or f"its page could not be rendered ({type(exc).__name__}: {exc})"
    job.duration_s = round(time.perf_counter() - started, 2)
    return job


_AHEAD = None  # this worker's kernel started ahead (`kernels.WarmKernel`), made on first use


def _ahead():
    global _AHEAD
    if _AHEAD is None:
        _AHEAD = kernels.WarmKernel(guard.PrivateKernelManager)
    return _AHEAD


class OverTime(Exception):
    """A notebook ran past its time limit."""


def _over_time(_signum, _frame):
    raise OverTime("stopped at its time limit")


def render_html(notebook: Path, target: Path, subtitle: bool = False, error: str = "") -> Path:
    """HTML for readers: every code input and prompt hidden, outputs and prose kept.

    Parameters
    ----------
    notebook : Path
        The executed notebook.
    target : Path
        The page to write, in a run's html/ folder (its header links to ../index.html; the shared
        stylesheet is written beside it if missing).
    subtitle : bool
        Whether the first h2 belongs in the page's title (a fan-out page's location).
    error : str
        Why the notebook failed, said at the top of the page; empty when it did not.

    Returns
    -------
    Path
        `target`. `publish.render_page` returns its title too.
    """
    return publish.render_page(notebook, target, subtitle=subtitle, error=error).path


def _notebook_path(folder: Path, name: str) -> Path:
    """Where a run keeps a report's executed notebook: its analyst folder, not beside the pages."""
    return folder / publish.ANALYST / "notebooks" / f"{name}.ipynb"


def run(config_path="reports.yaml", data=None, out=None, workers: int | None = None, only=None, locations=None,
        retry_failed: str | None = None, progress: bool = True, wait: bool = False,
        keep: int | None = None, timeout: float | None = None,
        timeout_per_notebook: float | None = None) -> RunResult:
    """Execute the suite and publish it under `out/<run_id>`, with `out/latest` pointing to it.

    With `retry_failed=RUN_ID` only the notebooks that failed in that run are executed again; the
    others are copied from it into the new run. Another run on the same `out` raises
    `guard.RunLocked` at once, or is waited for with `wait`. SIGTERM or SIGINT stops the run: no
    new notebook starts, running kernels are shut down, the staging folder is removed and
    `guard.RunStopped` is raised, with nothing published. After publishing, runs beyond the newest
    `keep` (default: the config's `keep`, else all are kept) are removed, never the one `latest`
    points to. A notebook running longer than `timeout_per_notebook` seconds is stopped, kept with
    its partial output and reported as failed; past `timeout` seconds for the whole run, the
    notebooks still running or waiting are too, and the run is published with them failed
    (defaults: the config's `timeout_per_notebook` and `timeout`, else no limit).
    """
    config = load_config(config_path)
    limits = (timeout or config.get("timeout"), timeout_per_notebook or config.get("timeout_per_notebook"))
    base = Path(config["_base"])
    out = (Path(out) if out else base / config.get("out", "reports")).resolve()
    keep = keep if keep is not None else config.get("keep")
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    with guard.run_lock(out, run_id, wait), guard.stop_on_signals():
        staging = out / f".tmp-{run_id}"
        try:
            result = _run_locked(config, base, data, out, run_id, staging, workers, only, locations, retry_failed,
                                 progress, limits)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if keep:
            for removed in guard.prune_runs(out, keep):
                logging.getLogger(__name__).info("removed run %s (keep %d)", removed, keep)
    return result


def _run_locked(config, base, data, out, run_id, staging, workers, only, locations, retry_failed, progress, limits):
    """The run itself, with the output folder's lock held; `limits` are (run, per notebook) seconds."""
    from cxresearch.engine import connect, resolve
    from cxresearch.reports.brand import SETTINGS, brand_results, fingerprint

    data = resolve(data, Path.cwd()) if data else resolve(config.get("data", "data/sample"), base)
    dataset = connect(data, mapping=config.get("mapping"))
    jobs = plan(config, only, locations, dataset)
    reused = _mark_reused(jobs, _previous_run(out, retry_failed)) if retry_failed else []
    pending = [j for j in jobs if j.status == "pending"]
    defaults = config.get("parameters") or {}
    for job in pending:
        _fill_run_parameters(job, defaults, data, config.get("mapping"), staging / "_cache", staging / STORE)
    validate_parameters(pending, defaults, [e["notebook"] for e in config["notebooks"]])  # before any kernel starts
    started = time.perf_counter()
    deadline = time.monotonic() + limits[0] if limits[0] else None
    staging.mkdir(parents=True)
    (staging / publish.ANALYST).mkdir()
    publish.write_stylesheet(staging / publish.PAGES)
    params = config.get("parameters") or {}
    results, problem = None, ""
    # the brand-results cache is for notebooks that still declare `cache_dir`; the run's own reports
    # read the store, so without such a notebook writing the cache (customer table included) is waste
    cache = staging / "_cache" if any("cache_dir" in job.parameters for job in pending) else None
    try:
        results = brand_results(dataset, cache_dir=cache, fingerprint=fingerprint(data) if cache else None,
                                **{k: v for k, v in params.items() if k in SETTINGS})
    except guard.RunStopped as stop:
        stop.total = len(pending)
        raise
    except Exception as exc:  # noqa: BLE001  the reports that need these results fail with the reason; the rest run
        logging.getLogger(__name__).warning("brand-level results could not be computed: %s", exc)
        problem = str(exc)
    if any("store" in job.parameters for job in pending):
        try:  # once per run: the reports read it instead of the raw data
            store.build(dataset, results, settings=params, problem=problem).write(staging / STORE)
        except guard.RunStopped:
            raise
        except Exception as exc:  # noqa: BLE001  without a store each report builds its own from the data
            logging.getLogger(__name__).warning("the run's store could not be built: %s", exc)
    prepared = time.perf_counter() - started  # brand results and the store, before the first notebook
    places, label = _places(results, dataset)
    if reused:
        _copy_reused(out / retry_failed, staging, reused)
    finished = _execute_all(pending, staging, workers or int(config.get("workers", 2)), progress, deadline, limits,
                            ahead=config.get("kernels_ahead", True))
    jobs = sorted(reused + finished, key=lambda j: (j.group != "topic", j.name))
    for job in jobs:
        if "cache_dir" in job.parameters:
            job.parameters["cache_dir"] = "<run>/_cache"  # removed after the run; the manifest should not name it
        if "store" in job.parameters:
            job.parameters["store"] = STORE  # kept in the run, for analysts (relative to the run's folder)
    manifest = _manifest(run_id, config, data, jobs, time.perf_counter() - started, retry_failed) | {
        "prepare_s": round(prepared, 1)}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    publish.link_locations(staging / publish.PAGES, _deep_dive_pages(jobs))
    (staging / "index.html").write_text(_index_html(manifest, places, label), encoding="utf-8")
    shutil.rmtree(staging / "_cache", ignore_errors=True)
    final = out / run_id
    os.rename(staging, final)  # atomic publish
    guard.point_latest(out, run_id)
    return RunResult(run_id, final, jobs)


def _deep_dive_pages(jobs: list[Job]) -> dict[str, str]:
    """location_id -> the file name of its fan-out page, for the links between reports."""
    return {str(job.parameters["location_id"]): Path(job.html).name for job in jobs
            if job.group != "topic" and job.html and "location_id" in job.parameters}


def _places(results, dataset) -> tuple[dict, str]:
    """What the index says about each location (`publish.location_summaries`) and the measure's name:
    from the run's scorecard, else (when the brand results failed) the locations' names and regions."""
    try:
        if results is not None:
            return publish.location_summaries(results.scorecard, results.measure), results.measure.label
        return publish.location_summaries(dataset.locations), ""
    except Exception as exc:  # noqa: BLE001  an index without the locations' numbers beats no index
        logging.getLogger(__name__).warning("the index shows no location details: %s", exc)
        return {}, ""


def _fill_run_parameters(job: Job, defaults: dict, data: str, mapping, cache: Path, store_folder: Path) -> None:
    """Give a notebook the config's default parameters, the data source, mapping, shared cache and the
    run's store, each where the notebook declares it (its own parameters in the config always apply)."""
    declared = declared_parameters(job.notebook)
    job.parameters = {k: v for k, v in defaults.items() if k in declared} | job.parameters
    if "data" in declared:
        job.parameters.setdefault("data", data)
    if mapping is not None and "mapping" in declared:
        job.parameters.setdefault("mapping", str(mapping))
    if "cache_dir" in declared:
        job.parameters["cache_dir"] = str(cache)
    if "store" in declared:
        job.parameters["store"] = str(store_folder)


def _execute_all(jobs: list[Job], staging: Path, workers: int, progress: bool, deadline=None,
                 limits=(None, None), ahead: bool = True) -> list[Job]:
    """Run the jobs on a pool of worker processes, each in its own process group (a terminal's
    Ctrl-C reaches the run, which then stops the workers) with the run's private runtime folder.
    At the run's `deadline` (monotonic seconds) the notebooks not finished are stopped and failed.
    With `ahead`, each worker starts its next report's kernel while the current one runs."""
    from tqdm.auto import tqdm

    done = []
    bar = tqdm(total=len(jobs), desc="reports", unit="nb", disable=not progress)
    with guard.private_runtime_dir() as runtime:
        pool = ProcessPoolExecutor(max_workers=max(1, workers), initializer=_worker_setup,
                                   initargs=(str(staging / KERNELS_LOG), runtime))
        try:
            warm = ahead and len(jobs) > max(1, workers)  # (a worker with one report has no next one to start ahead)
            futures = {pool.submit(execute, job, str(staging), limits[1], warm): job for job in jobs}
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            completed = set()
            try:
                for future in as_completed(futures, timeout=remaining):
                    job = future.result()
                    completed.add(future)
                    done.append(job)
                    bar.set_postfix_str(f"{job.name}: {job.status}")
                    bar.update(1)
            except FuturesTimeout:
                _stop_workers(pool)
                guard.kill_kernels(runtime)
                done += _past_the_run_limit([job for f, job in futures.items() if f not in completed], staging, limits[0])
        except guard.RunStopped as stop:
            _stop_workers(pool)
            guard.kill_kernels(runtime)
            stop.finished, stop.total = len(done), len(jobs)
            raise
        finally:
            bar.close()
            pool.shutdown(wait=True, cancel_futures=True)
            guard.kill_kernels(runtime)  # the kernels the workers started ahead for reports that never came
    return done


def _past_the_run_limit(jobs: list[Job], staging: Path, limit: float) -> list[Job]:
    """Jobs the run's time limit cut short: failed, with what their notebook had run so far."""
    for job in jobs:
        output = _notebook_path(staging, job.name)
        job.status, job.error = "failed", f"not finished within the run's time limit of {limit:g} s (timeout)"
        job.output = str(output.relative_to(staging)) if output.exists() else ""
    return jobs


def _stop_workers(pool: ProcessPoolExecutor, grace_s: float = 3.0) -> None:
    """No new notebook starts; each worker gets SIGTERM and is killed if it has not exited after
    `grace_s` (the run is being thrown away: its partial notebooks are not worth waiting for). The
    caller then kills the kernels left (`guard.kill_kernels`): papermill runs nbclient in a thread,
    where nbclient cannot install the handler that would shut them down."""
    processes = list((pool._processes or {}).values())  # (the executor offers no public list of its workers)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)


def _worker_setup(log_path: str, runtime: str) -> None:
    """A worker: its own process group, kernels' connection files in the run's private folder, and
    its (and so its kernels') stderr in the run's analyst/kernels.log instead of the terminal."""
    os.setpgrp()
    os.environ["JUPYTER_RUNTIME_DIR"] = runtime
    handle = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(handle, 2)
    os.close(handle)


def _previous_run(out: Path, run_id: str) -> dict:
    manifest = out / run_id / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"--retry-failed: no run {run_id} under {out} (no {manifest})")
    return {n["name"]: n for n in json.loads(manifest.read_text())["notebooks"]}


def _mark_reused(planned: list[Job], previous: dict) -> list[Job]:
    """Jobs that succeeded in the earlier run: marked ok with its outputs, to be copied, not re-executed."""
    reused = []
    for job in planned:
        old = previous.get(job.name)
        if old and old["status"] == "ok":
            job.status, job.output, job.html, job.duration_s = "ok", old["output"], old["html"], old["duration_s"]
            job.parameters, job.title = old["parameters"], old.get("title", "")
            reused.append(job)
    return reused


def _copy_reused(source: Path, staging: Path, jobs: list[Job]) -> None:
    """Copy the earlier run's notebook and page of each job into this run's layout (an earlier run may
    keep its notebooks elsewhere: its manifest says where)."""
    for job in jobs:
        copies = [(job.output, _notebook_path(staging, job.name))]
        if job.html:
            copies.append((job.html, staging / publish.PAGES / Path(job.html).name))
        for relative, target in copies:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target)
        job.output = str(copies[0][1].relative_to(staging))
        if job.html:
            job.html = str(copies[1][1].relative_to(staging))


# --- manifest and index ----------------------------------------------------------------------------

def _git_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _inputs(data: str) -> list[dict]:
    from cxresearch.engine import local_files

    files = [{"file": file.name, "bytes": file.stat().st_size, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
             for file in local_files(data)]
    return files or [{"source": data}]


def _manifest(run_id, config, data, jobs, seconds, retry_of) -> dict:
    return {"run_id": run_id, "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "package_version": __version__, "git_commit": _git_commit(Path(config["_base"])),
            "retry_of": retry_of, "duration_s": round(seconds, 1), "data": data, "inputs": _inputs(data),
            "config": {k: v for k, v in config.items() if not k.startswith("_")},
            "status": "failed" if any(j.status != "ok" for j in jobs) else "ok",
            "pages": publish.PAGES, "analyst": {"notebooks": f"{publish.ANALYST}/notebooks", "kernels_log": KERNELS_LOG},
            "notebooks": [asdict(j) for j in jobs]}


def _index_html(manifest: dict, locations: dict | None = None, measure_label: str = "") -> str:
    """The leadership index of a run (`publish.index_html`)."""
    return publish.index_html(manifest, locations, measure_label)
