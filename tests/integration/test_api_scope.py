"""The API against the real Redis: scope enforcement, history, pagination, acknowledgements."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from redis.asyncio import Redis

from cardiowatch.api import create_app
from cardiowatch.api.keys import Keys
from cardiowatch.settings import Settings
from tests.integration.api_harness import (
    api_settings,
    assign_ward,
    create_token,
    make_alert,
    make_vitals,
    with_redis,
    write,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def world(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, TestClient]]:
    """p1 (named in the token), p2 (in its ward ICU), p3 (outside), each with an alert."""
    settings = api_settings(services, tmp_path)
    write(
        settings,
        vitals=[make_vitals(p, alarms=["asystole"]) for p in ("p1", "p2", "p3")],
        alerts=[make_alert(p) for p in ("p1", "p2", "p3")],
    )
    assign_ward(settings, "ICU", ["p2"])
    with TestClient(create_app(settings, webhooks_enabled=False)) as client:
        yield settings, client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _event_ids(settings: Settings) -> dict[str, str]:
    """Patient id -> stream id of its first alert event."""

    async def job(redis: Redis[bytes]) -> dict[str, str]:
        entries = await redis.xrange(settings.redis_alerts_stream)
        out: dict[str, str] = {}
        for eid, fields in entries:
            out.setdefault(fields[b"patient_id"].decode(), eid.decode())
        return out

    return with_redis(settings, job)


def _same(a: Response, b: Response) -> None:
    """Two answers that tell nothing apart: status, body and headers other than the date."""
    assert (a.status_code, a.content) == (b.status_code, b.content)
    strip = {"date"}
    assert {k: v for k, v in a.headers.items() if k not in strip} == {
        k: v for k, v in b.headers.items() if k not in strip
    }


def test_no_token_or_a_wrong_token_is_401(world: tuple[Settings, TestClient]) -> None:
    _, client = world
    for headers in ({}, _auth("cwt_not-a-token"), {"Authorization": "Basic eDp5"}):
        response = client.get("/api/v1/patients", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_only_patients_in_scope_are_listed(world: tuple[Settings, TestClient]) -> None:
    settings, client = world
    token, _ = create_token(settings, patients=["p1"], wards=["ICU"])
    body = client.get("/api/v1/patients", headers=_auth(token)).json()
    assert [p["patient_id"] for p in body["patients"]] == ["p1", "p2"]
    assert body["patients"][0]["vitals"]["heart_rate_bpm"] == 72.0
    one = client.get("/api/v1/patients/p2", headers=_auth(token))
    assert one.status_code == 200
    assert one.json()["vitals"]["active_alarms"] == ["asystole"]


def test_out_of_scope_is_answered_exactly_as_missing(world: tuple[Settings, TestClient]) -> None:
    settings, client = world
    token, _ = create_token(settings, permissions=["read", "ack"], patients=["p1"], wards=["ICU"])
    h = _auth(token)
    outside, missing = (
        client.get("/api/v1/patients/p3", headers=h),
        client.get("/api/v1/patients/ghost", headers=h),
    )
    assert outside.status_code == 404
    _same(outside, missing)
    assert "p3" not in outside.text

    # The history filtered by an outside patient looks like that of one that does not exist.
    _same(
        client.get("/api/v1/alerts?patient_id=p3", headers=h),
        client.get("/api/v1/alerts?patient_id=ghost", headers=h),
    )
    history = client.get("/api/v1/alerts", headers=h).json()
    assert {i["alert"]["patient_id"] for i in history["items"]} == {"p1", "p2"}

    # Acknowledging an outside patient's alert looks like acknowledging a missing one.
    events = _event_ids(settings)
    ms, _seq = events["p3"].split("-")
    _same(
        client.post(f"/api/v1/alerts/{events['p3']}/ack", headers=h),
        client.post(f"/api/v1/alerts/{int(ms) + 999}-0/ack", headers=h),
    )
    assert client.post(f"/api/v1/alerts/{events['p1']}/ack", headers=h).status_code == 200


def test_permission_errors_do_not_depend_on_the_patient(world: tuple[Settings, TestClient]) -> None:
    settings, client = world
    token, _ = create_token(settings, permissions=["read"], patients=["p1"])
    events = _event_ids(settings)
    answers = [
        client.post(f"/api/v1/alerts/{events[p]}/ack", headers=_auth(token)) for p in ("p1", "p3")
    ]
    answers.append(client.post("/api/v1/alerts/1-0/ack", headers=_auth(token)))
    assert {a.status_code for a in answers} == {403}
    _same(answers[0], answers[1])
    _same(answers[1], answers[2])


def test_ward_changes_and_revocation_take_effect_at_once(
    world: tuple[Settings, TestClient],
) -> None:
    settings, client = world
    token, record = create_token(settings, wards=["ICU"])
    assert client.get("/api/v1/patients/p3", headers=_auth(token)).status_code == 404
    assign_ward(settings, "ICU", ["p3"])
    assert client.get("/api/v1/patients/p3", headers=_auth(token)).status_code == 200

    async def revoke(redis: Redis[bytes]) -> None:
        from cardiowatch.api.auth import TokenStore

        assert await TokenStore(redis, Keys.from_settings(settings)).revoke(record.token_id)

    with_redis(settings, revoke)
    assert client.get("/api/v1/patients", headers=_auth(token)).status_code == 401


def test_tokens_are_stored_hashed(world: tuple[Settings, TestClient]) -> None:
    settings, _ = world
    token, record = create_token(settings, patients=["p1"])

    async def dump(redis: Redis[bytes]) -> bytes:
        keys = Keys.from_settings(settings)
        values = [await redis.hgetall(k) for k in await redis.keys(keys.prefix + "api:token:*")]
        return json.dumps([{k.decode(): v.decode() for k, v in h.items()} for h in values]).encode()

    stored = with_redis(settings, dump)
    assert token.encode() not in stored
    assert record.token_hash.encode() not in stored  # the hash is in the key name only
    assert len(record.token_hash) == 64


def test_history_filters_and_cursor_pagination(world: tuple[Settings, TestClient]) -> None:
    settings, client = world
    token, _ = create_token(settings, all_patients=True)
    h = _auth(token)
    alerts = [
        make_alert("p1", alarm_type="tachycardia", onset_sample=10_000 * i, priority="medium")
        for i in range(1, 24)
    ]
    alerts += [
        make_alert("p1", alarm_type="tachycardia", onset_sample=10_000, state="end",
                   sample_index=12_000, priority="medium"),
    ]  # fmt: skip
    assert write(settings, alerts=alerts) == len(alerts)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/alerts?alarm_type=tachycardia&limit=5" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = client.get(url, headers=h).json()
        seen += [i["event_id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 24
    assert seen == sorted(seen, key=lambda e: tuple(map(int, e.split("-"))), reverse=True)
    assert pages == 5
    ended = client.get("/api/v1/alerts?state=end", headers=h).json()["items"]
    assert [i["alert"]["sample_index"] for i in ended] == [12_000]
    high = client.get("/api/v1/alerts?priority=high", headers=h).json()["items"]
    assert {i["alert"]["patient_id"] for i in high} == {"p1", "p2", "p3"}
    assert client.get("/api/v1/alerts?since_unix_s=99999999999", headers=h).json() == {
        "items": [],
        "next_cursor": None,
    }
    everything = client.get("/api/v1/alerts?until_unix_s=99999999999&limit=500", headers=h).json()
    assert len(everything["items"]) == 27
    assert client.get("/api/v1/alerts?cursor=1-x", headers=h).status_code == 422


def test_acknowledgement_is_idempotent_and_visible(world: tuple[Settings, TestClient]) -> None:
    settings, client = world
    token, _ = create_token(settings, name="dr-who", permissions=["read", "ack"], all_patients=True)
    h = _auth(token)
    raise_event = _event_ids(settings)["p1"]
    first = client.post(f"/api/v1/alerts/{raise_event}/ack", headers=h)
    again = client.post(f"/api/v1/alerts/{raise_event}/ack", headers=h)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["by"] == "dr-who"
    # Another event of the same episode carries the same acknowledgement.
    write(settings, alerts=[make_alert("p1", state="end", sample_index=9000)])
    history = client.get("/api/v1/alerts?patient_id=p1", headers=h).json()["items"]
    assert len(history) == 2
    assert all(i["ack"] == first.json() for i in history)
    end_event = history[0]["event_id"]
    assert client.post(f"/api/v1/alerts/{end_event}/ack", headers=h).json() == first.json()
    acks = client.get("/api/v1/acks", headers=h).json()
    assert acks["items"] == [first.json()]
    # A token that cannot see p1 does not see its acknowledgement either.
    other, _ = create_token(settings, patients=["p2"])
    assert client.get("/api/v1/acks", headers=_auth(other)).json()["items"] == []
