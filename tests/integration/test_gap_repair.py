"""A worker whose consumer position jumps past unprocessed chunks still keeps state exact.

(ECG and heart sounds: both handlers share the repair.)

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

from cardiowatch.schemas import Vitals
from cardiowatch.services import ensure_topics
from cardiowatch.settings import Settings
from models.pcg import PcgClassifier
from simulators.audio import pcg_patients
from simulators.build import synthetic_patients
from simulators.patients import run_replay
from simulators.replay import VirtualPatient, make_chunk
from streams.gap_repair import ChunkRefetcher
from streams.pcg_processor import PcgState, process_pcg_chunk
from tests.integration.harness import fresh_settings, read_topic, replay, start_worker
from tests.integration.test_rebalance import expected, latest_vitals, wait_vitals
from tests.integration.test_spine import beats_of

pytestmark = pytest.mark.integration

SKIP_RECORDS = 3


def make_patients() -> list[VirtualPatient]:
    """The patients of tests.integration.test_rebalance (its ``expected`` computes theirs)."""
    return synthetic_patients(6, events=["asystole@45:7"], seed=11, first_index=0)


class FaustNamedAssignor(RoundRobinPartitionAssignor):  # type: ignore[misc]  # untyped base
    """Round robin under the protocol name the worker group registered (``faust``)."""

    name = "faust"


async def move_committed_offsets(
    settings: Settings, records: int, topic: str | None = None
) -> dict[int, int]:
    """Move the worker group's committed offset of every partition of ``topic`` (default: the
    ECG topic) ``records`` ahead.

    Joins the (empty) group as its only member, so the broker accepts the commit; the broker
    expects the protocol name the worker registered.
    """
    topic = topic or settings.topic_ecg
    consumer = AIOKafkaConsumer(
        topic,
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
            {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in moved.items()}
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


PCG_FILES = ("physionet2016/training-d/d0002.wav", "physionet2016/training-d/d0020.wav")


def pcg_expected(
    settings: Settings, files: list[Path], n_chunks: int
) -> dict[str, tuple[int, int]]:
    """Per heart-sound patient: last vitals sample index and S1 count, computed in-process."""
    classifier = PcgClassifier.from_bytes(Path(settings.pcg_model).read_bytes())
    out = {}
    for patient in pcg_patients(files, 4, loop=True):
        state: PcgState | None = None
        vitals = None
        for _ in range(n_chunks):
            made = make_chunk(patient, round(settings.chunk_s * patient.source.info.fs_hz))
            assert made is not None
            result, state = process_pcg_chunk(state, made[0], classifier)
            assert result.outputs is not None
            vitals = result.outputs.vitals
        assert vitals is not None
        out[patient.patient_id] = (vitals.sample_index, vitals.beats_total)
    return out


def test_heart_sound_worker_reads_back_skipped_chunks(
    services: Settings, tmp_path: Path, mitdb: Path
) -> None:
    settings = fresh_settings(services, tmp_path)
    files = [mitdb.parent / f for f in PCG_FILES]
    patients = pcg_patients(files, 4, loop=True)
    worker = start_worker(settings, tmp_path, "worker-1")
    try:
        asyncio.run(run_replay(settings, patients, speed=0.0, duration_s=12, kind="pcg"))
        want_first = pcg_expected(settings, files, 12)
        wait_pcg_vitals(settings, {pid: end for pid, (end, _) in want_first.items()})
    finally:
        worker.stop()

    asyncio.run(run_replay(settings, patients, speed=0.0, duration_s=12, kind="pcg"))
    moved = asyncio.run(move_committed_offsets(settings, SKIP_RECORDS, settings.topic_pcg))
    assert moved, "the first worker committed offsets"

    worker = start_worker(settings, tmp_path, "worker-2")
    want = pcg_expected(settings, files, 24)
    try:
        final = wait_pcg_vitals(settings, {pid: end for pid, (end, _) in want.items()})
        metrics = worker.metrics()
    finally:
        worker.stop()

    assert metric_value(metrics, "cardiowatch_chunks_reread_total") >= SKIP_RECORDS, metrics
    assert metric_value(metrics, "cardiowatch_stream_discontinuities_total") == 0.0, metrics
    assert {pid: v.beats_total for pid, v in final.items()} == {
        pid: s1 for pid, (_, s1) in want.items()
    }


def wait_pcg_vitals(settings: Settings, ends: dict[str, int]) -> dict[str, Vitals]:
    """Latest vitals per heart-sound patient once each reached its end sample index."""

    def done(msgs: list[tuple[bytes, bytes]]) -> bool:
        got = latest_vitals(msgs)
        return all(pid in got and got[pid].sample_index >= end for pid, end in ends.items())

    msgs = read_topic(settings, settings.topic_vitals, until=done, timeout_s=120)
    assert done(msgs), {k: v.sample_index for k, v in latest_vitals(msgs).items()}
    return latest_vitals(msgs)


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
