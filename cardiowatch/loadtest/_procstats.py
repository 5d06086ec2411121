"""CPU and memory of processes by pid: psutil when installed, else Linux ``/proc``."""

from __future__ import annotations

import os
import time
from pathlib import Path

try:  # optional: the figures are the same, psutil only makes them portable
    import psutil  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_CLOCK_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (``None`` once it has exited)."""
    if psutil is not None:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_HZ


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (``None`` once it has exited)."""
    if psutil is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES
    except OSError:
        return None


class ProcessSampler:
    """CPU % (of one core) since the previous sample, and RSS, of named processes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._last: dict[str, tuple[float, float]] = {}
        self._first_cpu_s: dict[str, float] = {}
        for name, pid in self.pids.items():
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self._last[name] = (time.monotonic(), cpu)
                self._first_cpu_s[name] = cpu

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds of each process from the sampler's start to its last sample."""
        return {
            name: round(last - self._first_cpu_s[name], 2)
            for name, (_, last) in self._last.items()
            if name in self._first_cpu_s
        }

    def sample(self) -> dict[str, dict[str, float]]:
        """``{name: {"cpu_percent": ..., "rss_mb": ...}}`` for the processes still alive."""
        out: dict[str, dict[str, float]] = {}
        for name, pid in self.pids.items():
            cpu, rss, now = cpu_seconds(pid), rss_bytes(pid), time.monotonic()
            if cpu is None or rss is None:
                continue
            t0, cpu0 = self._last.get(name, (now, cpu))
            self._last[name] = (now, cpu)
            percent = 100.0 * (cpu - cpu0) / (now - t0) if now > t0 else 0.0
            out[name] = {"cpu_percent": round(percent, 1), "rss_mb": round(rss / 2**20, 1)}
        return out
