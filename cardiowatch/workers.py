"""Start and stop ``cardiowatch worker`` child processes (load tests, integration tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cardiowatch.services import free_port
from cardiowatch.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """``CARDIOWATCH_*`` variables that reproduce ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOWATCH_")}
    for field in settings.__dataclass_fields__:
        env[Settings.env_name(field)] = str(getattr(settings, field))
    env["CARDIOWATCH_BROKER_COMPAT"] = "tansu" if settings.tansu_compat else "kafka"
    return env


@dataclass
class WorkerProcess:
    """A ``cardiowatch worker`` child process."""

    proc: subprocess.Popen[bytes]
    metrics_url: str
    log_path: Path

    def metrics(self) -> str:
        """The text of its ``/metrics``."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return str(response.read().decode())

    def kill(self) -> None:
        """SIGKILL: no chance to commit, flush or leave the group."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 20 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        """The end of the worker's log (for error messages)."""
        return self.log_path.read_text(errors="replace")[-4000:]


def start_worker(settings: Settings, log_dir: Path, name: str = "worker") -> WorkerProcess:
    """Start a worker and wait until its /metrics answers."""
    port = free_port()
    env = settings_env(settings.replace(metrics_port=port))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cardiowatch", "worker"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    worker = WorkerProcess(proc, f"http://127.0.0.1:{port}/metrics", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited on start:\n{worker.log()}")
        try:
            worker.metrics()
            return worker
        except OSError:
            time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"worker did not start:\n{worker.log()}")
