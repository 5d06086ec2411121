"""``cardiowatch loadtest``: N replayed patients against the stack, with the figures a
capacity plan needs (throughput, lag, end-to-end latency, worker CPU and memory, alerts)."""

from cardiowatch.loadtest._compute import compute_limit
from cardiowatch.loadtest._report import LiveView, write_png
from cardiowatch.loadtest._run import RECORDS, LoadtestConfig, run_load
from cardiowatch.loadtest._session import find_capacity, run_loadtest

__all__ = [
    "RECORDS",
    "LiveView",
    "LoadtestConfig",
    "compute_limit",
    "find_capacity",
    "run_load",
    "run_loadtest",
    "write_png",
]
