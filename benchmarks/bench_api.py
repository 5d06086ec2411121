"""Benchmark of the alert API: XADD -> SSE subscriber latency, and many concurrent subscribers.

Starts a throw-away redis-server and one ``cardiowatch api`` process on free loopback ports,
opens ``--subscribers`` SSE connections (token scoped to every patient), then adds alerts to
the alert stream one at a time with ``XADD`` (the fields the worker writes, a 4 s evidence
strip) at ``--rate`` per second. Latency is from just before the ``XADD`` to the subscriber
reading the event's ``id:`` line, measured in this process for every (alert, subscriber).

    python benchmarks/bench_api.py --subscribers 1 --alerts 300
    python benchmarks/bench_api.py --subscribers 200 --alerts 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np
from redis.asyncio import Redis

from cardiowatch.api.auth import TokenStore
from cardiowatch.api.keys import Keys
from cardiowatch.schemas import Alert, alert_id
from cardiowatch.services import free_port, start_redis
from cardiowatch.settings import Settings


def _alert(i: int) -> Alert:
    fs = 360.0
    mv = [round(float(v), 3) for v in np.sin(np.arange(int(4 * fs)) / 20.0)]
    pid = f"bench-{i % 50}"
    return Alert(
        id=alert_id(pid, "tachycardia", 1000 * i), patient_id=pid, alarm_type="tachycardia",
        state="raise", priority="medium", onset_sample=1000 * i, end_sample=None,
        sample_index=1000 * i, fs_hz=fs, source="bench", heart_rate_bpm=150.0,
        evidence={"strip": {"start_sample": 1000 * i - 720, "fs_hz": fs, "mv": mv}},
        detector_version="bench", time_unix_s=time.time(),
    )  # fmt: skip


async def _subscriber(
    client: httpx.AsyncClient, url: str, token: str, ready: asyncio.Event, n_ready: list[int],
    n_total: int, received: dict[str, float], expected: int,
) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            body = (await response.aread())[:200]
            raise RuntimeError(f"subscriber got HTTP {response.status_code}: {body!r}")
        first, pending = True, b""
        async for chunk in response.aiter_raw():
            now = time.perf_counter()
            if first:
                first = False
                n_ready[0] += 1
                if n_ready[0] == n_total:
                    ready.set()
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if line.startswith(b"id: ") and line != b"id: 0-0":
                    received.setdefault(line[4:].decode(), now)
            if len(received) >= expected:
                return


async def run(args: argparse.Namespace, settings: Settings, base_url: str) -> dict[str, float]:
    redis: Redis[bytes] = Redis.from_url(settings.redis_url)
    store = TokenStore(redis, Keys.from_settings(settings))
    token, _ = await store.create("bench", all_patients=True)
    url = base_url + "/api/v1/alerts/stream"
    ready = asyncio.Event()
    n_ready = [0]
    received: list[dict[str, float]] = [{} for _ in range(args.subscribers)]
    limits = httpx.Limits(max_connections=args.subscribers + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as client:
        tasks = [
            asyncio.create_task(
                _subscriber(client, url, token, ready, n_ready, args.subscribers, r, args.alerts)
            )
            for r in received
        ]
        await asyncio.wait_for(ready.wait(), 60)
        connected_at = time.perf_counter()
        sent: dict[str, float] = {}
        alerts = [_alert(i) for i in range(args.alerts)]
        for alert in alerts:
            t0 = time.perf_counter()
            eid = await redis.xadd(
                settings.redis_alerts_stream,
                {"id": alert.id, "patient_id": alert.patient_id, "alarm_type": alert.alarm_type,
                 "state": alert.state, "priority": alert.priority, "json": alert.encode()},
            )  # fmt: skip
            sent[eid.decode()] = t0
            await asyncio.sleep(1.0 / args.rate)
        done, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
    await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
    latencies_ms = np.array(
        [1000 * (r[e] - t) for r in received for e, t in sent.items() if e in r]
    )
    delivered = sum(len(r) for r in received)
    return {
        "subscribers": args.subscribers,
        "alerts": args.alerts,
        "connected_s": connected_at,
        "delivered": delivered,
        "expected": args.subscribers * args.alerts,
        "p50_ms": float(np.percentile(latencies_ms, 50)),
        "p99_ms": float(np.percentile(latencies_ms, 99)),
        "max_ms": float(latencies_ms.max()),
        "complete_subscribers": len(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="Alerts per second.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc = start_redis(Path(tmp))
        port = free_port()
        settings = Settings.from_env(
            {}, redis_url=redis_proc.url, api_port=port, redis_alerts_stream="cw:bench:alerts",
            redis_key_prefix="cw:bench:",
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOWATCH_")}
        env.update({
            "CARDIOWATCH_REDIS_URL": settings.redis_url, "CARDIOWATCH_API_PORT": str(port),
            "CARDIOWATCH_REDIS_ALERTS_STREAM": settings.redis_alerts_stream,
            "CARDIOWATCH_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        })  # fmt: skip
        log = (Path(tmp) / "api.log").open("wb")
        api = subprocess.Popen(
            [sys.executable, "-m", "cardiowatch", "api"], env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        base_url = f"http://{settings.api_host}:{port}"
        try:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(base_url + "/healthz", timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            result = asyncio.run(run(args, settings, base_url))
        finally:
            api.terminate()
            api.wait(15)
            redis_proc.stop()
            api_log = (Path(tmp) / "api.log").read_text(errors="replace")
            if "Traceback" in api_log:
                print(f"the API process logged errors:\n{api_log[-12000:]}", file=sys.stderr)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"{result['subscribers']} SSE subscribers, {result['alerts']} alerts at {args.rate:g}/s: "
        f"delivered {result['delivered']}/{result['expected']}, "
        f"latency XADD -> SSE p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"max {result['max_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
