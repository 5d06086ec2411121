"""Worker and simulator metrics read back from a fresh registry."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from cardiowatch.metrics import SimulatorMetrics, WorkerMetrics


def test_model_info_exports_only_the_version_in_use() -> None:
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    m.set_model_version("beats", None)
    assert (
        registry.get_sample_value("cardiowatch_model_info", {"model": "beats", "version": "none"})
        == 1
    )
    m.set_model_version("beats", "sha256:aaaa")
    m.set_model_version("beats", "sha256:aaaa")
    m.set_model_version("beats", "sha256:bbbb")
    versions = [
        s.labels["version"] for f in registry.collect() if f.name == "cardiowatch_model_info"
        for s in f.samples
    ]  # fmt: skip
    assert versions == ["sha256:bbbb"]


def test_consumer_lag_drops_partitions_no_longer_held() -> None:
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    m.set_consumer_lag({0: 5, 3: 0})
    assert registry.get_sample_value("cardiowatch_consumer_lag_messages", {"partition": "0"}) == 5
    m.set_consumer_lag({3: 7})
    assert (
        registry.get_sample_value("cardiowatch_consumer_lag_messages", {"partition": "0"}) is None
    )
    assert registry.get_sample_value("cardiowatch_consumer_lag_messages", {"partition": "3"}) == 7


def test_per_patient_gauges_are_capped() -> None:
    registry = CollectorRegistry()
    m = WorkerMetrics(registry, max_patients=2)
    for i in range(5):
        for _ in range(2):
            m.patient.update(f"p{i}", time_unix_s=100.0 + i, heart_rate_bpm=None, n_alarms=i)
    exported = {
        s.labels["patient"] for f in registry.collect()
        if f.name == "cardiowatch_patient_last_chunk_timestamp_seconds" for s in f.samples
    }  # fmt: skip
    assert exported == {"p0", "p1"}
    assert registry.get_sample_value("cardiowatch_patients_unexported") == 3
    hr = registry.get_sample_value("cardiowatch_patient_heart_rate_bpm", {"patient": "p1"})
    assert hr is not None
    assert math.isnan(hr)
    assert registry.get_sample_value("cardiowatch_patient_active_alarms", {"patient": "p1"}) == 1


def test_error_counters_start_at_zero() -> None:
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    SimulatorMetrics(registry)
    for name, labels in (
        ("cardiowatch_redis_errors_total", {"operation": "alerts"}),
        ("cardiowatch_redis_errors_total", {"operation": "vitals"}),
        ("cardiowatch_broker_errors_total", {"operation": "send"}),
        ("cardiowatch_broker_errors_total", {"operation": "offsets"}),
        ("cardiowatch_simulator_errors_total", {"reason": "send"}),
        ("cardiowatch_simulator_chunks_total", {}),
    ):
        assert registry.get_sample_value(name, labels) == 0.0, name
