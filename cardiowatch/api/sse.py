"""``/api/v1/alerts/stream``: Server-Sent Events of the alerts in the token's scope.

Each event's ``id:`` is its alert stream entry id. A client that reconnects with
``Last-Event-ID`` (browsers' EventSource does it by itself) gets every matching entry after
that id, read from Redis, then the live ones: no gap and no duplicate, as long as the entry is
still in the stream (it is capped at ``redis_alerts_maxlen`` entries). Without
``Last-Event-ID`` the stream starts at its current end; the first message
(``retry:`` and ``id:`` of that end, no data) tells the client where it joined, so even a
client that received no alert resumes from the right place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator

from cardiowatch.api import streamids
from cardiowatch.api.auth import Scope, Token
from cardiowatch.api.deps import ApiState, State, StreamToken
from cardiowatch.api.hub import StreamEntry
from cardiowatch.api.patients import PATIENT_ID_PATTERN

router = APIRouter(prefix="/api/v1", tags=["live"])
_CATCH_UP_BATCH = 500
RETRY_MS = 1000
#: One server-sent event, as OpenAPI describes the items of ``text/event-stream``.
_EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["alert"]},
        "id": {"type": "string", "pattern": streamids.PATTERN},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": 'JSON: `{"event_id": str, "alert": Alert}` (see AlertEvent).',
        },
    },
}


class _Filter:
    def __init__(
        self, scope: Scope, patient_id: str | None, priority: str | None, alarm_type: str | None
    ) -> None:
        self.scope = scope
        self.patient_id = patient_id
        self.priority = priority
        self.alarm_type = alarm_type

    def __call__(self, e: StreamEntry) -> bool:
        return (
            e.patient_id in self.scope
            and self.patient_id in (None, e.patient_id)
            and self.priority in (None, e.priority)
            and self.alarm_type in (None, e.alarm_type)
        )


async def alert_events(
    state: ApiState,
    token: Token,
    *,
    last_event_id: str | None,
    patient_id: str | None = None,
    priority: str | None = None,
    alarm_type: str | None = None,
) -> AsyncGenerator[bytes, None]:
    """The SSE byte stream: catch up from ``last_event_id``, then follow the hub."""
    settings = state.settings
    sub = state.hub.subscribe()  # before reading where to start: nothing falls in between
    try:
        last = last_event_id if last_event_id is not None else await state.hub.last_id()
        yield f"retry: {RETRY_MS}\nid: {last}\n\n".encode()
        match = _Filter(await state.tokens.scope(token), patient_id, priority, alarm_type)
        now = time.monotonic()
        closes_at = now + settings.api_sse_max_s
        refresh_at = now + settings.api_scope_refresh_s
        sent_at = now
        catching_up = last_event_id is not None
        while (now := time.monotonic()) < closes_at:
            if now >= refresh_at:
                current = await state.tokens.by_hash(token.token_hash)
                if current is None:  # revoked
                    return
                match.scope = await state.tokens.scope(current)
                refresh_at = now + settings.api_scope_refresh_s
            if catching_up or sub.overflowed:
                sub.overflowed = False
                backlog = await state.hub.range_after(last, _CATCH_UP_BATCH)
                caught_up = [entry.frame for entry in backlog if match(entry)]
                if backlog:
                    last = backlog[-1].event_id
                if caught_up:
                    sent_at = time.monotonic()
                    yield b"".join(caught_up)
                catching_up = len(backlog) == _CATCH_UP_BATCH
                continue
            if now - sent_at >= settings.api_heartbeat_s:
                sent_at = now
                yield b": keepalive\n\n"
            wait_s = min(settings.api_heartbeat_s, settings.api_scope_refresh_s, closes_at - now)
            batch: list[StreamEntry] = []
            if sub.queue.empty():
                try:
                    batch.append(
                        await asyncio.wait_for(sub.queue.get(), timeout=max(wait_s, 0.001))
                    )
                except TimeoutError:
                    continue
            while not sub.queue.empty():  # everything queued goes out in one write
                batch.append(sub.queue.get_nowait())
            frames: list[bytes] = []
            for entry in batch:
                if not streamids.after(entry.event_id, last):
                    continue  # already sent while catching up
                last = entry.event_id
                if match(entry):
                    frames.append(entry.frame)
            if frames:
                sent_at = time.monotonic()
                yield b"".join(frames)
    finally:
        state.hub.unsubscribe(sub)


@router.get(
    "/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`text/event-stream`: `event: alert`, `id:` = stream entry id, "
            '`data:` = `{"event_id", "alert"}`.',
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
        }
    },
    summary="Live alerts (Server-Sent Events)",
)
async def alert_stream(
    state: State,
    token: StreamToken,
    last_event_id: Annotated[
        str | None,
        Header(pattern=streamids.PATTERN, description="Resume after this id."),
        AfterValidator(streamids.checked),
    ] = None,
    patient_id: Annotated[str | None, Query(pattern=PATIENT_ID_PATTERN)] = None,
    priority: Literal["high", "medium", "low"] | None = None,
    alarm_type: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """Follow the alerts of the patients in scope; resume with ``Last-Event-ID``."""
    token.require("read")
    events = alert_events(
        state, token, last_event_id=last_event_id, patient_id=patient_id, priority=priority,
        alarm_type=alarm_type,
    )  # fmt: skip
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
