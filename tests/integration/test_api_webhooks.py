"""Webhooks from a real ``cardiowatch api`` process to a local receiver: signature, scope,
retry after a 500, dead letters after the last attempt."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

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

pytestmark = pytest.mark.integration
SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Receiver:
    """A local HTTP server that records every call and answers from a script of statuses."""

    statuses: list[int]
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.calls.append({"headers": dict(self.headers), "body": body})
                    n = len(receiver.calls)
                    status = receiver.statuses[min(n, len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receivers() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(statuses: list[int]) -> tuple[Receiver, str]:
        receiver = Receiver(statuses)
        server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver, f"http://127.0.0.1:{server.server_address[1]}/hook"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _wait(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def api(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, ApiProcess]]:
    settings = api_settings(services, tmp_path, api_webhook_max_attempts=3)
    process = start_api(settings, tmp_path / "logs")
    try:
        yield settings, process
    finally:
        process.stop()
    assert "Traceback" not in process.log(), process.log()


def _register(process: ApiProcess, token: str, url: str) -> str:
    response = httpx.post(
        process.base_url + "/api/v1/webhooks",
        json={"url": url, "secret": SECRET},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()
    return str(response.json()["id"])


def test_signed_alerts_are_retried_after_a_500(
    api: tuple[Settings, ApiProcess], receivers: Any
) -> None:
    settings, process = api
    token, _ = create_token(settings, patients=["p1"])
    receiver, url = receivers([500, 200])
    _register(process, token, url)
    alert = make_alert("p1", n_strip=20)
    write(settings, alerts=[make_alert("p2", n_strip=20), alert])  # p2 is not in scope
    _wait(lambda: len(receiver.calls) >= 2)
    time.sleep(0.5)  # nothing more should come: the second attempt succeeded
    assert len(receiver.calls) == 2
    first, second = receiver.calls
    assert first["body"] == second["body"]
    body = json.loads(second["body"])
    assert body["alert"]["id"] == alert.id
    assert body["alert"]["patient_id"] == "p1"
    for call in receiver.calls:
        h = call["headers"]
        signed = h["X-Cardiowatch-Timestamp"].encode() + b"." + call["body"]
        expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(h["X-Cardiowatch-Signature"], "sha256=" + expected)
        assert h["Idempotency-Key"] == f"{alert.id}:raise:{alert.sample_index}"
        assert h["X-Cardiowatch-Event-Id"] == body["event_id"]
    assert [c["headers"]["X-Cardiowatch-Attempt"] for c in receiver.calls] == ["1", "2"]

    async def pending(redis: Redis[bytes]) -> int:
        info = await redis.xpending(  # type: ignore[no-untyped-call]
            settings.redis_alerts_stream, settings.api_webhook_group
        )
        return int(info["pending"])

    _wait(lambda: with_redis(settings, pending) == 0)  # both entries acknowledged in the group


def test_a_receiver_that_keeps_failing_gets_a_dead_letter(
    api: tuple[Settings, ApiProcess], receivers: Any
) -> None:
    settings, process = api
    token, _ = create_token(settings, all_patients=True)
    receiver, url = receivers([500])
    hook_id = _register(process, token, url)
    alert = make_alert("p7", n_strip=20)
    write(settings, alerts=[alert])
    auth = {"Authorization": f"Bearer {token}"}

    def dead() -> list[dict[str, Any]]:
        r = httpx.get(process.base_url + "/api/v1/webhooks/dead-letters", headers=auth, timeout=5)
        return list(r.json()["items"])

    _wait(lambda: bool(dead()))
    (letter,) = dead()
    assert letter["webhook_id"] == hook_id
    assert letter["alert_id"] == alert.id
    assert letter["attempts"] == 3
    assert letter["last_error"] == "HTTP 500"
    assert len(receiver.calls) == 3
    # Another token sees neither the webhook nor its dead letters.
    other, _ = create_token(settings, all_patients=True)
    other_auth = {"Authorization": f"Bearer {other}"}
    base = process.base_url + "/api/v1/webhooks"
    assert httpx.get(base, headers=other_auth, timeout=5).json() == {"webhooks": []}
    assert httpx.get(base + "/dead-letters", headers=other_auth, timeout=5).json()["items"] == []
    assert httpx.delete(f"{base}/{hook_id}", headers=other_auth, timeout=5).status_code == 404
    assert httpx.delete(f"{base}/{hook_id}", headers=auth, timeout=5).status_code == 204
    assert httpx.get(base, headers=auth, timeout=5).json() == {"webhooks": []}
