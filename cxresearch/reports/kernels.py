"""Warm kernels: a run's next report kernel starts while the current report runs.

A report pays for its kernel twice before its first line of content: the kernel's start (about a
second here, the "empty notebook" floor) and the imports every report makes (pandas, pyplot: about
half a second). Within a worker of `cxresearch run`, `WarmKernel.take` hands `execute` a kernel
started, and with those modules imported, during the previous report; `prepare` starts the next.

No state passes between reports: each kernel runs exactly one notebook and is shut down after it
(a pool that reused kernels would carry one report's variables into the next). What a warm kernel
holds before its notebook is only what `WARM_UP` imports, which every report imports first anyway,
loaded without binding any name, silently and outside its history, so the executed notebook (its
outputs and execution counts) is the one a cold kernel gives (tested). The kernel is started
exactly as papermill would start it: the same kernel manager class, arguments and working folder;
one prepared for another folder or with other arguments is shut down, not used.
"""

from __future__ import annotations

import contextlib
import logging

from jupyter_core.utils import run_sync

log = logging.getLogger(__name__)

# what every report imports first (its setup cell): loaded, not bound to any name the notebook sees
# (`import pandas` would leave `pandas` in its namespace), silently and outside the history
WARM_UP = "; ".join(f"__import__({name!r})" for name in ("pandas", "matplotlib.pyplot", "cxresearch.reports.prose"))
HISTORY = "--HistoryManager.hist_file=:memory:"  # (what nbclient adds to the arguments of the kernels it starts)


class _ClosesItsClients:
    """A kernel manager that remembers the clients it makes, so that `shutdown` can stop their
    channels: nbclient leaves open those of a kernel manager it was handed (about a dozen file
    descriptors a report, which a worker running hundreds of reports would run out of)."""

    def client(self, **kwargs):
        made = super().client(**kwargs)
        self.__dict__.setdefault("_clients", []).append(made)
        return made


class WarmKernel:
    """At most one kernel started ahead, for the next report of this process."""

    def __init__(self, manager_class, kernel_name: str = "python3"):
        self.manager_class = type(f"Ahead{manager_class.__name__}", (_ClosesItsClients, manager_class), {})
        self.kernel_name = kernel_name
        self._ready = None  # (km, kc, cwd, arguments) of the kernel started ahead

    def prepare(self, cwd: str, arguments: list[str]) -> None:
        """Start the next kernel now, in `cwd` with `arguments` (the report's kernel arguments), and
        queue its imports; returns at once (the kernel boots in its own process)."""
        self.close()
        try:
            km = self.manager_class(kernel_name=self.kernel_name)
            run_sync(km.start_kernel)(cwd=cwd, extra_arguments=[*arguments, HISTORY])
            kc = km.client()
            kc.start_channels()
            asked = kc.execute(WARM_UP, silent=True, store_history=False)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start ahead starts later, as usual
            log.warning("could not start a kernel ahead: %s", exc)
            return
        self._ready = (km, kc, cwd, list(arguments), asked)

    def take(self, cwd: str, arguments: list[str], timeout: float = 60.0):
        """The kernel manager started ahead for this folder and these arguments, alive and done with
        its imports (waited for, up to `timeout` seconds: a report would wait for its kernel as
        long); else None (the report then starts its own kernel). The caller shuts it down after its
        notebook."""
        if self._ready is None:
            return None
        km, kc, ready_cwd, ready_arguments, asked = self._ready
        self._ready = None
        usable = ready_cwd == cwd and ready_arguments == list(arguments) and _warmed(kc, asked, timeout)
        with contextlib.suppress(Exception):
            kc.stop_channels()
        if usable and _alive(km):
            return km
        shutdown(km)
        return None

    def close(self) -> None:
        """Shut down the kernel started ahead, if any."""
        if self._ready is not None:
            km, kc = self._ready[:2]
            self._ready = None
            with contextlib.suppress(Exception):
                kc.stop_channels()
            shutdown(km)


def _warmed(kc, asked: str, timeout: float) -> bool:
    """Whether the kernel answered the warm-up request `asked` without an error within `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            reply = run_sync(kc.get_shell_msg)(timeout=left)
            if reply["parent_header"].get("msg_id") == asked:
                return reply["content"].get("status") == "ok"
    except Exception:  # noqa: BLE001 - no answer in time (queue.Empty) or a broken channel
        return False
    return False


def _alive(km) -> bool:
    try:
        return bool(run_sync(km.is_alive)())
    except Exception:  # noqa: BLE001
        return False


def shutdown(km) -> None:
    """Stop a kernel at once, the channels of the clients it made and its connection file; quiet if
    it is already gone."""
    with contextlib.suppress(Exception):
        run_sync(km.shutdown_kernel)(now=True)
    for made in km.__dict__.pop("_clients", []):
        with contextlib.suppress(Exception):
            made.stop_channels()
    with contextlib.suppress(Exception):
        run_sync(km.cleanup_resources)()
