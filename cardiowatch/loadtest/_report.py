"""The load test's live terminal view (rich) and its PNG plot (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class LiveView:
    """A table refreshed with every timeline point (only on a terminal)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self._live = Live(self._table(None), console=self.console, refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, point: dict[str, Any]) -> None:
        """Show one timeline point."""
        if self._live is not None:
            self._live.update(self._table(point))

    @staticmethod
    def _table(point: dict[str, Any] | None) -> Table:
        table = Table(title="cardiowatch loadtest", show_header=True)
        for column in ("t s", "produced msg/s", "vitals/s", "lag (chunks)", "worker lag",
                       "p99 last s", "CPU % / RSS MB"):  # fmt: skip
            table.add_column(column, justify="right")
        if point is None:
            table.add_row("starting", "", "", "", "", "", "")
            return table
        procs = ", ".join(
            f"{name} {p['cpu_percent']:.0f}%/{p['rss_mb']:.0f}"
            for name, p in sorted(point["processes"].items())
        )
        table.add_row(
            f"{point['t_s']:.0f}", str(point["produced_msg_per_s"]),
            str(point["consumed_vitals_per_s"]), str(point["lag_chunks"]),
            str(point["worker_lag_messages"]), str(point["latency_p99_s"]), procs,
        )  # fmt: skip
        return table


def write_png(result: dict[str, Any], path: Path) -> None:
    """Throughput, lag, p99 latency and CPU per process over the run, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timeline = result["timeline"]
    t = [p["t_s"] for p in timeline]
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    axes[0].plot(t, [p["produced_msg_per_s"] for p in timeline], label="produced msg/s")
    axes[0].plot(t, [p["consumed_vitals_per_s"] for p in timeline], label="vitals consumed/s")
    axes[0].set_ylabel("messages / s")
    axes[1].plot(t, [p["lag_chunks"] for p in timeline], label="chunks in flight")
    worker_lag = [p["worker_lag_messages"] for p in timeline]
    if any(x is not None for x in worker_lag):
        axes[1].plot(t, [float("nan") if x is None else x for x in worker_lag],
                     label="workers' consumer lag")  # fmt: skip
    axes[1].set_ylabel("lag")
    axes[2].plot(t, [float("nan") if p["latency_p99_s"] is None else p["latency_p99_s"]
                     for p in timeline], label="p99 latency, per second")  # fmt: skip
    axes[2].axhline(1.0, color="grey", linestyle="--", label="1 s target")
    axes[2].set_ylabel("seconds")
    names = sorted({n for p in timeline for n in p["processes"]})
    for name in names:
        axes[3].plot(t, [p["processes"].get(name, {}).get("cpu_percent", float("nan"))
                         for p in timeline], label=name)  # fmt: skip
    axes[3].set_ylabel("CPU % of a core")
    axes[3].set_xlabel("seconds since the start")
    kill = result.get("kill")
    for ax in axes:
        if kill:
            ax.axvline(kill["at_s"], color="red", linestyle=":", label="worker killed")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    cfg = result["config"]
    fig.suptitle(f"{cfg['patients']} patients, speed {cfg['speed']}, {cfg['workers']} worker(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
