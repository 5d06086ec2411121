"""One reader of the alert stream per API process, fanned out to every SSE subscriber.

A single task blocks on ``XREAD`` and puts each new entry into every subscriber's bounded
queue, so 200 subscribers cost one Redis connection, not 200. A subscriber whose queue is full
is marked ``overflowed`` and reads what it missed from Redis itself (``XRANGE`` after its last
id): nothing is dropped, and since entries are compared by stream id, nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cardiowatch.api import streamids

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEntry:
    """One entry of the alert stream (the plain fields, and the alert's JSON as written)."""

    event_id: str
    patient_id: str
    alarm_type: str
    state: str
    priority: str
    alert_json: bytes = field(repr=False)

    @classmethod
    def from_redis(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamEntry:
        """From an ``XREAD``/``XRANGE`` entry."""

        def get(name: str) -> str:
            return fields.get(name.encode(), b"").decode(errors="replace")

        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        raw = fields.get(b"json", b"{}")
        return cls(eid, get("patient_id"), get("alarm_type"), get("state"), get("priority"), raw)

    @cached_property
    def payload(self) -> bytes:
        """``{"event_id": ..., "alert": {...}}`` on one line (the SSE data and webhook body)."""
        raw = self.alert_json
        if b"\n" in raw or b"\r" in raw:  # never from the worker: compact JSON has no newlines
            raw = json.dumps(json.loads(raw), separators=(",", ":")).encode()
        return b'{"event_id":"' + self.event_id.encode() + b'","alert":' + raw + b"}"

    @cached_property
    def frame(self) -> bytes:
        """The SSE message of this entry (``id:`` = stream id, ``event: alert``)."""
        return b"id: " + self.event_id.encode() + b"\nevent: alert\ndata: " + self.payload + b"\n\n"


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue; ``overflowed`` means it must catch up from Redis."""

    queue: asyncio.Queue[StreamEntry]
    overflowed: bool = False


class AlertHub:
    """Follows the alert stream and hands new entries to subscribers."""

    def __init__(
        self, redis: Redis[bytes], stream: str, *, queue_size: int = 1000, block_ms: int = 1000,
        batch: int = 500,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.stream = stream
        self.queue_size = queue_size
        self.block_ms = block_ms
        self.batch = batch
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        """Current number of subscribers."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Start following the stream from its current end."""
        start_id = await self.last_id()
        self._task = asyncio.create_task(self._run(start_id), name="alert-hub")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self) -> Subscription:
        """A new subscription; it receives every entry read after this call."""
        sub = Subscription(asyncio.Queue(self.queue_size))
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription."""
        self._subscribers.discard(sub)

    async def last_id(self) -> str:
        """Id of the newest entry, ``0-0`` when the stream is empty."""
        newest = await self.redis.xrevrange(self.stream, count=1)
        return newest[0][0].decode() if newest else "0-0"

    async def range_after(self, after_id: str, count: int) -> list[StreamEntry]:
        """Up to ``count`` entries strictly after ``after_id``, oldest first."""
        start = streamids.just_after(after_id)
        if start is None:
            return []
        entries = await self.redis.xrange(self.stream, min=start, count=count)
        return [StreamEntry.from_redis(eid, fields) for eid, fields in entries]

    def _dispatch(self, entry: StreamEntry) -> None:
        for sub in self._subscribers:
            if sub.overflowed:
                continue
            try:
                sub.queue.put_nowait(entry)
            except asyncio.QueueFull:
                sub.overflowed = True

    async def _run(self, last: str) -> None:
        while True:
            try:
                reply = await self.redis.xread(
                    {self.stream: last}, count=self.batch, block=self.block_ms
                )
            except RedisError as exc:
                log.warning(
                    "alert hub: reading the stream failed (%s); retrying", type(exc).__name__
                )
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in reply:
                for eid, fields in entries:
                    entry = StreamEntry.from_redis(eid, fields)
                    last = entry.event_id
                    self._dispatch(entry)
