"""Replay: chunking, absolute indices across loops, annotations, rate-accurate pacing."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from cardiowatch.metrics import SimulatorMetrics
from cardiowatch.schemas import AnnotationBatch, SampleChunk
from simulators.replay import VirtualPatient, replay
from simulators.sources import WfdbRecord, WfdbSource


def tiny_record(n_samples: int = 1000) -> WfdbRecord:
    samples = np.arange(2 * n_samples, dtype=np.int16).reshape(n_samples, 2)
    return WfdbRecord(
        "test/tiny", 100.0, ("MLII", "V1"), (200.0, 200.0), (0, 0), ("mV", "mV"), samples,
        np.array([50, 450, 950]), ("N", "V", "N"),
    )  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> object:
        self.sent.append((time.monotonic(), topic, key, value))
        return None


def test_looping_source_keeps_absolute_indices_growing() -> None:
    source = WfdbSource(tiny_record(), loop=True)
    starts = []
    for _ in range(5):
        block = source.read(300)
        assert block is not None
        starts.append(block.start_sample)
    assert starts == [0, 300, 600, 900, 1000]  # the record ends at 1000, then starts again
    assert source.read(0) is not None


def test_replay_sends_chunks_and_annotations_in_order() -> None:
    recorder = Recorder()
    patients = [VirtualPatient("p1", WfdbSource(tiny_record()))]
    stats = asyncio.run(replay(recorder, patients, topic="ecg", annotation_topic="ann", speed=0))
    chunks = [SampleChunk.decode(v) for _, t, _, v in recorder.sent if t == "ecg"]
    assert [c.seq for c in chunks] == list(range(10))
    assert sum(c.n_samples for c in chunks) == 1000 == stats.samples_sent
    ann = [AnnotationBatch.decode(v) for _, t, _, v in recorder.sent if t == "ann"]
    assert [(a.sample, a.symbol) for b in ann for a in b.annotations] == [
        (50, "N"),
        (450, "V"),
        (950, "N"),
    ]
    assert all(k == b"p1" for _, _, k, _ in recorder.sent)


def test_pacing_follows_an_absolute_schedule() -> None:
    recorder = Recorder()
    patients = [VirtualPatient(f"p{i}", WfdbSource(tiny_record(), loop=True)) for i in range(3)]
    # 1 s chunks at 20x: one round every 50 ms, 12 rounds.
    asyncio.run(
        replay(recorder, patients, topic="ecg", annotation_topic=None, speed=20, duration_s=12)
    )
    rounds = [t for t, _, k, _ in recorder.sent if k == b"p0"]
    assert len(rounds) == 12
    elapsed = rounds[-1] - rounds[0]
    assert 0.5 < elapsed < 0.75, elapsed  # 11 periods of 50 ms, no accumulated drift


class RefusingSender(Recorder):
    """Refuses every third chunk the way aiokafka does when the broker is away."""

    async def send(self, topic: str, value: bytes, key: bytes) -> object:
        if topic == "ecg" and len(self.sent) % 3 == 2:
            self.sent.append((time.monotonic(), "refused", key, value))
            raise KafkaConnectionError("broker away")
        return await super().send(topic, value, key)


def test_replay_counts_what_it_sends_and_goes_on_after_a_refused_send() -> None:
    registry = CollectorRegistry()
    metrics = SimulatorMetrics(registry)
    sender = RefusingSender()
    patients = [VirtualPatient("p00000", WfdbSource(tiny_record()))]
    stats = asyncio.run(
        replay(sender, patients, topic="ecg", annotation_topic=None, chunk_s=1.0, speed=0,
               metrics=metrics)
    )  # fmt: skip
    assert stats.chunks_sent == 7
    assert stats.errors == 3
    assert registry.get_sample_value("cardiowatch_simulator_chunks_total") == 7
    assert registry.get_sample_value("cardiowatch_simulator_samples_total") == 700
    assert registry.get_sample_value("cardiowatch_simulator_errors_total", {"reason": "send"}) == 3
    assert registry.get_sample_value("cardiowatch_simulator_patients") == 1
    sent_seqs = [SampleChunk.decode(v).seq for _, t, _, v in sender.sent if t == "ecg"]
    assert sent_seqs == [0, 1, 3, 4, 6, 7, 9]
