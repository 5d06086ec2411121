"""Helpers of the integration tests: worker processes, replays and topic readers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from cardiowatch.services import ensure_topics, free_port
from cardiowatch.settings import Settings
from simulators.patients import run_replay
from simulators.replay import VirtualPatient


def fresh_settings(services: Settings, tmp_path: Path, **changes: object) -> Settings:
    """Settings with a fresh app id (consumer group, tables) and fresh topics per test.

    Fresh names keep tests independent on the shared broker (a consumer closed in the middle
    of a join can wedge its group id on Tansu).
    """
    tag = uuid.uuid4().hex[:8]
    settings = services.replace(
        app_id=f"cw-test-{tag}",
        topic_ecg=f"t{tag}.signals.ecg",
        topic_annotations=f"t{tag}.signals.ecg.annotations",
        topic_beats=f"t{tag}.beats.ecg",
        topic_vitals=f"t{tag}.vitals",
        topic_alerts=f"t{tag}.alerts",
        topic_dead_letters=f"t{tag}.deadletters",
        topic_pcg=f"t{tag}.signals.pcg",
        redis_key_prefix=f"cw-{tag}:",
        redis_alerts_stream=f"cw-{tag}:alerts",
        worker_data_dir=str(tmp_path / "worker"),
        **changes,
    )
    ensure_topics(settings.kafka_url, settings.chunk_topics, settings.partitions)
    return settings


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
        """The worker's log (for assertion messages)."""
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


def replay(
    settings: Settings,
    patients: Sequence[VirtualPatient],
    *,
    duration_s: float | None,
    speed: float = 0.0,
) -> None:
    """Send the patients' chunks (as fast as possible by default)."""
    asyncio.run(run_replay(settings, patients, speed=speed, duration_s=duration_s))


def send_raw(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    """Send one message as is (for malformed input)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_url)
    producer.send(topic, key=key, value=value).get(timeout=10)
    producer.close()


def read_topic(
    settings: Settings,
    topic: str,
    *,
    until: Callable[[list[tuple[bytes, bytes]]], bool],
    timeout_s: float = 60.0,
) -> list[tuple[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``until(messages)`` holds or the time is up."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_url,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    messages: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(messages):
            for record in consumer:
                messages.append((record.key, record.value))
    finally:
        consumer.close()
    return messages
