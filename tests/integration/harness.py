"""Helpers of the integration tests: worker processes, replays and topic readers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from cardiowatch.services import ensure_topics
from cardiowatch.settings import Settings
from cardiowatch.workers import WorkerProcess, settings_env, start_worker
from simulators.patients import run_replay
from simulators.replay import VirtualPatient

__all__ = [
    "WorkerProcess",
    "fresh_settings",
    "read_topic",
    "replay",
    "send_raw",
    "settings_env",
    "start_worker",
]


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
