"""Workarounds for faust and broker behaviour, applied in one place by :func:`create_app`.

* **Fetch long-poll (Tansu).** faust builds its aiokafka consumer with a hard-coded
  ``fetch_max_wait_ms=1500``. Kafka answers a long-poll fetch as soon as data arrives; Tansu
  waits for the deadline, which added about 0.2 s to the median and 0.3 s to the p99
  end-to-end latency in ``benchmarks/bench_spine.py`` (50 patients). With the Tansu
  compatibility setting the worker's consumer polls with a short wait instead.
* **Producer buffer flush (any broker).** Table changelog records and ``send_soon`` messages
  wait in faust's ``ProducerBuffer`` before they reach aiokafka. faust flushes the producer
  before it commits source offsets, but ``ProducerBuffer.flush`` gives up as soon as no
  message was sent for 0.1 s, and the message being handed to aiokafka at that moment is not
  counted at all. With one-record batches a hand-over waits for the previous batch, so the
  flush returned early under load; offsets were committed ahead of buffered changelog records
  and a SIGKILL then lost them (seen once as a restarted patient in
  ``tests/integration/test_rebalance.py``). :func:`apply_fixes` makes the flush wait until the
  buffer is empty and nothing is in hand-over.
* **Flow-control resume (any broker).** ``FlowControlEvent.resume`` empties every stream
  queue, which is right after a suspend (the queued messages were fetched before a
  rebalance) and wrong when the flow is already running. At the end of table recovery faust
  resumes the stream partitions, awaits the seek to the committed offsets, and only then calls
  ``flow_control.resume()``, while the flow has been running since recovery started reading
  changelogs: messages fetched in between were queued, their offsets recorded as read, and
  then dropped. The new owner of a partition skipped two or three chunks right after
  "Worker ready" (worker logs of ``tests/integration/test_rebalance.py``, about one run in
  eight). :func:`keep_queued_on_resume` makes a resume of a running flow a no-op.
  ``streams/gap_repair.py`` catches any skip that remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from faust.transport import producer as faust_producer
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)

_fetch_max_wait_ms: int | None = None


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, with our fetch wait on the worker consumer."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if _fetch_max_wait_ms is not None:
            # Read by AIOKafkaConsumer.start() when it builds its fetcher.
            consumer._fetch_max_wait_ms = _fetch_max_wait_ms
        return consumer


def _new_consumer_thread(self: Any) -> _ConsumerThread:
    return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


def set_fetch_max_wait(ms: int | None) -> None:
    """Use ``ms`` as the worker consumer's fetch wait (``None``: faust's default)."""
    global _fetch_max_wait_ms
    _fetch_max_wait_ms = ms
    faust_aiokafka.Consumer._new_consumer_thread = _new_consumer_thread  # type: ignore[method-assign]


_original_flush_atmost = faust_producer.ProducerBuffer.flush_atmost


async def _send_pending(self: Any, fut: Any) -> None:
    self._cw_in_hand = getattr(self, "_cw_in_hand", 0) + 1
    try:
        await fut.message.channel.publish_message(fut, wait=False)
    finally:
        self._cw_in_hand -= 1


async def _flush_atmost(self: Any, max_messages: int | None) -> int:
    if max_messages is not None:  # back-pressure (wait_until_ebb): faust's behaviour is fine
        return int(await _original_flush_atmost(self, max_messages))
    flushed = 0
    started = time.monotonic()
    while self.size or getattr(self, "_cw_in_hand", 0):
        if self.state != "running" and self.size:
            raise RuntimeError("Cannot flush: Producer not Running")
        self.message_sent.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.message_sent.wait(), timeout=1.0)
            flushed += 1
        if time.monotonic() - started > 10.0:
            log.warning("producer buffer still draining (%d messages)", self.size)
            started = time.monotonic()
    return flushed


def apply_fixes() -> None:
    """Make faust's producer-buffer flush complete (see the module docstring)."""
    faust_producer.ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
    faust_producer.ProducerBuffer.flush_atmost = _flush_atmost  # type: ignore[method-assign]


def keep_queued_on_resume(flow_control: Any) -> None:
    """Make ``flow_control.resume()`` clear the queues only when the flow was suspended."""
    original = flow_control.resume

    def resume() -> None:
        if not flow_control.is_active():
            original()

    flow_control.resume = resume
