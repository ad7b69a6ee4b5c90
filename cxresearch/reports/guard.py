"""What keeps scheduled runs apart and tidy: one run at a time per output folder, `latest` that only
moves forward, old runs pruned, signals that stop a run cleanly, and kernels kept private.

The lock is the operating system's (`fcntl.flock` on `<out>/.lock`): it is released when its process
dies however it dies, so a lock left by a run that was killed is simply taken over; the file keeps
who held it, to name that run to a second one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

__all__ = ["PrivateKernelManager", "RunLocked", "RunStopped", "kill_kernels", "point_latest", "private_runtime_dir",
           "prune_runs", "run_lock", "stop_on_signals"]

log = logging.getLogger(__name__)
SOCKET_FOLDER_MAX = 80  # Unix socket paths stop at 107 bytes; a kernel's take about 25 after its folder
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")  # a published run's folder: UTC start time, then a random tag
LOCK_FILE = ".lock"


class RunLocked(RuntimeError):
    """Another run holds the output folder."""


class RunStopped(BaseException):
    """A signal stopped the run (a BaseException, as KeyboardInterrupt is: nothing should catch it
    by accident). `finished` and `total` count the reports."""

    def __init__(self, signum: int, finished: int = 0, total: int = 0):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.finished, self.total = signum, finished, total

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextlib.contextmanager
def run_lock(out: Path, run_id: str, wait: bool = False):
    """Hold `<out>/.lock` for the run `run_id`; RunLocked at once when another run holds it, unless
    `wait`. Staging folders that runs which died left behind are removed once the lock is held."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise RunLocked(f"{out} is in use by run {holder}; it is still running. Try again later, or pass "
                                "--wait to wait for it") from None
            log.warning("waiting for run %s to finish with %s", holder, out)
            fcntl.flock(handle, fcntl.LOCK_EX)
        left = _holder(path)
        if left != "unknown":
            log.info("took over the lock of run %s, which is no longer running", left)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        handle.flush()
        _remove_stale_staging(out, run_id)
        yield
    finally:
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        handle.close()  # (closing releases the lock)


def _holder(path: Path) -> str:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "unknown"
    if not record:
        return "unknown"
    return f"{record.get('run_id')} (pid {record.get('pid')} on {record.get('host')}, started {record.get('started')})"


def _remove_stale_staging(out: Path, run_id: str) -> None:
    """Staging folders of other runs: with the lock held, no run is writing them."""
    for folder in out.glob(".tmp-*"):
        if folder.name != f".tmp-{run_id}":
            log.warning("removing %s, left by a run that did not finish", folder.name)
            shutil.rmtree(folder, ignore_errors=True)


def point_latest(out: Path, run_id: str) -> bool:
    """Switch `<out>/latest` to `run_id` atomically, but only forward: never to a run that started
    before the one it points to (run ids begin with their UTC start time). Returns whether it moved."""
    current = out / "latest"
    if current.is_symlink() and RUN_ID.match(os.readlink(current)) and os.readlink(current) > run_id:
        log.warning("latest stays on %s, which started after this run (%s)", os.readlink(current), run_id)
        return False
    temporary = out / f".latest-{run_id}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_id)
    os.replace(temporary, current)
    return True


def prune_runs(out: Path, keep: int) -> list[str]:
    """Remove published runs beyond the newest `keep`, never the one `latest` points to; returns
    the removed run ids."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    latest = os.readlink(out / "latest") if (out / "latest").is_symlink() else None
    runs = sorted((p.name for p in out.iterdir() if p.is_dir() and not p.is_symlink() and RUN_ID.match(p.name)),
                  reverse=True)
    removed = [run for run in runs[keep:] if run != latest]
    for run in removed:
        shutil.rmtree(out / run)
    return removed


@contextlib.contextmanager
def stop_on_signals():
    """SIGTERM and SIGINT raise RunStopped in the main thread (once), so the run can stop its workers
    and remove its staging folder; the previous handlers come back afterwards."""
    def stop(signum, _frame):
        for number in (signal.SIGTERM, signal.SIGINT):  # a second signal must not interrupt the clean-up
            signal.signal(number, signal.SIG_IGN)
        raise RunStopped(signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def private_runtime_dir():
    """A folder only this user can read for the kernels' connection files and IPC sockets, removed
    afterwards; the workers find it in JUPYTER_RUNTIME_DIR."""
    folder = tempfile.mkdtemp(prefix="cxresearch-kernels-")  # (mode 0700)
    if len(folder) > SOCKET_FOLDER_MAX and len(tempfile.gettempdir()) > len("/tmp"):
        shutil.rmtree(folder)  # a socket's path is at most 107 bytes: a deep $TMPDIR leaves no room for it
        folder = tempfile.mkdtemp(prefix="cx-kernels-", dir="/tmp")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def kill_kernels(runtime: str) -> list[int]:
    """Kill any kernel still running whose connection file lies in the run's private `runtime`
    folder (its command line names it; `runtime` may be a path prefix, to kill one worker's): what
    a killed worker could not shut down. Linux's /proc is read; elsewhere nothing is found.
    Returns the pids killed."""
    killed = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(runtime.encode()) for a in arguments):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed.append(int(cmdline.parent.name))
    return killed


class PrivateKernelManager(AsyncKernelManager):
    """A kernel reached over IPC sockets beside its connection file (in the run's private runtime
    folder), not over TCP on the loopback interface, where any local user could connect."""

    @default("transport")
    def _default_transport(self):
        if len(jupyter_runtime_dir()) > SOCKET_FOLDER_MAX:  # (no room for a socket's path: the kernel could not start)
            log.warning("kernels use TCP: the runtime folder %s is too deep for IPC sockets", jupyter_runtime_dir())
            return "tcp"
        return "ipc"

    @default("connection_file")
    def _default_connection_file(self):
        """In the run's private runtime folder (jupyter_client's default is a temporary file in $TMPDIR)."""
        # (the worker's pid in the name lets a worker find its own kernel, to stop it at a time limit)
        return str(Path(jupyter_runtime_dir()) / f"kernel-{os.getpid()}-{uuid.uuid4().hex[:8]}.json")

    @default("ip")
    def _default_ip(self):
        if self.transport != "ipc":
            return super()._ip_default()
        """Sockets of this kernel's own, beside its connection file: jupyter_client's default without
        one, a shared 'kernel-ipc' prefix in the working folder, let two kernels started at once pick
        the same sockets."""
        return str(Path(self.connection_file).with_suffix("")) + "-ipc"
