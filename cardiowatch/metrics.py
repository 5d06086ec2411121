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

REDIS_OPERATIONS = ("alerts", "vitals")
BROKER_OPERATIONS = ("send", "offsets", "refetch")
_LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class WorkerMetrics:
    """The stream worker's metrics."""

    def __init__(self, registry: CollectorRegistry, *, max_patients: int = 200) -> None:
        self.registry = registry
        self._model_versions: dict[str, str] = {}
        self._lag_partitions: set[str] = set()
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
            "cardiowatch_redis_errors",
            "Failed Redis operations, by operation (alerts, vitals).",
            ["operation"],
            registry=registry,
        )
        self.broker_errors = Counter(
            "cardiowatch_broker_errors",
            "Failed broker operations, by operation (send: faust's producer; offsets: lag look-ups;"
            " refetch: the worker's own re-reads of skipped chunks).",
            ["operation"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "cardiowatch_consumer_lag_messages",
            "Messages of the ECG topic not yet processed, per partition this worker holds.",
            ["partition"],
            registry=registry,
        )
        self.partitions_assigned = Gauge(
            "cardiowatch_partitions_assigned",
            "Partitions of the ECG topic this worker holds now.",
            registry=registry,
        )
        self.rebalancing = Gauge(
            "cardiowatch_rebalancing",
            "1 while this worker is in a consumer-group rebalance (recovery included).",
            registry=registry,
        )
        self.model_info = Gauge(
            "cardiowatch_model_info",
            "1 for the model version this worker uses now (version 'none': no model).",
            ["model", "version"],
            registry=registry,
        )
        self.rebalances = Counter(
            "cardiowatch_rebalances", "Consumer-group rebalances this worker went through.",
            registry=registry,
        )  # fmt: skip
        self.rebalance_seconds = Histogram(
            "cardiowatch_rebalance_duration_seconds",
            "From a rebalance's start to its end (table recovery included).",
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.chunks_reread = Counter(
            "cardiowatch_chunks_reread",
            "Chunks read back from the source topic after the consumer skipped them.",
            registry=registry,
        )
        self.patient = PatientGauges(registry, max_patients=max_patients)
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
        for operation in REDIS_OPERATIONS:
            self.redis_errors.labels(operation=operation)
        for operation in BROKER_OPERATIONS:
            self.broker_errors.labels(operation=operation)

    def set_model_version(self, model: str, version: str | None) -> None:
        """Export ``version`` as the one in use for ``model`` (the previous one is removed)."""
        new = version or "none"
        old = self._model_versions.get(model)
        if old == new:
            return
        if old is not None:
            self.model_info.remove(model, old)
        self.model_info.labels(model=model, version=new).set(1)
        self._model_versions[model] = new

    def set_consumer_lag(self, lag_by_partition: dict[int, int]) -> None:
        """Export the lag of the partitions held now; partitions no longer held disappear."""
        held = {str(p) for p in lag_by_partition}
        for label in self._lag_partitions - held:
            self.consumer_lag.remove(label)
        self._lag_partitions = held
        for partition, lag in lag_by_partition.items():
            self.consumer_lag.labels(partition=str(partition)).set(lag)


class PatientGauges:
    """Per-patient gauges for the patient dashboard, capped at ``max_patients`` patients.

    A patient id is a label here, which is acceptable only because these are three gauges
    (not a counter per event) and the number of exported patients is capped: patients beyond
    the cap are counted in ``cardiowatch_patients_unexported`` instead.
    """

    def __init__(self, registry: CollectorRegistry, *, max_patients: int) -> None:
        self.max_patients = max_patients
        self._exported: set[str] = set()
        self._unexported: set[str] = set()
        self.last_chunk = Gauge(
            "cardiowatch_patient_last_chunk_timestamp_seconds",
            "Unix time at which this worker last processed a chunk of the patient.",
            ["patient"],
            registry=registry,
        )
        self.heart_rate = Gauge(
            "cardiowatch_patient_heart_rate_bpm",
            "The patient's latest heart rate (NaN while unknown).",
            ["patient"],
            registry=registry,
        )
        self.active_alarms = Gauge(
            "cardiowatch_patient_active_alarms",
            "Alarms open for the patient now.",
            ["patient"],
            registry=registry,
        )
        self.unexported = Gauge(
            "cardiowatch_patients_unexported",
            "Patients seen beyond the per-patient metrics cap (CARDIOWATCH_METRICS_MAX_PATIENTS).",
            registry=registry,
        )

    def update(
        self, patient: str, *, time_unix_s: float, heart_rate_bpm: float | None, n_alarms: int
    ) -> None:
        """Record one processed chunk of ``patient`` (ignored beyond the cap)."""
        if patient not in self._exported:
            if len(self._exported) >= self.max_patients:
                if patient not in self._unexported:
                    self._unexported.add(patient)
                    self.unexported.set(len(self._unexported))
                return
            self._exported.add(patient)
        self.last_chunk.labels(patient=patient).set(time_unix_s)
        self.heart_rate.labels(patient=patient).set(
            float("nan") if heart_rate_bpm is None else heart_rate_bpm
        )
        self.active_alarms.labels(patient=patient).set(n_alarms)


class SimulatorMetrics:
    """The simulator's metrics (``cardiowatch simulate``, ``cardiowatch loadtest``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.chunks = Counter(
            "cardiowatch_simulator_chunks", "Sample chunks produced.", registry=registry
        )
        self.samples = Counter(
            "cardiowatch_simulator_samples", "Samples produced (per lead-set row).",
            registry=registry,
        )  # fmt: skip
        self.bytes = Counter(
            "cardiowatch_simulator_bytes", "Payload bytes of the chunks produced.",
            registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "cardiowatch_simulator_errors",
            "Chunks that could not be produced, by reason (send).",
            ["reason"],
            registry=registry,
        )
        self.late_rounds = Counter(
            "cardiowatch_simulator_late_rounds",
            "Rounds of chunks sent after their due time (the simulator cannot keep the pace).",
            registry=registry,
        )
        self.patients = Gauge(
            "cardiowatch_simulator_patients", "Virtual patients being replayed.", registry=registry
        )
        self.errors.labels(reason="send")


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class ApiMetrics:
    """The API's metrics (``cardiowatch api``, served on its ``/metrics``).

    Labels are the route template (``/api/v1/patients/{patient_id}``, never the patient id),
    the method (unknown methods become ``other``) and the status code.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "cardiowatch_api_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "cardiowatch_api_request_duration_seconds",
            "Time to answer a request (event streams excluded), by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.redis_errors = Counter(
            "cardiowatch_api_redis_errors",
            "Requests answered 503 because Redis failed.",
            registry=registry,
        )
        self.sse_subscribers = Gauge(
            "cardiowatch_api_sse_subscribers",
            "Live alert (SSE) subscribers of this process.",
            registry=registry,
        )
