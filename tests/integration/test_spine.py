"""End to end on a real broker and Redis: replay -> Kafka -> worker -> beats, vitals, alerts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from cardiowatch.schemas import Alert, BeatBatch, DeadLetter, Vitals, alert_id
from cardiowatch.settings import Settings
from models.ecg import match_beats
from simulators.build import synthetic_patients
from simulators.patients import record_patients
from simulators.replay import make_chunk
from simulators.sources import WfdbRecord
from tests.integration.harness import (
    WorkerProcess,
    fresh_settings,
    read_topic,
    replay,
    send_raw,
    start_worker,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spine(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, WorkerProcess]]:
    """One worker on fresh topics, shared by the tests of this module (distinct patients)."""
    tmp = tmp_path_factory.mktemp("spine")
    settings = fresh_settings(services, tmp)
    worker = start_worker(settings, tmp)
    yield settings, worker
    worker.stop()


def beats_of(messages: list[tuple[bytes, bytes]], patient: str) -> list[int]:
    """Beat sample indices of one patient, de-duplicated (delivery is at least once)."""
    samples: set[int] = set()
    for key, value in messages:
        if key == patient.encode():
            samples.update(b.sample for b in BeatBatch.decode(value).beats)
    return sorted(samples)


def test_record_100_beats_match_reference(
    spine: tuple[Settings, WorkerProcess], mitdb: Path
) -> None:
    settings, worker = spine
    record = WfdbRecord.load(mitdb / "100")
    duration_s = 300.0
    [patient] = record_patients([record], 1)
    replay(settings, [patient], duration_s=duration_s)
    end = int(duration_s * record.fs_hz)

    def done(msgs: list[tuple[bytes, bytes]]) -> bool:
        vit = [Vitals.decode(v) for k, v in msgs if k == patient.patient_id.encode()]
        return any(v.sample_index >= end for v in vit)

    read_topic(settings, settings.topic_vitals, until=done, timeout_s=120)
    beats = beats_of(
        read_topic(settings, settings.topic_beats, until=lambda m: False, timeout_s=3),
        patient.patient_id,
    )
    reference = record.beat_samples()
    reference = reference[reference < end - record.fs_hz]  # the detector's look-ahead at the end
    detected = np.asarray([b for b in beats if b < end - record.fs_hz])
    score = match_beats(reference, detected, record.fs_hz, window_s=0.15, exclude_first_s=0.0)
    assert score.se >= 99.0, score
    assert score.ppv >= 99.0, score
    assert "cardiowatch_chunks_total" in worker.metrics()


def test_asystole_raises_exactly_one_alert_with_stable_id(
    spine: tuple[Settings, WorkerProcess],
) -> None:
    settings, _ = spine
    [patient] = synthetic_patients(1, events=["asystole@20:8"], seed=3, first_index=100)
    replay(settings, [patient], duration_s=45.0)

    def ended(msgs: list[tuple[bytes, bytes]]) -> bool:
        alerts = [Alert.decode(v) for k, v in msgs if k == patient.patient_id.encode()]
        return any(a.alarm_type == "asystole" and a.state == "end" for a in alerts)

    messages = read_topic(settings, settings.topic_alerts, until=ended, timeout_s=90)
    alerts = [Alert.decode(v) for k, v in messages if k == patient.patient_id.encode()]
    raised = [a for a in alerts if a.alarm_type == "asystole" and a.state == "raise"]
    assert len({a.id for a in raised}) == 1, alerts
    alert = raised[0]
    assert alert.priority == "high"
    assert alert.id == alert_id(patient.patient_id, "asystole", alert.onset_sample)
    # Onset within a second of the programmed asystole start (20 s); raised by 20 s + 4 s + slack.
    assert 19.0 * 360 <= alert.onset_sample <= 21.5 * 360, alert.onset_sample
    assert alert.sample_index <= 26.0 * 360, alert.sample_index
    assert alert.evidence["strip"]["mv"], "the alert carries a signal strip"
    assert not any(a.alarm_type in ("bradycardia", "tachycardia") for a in alerts), alerts

    client = redis.Redis.from_url(settings.redis_url)
    entries = client.xrange(settings.redis_alerts_stream)
    stored = [
        json.loads(f[b"json"])
        for _, f in entries
        if f[b"patient_id"] == patient.patient_id.encode()
    ]
    assert [(a["id"], a["state"]) for a in stored if a["state"] == "raise"] == [(alert.id, "raise")]
    vitals = client.hgetall(f"{settings.redis_key_prefix}vitals:{patient.patient_id}")
    assert int(vitals[b"sample_index"]) == 45 * 360
    client.close()


def test_malformed_message_is_dead_lettered_and_patient_continues(
    spine: tuple[Settings, WorkerProcess],
) -> None:
    settings, worker = spine
    [patient] = synthetic_patients(1, events=[], seed=5, first_index=200)
    key = patient.patient_id.encode()
    first = [make_chunk(patient, 360) for _ in range(3)]
    rest = [make_chunk(patient, 360) for _ in range(3)]
    for made in first:
        assert made is not None
        send_raw(settings, settings.topic_ecg, key, made[0].encode())
    good = first[0]
    assert good is not None
    send_raw(settings, settings.topic_ecg, key, good[0].encode()[:-100])  # truncated
    send_raw(settings, settings.topic_ecg, key, b"\x00not a chunk")  # malformed
    heart_sound = dataclasses.replace(good[0], kind="pcg")  # valid, but not an ECG
    send_raw(settings, settings.topic_ecg, key, heart_sound.encode())
    for made in rest:
        assert made is not None
        send_raw(settings, settings.topic_ecg, key, made[0].encode())

    letters = read_topic(
        settings, settings.topic_dead_letters, until=lambda m: len(m) >= 3, timeout_s=60
    )
    reasons = sorted(DeadLetter.decode(v).reason for k, v in letters if k == key)
    assert reasons == ["invalid_field", "malformed", "truncated"]
    end = 6 * 360

    def caught_up(msgs: list[tuple[bytes, bytes]]) -> bool:
        return any(Vitals.decode(v).sample_index == end for k, v in msgs if k == key)

    vitals = read_topic(settings, settings.topic_vitals, until=caught_up, timeout_s=60)
    assert caught_up(vitals), "the patient's later chunks were processed"
    text = worker.metrics()
    assert 'cardiowatch_dead_letters_total{reason="malformed"}' in text
    assert 'cardiowatch_dead_letters_total{reason="truncated"}' in text
