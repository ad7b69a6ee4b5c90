"""Memory figures for the benchmarks (Linux): resident size now, and a peak that can be restarted.

tracemalloc slows pandas several-fold and misses Arrow's memory, so the benchmarks read the
process's own counters instead.
"""

from __future__ import annotations

from pathlib import Path


def status_mib(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux); NaN elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak() -> float:
    """Restart the peak (high-water mark) from the current resident size, which is returned in MiB."""
    now = status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return now
