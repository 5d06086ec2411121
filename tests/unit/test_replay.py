"""Replay: chunking, absolute indices across loops, annotations, rate-accurate pacing."""

from __future__ import annotations

import asyncio
import time

import numpy as np

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
