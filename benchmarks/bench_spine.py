"""Spine load benchmark: N replayed patients against one worker on the embedded stack.

Prints produced and consumed messages per second, consumer lag (chunks sent but not yet
processed, sampled every second) and end-to-end latency percentiles, measured from the
moment the simulator hands a chunk to the producer to the moment its vitals message reaches a
consumer of the vitals topic.

    python benchmarks/bench_spine.py --patients 200 --speed 1 --duration 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardiowatch.schemas import SampleChunk, Vitals  # noqa: E402
from cardiowatch.services import EmbeddedServices  # noqa: E402
from cardiowatch.settings import Settings  # noqa: E402
from simulators.patients import load_records, mitdb_dir, record_patients  # noqa: E402
from simulators.replay import replay  # noqa: E402
from tests.integration.harness import start_worker  # noqa: E402

RECORDS = ("100", "101", "103", "105", "106", "112", "113", "115", "116", "117", "119", "121")


class TimedProducer:
    """Wraps the producer and remembers when each chunk was handed over."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.sent_at: dict[tuple[str, int], float] = {}
        self.messages = 0

    async def send(self, topic: str, value: bytes, key: bytes) -> object:
        if topic == self.topic:
            chunk = SampleChunk.decode(value)
            self.sent_at[(chunk.patient_id, chunk.end_sample)] = time.time()
        self.messages += 1
        return await self.producer.send(topic, value=value, key=key)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(settings: Settings, args: argparse.Namespace, worker_pid: int) -> dict[str, object]:
    records = load_records(mitdb_dir(settings), RECORDS)
    patients = record_patients(records, args.patients, loop=True)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_url, linger_ms=5, acks=1)
    consumer = AIOKafkaConsumer(
        settings.topic_vitals, bootstrap_servers=settings.kafka_url, group_id=None,
        auto_offset_reset="latest", fetch_max_wait_ms=20,
    )  # fmt: skip
    await producer.start()
    await consumer.start()
    timed = TimedProducer(producer, settings.topic_ecg)
    latencies: list[float] = []
    arrivals: list[float] = []  # seconds since the start, per latency sample
    lag_samples: list[int] = []
    consumed = 0
    stop = asyncio.Event()

    async def consume() -> None:
        nonlocal consumed
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for messages in batch.values():
                for m in messages:
                    v = Vitals.decode(m.value)
                    consumed += 1
                    sent = timed.sent_at.pop((v.patient_id, v.sample_index), None)
                    if sent is not None and now - wall0 > args.warmup:
                        latencies.append(now - sent)
                        arrivals.append(now - wall0)

    async def sample_lag() -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            if time.time() - wall0 > args.warmup:
                lag_samples.append(len(timed.sent_at))  # chunks sent whose vitals have not arrived

    wall0 = time.time()
    tasks = [asyncio.create_task(consume()), asyncio.create_task(sample_lag())]
    cpu0, t0 = cpu_seconds(worker_pid), time.monotonic()
    stats = await replay(
        timed, patients, topic=settings.topic_ecg, annotation_topic=settings.topic_annotations,
        chunk_s=settings.chunk_s, speed=args.speed, duration_s=args.duration,
    )  # fmt: skip
    await producer.flush()
    drain_deadline = time.monotonic() + 30
    while timed.sent_at and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.2)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(worker_pid) - cpu0
    stop.set()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    await consumer.stop()
    await producer.stop()
    lat = np.asarray(latencies)
    lag = np.asarray(lag_samples or [0])
    return {
        "patients": args.patients,
        "speed": args.speed,
        "signal_duration_s": args.duration,
        "warmup_s": args.warmup,
        "wall_s": round(elapsed, 1),
        "chunks_sent": stats.chunks_sent,
        "produced_msg_per_s": round(timed.messages / elapsed, 1),
        "chunks_per_s": round(stats.chunks_sent / elapsed, 1),
        "consumed_vitals_per_s": round(consumed / elapsed, 1),
        "samples_per_s": round(stats.samples_sent / elapsed, 1),
        "lost_chunks": len(timed.sent_at),
        "lag_chunks": {
            "median": float(np.median(lag)),
            "p99": float(np.percentile(lag, 99)),
            "max": int(lag.max()),
        },
        "late_rounds": stats.late_chunks,
        "latency_s": {
            "p50": round(float(np.percentile(lat, 50)), 4),
            "p95": round(float(np.percentile(lat, 95)), 4),
            "p99": round(float(np.percentile(lat, 99)), 4),
            "max": round(float(lat.max()), 4),
        } if len(lat) else None,
        "worker_cpu_percent": round(100 * cpu / elapsed, 1),
        "p99_latency_s_per_30s": _windowed_p99(np.asarray(arrivals), lat, 30.0),
    }  # fmt: skip


def _windowed_p99(t_s: np.ndarray, lat_s: np.ndarray, window_s: float) -> list[float]:
    """p99 latency of each ``window_s`` of the run (shows stalls and drift over time)."""
    if not len(t_s):
        return []
    bins = (t_s // window_s).astype(int)
    return [round(float(np.percentile(lat_s[bins == b], 99)), 3) for b in np.unique(bins)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds of signal per patient"
    )
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds not counted in latency/lag"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedServices(Settings.from_env(), Path(tmp)) as svc,
    ):
        settings = svc.settings.replace(
            worker_data_dir=str(Path(tmp) / "worker"), app_id="cw-bench"
        )
        worker = start_worker(settings, Path(tmp))
        try:
            result = asyncio.run(run(settings, args, worker.proc.pid))
        finally:
            worker.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
