"""Scheduled runs that behave under a scheduler: one run per output folder, a lock a dead run left
taken over, `latest` only moving forward, old runs pruned, private kernels, and a real run stopped
by SIGTERM with nothing published and no process left behind."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from cxresearch.cli import main
from cxresearch.reports import guard

from .test_reporting import write_config

ROOT = Path(__file__).resolve().parents[1]
RUNS = ["20261101T020000Z-aaaaaa", "20261102T020000Z-bbbbbb", "20261103T020000Z-cccccc", "20261104T020000Z-dddddd"]


def published(out: Path, runs=RUNS, latest=None) -> Path:
    for run in runs:
        (out / run).mkdir(parents=True)
        (out / run / "index.html").write_text(run)
    if latest:
        (out / "latest").symlink_to(latest)
    return out


def test_a_second_run_on_the_same_folder_exits_at_once_naming_the_first(tmp_path, capsys):
    config = write_config(tmp_path)
    with guard.run_lock(tmp_path / "reports", "20261201T020000Z-abcdef"):
        started = time.monotonic()
        assert main(["run", "--config", str(config), "--quiet"]) == 75
        assert time.monotonic() - started < 5  # before any data is read
    err = capsys.readouterr().err
    assert "in use by run 20261201T020000Z-abcdef" in err and f"pid {os.getpid()}" in err and "--wait" in err


def test_wait_waits_for_the_run_that_holds_the_lock(tmp_path):
    out = tmp_path / "reports"
    held = threading.Event()

    def first():
        with guard.run_lock(out, "20261201T020000Z-000001"):
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait()
    started = time.monotonic()
    with guard.run_lock(out, "20261201T020001Z-000002", wait=True):
        waited = time.monotonic() - started
        assert "000002" in (out / ".lock").read_text()
    thread.join()
    assert waited > 0.5


def test_a_lock_left_by_a_dead_run_is_taken_over_and_its_staging_removed(tmp_path):
    out = tmp_path / "reports"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out.mkdir()
    (out / ".lock").write_text(f'{{"run_id": "20261130T020000Z-dead00", "pid": {dead.stdout.strip()}}}')
    (out / ".tmp-20261130T020000Z-dead00" / "notebooks").mkdir(parents=True)
    with guard.run_lock(out, "20261201T020000Z-a11ve0"):
        assert not (out / ".tmp-20261130T020000Z-dead00").exists()
        assert "a11ve0" in (out / ".lock").read_text()


def test_latest_only_moves_forward(tmp_path):
    out = published(tmp_path / "reports", latest=RUNS[2])
    assert not guard.point_latest(out, RUNS[1])  # an older run that finished last does not win
    assert os.readlink(out / "latest") == RUNS[2]
    assert guard.point_latest(out, RUNS[3])
    assert os.readlink(out / "latest") == RUNS[3]


def test_keep_removes_old_runs_but_never_the_one_latest_points_to(tmp_path):
    out = published(tmp_path / "reports", latest=RUNS[0])
    (out / "notes").mkdir()  # not a run: left alone
    assert guard.prune_runs(out, 2) == [RUNS[1]]
    assert sorted(p.name for p in out.iterdir()) == sorted([RUNS[0], RUNS[2], RUNS[3], "latest", "notes"])
    with pytest.raises(ValueError, match="at least 1"):
        guard.prune_runs(out, 0)


def test_keep_in_the_config_is_checked(tmp_path):
    import yaml

    from cxresearch.reports import runner

    config = write_config(tmp_path)
    settings = yaml.safe_load(config.read_text()) | {"keep": 0}
    config.write_text(yaml.safe_dump(settings))
    with pytest.raises(runner.ConfigError, match="keep must be a whole number of runs, at least 1"):
        runner.load_config(config)


def test_a_runtime_folder_too_deep_for_sockets_is_not_used(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with guard.private_runtime_dir() as runtime:
        assert runtime.startswith("/tmp/cx-kernels-") and len(runtime) <= guard.SOCKET_FOLDER_MAX
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(deep))
    assert guard.PrivateKernelManager().transport == "tcp"  # rather than a kernel that cannot start


def test_kernels_use_ipc_sockets_of_their_own_in_the_private_folder(monkeypatch):
    with guard.private_runtime_dir() as runtime:
        assert os.stat(runtime).st_mode & 0o777 == 0o700
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", runtime)
        one, two = guard.PrivateKernelManager(), guard.PrivateKernelManager()
        assert one.transport == "ipc" and one.ip.startswith(runtime) and one.ip != two.ip
    assert not os.path.exists(runtime)


def processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            arguments = Path(cmdline).read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in arguments and str(os.getpid()) != cmdline.split("/")[2]:
            found.append(arguments)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts left-over processes in /proc (Linux)")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_real_run_cleanly(tmp_path, signum):
    config = write_config(tmp_path)
    out = published(tmp_path / "reports", runs=RUNS[:1], latest=RUNS[0])
    scratch = Path(tempfile.mkdtemp(prefix="cx-"))  # the run's private kernel folder lands here, so that its
    # kernels can be found (short: a deep folder leaves no room for a socket's path)
    child = subprocess.Popen([str(Path(sys.executable).parent / "cxresearch"), "run", "--config", str(config), "--quiet",
                              "--locations", ",".join(f"L{i:04d}" for i in range(1, 9))],
                             stdout=subprocess.DEVNULL, stderr=(tmp_path / "stderr").open("w"), start_new_session=True,
                             env=os.environ | {"TMPDIR": str(scratch)})  # (a file: a full pipe would block the run)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (glob.glob(str(out / ".tmp-*" / "html" / "*.html"))
                                               and processes_naming(str(scratch))):
        time.sleep(0.2)  # a report finished and kernels are running
    assert processes_naming(str(scratch)), "the run should have kernels running by now"
    child.send_signal(signum)
    sent = time.monotonic()
    child.wait(timeout=60)
    stopped_in = time.monotonic() - sent
    err = (tmp_path / "stderr").read_text()
    assert child.returncode == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}:" in err and "nothing was published" in err
    assert re.search(r"\d of 9 reports finished", err)
    assert stopped_in < 15
    time.sleep(0.5)
    assert processes_naming(str(scratch)) == [] and processes_naming(str(tmp_path / "reports.yaml")) == []
    assert sorted(p.name for p in out.iterdir()) == [".lock", RUNS[0], "latest"]  # no staging folder
    assert os.readlink(out / "latest") == RUNS[0] and not list(scratch.glob("cxresearch-kernels-*"))
    shutil.rmtree(scratch)


@pytest.mark.slow
def test_a_run_with_keep_publishes_then_prunes_the_older_runs(tmp_path, capsys):
    config = write_config(tmp_path)
    out = published(tmp_path / "reports", runs=RUNS[:2], latest=RUNS[1])
    assert main(["run", "--config", str(config), "--quiet", "--only", "00_executive_summary", "--keep", "1"]) == 0
    new = os.readlink(out / "latest")
    assert new > RUNS[1] and sorted(p.name for p in out.iterdir()) == [".lock", new, "latest"]
    assert main(["run", "--config", str(config), "--keep", "0"]) == 2
    assert "--keep must be at least 1" in capsys.readouterr().err


SLOW = {"name": "98_slow", "notebook": str(Path(__file__).parent / "fixtures" / "slow.ipynb")}


@pytest.mark.slow
def test_a_notebook_over_its_time_limit_is_stopped_kept_and_failed(tmp_path):
    import json

    config = write_config(tmp_path, [SLOW])
    started = time.monotonic()
    assert main(["run", "--config", str(config), "--quiet", "--only", "98_slow,00_executive_summary",
                 "--timeout-per-notebook", "25"]) == 1
    assert time.monotonic() - started < 90
    out = tmp_path / "reports" / "latest"
    jobs = {j["name"]: j for j in json.loads((out / "manifest.json").read_text())["notebooks"]}
    assert jobs["00_executive_summary"]["status"] == "ok"
    slow = jobs["98_slow"]
    assert slow["status"] == "failed" and "time limit of 25 s" in slow["error"]
    cells = json.loads((out / slow["output"]).read_text())["cells"]
    printed = ["".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert "started\n" in printed and "done\n" not in printed  # the partial notebook, up to where it was stopped


@pytest.mark.slow
def test_past_the_run_time_limit_what_is_left_fails_and_the_run_is_published(tmp_path):
    import json

    config = write_config(tmp_path, [SLOW])
    started = time.monotonic()
    assert main(["run", "--config", str(config), "--quiet", "--only", "98_slow", "--timeout", "20"]) == 1
    assert time.monotonic() - started < 60
    jobs = json.loads((tmp_path / "reports" / "latest" / "manifest.json").read_text())["notebooks"]
    assert [(j["name"], j["status"]) for j in jobs] == [("98_slow", "failed")]
    assert "the run's time limit of 20 s" in jobs[0]["error"]
