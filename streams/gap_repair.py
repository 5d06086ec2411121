"""Re-read the chunks a consumer skipped, so a patient's state never jumps over data.

faust's at-least-once delivery has rebalance races (faust-streaming issues #115, #216 and
#221): a message fetched before a rebalance can be dropped from the stream while later ones
are processed, and faust's commit then moves past it (``Consumer._new_offset`` accepts an
acked run that starts one offset after the committed one). The worker that owns the
partition next then receives chunk *k + 3* of a patient whose state ends at chunk *k*.
``tests/integration/test_rebalance.py`` (join a worker, SIGKILL the other) ended that way in
about one run in eight before this module existed.

The worker does not depend on faust getting this right: a patient's state records the
partition and offset of its last chunk and the next sequence number it expects, so a jump in
the sequence says exactly which part of the partition to read again.
:class:`ChunkRefetcher` reads that range with a consumer of its own (no group, no commits)
and returns the patient's records; the handler processes them in order before the chunk that
revealed the gap. A gap that is really in the data (the records are not in the topic) is
left to the processor, which restarts the patient's monitor and counts a discontinuity.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Record:
    """One record read back from a partition."""

    offset: int
    value: bytes


class ChunkRefetcher:
    """Reads offset ranges of a partition on demand with one lazily started consumer.

    Parameters
    ----------
    bootstrap : str
        Broker address (``host:port``).
    max_fetch_bytes : int
        Largest fetch per partition; at least the largest chunk message.
    timeout_s : float
        Longest time one :meth:`fetch` may take.
    """

    def __init__(self, bootstrap: str, *, max_fetch_bytes: int, timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.max_fetch_bytes = max_fetch_bytes
        self.timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def fetch(
        self, topic: str, partition: int, start_offset: int, end_offset: int, key: bytes
    ) -> list[Record]:
        """Records with ``key`` at offsets ``start_offset <= offset < end_offset``, in order.

        Raises ``TimeoutError`` when the range cannot be read within ``timeout_s``.
        """
        if end_offset <= start_offset:
            return []
        async with self._lock:
            consumer = await self._ensure_consumer()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start_offset)
            found: list[Record] = []
            deadline = time.monotonic() + self.timeout_s
            while True:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    raise TimeoutError(f"offsets {start_offset}-{end_offset - 1} not read back")
                batch = await consumer.getmany(tp, timeout_ms=int(min(remaining_s, 0.5) * 1000))
                for record in batch.get(tp, []):
                    if record.offset >= end_offset:
                        return found
                    if record.key == key and record.value is not None:
                        found.append(Record(record.offset, record.value))
                if await consumer.position(tp) >= end_offset:
                    return found

    async def _ensure_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=self.max_fetch_bytes,
                fetch_max_wait_ms=100,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        """Stop the consumer if it was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
