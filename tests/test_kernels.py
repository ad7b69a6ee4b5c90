"""Kernels started ahead (`kernels.WarmKernel`): one per report, with the imports loaded and no name
bound, the same executed notebook as a cold kernel, and none left behind by a run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from jupyter_core.utils import run_sync

from cxresearch.reports import guard, kernels, publish

from .conftest import write_config
from .test_guard import processes_naming

ROOT = Path(__file__).resolve().parents[1]


def _ask(km, code: str) -> tuple[str, int]:
    """Run `code` in the kernel of `km`: (what it printed, its execution count)."""
    printed = []
    kc = km.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
        reply = run_sync(kc.execute_interactive)(code, timeout=60, output_hook=printed.append)
    finally:
        kc.stop_channels()
    text = "".join(m["content"].get("text", "") for m in printed if m["msg_type"] == "stream")
    return text, reply["content"]["execution_count"]


@pytest.fixture
def runtime(monkeypatch):
    with guard.private_runtime_dir() as folder:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", folder)
        yield folder
        guard.kill_kernels(folder)


def test_a_kernel_started_ahead_has_the_imports_loaded_and_no_name_or_history(runtime, tmp_path):
    ahead = kernels.WarmKernel(guard.PrivateKernelManager)
    arguments = publish.kernel_arguments()
    ahead.prepare(str(tmp_path), arguments)
    km = ahead.take(str(tmp_path), arguments)
    assert km is not None
    try:
        text, count = _ask(km, "import os, sys\n"
                               "print(sorted(m for m in ('pandas', 'matplotlib.pyplot') if m in sys.modules))\n"
                               "names = [n for n in ('pandas', 'matplotlib', 'cxresearch') if n in globals()]\n"
                               "print(names, len(In), os.getcwd())")
        assert text.splitlines() == ["['matplotlib.pyplot', 'pandas']", f"[] 2 {tmp_path}"]  # (In[0] is '')
        assert count == 1  # the warm-up is outside the history: the notebook's first cell is [1]
    finally:
        kernels.shutdown(km)
    assert ahead.take(str(tmp_path), arguments) is None  # taken once


def test_a_kernel_started_for_another_folder_is_shut_down_not_used(runtime, tmp_path):
    ahead = kernels.WarmKernel(guard.PrivateKernelManager)
    ahead.prepare(str(tmp_path), [])
    km = ahead._ready[0]
    assert ahead.take(str(tmp_path / "elsewhere"), []) is None
    assert not run_sync(km.is_alive)()
    ahead.prepare(str(tmp_path), [])
    km = ahead._ready[0]
    ahead.close()
    assert not run_sync(km.is_alive)()


def test_the_prompt_handshake_misses_no_output_and_waits_for_no_silence(runtime, tmp_path):
    """A fresh client on a live kernel, twenty times: each sees what its first request prints (its
    output channel was connected when it was called ready), and is ready far sooner than the 0.2 s
    of silence jupyter_client's own `wait_for_ready` listens for."""
    ahead = kernels.WarmKernel(guard.PrivateKernelManager)
    ahead.prepare(str(tmp_path), [])
    km = ahead.take(str(tmp_path), [])
    waits = []
    try:
        for attempt in range(20):
            kc = km.client()
            assert isinstance(kc, kernels.PromptClient)
            kc.start_channels(hb=False)  # (a heartbeat thread stopped this soon after its start can race its socket)
            try:
                started = time.perf_counter()
                run_sync(kc.wait_for_ready)(timeout=60)
                waits.append(time.perf_counter() - started)
                printed = []
                run_sync(kc.execute_interactive)(f"print({attempt})", timeout=60, output_hook=printed.append)
            finally:
                kc.stop_channels()
            assert [m["content"]["text"] for m in printed if m["msg_type"] == "stream"] == [f"{attempt}\n"]
    finally:
        kernels.shutdown(km)
    assert sorted(waits)[10] < 0.2  # (the median: no silence is waited for; a slow attempt asks again)


def test_a_retired_kernel_dies_at_once_and_is_reaped_at_the_next_prepare(runtime, tmp_path):
    ahead = kernels.WarmKernel(guard.PrivateKernelManager)
    ahead.prepare(str(tmp_path), [])
    km = ahead.take(str(tmp_path), [])
    pid, connection = km.provisioner.process.pid, Path(km.connection_file)
    ahead.retire(km)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # killed, not yet reaped
    assert connection.exists()
    ahead.prepare(str(tmp_path), [])  # the next report's kernel
    assert not Path(f"/proc/{pid}").exists() and not connection.exists()
    ahead.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts left-over processes in /proc (Linux)")
def test_a_run_with_kernels_started_ahead_gives_the_cold_notebooks_and_leaves_no_kernel(tmp_path, monkeypatch):
    """Nine reports on two workers (so kernels start ahead) against the same reports each run alone
    in a cold kernel: the same outputs and execution counts; and no kernel left once the run is done."""
    from cxresearch.reports import runner

    config = write_config(tmp_path)
    scratch = Path(tempfile.mkdtemp(prefix="cx-"))  # (short: the private kernel folder's sockets land here)
    done = subprocess.run([str(Path(sys.executable).parent / "cxresearch"), "run", "--config", str(config), "--quiet",
                           "--locations", ",".join(f"L{i:04d}" for i in range(1, 9))],
                          env=os.environ | {"TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)
    assert processes_naming(str(scratch)) == []
    latest = tmp_path / "reports" / "latest"
    jobs = {j["name"]: j for j in json.loads((latest / "manifest.json").read_text())["notebooks"]}
    warm = json.loads((latest / jobs["10_location_deep_dive-L0008"]["output"]).read_text())
    job = runner.Job(**{k: v for k, v in jobs["10_location_deep_dive-L0008"].items()
                        if k in ("name", "notebook", "parameters", "group")})
    job.parameters = dict(job.parameters, store=str(latest / "analyst" / "store"))
    with guard.private_runtime_dir() as folder:
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", folder)
        assert runner.execute(job, str(tmp_path / "cold"), warm=False).status == "ok"
    cold = json.loads((tmp_path / "cold" / jobs["10_location_deep_dive-L0008"]["output"]).read_text())

    def seen(nb):
        return [(c.get("execution_count"), [{k: v for k, v in o.items() if k != "metadata"} for o in c.get("outputs", [])])
                for c in nb["cells"] if c["cell_type"] == "code"]
    assert seen(warm) == seen(cold)
    shutil.rmtree(scratch, ignore_errors=True)
