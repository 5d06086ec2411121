"""A worker whose consumer position jumps past unprocessed chunks still keeps state exact.

faust can commit past a message it never processed during a rebalance (see
:mod:`streams.gap_repair`). That race is rare; here the same situation is made on purpose: the
group's committed offsets are moved three records ahead while no worker runs, so the restarted
worker is handed chunks that skip part of each patient's stream. It must read the skipped
chunks back from the topic and end exactly where an in-process run ends.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.structs import OffsetAndMetadata

from cardiowatch.services import ensure_topics
from cardiowatch.settings import Settings
from simulators.build import synthetic_patients
from simulators.replay import VirtualPatient
from streams.gap_repair import ChunkRefetcher
from tests.integration.harness import fresh_settings, read_topic, replay, start_worker
from tests.integration.test_rebalance import expected, wait_vitals
from tests.integration.test_spine import beats_of

pytestmark = pytest.mark.integration

SKIP_RECORDS = 3


def make_patients() -> list[VirtualPatient]:
    """The patients of tests.integration.test_rebalance (its ``expected`` computes theirs)."""
    return synthetic_patients(6, events=["asystole@45:7"], seed=11, first_index=0)


class FaustNamedAssignor(RoundRobinPartitionAssignor):  # type: ignore[misc]  # untyped base
    """Round robin under the protocol name the worker group registered (``faust``)."""

    name = "faust"


async def move_committed_offsets(settings: Settings, records: int) -> dict[int, int]:
    """Move the worker group's committed offset of every partition ``records`` ahead.

    Joins the (empty) group as its only member, so the broker accepts the commit; the broker
    expects the protocol name the worker registered.
    """
    consumer = AIOKafkaConsumer(
        settings.topic_ecg,
        bootstrap_servers=settings.kafka_url,
        group_id=settings.app_id,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        partition_assignment_strategy=(FaustNamedAssignor,),
    )
    await consumer.start()
    try:
        while len(consumer.assignment()) < settings.partitions:
            await consumer.getmany(timeout_ms=200, max_records=1)
        moved: dict[int, int] = {}
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed:
                moved[tp.partition] = committed + records
        await consumer.commit(
            {
                TopicPartition(settings.topic_ecg, p): OffsetAndMetadata(o, "")
                for p, o in moved.items()
            }
        )
        return moved
    finally:
        await consumer.stop()


def metric_value(text: str, name: str) -> float:
    """The value of an unlabelled series in a /metrics text."""
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found is not None, name
    return float(found[1])


def test_worker_reads_back_chunks_its_consumer_skipped(services: Settings, tmp_path: Path) -> None:
    settings = fresh_settings(services, tmp_path)
    patients = make_patients()
    worker = start_worker(settings, tmp_path, "worker-1")
    try:
        replay(settings, patients, duration_s=20)
        wait_vitals(settings, 20 * 360)
    finally:
        worker.stop()  # SIGTERM: commits and leaves the group

    replay(settings, patients, duration_s=20)  # while no worker runs
    moved = asyncio.run(move_committed_offsets(settings, SKIP_RECORDS))
    assert moved, "the first worker committed offsets"

    worker = start_worker(settings, tmp_path, "worker-2")
    try:
        final = wait_vitals(settings, 40 * 360, timeout_s=120)
        metrics = worker.metrics()
    finally:
        worker.stop()

    reread = metric_value(metrics, "cardiowatch_chunks_reread_total")
    discontinuities = metric_value(metrics, "cardiowatch_stream_discontinuities_total")
    assert reread >= SKIP_RECORDS * len(moved) / 2, metrics
    assert discontinuities == 0.0, metrics
    want = expected(40)
    beat_msgs = read_topic(settings, settings.topic_beats, until=lambda m: False, timeout_s=3)
    for pid, (beats, beats_total, _) in want.items():
        assert final[pid].beats_total == beats_total, pid
        assert beats_of(beat_msgs, pid) == sorted(set(beats)), pid


def test_refetcher_returns_one_keys_records_in_an_offset_range(services: Settings) -> None:
    async def scenario() -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]], list[int]]:
        topic = f"refetch-{uuid.uuid4().hex[:8]}"
        ensure_topics(services.kafka_url, [topic], 1)
        producer = AIOKafkaProducer(bootstrap_servers=services.kafka_url, linger_ms=20)
        await producer.start()
        try:
            for i in range(12):
                await producer.send(
                    topic, key=b"a" if i % 2 else b"b", value=b"%d" % i, partition=0
                )
            await producer.flush()
        finally:
            await producer.stop()
        refetcher = ChunkRefetcher(services.kafka_url, max_fetch_bytes=1_048_576)
        try:
            a = await refetcher.fetch(topic, 0, 3, 10, b"a")
            b = await refetcher.fetch(topic, 0, 0, 5, b"b")
            empty = await refetcher.fetch(topic, 0, 7, 7, b"a")
        finally:
            await refetcher.close()
        return (
            [(r.offset, r.value) for r in a],
            [(r.offset, r.value) for r in b],
            [r.offset for r in empty],
        )

    a, b, empty = asyncio.run(scenario())
    assert a == [(3, b"3"), (5, b"5"), (7, b"7"), (9, b"9")]
    assert b == [(0, b"0"), (2, b"2"), (4, b"4")]
    assert empty == []
