"""``cardiowatch up``: the whole service on this machine, with a live terminal view.

Starts the embedded broker and Redis (unless configured), one worker process and one simulator
process, then shows patients, heart rates and alerts until Ctrl-C (or ``duration_s``), and
stops everything it started.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from rich.console import Console
from rich.live import Live

from cardiowatch.live import read_snapshot, render
from cardiowatch.services import EmbeddedServices, free_port
from cardiowatch.settings import Settings


def _child(args: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cardiowatch", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_up(
    settings: Settings,
    simulate_args: Sequence[str],
    *,
    log_dir: Path,
    duration_s: float | None = None,
    console: Console | None = None,
) -> int:
    """Run the stack; return 0 on a clean stop, 1 when a child process failed."""
    console = console or Console()
    log_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedServices(settings, log_dir) as services:
        s = services.settings
        env = services.child_env()
        metrics_port = s.metrics_port or free_port()
        env["CARDIOWATCH_METRICS_PORT"] = str(metrics_port)
        metrics_url = f"http://{s.metrics_host}:{metrics_port}/metrics"
        console.print(f"broker {s.kafka_url}  redis {s.redis_url}  metrics {metrics_url}")
        console.print(f"logs in {log_dir}")
        worker = _child(["worker"], env, log_dir / "worker.log")
        simulator = _child(["simulate", *simulate_args], env, log_dir / "simulator.log")
        client = redis.Redis.from_url(s.redis_url)
        status = 0
        started = time.monotonic()
        try:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                while duration_s is None or time.monotonic() - started < duration_s:
                    if worker.poll() is not None:
                        console.print(
                            f"[red]worker exited ({worker.returncode}); see {log_dir}/worker.log"
                        )
                        status = 1
                        break
                    sim_state = (
                        "running" if simulator.poll() is None else f"done ({simulator.returncode})"
                    )
                    elapsed_s = time.monotonic() - started
                    header = (f"cardiowatch: {elapsed_s:.0f} s, simulator {sim_state}"
                              "  (Ctrl-C stops)")  # fmt: skip
                    with contextlib.suppress(redis.RedisError):
                        live.update(render(read_snapshot(client, s), header=header))
                    time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("stopping ...")
        finally:
            _stop(simulator)
            _stop(worker)
            client.close()
    return status
