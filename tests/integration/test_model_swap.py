"""Model registry on a real Redis, and hot swaps in a running worker on a real broker.

The beat model and the heart-sound model are both served from the registry.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer
from redis.asyncio import Redis as AsyncRedis

from cardiowatch.schemas import BeatBatch, Vitals
from cardiowatch.settings import Settings
from models.beats import artifact_version
from models.pcg import PcgClassifier
from simulators.audio import pcg_patients
from simulators.build import synthetic_patients
from simulators.patients import run_replay
from streams.model_registry import (
    ModelCache,
    artifact_key,
    beat_kind,
    pointer_key,
    publish_model,
)
from tests.integration.harness import fresh_settings, replay, start_worker
from tests.model_helpers import untrained_artifact
from tests.pcg_helpers import random_pcg_artifact

pytestmark = pytest.mark.integration


def test_registry_publishes_and_the_cache_loads_each_version_once(
    services: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(services, tmp_path)
    default = tmp_path / "default.cwm"
    default.write_bytes(untrained_artifact(21))
    a, b = untrained_artifact(22), untrained_artifact(23)

    async def scenario() -> list[str | None]:
        client: AsyncRedis[bytes] = AsyncRedis.from_url(settings.redis_url)
        cache = ModelCache(
            client, beat_kind(), prefix=settings.redis_key_prefix, default_path=str(default)
        )
        seen = [getattr(await cache.ensure(), "version", None)]
        sync = redis.Redis.from_url(settings.redis_url)
        publish_model(sync, settings.redis_key_prefix, "beats", a)
        seen.append(getattr(await cache.refresh(), "version", None))
        publish_model(sync, settings.redis_key_prefix, "beats", b)
        seen.append(getattr(await cache.refresh(), "version", None))
        publish_model(sync, settings.redis_key_prefix, "beats", a)  # back to a: no reload
        seen.append(getattr(await cache.refresh(), "version", None))
        assert cache.loads == 3
        # Tampered bytes under a's version are refused; the cache keeps what it has.
        sync.set(pointer_key(settings.redis_key_prefix, "beats"), "sha256:0000000000000000")
        sync.set(artifact_key(settings.redis_key_prefix, "beats", "sha256:0000000000000000"), a)
        seen.append(getattr(await cache.refresh(), "version", None))
        sync.close()
        await client.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag
        return seen

    versions = asyncio.run(scenario())
    va, vb = artifact_version(a), artifact_version(b)
    assert versions == [artifact_version(default.read_bytes()), va, vb, va, va]


def beat_records(settings: Settings) -> list[tuple[float, BeatBatch]]:
    """Every beat batch on the beats topic with its Kafka timestamp (s)."""
    consumer = KafkaConsumer(
        settings.topic_beats,
        bootstrap_servers=settings.kafka_url,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1500,
    )
    try:
        return [(r.timestamp / 1000.0, BeatBatch.decode(r.value)) for r in consumer]
    finally:
        consumer.close()


def all_vitals(settings: Settings) -> list[Vitals]:
    consumer = KafkaConsumer(
        settings.topic_vitals,
        bootstrap_servers=settings.kafka_url,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1500,
    )
    try:
        return [Vitals.decode(r.value) for r in consumer]
    finally:
        consumer.close()


def test_publishing_a_model_swaps_it_in_the_running_worker_within_5_s(
    services: Settings, tmp_path: Path
) -> None:
    first = tmp_path / "first.cwm"
    first.write_bytes(untrained_artifact(31))
    second = untrained_artifact(32)
    # Polling is slow here, so the swap must come from the pub/sub announcement.
    settings = fresh_settings(services, tmp_path, beats_model=str(first), model_poll_s=60.0)
    worker = start_worker(settings, tmp_path)
    seconds = 40
    try:
        [patient] = synthetic_patients(1, events=[], seed=9, first_index=300)
        sender = threading.Thread(
            target=replay, args=(settings, [patient]), kwargs={"duration_s": seconds, "speed": 2.0}
        )
        sender.start()
        time.sleep(10.0)
        client = redis.Redis.from_url(settings.redis_url)
        published_at = time.time()
        version = publish_model(client, settings.redis_key_prefix, "beats", second)
        client.close()
        sender.join(timeout=120)
        deadline = time.monotonic() + 60
        vitals: list[Vitals] = []
        while time.monotonic() < deadline:
            vitals = [v for v in all_vitals(settings) if v.patient_id == patient.patient_id]
            if any(v.sample_index >= seconds * 360 for v in vitals):
                break
        metrics = worker.metrics()
    finally:
        worker.stop()

    # Every chunk processed exactly once: one vitals message per chunk, none missing.
    assert sorted(v.sample_index for v in vitals) == [360 * k for k in range(1, seconds + 1)]
    processed = re.search(r'cardiowatch_chunks_total\{outcome="processed"\} (\S+)', metrics)
    assert processed is not None
    assert float(processed.group(1)) == seconds
    redelivered = re.search(r'cardiowatch_chunks_total\{outcome="redelivered"\} (\S+)', metrics)
    assert redelivered is not None
    assert float(redelivered.group(1)) == 0

    batches = [(t, b) for t, b in beat_records(settings) if b.patient_id == patient.patient_id]
    old = artifact_version(first.read_bytes())
    assert {b.model_version for _, b in batches} == {old, version}
    swapped = [t for t, b in batches if b.model_version == version]
    assert min(swapped) - published_at <= 5.0
    order = [b.model_version for _, b in sorted(batches, key=lambda tb: tb[1].chunk_seq)]
    assert order == sorted(order, key=lambda v: v == version), "no batch of the old model after"
    samples = [beat.sample for _, b in batches for beat in b.beats]
    assert len(samples) == len(set(samples)), "no beat published twice"
    assert all(beat.label is not None for _, b in batches for beat in b.beats)


def model_in_use(metrics: str, name: str) -> str | None:
    """The version a worker's /metrics says it serves for model ``name``."""
    found = re.search(rf'cardiowatch_model_info{{model="{name}",version="([^"]+)"}} 1\.0', metrics)
    return None if found is None else found[1]


