"""Alarms shown now (IEC 60601-1-8 latching): the worker's sink and the API on a real Redis.

A non-latching alarm is shown while its condition lasts; a latching one (VT, ventricular run,
asystole, pause) stays shown after it ends until someone acknowledges it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cardiowatch.api import create_app
from cardiowatch.schemas import Alert
from cardiowatch.settings import Settings
from tests.integration.api_harness import (
    api_settings,
    create_token,
    make_alert,
    make_vitals,
    write,
)

pytestmark = pytest.mark.integration


def episode(patient_id: str, alarm_type: str, *, latching: bool, onset: int) -> list[Alert]:
    """Raise and end events of one alarm episode, as the worker writes them."""
    raised = make_alert(patient_id, alarm_type=alarm_type, onset_sample=onset, priority="high")
    raised = dataclasses.replace(raised, evidence={**raised.evidence, "latching": latching})
    ended = dataclasses.replace(
        raised, state="end", end_sample=onset + 3600, sample_index=onset + 3600
    )
    return [raised, ended]


@pytest.fixture
def world(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, TestClient, str]]:
    settings = api_settings(services, tmp_path)
    write(settings, vitals=[make_vitals("bed-1")])
    token, _ = create_token(settings, permissions=["read", "ack"], patients=["bed-1"])
    with TestClient(create_app(settings, webhooks_enabled=False)) as client:
        yield settings, client, token


def shown(client: TestClient, token: str) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/patients/bed-1/alarms", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ack(client: TestClient, token: str, event_id: str) -> None:
    response = client.post(
        f"/api/v1/alerts/{event_id}/ack", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text


def test_a_latching_alarm_stays_shown_after_it_ends_until_acknowledged(
    world: tuple[Settings, TestClient, str],
) -> None:
    settings, client, token = world
    vt_raise, vt_end = episode("bed-1", "ventricular_tachycardia", latching=True, onset=7200)
    tachy_raise, tachy_end = episode("bed-1", "tachycardia", latching=False, onset=7300)

    write(settings, alerts=[vt_raise, tachy_raise])
    now = shown(client, token)
    assert [(i["alert"]["alarm_type"], i["latched"]) for i in now] == [
        ("tachycardia", False),  # same priority: the newer first
        ("ventricular_tachycardia", False),
    ]

    write(settings, alerts=[vt_end, tachy_end])
    now = shown(client, token)
    assert [(i["alert"]["alarm_type"], i["alert"]["state"], i["latched"]) for i in now] == [
        ("ventricular_tachycardia", "end", True)  # the tachycardia ended and is gone
    ]
    assert now[0]["ack"] is None

    write(settings, alerts=[vt_raise, vt_end])  # a redelivery changes nothing
    assert len(shown(client, token)) == 1

    ack(client, token, now[0]["event_id"])
    assert shown(client, token) == []


def test_a_latching_alarm_acknowledged_while_open_leaves_when_it_ends(
    world: tuple[Settings, TestClient, str],
) -> None:
    settings, client, token = world
    raised, ended = episode("bed-1", "asystole", latching=True, onset=9000)
    write(settings, alerts=[raised])
    [open_alarm] = shown(client, token)
    ack(client, token, open_alarm["event_id"])
    [still] = shown(client, token)  # acknowledged, but its condition lasts
    assert still["ack"] is not None
    assert not still["latched"]
    write(settings, alerts=[ended])
    assert shown(client, token) == []


def test_shown_alarms_of_a_patient_out_of_scope_are_not_found(
    world: tuple[Settings, TestClient, str],
) -> None:
    settings, client, _ = world
    write(
        settings,
        vitals=[make_vitals("bed-9")],
        alerts=episode("bed-9", "asystole", latching=True, onset=1)[:1],
    )
    other, _ = create_token(settings, patients=["bed-1"])
    headers = {"Authorization": f"Bearer {other}"}
    outside = client.get("/api/v1/patients/bed-9/alarms", headers=headers)
    missing = client.get("/api/v1/patients/ghost/alarms", headers=headers)
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == missing.json()
