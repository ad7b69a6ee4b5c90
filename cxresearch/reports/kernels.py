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

Two idle waits of jupyter_client are left out of a report's seconds, without changing what runs:
its client's `wait_for_ready` ends by listening for 0.2 s of silence on the output channel (here
the handshake ends as soon as that channel has carried the kernel's "idle" after its own
kernel-info request, which proves it is connected: `PromptClient`), and `shutdown_kernel` polls the
killed process every 0.1 s (here `retire` kills it at once and reaps it at the worker's next call).
"""

from __future__ import annotations

import contextlib
import logging
import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import run_sync
from traitlets import Type

log = logging.getLogger(__name__)

# what every report imports first (its setup cell): loaded, not bound to any name the notebook sees
# (`import pandas` would leave `pandas` in its namespace), silently and outside the history
WARM_UP = "; ".join(f"__import__({name!r})" for name in ("pandas", "matplotlib.pyplot", "cxresearch.reports.prose"))
HISTORY = "--HistoryManager.hist_file=:memory:"  # (what nbclient adds to the arguments of the kernels it starts)


class PromptClient(AsyncKernelClient):
    """A kernel client whose `wait_for_ready` returns once the kernel is known to answer and this
    client's output channel is known to be connected, with no fixed wait.

    jupyter_client's version asks for kernel info until it gets a reply and an output message,
    then reads the output channel until it has been silent for 0.2 s. Here the output channel is
    read until it carries the kernel's "idle" status for this client's own kernel-info request:
    from then on the subscription is live (nothing the notebook prints can be missed), and every
    message the kernel published before is consumed. If that status does not come within
    `IOPUB_WAIT` seconds (the subscription was not yet live when the kernel published it), the
    request is sent again, as jupyter_client does."""

    IOPUB_WAIT = 0.2

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while time.monotonic() < deadline:
            asked = self.kernel_info()
            reply = await _answer(self.shell_channel, asked, 1.0)
            if reply is not None and await _answer(self.iopub_channel, asked, self.IOPUB_WAIT, idle=True):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
        raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


async def _answer(channel, asked: str, timeout: float, idle: bool = False):
    """The first message on `channel` answering request `asked` (with `idle`: its "idle" status)
    within `timeout` seconds, reading past any other; None if none came."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await channel.get_msg(timeout=left)
        except Empty:
            return None
        if message["parent_header"].get("msg_id") != asked:
            continue
        if not idle or (message["msg_type"] == "status" and message["content"].get("execution_state") == "idle"):
            return message
    return None


class _ClosesItsClients:
    """A kernel manager that remembers the clients it makes, so that `shutdown` can stop their
    channels: nbclient leaves open those of a kernel manager it was handed (about a dozen file
    descriptors a report, which a worker running hundreds of reports would run out of). Its clients
    are `PromptClient`s."""

    def client(self, **kwargs):
        made = super().client(**kwargs)
        self.__dict__.setdefault("_clients", []).append(made)
        return made


class WarmKernel:
    """At most one kernel started ahead, for the next report of this process."""

    def __init__(self, manager_class, kernel_name: str = "python3"):
        self.manager_class = type(f"Ahead{manager_class.__name__}", (_ClosesItsClients, manager_class),
                                  {"client_factory": Type(PromptClient, klass=AsyncKernelClient)})
        self.kernel_name = kernel_name
        self._ready = None  # (km, kc, cwd, arguments) of the kernel started ahead
        self._retired = []  # kernels killed after their report, not yet reaped (`retire`)

    def prepare(self, cwd: str, arguments: list[str]) -> None:
        """Start the next kernel now, in `cwd` with `arguments` (the report's kernel arguments), and
        queue its imports; returns at once (the kernel boots in its own process)."""
        self.close()
        try:
            km = self.manager_class(kernel_name=self.kernel_name)
            run_sync(km.start_kernel)(cwd=cwd, extra_arguments=[*arguments, HISTORY])
            kc = km.client()
            kc.start_channels(iopub=False, stdin=False, hb=False, control=False)  # (its reply is all it reads)
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

    def retire(self, km) -> None:
        """Stop the kernel of a finished report: killed now, its process reaped and its connection
        file and sockets removed at this worker's next `prepare`, `reap` or `close`, by when it has
        died (reaping it now would poll it every 0.1 s until it has: jupyter_client's pace)."""
        with contextlib.suppress(Exception):
            run_sync(km.provisioner.kill)()
        self._retired.append(km)

    def reap(self) -> None:
        """Finish shutting down the kernels `retire` killed."""
        retired, self._retired = self._retired, []
        for km in retired:
            shutdown(km)

    def close(self) -> None:
        """Shut down the kernel started ahead, if any, and reap the retired ones."""
        if self._ready is not None:
            km, kc = self._ready[:2]
            self._ready = None
            with contextlib.suppress(Exception):
                kc.stop_channels()
            shutdown(km)
        self.reap()


def _warmed(kc, asked: str, timeout: float) -> bool:
    """Whether the kernel answered the warm-up request `asked` without an error within `timeout`."""
    try:
        reply = run_sync(_answer)(kc.shell_channel, asked, timeout)
    except Exception:  # noqa: BLE001 - a broken channel
        return False
    return reply is not None and reply["content"].get("status") == "ok"


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
