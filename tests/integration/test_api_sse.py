"""Live alerts over SSE from a real ``cardiowatch api`` process: scope, resume, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from cardiowatch.schemas import Alert
from cardiowatch.settings import Settings
from tests.integration.api_harness import (
    ApiProcess,
    api_settings,
    create_token,
    make_alert,
    start_api,
    with_redis,
    write,
)
from tests.integration.sse_client import SseMessage, parse

pytestmark = pytest.mark.integration


@pytest.fixture
def api(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, ApiProcess]]:
    """An API process whose subscriber queues hold 8 alerts (bursts overflow into catch-up)."""
    settings = api_settings(services, tmp_path, api_subscriber_queue=8)
    process = start_api(settings, tmp_path / "logs")
    try:
        yield settings, process
    finally:
        process.stop()
    assert "Traceback" not in process.log(), process.log()


def _stream_ids(settings: Settings, patient_id: str) -> list[str]:
    async def job(redis: Redis[bytes]) -> list[str]:
        entries = await redis.xrange(settings.redis_alerts_stream)
        return [e.decode() for e, f in entries if f[b"patient_id"] == patient_id.encode()]

    return with_redis(settings, job)


def _alerts(patient_id: str, first: int, n: int) -> list[Alert]:
    return [make_alert(patient_id, onset_sample=1000 * (first + i), n_strip=50) for i in range(n)]


def _read(messages: Iterator[SseMessage], n: int) -> list[SseMessage]:
    out = []
    for message in messages:
        assert message.event == "alert"
        out.append(message)
        if len(out) == n:
            break
    return out


def test_resume_after_a_dropped_connection_delivers_each_alert_once(
    api: tuple[Settings, ApiProcess],
) -> None:
    settings, process = api
    token, _ = create_token(settings, patients=["p1"])
    url = process.base_url + "/api/v1/alerts/stream"
    headers = {"Authorization": f"Bearer {token}"}
    received: list[SseMessage] = []
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
        with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            messages = parse(response.iter_lines())
            hello = next(messages)  # where the subscription starts (no data)
            assert hello.id is not None
            assert hello.data == ""
            # p3 is not in scope; interleave its alerts with p1's, 40 at once (> queue of 8).
            batch = [
                a
                for pair in zip(_alerts("p1", 1, 20), _alerts("p3", 1, 20), strict=True)
                for a in pair
            ]
            assert write(settings, alerts=batch) == 40
            received += _read(messages, 10)
        # The connection is dropped; more alerts arrive meanwhile.
        assert write(settings, alerts=_alerts("p1", 21, 20) + _alerts("p3", 21, 5)) == 25
        resume = {**headers, "Last-Event-ID": received[-1].id or ""}
        with client.stream("GET", url, headers=resume) as response:
            messages = parse(response.iter_lines())
            assert next(messages).id == received[-1].id
            received += _read(messages, 30)
            # One more alert: it must be the very next message (nothing repeated before it).
            assert write(settings, alerts=_alerts("p1", 41, 1)) == 1
            received += _read(messages, 1)

    ids = [m.id for m in received]
    assert ids == _stream_ids(settings, "p1")  # every p1 alert, once, in order
    assert len(set(ids)) == 41
    assert {m.json()["alert"]["patient_id"] for m in received} == {"p1"}
    assert all(m.json()["event_id"] == m.id for m in received)


def test_stream_needs_a_token_and_accepts_it_as_query_parameter(
    api: tuple[Settings, ApiProcess],
) -> None:
    settings, process = api
    url = process.base_url + "/api/v1/alerts/stream"
    assert httpx.get(url, timeout=5).status_code == 401
    assert httpx.get(url, params={"access_token": "cwt_wrong"}, timeout=5).status_code == 401
    bad_resume = httpx.get(
        url, headers={"Last-Event-ID": "not-an-id"}, params={"access_token": "x"}, timeout=5
    )
    assert bad_resume.status_code == 401  # authentication comes first
    token, _ = create_token(settings, patients=["p9"])
    with httpx.stream("GET", url, params={"access_token": token}, timeout=10) as response:
        messages = parse(response.iter_lines())
        assert next(messages).data == ""
        write(settings, alerts=[make_alert("p9", n_strip=10)])
        (message,) = _read(messages, 1)
    assert message.json()["alert"]["patient_id"] == "p9"
