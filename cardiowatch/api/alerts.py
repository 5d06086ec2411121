"""``/api/v1/alerts``: alert history with filters and cursor pagination, acknowledgements.

History is read newest first from the alert stream; the cursor is a stream entry id, so pages
are stable while new alerts arrive. One request scans at most ``api_history_scan_max``
entries: a short (even empty) page with a ``next_cursor`` means "go on from there".

An acknowledgement belongs to the alert *episode* (its stable id): acknowledging any event of
it acknowledges all of them. The first acknowledgement is kept and added to the
``{prefix}api:acks`` stream; repeating it changes nothing and answers the same.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator

from cardiowatch.api import streamids
from cardiowatch.api.auth import not_found
from cardiowatch.api.deps import CurrentToken, State
from cardiowatch.api.hub import StreamEntry
from cardiowatch.api.models import (
    AckOut,
    AckPage,
    AlertEvent,
    AlertOut,
    AlertPage,
    ShownAlarm,
    ShownAlarms,
)
from cardiowatch.api.patients import PATIENT_ID_PATTERN, PatientId
from cardiowatch.schemas import Alert, SchemaError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["alerts"])
ACKS_MAXLEN = 100_000

EventId = Annotated[str, Path(pattern=streamids.PATTERN, description="Alert stream entry id.")]
Cursor = Annotated[
    str | None,
    Query(pattern=streamids.PATTERN, description="`next_cursor` of the previous page."),
    AfterValidator(streamids.checked),
]
UnixTime = Annotated[float | None, Query(ge=0, le=streamids.MAX_UNIX_S, allow_inf_nan=False)]
Limit = Annotated[int, Query(ge=1, le=500)]

# KEYS[1] = ack key, KEYS[2] = acks stream; ARGV[1] = ack JSON, ARGV[2] = maxlen,
# then the stream fields. Returns the ack in force (the first one).
_ACK_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""


def _bound(t: float | None, *, end: bool) -> str | None:
    return None if t is None else streamids.from_unix_s(t, end=end)


def _decode(entry: StreamEntry) -> AlertOut | None:
    try:
        return AlertOut.of(Alert.decode(entry.alert_json))
    except SchemaError as exc:
        log.warning("unreadable alert in the stream (%s)", exc.reason)
        return None


async def _acks(state: State, alert_ids: set[str]) -> dict[str, AckOut]:
    ids = sorted(alert_ids)
    raws = await state.redis.mget([state.keys.ack(a) for a in ids]) if ids else []
    return {a: AckOut.model_validate_json(r) for a, r in zip(ids, raws, strict=True) if r}


@router.get("/alerts", response_model=AlertPage, summary="Alert history, newest first")
async def alert_history(
    state: State,
    token: CurrentToken,
    patient_id: Annotated[str | None, Query(pattern=PATIENT_ID_PATTERN)] = None,
    alarm_type: Annotated[str | None, Query(max_length=64)] = None,
    priority: Literal["high", "medium", "low"] | None = None,
    alert_state: Annotated[Literal["raise", "update", "end"] | None, Query(alias="state")] = None,
    since_unix_s: UnixTime = None,
    until_unix_s: UnixTime = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> AlertPage:
    """Alert events of patients in scope matching every filter given.

    ``since_unix_s`` / ``until_unix_s`` bound the time the event was added to Redis.
    """
    token.require("read")
    low = _bound(since_unix_s, end=False) or "-"
    high = _bound(until_unix_s, end=True) or "+"
    after = cursor
    if low != "-" and high != "+" and streamids.after(low, high):
        return AlertPage(items=[], next_cursor=None)
    if after is not None:
        before = streamids.just_before(after)
        if before is None:
            return AlertPage(items=[], next_cursor=None)
        high = before if high == "+" or streamids.after(high, before) else high
    scope = await state.tokens.scope(token)
    wanted = {
        "patient_id": patient_id, "alarm_type": alarm_type, "priority": priority,
        "state": alert_state,
    }  # fmt: skip
    found: list[tuple[StreamEntry, AlertOut]] = []
    scan_max = state.settings.api_history_scan_max
    batch = min(max(4 * limit, 100), scan_max)
    scanned, last_scanned, more = 0, None, True
    while more:
        entries = await state.redis.xrevrange(state.keys.alerts_stream, high, low, count=batch)
        for eid, fields in entries:
            entry = StreamEntry.from_redis(eid, fields)
            scanned += 1
            last_scanned = entry.event_id
            if entry.patient_id not in scope or any(
                v is not None and getattr(entry, k) != v for k, v in wanted.items()
            ):
                continue
            alert = _decode(entry)
            if alert is not None:
                found.append((entry, alert))
                if len(found) == limit:
                    break
        more = len(entries) == batch or (bool(entries) and len(found) == limit)
        if len(found) == limit or scanned >= scan_max or last_scanned is None:
            break
        next_high = streamids.just_before(last_scanned)
        if next_high is None:
            more = False
            break
        high = next_high
    acks = await _acks(state, {a.id for _, a in found})
    items = [AlertEvent(event_id=e.event_id, alert=a, ack=acks.get(a.id)) for e, a in found]
    return AlertPage(items=items, next_cursor=last_scanned if more else None)


@router.post(
    "/alerts/{event_id}/ack",
    response_model=AckOut,
    responses={
        403: {"description": "The token lacks the `ack` permission."},
        404: {"description": "No such alert event, or its patient is not in scope."},
    },
    summary="Acknowledge an alert (idempotent)",
)
async def acknowledge(state: State, token: CurrentToken, event_id: EventId) -> AckOut:
    """Acknowledge the alert episode of the stream entry ``event_id``."""
    token.require("ack")
    if not streamids.is_valid(event_id):
        raise not_found()
    entries = await state.redis.xrange(state.keys.alerts_stream, event_id, event_id, count=1)
    if not entries:
        raise not_found()
    entry = StreamEntry.from_redis(*entries[0])
    scope = await state.tokens.scope(token)
    alert = _decode(entry) if entry.patient_id in scope else None
    if alert is None:
        raise not_found()
    ack = AckOut(
        alert_id=alert.id, patient_id=alert.patient_id, event_id=entry.event_id, by=token.name,
        time_unix_s=time.time(),
    )  # fmt: skip
    body = ack.model_dump_json()
    script = state.redis.register_script(_ACK_ONCE)
    kept = await script(
        keys=[state.keys.ack(alert.id), state.keys.acks],
        args=[
            body,
            ACKS_MAXLEN,
            "alert_id",
            alert.id,
            "patient_id",
            alert.patient_id,
            "json",
            body,
        ],
    )
    await _clear_latched(state, alert.patient_id, alert.id)
    return AckOut.model_validate_json(kept)


async def _clear_latched(state: State, patient_id: str, alert_id: str) -> None:
    """An acknowledged latching alarm whose condition has ended is no longer shown."""
    key = state.keys.shown(patient_id)
    raw = await state.redis.hget(key, alert_id)
    if raw is not None and json.loads(raw)["alert"]["state"] == "end":
        await state.redis.hdel(key, alert_id)


@router.get(
    "/patients/{patient_id}/alarms",
    response_model=ShownAlarms,
    responses={404: {"description": "No such patient, or not in the token's scope."}},
    summary="The alarms a monitor shows now for one patient",
)
async def shown_alarms(state: State, token: CurrentToken, patient_id: PatientId) -> ShownAlarms:
    """Open alarm episodes, and latching ones that ended but are not acknowledged yet.

    Each item is the episode's latest event; ``latched`` marks an ended latching alarm (VT,
    ventricular run, asystole, pause) that stays shown until someone acknowledges it
    (IEC 60601-1-8). Highest priority first, then newest.
    """
    token.require("read")
    scope = await state.tokens.scope(token)
    exists = bool(await state.redis.sismember(state.keys.patients, patient_id))
    if not (exists and patient_id in scope):
        raise not_found()
    raw = await state.redis.hgetall(state.keys.shown(patient_id))
    items: list[ShownAlarm] = []
    for value in raw.values():
        stored = json.loads(value)
        try:
            alert = AlertOut.of(Alert.decode(json.dumps(stored["alert"]).encode()))
        except SchemaError as exc:
            log.warning("unreadable shown alarm (%s)", exc.reason)
            continue
        items.append(
            ShownAlarm(event_id=stored["event_id"], alert=alert, latched=alert.state == "end")
        )
    acks = await _acks(state, {i.alert.id for i in items})
    for item in items:
        item.ack = acks.get(item.alert.id)
    rank = {"high": 0, "medium": 1, "low": 2}
    items.sort(key=lambda i: (rank.get(i.alert.priority, 3), -i.alert.sample_index))
    return ShownAlarms(items=items)


@router.get("/acks", response_model=AckPage, summary="Acknowledgements, newest first")
async def list_acks(
    state: State, token: CurrentToken, cursor: Cursor = None, limit: Limit = 100
) -> AckPage:
    """The stream of acknowledgements of alerts of patients in scope."""
    token.require("read")
    after = cursor
    scope = await state.tokens.scope(token)
    high = streamids.just_before(after) if after else "+"
    if high is None:
        return AckPage(items=[], next_cursor=None)
    items: list[AckOut] = []
    scanned, last, more = 0, None, True
    while more:
        entries = await state.redis.xrevrange(state.keys.acks, high, "-", count=500)
        for eid, fields in entries:
            scanned += 1
            last = eid.decode()
            if fields.get(b"patient_id", b"").decode() in scope:
                items.append(AckOut.model_validate(json.loads(fields[b"json"])))
                if len(items) == limit:
                    break
        more = len(entries) == 500 or (bool(entries) and len(items) == limit)
        if len(items) == limit or scanned >= state.settings.api_history_scan_max or last is None:
            break
        high = streamids.just_before(last)
        if high is None:
            more = False
            break
    return AckPage(items=items, next_cursor=last if more else None)
