"""Operational metrics of the worker that come from faust rather than from a chunk.

* :class:`LagTracker`: consumer lag per partition of the ECG topic (the partition's high
  watermark minus the next offset this worker will process), exported every second.
* :class:`MetricsSensor`: a faust sensor that counts failed producer sends and rebalances.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.sensors import Sensor

from cardiowatch.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class LagTracker:
    """Remembers the next offset to process per partition and exports the lag.

    Parameters
    ----------
    topic
        The ECG topic (the only one whose lag matters: everything else is output).
    metrics
        Where ``cardiowatch_consumer_lag_messages{partition}`` lives.
    """

    def __init__(self, topic: str, metrics: WorkerMetrics) -> None:
        self.topic = topic
        self.metrics = metrics
        self._next_offset: dict[int, int] = {}

    def processed(self, partition: int, offset: int) -> None:
        """Record that the message at ``offset`` of ``partition`` is done."""
        self._next_offset[partition] = offset + 1

    def lags(self, consumer: Any) -> dict[int, int]:
        """Lag per held partition (``consumer`` is faust's consumer)."""
        held = {tp.partition: tp for tp in consumer.assignment() if tp.topic == self.topic}
        self.metrics.partitions_assigned.set(len(held))
        for partition in list(self._next_offset):
            if partition not in held:
                del self._next_offset[partition]  # revoked: its position is someone else's now
        lags = {}
        for partition, tp in held.items():
            highwater = consumer.highwater(tp)
            position = self._next_offset.get(partition)
            if highwater is None or position is None:
                continue  # nothing processed since the assignment: unknown, not zero
            lags[partition] = max(0, int(highwater) - position)
        return lags

    def export(self, consumer: Any) -> None:
        """Export the lags; a broker failure is counted, never raised."""
        try:
            lags = self.lags(consumer)
        except Exception as exc:  # the consumer may be between assignments or disconnected
            self.metrics.broker_errors.labels(operation="offsets").inc()
            log.warning("consumer lag unavailable (%s)", type(exc).__name__)
            return
        self.metrics.set_consumer_lag(lags)


class MetricsSensor(Sensor):
    """Counts failed sends (``cardiowatch_broker_errors_total{operation="send"}``) and
    rebalances with their duration."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """A producer send failed."""
        self.metrics.broker_errors.labels(operation="send").inc()

    def on_rebalance_start(self, app: Any) -> dict[str, float]:
        """A rebalance began."""
        self.metrics.rebalances.inc()
        return {"time_start": time.monotonic()}

    def on_rebalance_end(self, app: Any, state: dict[str, float]) -> None:
        """The rebalance ended, recovery included."""
        self.metrics.rebalance_seconds.observe(time.monotonic() - state["time_start"])
