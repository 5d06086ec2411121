"""Webhook delivery: a background task of the API process.

It reads the alert stream with a Redis consumer group (``api_webhook_group``), so several API
processes share the work and an entry is acknowledged (``XACK``) only once every webhook it
concerns has answered 2xx or been given up on: delivery is at least once. Entries left pending
by a process that died are claimed (``XAUTOCLAIM``) after ``api_webhook_claim_idle_s``.

Each call is ``POST url`` with the body ``{"event_id", "alert"}`` and the headers

* ``X-Cardiowatch-Signature: sha256=<hex>``: HMAC-SHA256 with the webhook's secret over
  ``<timestamp>.<body>``;
* ``X-Cardiowatch-Timestamp``: unix seconds (reject old ones to stop replays);
* ``Idempotency-Key``: ``<alert id>:<state>:<sample_index>``, the same on every retry and
  redelivery;
* ``X-Cardiowatch-Event-Id``: the stream entry id.

A call that fails (no answer, or not 2xx) is retried after ``api_webhook_backoff_s``, doubled
each time up to ``api_webhook_backoff_max_s``; after ``api_webhook_max_attempts`` attempts it
goes to the dead-letter list ``{prefix}api:webhook-dead``. Calls are not ordered between
entries: receivers order by ``sample_index`` and de-duplicate by the idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from cardiowatch.api.auth import TokenStore
from cardiowatch.api.hub import StreamEntry
from cardiowatch.api.keys import Keys
from cardiowatch.schemas import Alert, SchemaError
from cardiowatch.settings import Settings

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Cardiowatch-Signature"
TIMESTAMP_HEADER = "X-Cardiowatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + HMAC-SHA256(secret, ``timestamp.body``).

    >>> sign("s" * 16, "1", b"{}")[:7]
    'sha256='
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff_s(settings: Settings, failed_attempts: int) -> float:
    """Delay after ``failed_attempts`` (>= 1) failures: base * 2^(n-1), capped."""
    delay = settings.api_webhook_backoff_s * 2.0 ** (failed_attempts - 1)
    return float(min(delay, settings.api_webhook_backoff_max_s))


class WebhookDelivery:
    """Reads the alert stream as a consumer group member and calls the webhooks."""

    def __init__(
        self, settings: Settings, redis: Redis[bytes], keys: Keys, tokens: TokenStore
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.tokens = tokens
        self.group = settings.api_webhook_group
        self.consumer = f"api-{socket.gethostname()}-{os.getpid()}"
        self._http_slots = asyncio.Semaphore(settings.api_webhook_concurrency)
        self._entry_slots = asyncio.Semaphore(4 * settings.api_webhook_concurrency)
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Create the consumer group (at the stream's end) if needed and start reading."""
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.keys.alerts_stream, self.group, "$", mkstream=True)
        self._client = httpx.AsyncClient(
            timeout=self.settings.api_webhook_timeout_s, follow_redirects=False
        )
        self._main = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stop reading and cancel calls in flight (their entries stay pending: redelivered)."""
        tasks = [t for t in (self._main, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    async def _read(self, start: str, block_ms: int | None) -> list[StreamEntry]:
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.keys.alerts_stream: start}, count=100, block=block_ms
        )
        return [StreamEntry.from_redis(eid, f) for _s, entries in reply for eid, f in entries if f]

    async def _claim(self) -> list[StreamEntry]:
        idle_ms = int(self.settings.api_webhook_claim_idle_s * 1000)
        reply = await self.redis.xautoclaim(
            self.keys.alerts_stream, self.group, self.consumer, idle_ms, "0-0", count=100
        )
        return [StreamEntry.from_redis(eid, f) for eid, f in reply[1] if f]

    async def _run(self) -> None:
        pending_from: str | None = "0"  # first what this consumer left pending, then new ones
        claim_at = time.monotonic() + self.settings.api_webhook_claim_idle_s
        while True:
            try:
                if pending_from is not None:
                    entries = await self._read(pending_from, None)
                    pending_from = entries[-1].event_id if entries else None
                else:
                    entries = await self._read(">", 1000)
                if time.monotonic() >= claim_at:
                    entries += await self._claim()
                    claim_at = time.monotonic() + self.settings.api_webhook_claim_idle_s / 2
            except RedisError as exc:
                log.warning(
                    "webhooks: reading the stream failed (%s); retrying", type(exc).__name__
                )
                await asyncio.sleep(1.0)
                continue
            for entry in entries:
                if entry.event_id in self._in_flight:
                    continue
                await self._entry_slots.acquire()
                self._in_flight.add(entry.event_id)
                task = asyncio.create_task(self._handle(entry))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._entry_slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhooks: delivery task failed: %s", type(task.exception()).__name__)

    async def _hooks_for(self, patient_id: str) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.webhooks)
        hooks = []
        for value in raw.values():
            hook = json.loads(value)
            token = await self.tokens.by_hash(hook["token_hash"])
            if token is None or "read" not in token.permissions:
                continue
            if patient_id in await self.tokens.scope(token):
                hooks.append(hook)
        return hooks

    async def _handle(self, entry: StreamEntry) -> None:
        try:
            try:
                alert = Alert.decode(entry.alert_json)
            except SchemaError as exc:
                log.warning("webhooks: unreadable alert skipped (%s)", exc.reason)
            else:
                hooks = await self._hooks_for(alert.patient_id)
                key = f"{alert.id}:{alert.state}:{alert.sample_index}"
                await asyncio.gather(*(self._deliver(h, entry, alert, key) for h in hooks))
            await self.redis.xack(  # type: ignore[no-untyped-call]
                self.keys.alerts_stream, self.group, entry.event_id
            )
        finally:
            self._in_flight.discard(entry.event_id)

    async def _deliver(
        self, hook: dict[str, Any], entry: StreamEntry, alert: Alert, key: str
    ) -> None:
        assert self._client is not None
        body = entry.payload
        last_error = ""
        attempts = self.settings.api_webhook_max_attempts
        for attempt in range(1, attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(hook["secret"], timestamp, body),
                TIMESTAMP_HEADER: timestamp,
                IDEMPOTENCY_HEADER: key,
                "X-Cardiowatch-Event-Id": entry.event_id,
                "X-Cardiowatch-Attempt": str(attempt),
            }
            try:
                async with self._http_slots:
                    response = await self._client.post(hook["url"], content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return
                last_error = f"HTTP {response.status_code}"
            except Exception as exc:  # any transport or URL error is a failed attempt
                last_error = type(exc).__name__
            if attempt < attempts:
                await asyncio.sleep(backoff_s(self.settings, attempt))
        log.warning("webhooks: %s gave up after %d attempts (%s)", hook["id"], attempts, last_error)
        dead = {
            "webhook_id": hook["id"], "event_id": entry.event_id, "alert_id": alert.id,
            "attempts": attempts, "last_error": last_error, "time_unix_s": time.time(),
        }  # fmt: skip
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.keys.webhook_dead, json.dumps(dead))
        pipe.ltrim(self.keys.webhook_dead, 0, self.settings.api_dead_letters_max - 1)
        await pipe.execute()
