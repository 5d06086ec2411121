"""Replay sources as virtual patients into the samples topic, rate-accurately.

Pacing runs on an absolute schedule: chunk ``k`` of every patient is due at
``t0 + k * chunk_s / speed``, so sleep jitter never accumulates into drift. ``speed=0`` sends as
fast as the broker accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka.errors import KafkaError

from cardiowatch.metrics import SimulatorMetrics
from cardiowatch.schemas import AnnotationBatch, AnnotationRecord, SampleChunk
from simulators.sources import ChunkSource

log = logging.getLogger(__name__)


@dataclass
class VirtualPatient:
    """One patient id bound to one source; ``seq`` counts the chunks sent in ``stream_id``."""

    patient_id: str
    source: ChunkSource
    seq: int = 0
    done: bool = False
    stream_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


@dataclass
class ReplayStats:
    """What a replay did (for the CLI and the load benchmark)."""

    chunks_sent: int = 0
    samples_sent: int = 0
    bytes_sent: int = 0
    started_monotonic_s: float = field(default_factory=time.monotonic)
    late_chunks: int = 0
    errors: int = 0

    @property
    def elapsed_s(self) -> float:
        """Seconds since the replay started."""
        return time.monotonic() - self.started_monotonic_s


class Sender(Protocol):
    """What the replay needs of a producer (aiokafka's ``send`` fits)."""

    async def send(self, topic: str, value: bytes, key: bytes) -> object:
        """Queue one message; return when it is buffered."""
        ...


def make_chunk(
    patient: VirtualPatient, chunk_samples: int
) -> tuple[SampleChunk, AnnotationBatch] | None:
    """Read the patient's next chunk, or ``None`` when its source is exhausted."""
    block = patient.source.read(chunk_samples)
    if block is None or len(block.samples) == 0:
        patient.done = True
        return None
    info = patient.source.info
    chunk = SampleChunk(
        patient_id=patient.patient_id,
        kind=info.kind,
        fs_hz=info.fs_hz,
        leads=info.leads,
        gain=info.gain,
        baseline=info.baseline,
        units=info.units,
        start_sample=block.start_sample,
        seq=patient.seq,
        source=info.source,
        samples=block.samples,
        sent_unix_s=time.time(),
        stream_id=patient.stream_id,
    )
    annotations = AnnotationBatch(
        patient_id=patient.patient_id,
        source=info.source,
        fs_hz=info.fs_hz,
        chunk_seq=patient.seq,
        annotations=[AnnotationRecord(s, sym) for s, sym in block.annotations],
    )
    patient.seq += 1
    return chunk, annotations


async def replay(
    producer: Sender,
    patients: Sequence[VirtualPatient],
    *,
    topic: str,
    annotation_topic: str | None,
    chunk_s: float = 1.0,
    speed: float = 1.0,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    on_round: Callable[[ReplayStats], None] | None = None,
    metrics: SimulatorMetrics | None = None,
) -> ReplayStats:
    """Send every patient's chunks until sources end, ``duration_s`` of signal, or ``stop``.

    ``duration_s`` counts signal time (not wall time), so ``speed`` only changes how fast it goes.
    A chunk the broker refuses is counted (``cardiowatch_simulator_errors_total``), logged and
    skipped; the worker sees a gap there and restarts the patient's monitor.
    """
    stats = ReplayStats()
    if not patients:
        return stats
    if metrics is not None:
        metrics.patients.set(len(patients))
    fs_hz = patients[0].source.info.fs_hz
    chunk_samples = max(1, round(chunk_s * fs_hz))
    period_s = chunk_samples / fs_hz / speed if speed > 0 else 0.0
    max_rounds = None if duration_s is None else round(duration_s * fs_hz / chunk_samples)
    # Heart-sound recordings come at many rates: each patient's chunk is chunk_s of its signal.
    own_samples = {
        p.patient_id: max(1, round(chunk_s * p.source.info.fs_hz))
        if p.source.info.fs_hz != fs_hz
        else chunk_samples
        for p in patients
    }
    t0 = time.monotonic()
    k = 0
    while (max_rounds is None or k < max_rounds) and not (stop is not None and stop.is_set()):
        live = [p for p in patients if not p.done]
        if not live:
            break
        for patient in live:
            made = make_chunk(patient, own_samples[patient.patient_id])
            if made is None:
                continue
            chunk, annotations = made
            key = patient.patient_id.encode()
            payload = chunk.encode()
            try:
                await producer.send(topic, value=payload, key=key)
                if annotation_topic is not None and annotations.annotations:
                    await producer.send(annotation_topic, value=annotations.encode(), key=key)
            except (KafkaError, OSError) as exc:
                stats.errors += 1
                if metrics is not None:
                    metrics.errors.labels(reason="send").inc()
                log.warning("chunk not sent (%s)", type(exc).__name__)
                continue
            stats.chunks_sent += 1
            stats.samples_sent += chunk.n_samples
            stats.bytes_sent += len(payload)
            if metrics is not None:
                metrics.chunks.inc()
                metrics.samples.inc(chunk.n_samples)
                metrics.bytes.inc(len(payload))
        k += 1
        if on_round is not None:
            on_round(stats)
        if period_s > 0:
            due = t0 + k * period_s
            delay = due - time.monotonic()
            if delay > 0:
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
            else:
                stats.late_chunks += 1
                if metrics is not None:
                    metrics.late_rounds.inc()
        else:
            await asyncio.sleep(0)
    return stats
