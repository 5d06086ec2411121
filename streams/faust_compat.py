"""Workarounds for faust and broker behaviour, applied in one place by :func:`create_app`.

* **Fetch long-poll (Tansu).** faust builds its aiokafka consumer with a hard-coded
  ``fetch_max_wait_ms=1500``. Kafka answers a long-poll fetch as soon as data arrives; Tansu
  waits for the deadline, which added about 0.2 s to the median and 0.3 s to the p99
  end-to-end latency in ``benchmarks/bench_spine.py`` (50 patients). With the Tansu
  compatibility setting the worker's consumer polls with a short wait instead.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

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
