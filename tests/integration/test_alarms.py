"""The arrhythmia alarms in the real stream: synthetic patients -> Kafka -> worker -> alerts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from cardiowatch.api import create_app
from cardiowatch.schemas import Alert, Vitals, alert_id
from cardiowatch.settings import Settings
from simulators.build import synthetic_patients
from streams.limits import limits_key
from tests.integration.api_harness import api_settings, create_token
from tests.integration.harness import (
    WorkerProcess,
    fresh_settings,
    read_topic,
    replay,
    start_worker,
)

pytestmark = pytest.mark.integration
FS_HZ = 360.0


@pytest.fixture(scope="module")
def stream(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, WorkerProcess]]:
    """One worker on fresh topics, shared by the tests of this module (distinct patients)."""
    tmp = tmp_path_factory.mktemp("alarms")
    settings = api_settings(services, tmp)
    worker = start_worker(settings, tmp)
    yield settings, worker
    worker.stop()


def _alerts(
    settings: Settings, patient: str, *, until_end_of: str = "", until_raise_of: str = ""
) -> list[Alert]:
    key = patient.encode()
    kind, state = (until_end_of, "end") if until_end_of else (until_raise_of, "raise")

    def ended(msgs: list[tuple[bytes, bytes]]) -> bool:
        alerts = [Alert.decode(v) for k, v in msgs if k == key]
        return any(a.alarm_type == kind and a.state == state for a in alerts)

    messages = read_topic(settings, settings.topic_alerts, until=ended, timeout_s=120)
    return [Alert.decode(v) for k, v in messages if k == key]


def test_injected_ventricular_run_raises_one_high_priority_vt_alarm_that_ends_with_it(
    stream: tuple[Settings, WorkerProcess],
) -> None:
    settings, _ = stream
    [patient] = synthetic_patients(1, events=["vt@20:10:180"], seed=11, first_index=300)
    replay(settings, [patient], duration_s=45.0)
    alerts = _alerts(settings, patient.patient_id, until_end_of="ventricular_tachycardia")
    vt = [a for a in alerts if a.alarm_type == "ventricular_tachycardia"]
    assert len({a.id for a in vt}) == 1, vt  # one episode, whatever the redeliveries
    raised = next(a for a in vt if a.state == "raise")
    ended = next(a for a in vt if a.state == "end")
    assert raised.priority == "high"
    assert raised.id == alert_id(patient.patient_id, "ventricular_tachycardia", raised.onset_sample)
    # The classifier labels the first VT beat or two N (their RR context is still sinus).
    assert 19.5 * FS_HZ <= raised.onset_sample <= 22.0 * FS_HZ, raised.onset_sample
    assert raised.sample_index <= 24.0 * FS_HZ, "raised within 4 s of the VT onset"
    assert ended.end_sample is not None
    assert 29.5 * FS_HZ <= ended.end_sample <= 31.5 * FS_HZ, ended.end_sample
    assert not any(a.alarm_type == "noise" for a in alerts), alerts


def test_lead_off_raises_a_technical_alarm_and_holds_back_arrhythmia_alarms(
    stream: tuple[Settings, WorkerProcess],
) -> None:
    settings, _ = stream
    events = ["lead_off@20:12", "vt@24:5:180"]  # the VT happens while the leads are off
    [patient] = synthetic_patients(1, events=events, seed=12, first_index=301)
    replay(settings, [patient], duration_s=45.0)
    alerts = _alerts(settings, patient.patient_id, until_end_of="signal_loss")
    kinds = {(a.alarm_type, a.state) for a in alerts}
    assert ("signal_loss", "raise") in kinds
    held_back = {"ventricular_tachycardia", "asystole", "tachycardia", "ventricular_run"}
    assert not any(a.alarm_type in held_back for a in alerts), alerts


def test_worker_restart_neither_duplicates_nor_loses_an_open_alarm(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("alarms-restart")
    settings = fresh_settings(services, tmp)
    [patient] = synthetic_patients(1, events=["vt@15:25:180"], seed=13, first_index=302)
    key = patient.patient_id.encode()
    first = start_worker(settings, tmp, "first")
    try:
        replay(settings, [patient], duration_s=25.0)  # the VT is open at 25 s

        def raised(msgs: list[tuple[bytes, bytes]]) -> bool:
            return any(
                Alert.decode(v).alarm_type == "ventricular_tachycardia" for k, v in msgs if k == key
            )

        read_topic(settings, settings.topic_alerts, until=raised, timeout_s=120)
    finally:
        first.stop()  # a restart (the state and offsets were written)
    second = start_worker(settings, tmp, "second")
    try:
        replay(settings, [patient], duration_s=25.0)  # 25 s to 50 s: the VT ends at 40 s
        alerts = _alerts(settings, patient.patient_id, until_end_of="ventricular_tachycardia")
    finally:
        second.stop()
    vt = [a for a in alerts if a.alarm_type == "ventricular_tachycardia"]
    assert len({a.id for a in vt}) == 1, vt  # the same episode, the same id, raised once
    states = {(a.state, a.sample_index) for a in vt}
    assert len([s for s, _ in states if s == "raise"]) == 1, vt
    ended = next(a for a in vt if a.state == "end")
    assert ended.end_sample is not None
    assert 39.5 * FS_HZ <= ended.end_sample <= 41.5 * FS_HZ


def test_per_patient_limits_in_redis_apply_without_a_restart(
    stream: tuple[Settings, WorkerProcess],
) -> None:
    settings, _ = stream
    [patient] = synthetic_patients(1, events=[], seed=14, first_index=303)  # 60 bpm
    key = patient.patient_id.encode()
    replay(settings, [patient], duration_s=20.0)

    def reached(end_s: float) -> Callable[[list[tuple[bytes, bytes]]], bool]:
        end = int(end_s * FS_HZ)
        return lambda msgs: any(Vitals.decode(v).sample_index >= end for k, v in msgs if k == key)

    read_topic(settings, settings.topic_vitals, until=reached(20.0), timeout_s=60)
    client = redis.Redis.from_url(settings.redis_url)
    client.hset(limits_key(settings.redis_key_prefix, patient.patient_id), "brady_bpm", "70")
    client.close()
    time.sleep(2.5)  # the worker re-reads a patient's limits at most every 2 s
    replay(settings, [patient], duration_s=20.0)
    alerts = _alerts(settings, patient.patient_id, until_raise_of="bradycardia")
    brady = [a for a in alerts if a.alarm_type == "bradycardia"]
    assert brady, "the new lower limit (70 bpm) raised a bradycardia alarm at 60 bpm"
    assert brady[0].priority == "medium"
    # Not before the change (the alarm timeline trails the newest sample by 0.5 s).
    assert brady[0].onset_sample >= 19 * FS_HZ, brady[0].onset_sample


def test_acknowledging_a_vt_alarm_is_stored_and_visible_in_the_api(
    stream: tuple[Settings, WorkerProcess],
) -> None:
    settings, _ = stream
    [patient] = synthetic_patients(1, events=["vt@15:8:180"], seed=15, first_index=304)
    replay(settings, [patient], duration_s=30.0)
    _alerts(settings, patient.patient_id, until_end_of="ventricular_tachycardia")
    token, _ = create_token(settings, name="nurse", permissions=["read", "ack"], all_patients=True)
    auth = {"Authorization": f"Bearer {token}"}
    query = f"/api/v1/alerts?patient_id={patient.patient_id}&alarm_type=ventricular_tachycardia"
    with TestClient(create_app(settings, webhooks_enabled=False)) as client:
        items = client.get(query, headers=auth).json()["items"]
        raised = [i for i in items if i["alert"]["state"] == "raise"]
        assert raised, items
        first = raised[-1]  # newest first: the first episode of the run
        assert first["alert"]["evidence"]["latching"] is True  # shown until acknowledged
        assert first["ack"] is None
        ack = client.post(f"/api/v1/alerts/{first['event_id']}/ack", headers=auth)
        assert ack.status_code == 200
        after = client.get(query, headers=auth).json()["items"]
        episode = [i for i in after if i["alert"]["id"] == first["alert"]["id"]]
        assert {i["alert"]["state"] for i in episode} == {"raise", "end"}
        assert all(i["ack"] == ack.json() for i in episode)  # one episode, one acknowledgement
        assert ack.json() in client.get("/api/v1/acks", headers=auth).json()["items"]
