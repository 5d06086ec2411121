"""Every Prometheus metric of the service, built on an injected registry.

Base units (seconds, bytes), counters end in ``_total``, and label values come from bounded
sets (reasons, alarm types, priorities, stages): never a patient id.

Examples
--------
>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> m = WorkerMetrics(registry)
>>> registry.get_sample_value("cardiowatch_dead_letters_total", {"reason": "malformed"})
0.0
>>> m.chunks.labels(outcome="processed").inc()
>>> registry.get_sample_value("cardiowatch_chunks_total", {"outcome": "processed"})
1.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cardiowatch.schemas import REJECT_REASONS

_LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class WorkerMetrics:
    """The stream worker's metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.chunks = Counter(
            "cardiowatch_chunks",
            "Sample chunks consumed, by outcome (processed, redelivered, rejected).",
            ["outcome"],
            registry=registry,
        )
        self.samples = Counter(
            "cardiowatch_samples", "Samples processed (per lead-set row).", registry=registry
        )
        self.beats = Counter(
            "cardiowatch_beats", "Beats detected, by label ('none' when unclassified).",
            ["label"], registry=registry,
        )  # fmt: skip
        self.alerts = Counter(
            "cardiowatch_alerts",
            "Alarm lifecycle events published.",
            ["alarm_type", "priority", "state"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "cardiowatch_dead_letters",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.discontinuities = Counter(
            "cardiowatch_stream_discontinuities",
            "Chunks that did not continue the patient's previous chunk (gap or new record).",
            registry=registry,
        )
        self.redis_errors = Counter(
            "cardiowatch_redis_errors", "Failed Redis writes.", registry=registry
        )
        self.broker_errors = Counter(
            "cardiowatch_broker_errors",
            "Failed broker requests made by the worker itself (outside faust).",
            registry=registry,
        )
        self.chunks_reread = Counter(
            "cardiowatch_chunks_reread",
            "Chunks read back from the source topic after the consumer skipped them.",
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "cardiowatch_stage_duration_seconds",
            "Time spent per chunk in each stage (decode, detect, publish).",
            ["stage"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            "cardiowatch_end_to_end_latency_seconds",
            "From a chunk's production by the simulator to its results being published.",
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.patients = Gauge(
            "cardiowatch_patients_active",
            "Patients whose state this worker holds.",
            registry=registry,
        )
        # Labelled series exist from the start at 0, so that rate() sees their first increase.
        for reason in REJECT_REASONS:
            self.dead_letters.labels(reason=reason)
        for outcome in ("processed", "redelivered", "rejected"):
            self.chunks.labels(outcome=outcome)
        for stage in ("decode", "detect", "publish"):
            self.stage_seconds.labels(stage=stage)
