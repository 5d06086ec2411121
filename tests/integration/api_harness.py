"""Helpers of the API tests: settings, tokens, alerts written by the worker's own sink, and a
``cardiowatch api`` process on a free port."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from redis.asyncio import Redis

from cardiowatch.api.auth import Token, TokenStore
from cardiowatch.api.keys import Keys
from cardiowatch.schemas import Alert, Vitals, alert_id
from cardiowatch.services import free_port
from cardiowatch.settings import Settings
from streams.redis_sink import RedisSink
from tests.integration.harness import fresh_settings, settings_env

T = TypeVar("T")


def api_settings(services: Settings, tmp_path: Path, **changes: object) -> Settings:
    """Fresh keys and topics, and short API timings for tests."""
    fast: dict[str, object] = {
        "api_heartbeat_s": 1.0,
        "api_scope_refresh_s": 0.5,
        "api_vitals_interval_s": 0.2,
        "api_webhook_backoff_s": 0.05,
        "api_webhook_backoff_max_s": 0.2,
        "api_webhook_timeout_s": 2.0,
        "api_webhook_group": "cw-test-webhooks",
        "api_port": free_port(),
        "log_level": "WARNING",
    }
    fast.update(changes)
    return fresh_settings(services, tmp_path, **fast)


def with_redis(settings: Settings, job: Callable[[Redis[bytes]], Awaitable[T]]) -> T:
    """Run ``job`` with an async Redis client of ``settings`` and return its result.

    In a thread of its own when this one already runs an event loop (Playwright's sync API).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_with_redis(settings, job))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _with_redis(settings, job)).result()


async def _with_redis(settings: Settings, job: Callable[[Redis[bytes]], Awaitable[T]]) -> T:
    redis: Redis[bytes] = Redis.from_url(settings.redis_url)
    try:
        return await job(redis)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose


def create_token(
    settings: Settings,
    *,
    name: str = "nurse",
    permissions: Sequence[str] = ("read",),
    patients: Iterable[str] = (),
    wards: Iterable[str] = (),
    all_patients: bool = False,
) -> tuple[str, Token]:
    """Create a token in the settings' Redis."""

    async def job(redis: Redis[bytes]) -> tuple[str, Token]:
        store = TokenStore(redis, Keys.from_settings(settings))
        return await store.create(
            name, permissions=permissions, patients=patients, wards=wards,
            all_patients=all_patients,
        )  # fmt: skip

    return with_redis(settings, job)


def assign_ward(settings: Settings, ward: str, patient_ids: Iterable[str]) -> None:
    """Put patients in a ward."""

    async def job(redis: Redis[bytes]) -> int:
        return await TokenStore(redis, Keys.from_settings(settings)).assign(ward, patient_ids)

    with_redis(settings, job)


def make_alert(
    patient_id: str,
    *,
    alarm_type: str = "asystole",
    onset_sample: int = 3600,
    state: str = "raise",
    priority: str = "high",
    sample_index: int | None = None,
    n_strip: int = 720,
) -> Alert:
    """An alert as the worker makes it, with a 2 s evidence strip (a sine, in mV)."""
    import math

    fs = 360.0
    start = max(0, onset_sample - n_strip // 2)
    strip = [round(math.sin(2 * math.pi * i / fs), 3) for i in range(n_strip)]
    return Alert(
        id=alert_id(patient_id, alarm_type, onset_sample),
        patient_id=patient_id,
        alarm_type=alarm_type,
        state=state,
        priority=priority,
        onset_sample=onset_sample,
        end_sample=None if state != "end" else (sample_index or onset_sample) + 1,
        sample_index=sample_index if sample_index is not None else onset_sample,
        fs_hz=fs,
        source="test",
        heart_rate_bpm=None if alarm_type == "asystole" else 150.0,
        evidence={"strip": {"start_sample": start, "fs_hz": fs, "mv": strip}},
        detector_version="test",
        time_unix_s=time.time(),
    )


def make_vitals(patient_id: str, *, hr: float | None = 72.0, alarms: Sequence[str] = ()) -> Vitals:
    """A vitals message."""
    return Vitals(
        patient_id=patient_id, source="test", fs_hz=360.0, sample_index=3600,
        heart_rate_bpm=hr, signal_ok=True, beats_total=12, active_alarms=list(alarms),
        time_unix_s=time.time(),
    )  # fmt: skip


def write(
    settings: Settings, *, alerts: Sequence[Alert] = (), vitals: Sequence[Vitals] = ()
) -> int:
    """Write through the worker's own :class:`RedisSink`; return how many alerts were new."""

    async def job(redis: Redis[bytes]) -> int:
        sink = RedisSink(
            redis, prefix=settings.redis_key_prefix, alerts_stream=settings.redis_alerts_stream,
            alerts_maxlen=settings.redis_alerts_maxlen,
        )  # fmt: skip
        for v in vitals:
            sink.queue_vitals(v)
        await sink.flush_vitals()
        return await sink.write_alerts(alerts)

    return with_redis(settings, job)


@dataclass
class ApiProcess:
    """A ``cardiowatch api`` child process."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        """The tail of its log."""
        return self.log_path.read_text(errors="replace")[-4000:]


def start_api(settings: Settings, log_dir: Path, name: str = "api") -> ApiProcess:
    """Start ``cardiowatch api`` and wait until ``/healthz`` answers."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cardiowatch", "api"],
            env=settings_env(settings), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    api = ApiProcess(proc, f"http://{settings.api_host}:{settings.api_port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"api exited on start:\n{api.log()}")
        try:
            with urllib.request.urlopen(api.base_url + "/healthz", timeout=2):
                return api
        except OSError:
            time.sleep(0.1)
    api.stop()
    raise RuntimeError(f"api did not start:\n{api.log()}")