def test_publishing_a_heart_sound_model_swaps_it_in_the_running_worker(
    services: Settings, tmp_path: Path, mitdb: Path
) -> None:
    committed = Path(services.pcg_model)
    spec = PcgClassifier.from_bytes(committed.read_bytes()).spec
    second = random_pcg_artifact(41, spec)  # same windows: the patient's state carries on
    settings = fresh_settings(services, tmp_path, model_poll_s=60.0)
    worker = start_worker(settings, tmp_path)
    seconds = 30
    [patient] = pcg_patients([mitdb.parent / "physionet2016/training-d/d0020.wav"], None, loop=True)
    try:
        sender = threading.Thread(
            target=lambda: asyncio.run(
                run_replay(settings, [patient], speed=2.0, duration_s=seconds, kind="pcg")
            )
        )
        sender.start()
        time.sleep(6.0)
        before = model_in_use(worker.metrics(), "pcg")
        client = redis.Redis.from_url(settings.redis_url)
        with pytest.raises(ValueError, match="artifact"):
            publish_model(client, settings.redis_key_prefix, "pcg", b"not a model")
        published_at = time.monotonic()
        version = publish_model(client, settings.redis_key_prefix, "pcg", second)
        client.close()
        swapped_after = None
        while time.monotonic() - published_at < 20:
            if model_in_use(worker.metrics(), "pcg") == version:
                swapped_after = time.monotonic() - published_at
                break
            time.sleep(0.25)
        sender.join(timeout=120)
        deadline = time.monotonic() + 60
        vitals: list[Vitals] = []
        while time.monotonic() < deadline:
            vitals = [v for v in all_vitals(settings) if v.patient_id == patient.patient_id]
            if len(vitals) >= seconds:
                break
        metrics = worker.metrics()
    finally:
        worker.stop()

    assert before == artifact_version(committed.read_bytes())
    assert swapped_after is not None, "the new heart-sound model was never served"
    assert swapped_after <= 5.0, swapped_after
    # Every chunk processed exactly once, with no restart of the patient's monitor.
    indices = [v.sample_index for v in vitals]
    assert len(indices) == seconds, indices
    assert len(set(indices)) == seconds, indices
    processed = re.search(r'cardiowatch_chunks_total\{outcome="processed"\} (\S+)', metrics)
    assert processed is not None
    assert float(processed[1]) == seconds
    discontinuities = re.search(r"^cardiowatch_stream_discontinuities_total (\S+)", metrics, re.M)
    assert discontinuities is not None
    assert float(discontinuities[1]) == 0.0
