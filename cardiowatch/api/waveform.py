"""Waveforms for the live page: one Kafka consumer per API process, fanned out by patient.

The consumer (aiokafka, no consumer group, every partition of ``topic_ecg``, starting at the
end) is started when the first WebSocket watches a patient. Each chunk of a watched patient is
decoded with :meth:`SampleChunk.decode`, reduced to lead 1 in mV and decimated to at most
``api_waveform_hz`` by keeping the samples whose absolute index is a multiple of the step,
so consecutive chunks join seamlessly. It is a display signal, not a diagnostic one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer

from cardiowatch.schemas import SampleChunk, SchemaError
from cardiowatch.settings import Settings

log = logging.getLogger(__name__)
Frame = dict[str, Any]


def waveform_frame(chunk: SampleChunk, max_hz: float) -> Frame:
    """Lead 1 of ``chunk`` in mV, decimated to at most ``max_hz``.

    >>> import numpy as np
    >>> c = SampleChunk(patient_id="p", kind="ecg", fs_hz=360.0, leads=("MLII",), gain=(200.0,),
    ...     baseline=(0,), units=("mV",), start_sample=7, seq=0, source="s",
    ...     samples=np.arange(20, dtype=np.int16).reshape(-1, 1))
    >>> f = waveform_frame(c, 120.0)
    >>> f["start_sample"], f["step"], f["fs_hz"], len(f["mv"])
    (9, 3, 120.0, 6)
    """
    step = max(1, math.ceil(chunk.fs_hz / max_hz))
    first = (-chunk.start_sample) % step
    mv = chunk.physical()[first::step, 0]
    return {
        "type": "waveform",
        "patient_id": chunk.patient_id,
        "start_sample": chunk.start_sample + first,
        "step": step,
        "fs_hz": chunk.fs_hz / step,
        "mv": [round(float(v), 3) for v in mv],
    }


class WaveformFeed:
    """Fans decoded chunks out to the queues watching each patient."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._watchers: dict[str, set[asyncio.Queue[Frame]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def watch(self, queue: asyncio.Queue[Frame], patient_ids: set[str]) -> None:
        """Let ``queue`` receive the frames of exactly ``patient_ids`` from now on."""
        self.unwatch(queue)
        for pid in patient_ids:
            self._watchers[pid].add(queue)
        if patient_ids and self._task is None and self.settings.kafka_url:
            self._task = asyncio.create_task(self._run(), name="waveform-feed")

    def unwatch(self, queue: asyncio.Queue[Frame]) -> None:
        """Stop sending to ``queue``."""
        for pid in [p for p, qs in self._watchers.items() if queue in qs]:
            self._watchers[pid].discard(queue)
            if not self._watchers[pid]:
                del self._watchers[pid]

    async def stop(self) -> None:
        """Stop the consumer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                self.settings.topic_ecg,
                bootstrap_servers=self.settings.kafka_url,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            )
            try:
                await consumer.start()
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    for records in batches.values():
                        for record in records:
                            self._fan_out(record.key, record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker gone: try again shortly
                log.warning("waveform feed: %s; reconnecting", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def _fan_out(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        queues = self._watchers.get(key.decode(errors="replace"))
        if not queues:
            return
        try:
            frame = waveform_frame(SampleChunk.decode(value), self.settings.api_waveform_hz)
        except SchemaError:
            return  # the worker dead-letters it; nothing to draw
        for queue in list(queues):
            with contextlib.suppress(asyncio.QueueFull):  # a slow page skips a frame
                queue.put_nowait(frame)
