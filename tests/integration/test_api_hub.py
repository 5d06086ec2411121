"""The alert hub's overflow path: a subscriber that falls behind catches up from Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from cardiowatch.api.auth import TokenStore
from cardiowatch.api.deps import ApiState
from cardiowatch.api.hub import AlertHub
from cardiowatch.api.keys import Keys
from cardiowatch.api.sse import alert_events
from cardiowatch.api.waveform import WaveformFeed
from cardiowatch.settings import Settings
from tests.integration.api_harness import api_settings, make_alert

pytestmark = pytest.mark.integration


def test_an_overflowing_subscriber_misses_nothing_and_repeats_nothing(
    services: Settings, tmp_path: Path
) -> None:
    settings = api_settings(services, tmp_path)

    async def go() -> tuple[list[str], list[str], bool]:
        redis: Redis[bytes] = Redis.from_url(settings.redis_url)
        keys = Keys.from_settings(settings)
        tokens = TokenStore(redis, keys)
        hub = AlertHub(redis, keys.alerts_stream, queue_size=2)
        state = ApiState(settings, keys, redis, tokens, hub, WaveformFeed(settings))
        _, token = await tokens.create("t", all_patients=True)
        await hub.start()
        events = alert_events(state, token, last_event_id=None)
        assert (await anext(events)).startswith(b"retry:")
        ids = []
        for i in range(30):  # added while the subscriber reads nothing: its queue overflows
            alert = make_alert("p1", onset_sample=i, n_strip=5)
            ids.append((await redis.xadd(keys.alerts_stream, {
                "id": alert.id, "patient_id": "p1", "alarm_type": alert.alarm_type,
                "state": "raise", "priority": "high", "json": alert.encode(),
            })).decode())  # fmt: skip
        await asyncio.sleep(0.5)  # the hub reads them all meanwhile
        (sub,) = list(hub._subscribers)
        overflowed = sub.overflowed
        got: list[str] = []
        while len(got) < 30:
            chunk = await asyncio.wait_for(anext(events), 5)
            got += [line[4:].decode() for line in chunk.split(b"\n") if line.startswith(b"id: ")]
        await events.aclose()
        await hub.stop()
        await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
        return ids, got, overflowed

    ids, got, overflowed = asyncio.run(go())
    assert overflowed
    assert got == ids
