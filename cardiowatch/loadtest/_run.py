"""One load-test run: replay N patients, follow their results, sample lag, latency and processes.

Latency is measured from the moment the simulator hands a chunk to the producer to the moment
its vitals message reaches the load test's consumer. The worker publishes a chunk's vitals,
beats and alerts in the same call, so this is the chunk's end-to-end latency. Lag is the
number of chunks sent whose vitals have not arrived yet (client side), and the sum of the
workers' own ``cardiowatch_consumer_lag_messages`` when they are the load test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cardiowatch.loadtest._procstats import ProcessSampler
from cardiowatch.metrics import SimulatorMetrics
from cardiowatch.schemas import Alert, DeadLetter, SampleChunk, Vitals
from cardiowatch.settings import Settings
from cardiowatch.workers import WorkerProcess
from simulators.build import synthetic_patients
from simulators.patients import load_records, mitdb_dir, record_patients
from simulators.replay import VirtualPatient, replay

log = logging.getLogger(__name__)

RECORDS = ("100", "101", "103", "105", "106", "112", "113", "115", "116", "117", "119", "121")


@dataclass(frozen=True)
class LoadtestConfig:
    """What to run.

    Parameters
    ----------
    patients
        Virtual patients replaying MIT-BIH records (reused with time offsets).
    duration_s
        Seconds of signal per patient.
    speed
        1 = real time.
    workers
        Worker processes the load test starts (0: use the workers already running).
    warmup_s
        Seconds at the start not counted in latency and lag (consumer-group join).
    alarm_patients
        Of the patients, how many are synthetic ECGSYN patients with an asystole and a
        tachycardia at staggered times (so that alerts are raised); the rest replay records.
    kill_worker_at_s
        SIGKILL the first worker this many seconds into the replay (needs ``workers >= 2``).
    verify
        Keep every chunk sent and compare each patient's results with the offline twin.
    wait_for_group
        Start the load only once the workers' consumer group has settled (every worker holds
        partitions, no rebalance in progress); off, the join rebalances happen under load.
    drain_s
        How long to wait, after the last chunk, for the results still in flight.
    """

    patients: int
    duration_s: float
    speed: float = 1.0
    workers: int = 1
    warmup_s: float = 10.0
    kill_worker_at_s: float | None = None
    verify: bool = False
    drain_s: float = 30.0
    records: tuple[str, ...] = RECORDS
    alarm_patients: int | None = None
    wait_for_group: bool = True

    @property
    def n_alarm_patients(self) -> int:
        """Synthetic patients with an asystole and a tachycardia (default 1 in 20, at most 10)."""
        if self.alarm_patients is not None:
            return min(self.alarm_patients, self.patients)
        return min(10, max(1, self.patients // 20))


class _Recorder:
    """Wraps the producer: when each chunk was handed over, and (to verify) the chunk itself."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, *, keep: bool) -> None:
        self.producer = producer
        self.topic = topic
        self.keep = keep
        self.sent_at: dict[tuple[str, int], tuple[float, int]] = {}
        self.chunks: dict[str, list[bytes]] = defaultdict(list)
        self.messages = 0

    async def send(self, topic: str, value: bytes, key: bytes) -> object:
        if topic == self.topic:
            chunk = SampleChunk.decode(value)
            self.sent_at[(chunk.patient_id, chunk.end_sample)] = (time.time(), chunk.n_samples)
            if self.keep:
                self.chunks[chunk.patient_id].append(value)
        self.messages += 1
        return await self.producer.send(topic, value=value, key=key)


@dataclass
class _Observed:
    latencies_s: list[float]
    arrivals_s: list[float]
    vitals: int = 0
    samples: int = 0
    alerts: int = 0


def _worker_lag(worker: WorkerProcess) -> float | None:
    try:
        text = worker.metrics()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("cardiowatch_consumer_lag_messages{")
    )


async def run_load(
    settings: Settings,
    config: LoadtestConfig,
    workers: Sequence[WorkerProcess],
    *,
    process_pids: dict[str, int],
    on_sample: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the load and return the figures (see ``cardiowatch loadtest --help``)."""
    patients = _patients(settings, config)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_url, client_id="cardiowatch-loadtest", linger_ms=5,
        acks=1, max_request_size=max(settings.max_chunk_bytes * 2, 1_048_576),
    )  # fmt: skip
    consumer = AIOKafkaConsumer(
        settings.topic_vitals, settings.topic_alerts, settings.topic_dead_letters,
        bootstrap_servers=settings.kafka_url,
        group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=20,
    )  # fmt: skip
    await producer.start()
    await consumer.start()
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)  # resolve "latest" now, before anything is sent
    recorder = _Recorder(producer, settings.topic_ecg, keep=config.verify)
    obs = _Observed([], [])
    last_vitals: dict[str, Vitals] = {}
    alert_events: dict[str, set[tuple[str, str, int]]] = defaultdict(set)
    raised: dict[str, str] = {}
    dead: Counter[str] = Counter()
    timeline: list[dict[str, Any]] = []
    sampler = ProcessSampler(process_pids)
    stop = asyncio.Event()
    kill: dict[str, Any] = {}
    wall0 = time.time()
    wall0_ms = int(wall0 * 1000)

    async def consume() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for tp, messages in batch.items():
                for m in messages:
                    if m.timestamp is not None and m.timestamp < wall0_ms - 60_000:
                        continue  # an earlier run's record (running stack)
                    if tp.topic == settings.topic_dead_letters:
                        dead[DeadLetter.decode(m.value).reason] += 1
                        continue
                    if tp.topic == settings.topic_alerts:
                        a = Alert.decode(m.value)
                        obs.alerts += 1
                        alert_events[a.patient_id].add((a.id, a.state, a.sample_index))
                        if a.state == "raise":
                            raised[a.id] = a.alarm_type
                        continue
                    v = Vitals.decode(m.value)
                    obs.vitals += 1
                    old = last_vitals.get(v.patient_id)
                    if old is None or v.sample_index >= old.sample_index:
                        last_vitals[v.patient_id] = v
                    sent = recorder.sent_at.pop((v.patient_id, v.sample_index), None)
                    if sent is None:
                        continue
                    obs.samples += sent[1]
                    if now - wall0 > config.warmup_s:
                        obs.latencies_s.append(now - sent[0])
                        obs.arrivals_s.append(now - wall0)

    async def sample() -> None:
        prev = (0, 0)
        while not stop.is_set():
            await asyncio.sleep(1.0)
            t = time.time() - wall0
            if config.kill_worker_at_s is not None and not kill and t >= config.kill_worker_at_s:
                workers[0].kill()
                kill.update(at_s=round(time.time() - wall0, 2), worker="worker-0")
            lags = await asyncio.gather(*(asyncio.to_thread(_worker_lag, w) for w in workers))
            known = [x for x in lags if x is not None]
            n_sent, n_done = recorder.messages, obs.vitals
            pairs = zip(obs.latencies_s[-5000:], obs.arrivals_s[-5000:], strict=True)
            recent = [lat for lat, arrived_s in pairs if arrived_s > t - 1.0]
            point = {
                "t_s": round(t, 1),
                "produced_msg_per_s": n_sent - prev[0],
                "consumed_vitals_per_s": n_done - prev[1],
                "lag_chunks": len(recorder.sent_at),
                "worker_lag_messages": sum(known) if known else None,
                "latency_p99_s": round(float(np.percentile(recent, 99)), 3) if recent else None,
                "processes": sampler.sample(),
            }
            prev = (n_sent, n_done)
            timeline.append(point)
            if on_sample is not None:
                on_sample(point)

    tasks = [asyncio.create_task(consume()), asyncio.create_task(sample())]
    t0 = time.monotonic()
    stats = await replay(
        recorder, patients, topic=settings.topic_ecg, annotation_topic=None,
        chunk_s=settings.chunk_s, speed=config.speed, duration_s=config.duration_s,
        metrics=SimulatorMetrics(_registry()),
    )  # fmt: skip
    await producer.flush()
    replay_s = time.monotonic() - t0
    deadline = time.monotonic() + config.drain_s
    while recorder.sent_at and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # alerts published with the last vitals
    elapsed = time.monotonic() - t0
    stop.set()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await consumer.stop()
    await producer.stop()

    result = summarise(config, timeline, obs, stats.chunks_sent, stats.samples_sent,
                       recorder.messages, len(recorder.sent_at), replay_s, elapsed)  # fmt: skip
    result["alerts"] = {
        "events": obs.alerts,
        "raised": len(raised),
        "raised_by_type": dict(sorted(Counter(raised.values()).items())),
    }
    cpu_s = sampler.cpu_s()
    for name, seconds in cpu_s.items():
        result["processes"].setdefault(name, {})["cpu_s"] = seconds
    worker_cpu_s = sum(v for k, v in cpu_s.items() if k.startswith("worker-"))
    if workers and obs.vitals:
        # CPU the workers spent per chunk: comparable between runs on a shared machine.
        result["worker_cpu_ms_per_chunk"] = round(1000 * worker_cpu_s / obs.vitals, 3)
    result["dead_letters_by_reason"] = dict(sorted(dead.items()))
    result["lost_examples"] = sorted(f"{p}@{s}" for p, s in recorder.sent_at)[:10]
    if kill:
        kill.update(_recovery(obs, kill["at_s"], config.warmup_s))
        result["kill"] = kill
    if config.verify:
        from cardiowatch.loadtest._verify import verify

        result["verify"] = verify(settings, recorder.chunks, last_vitals, alert_events)
    return result


def _patients(settings: Settings, config: LoadtestConfig) -> list[VirtualPatient]:
    n_alarm = config.n_alarm_patients
    n_records = config.patients - n_alarm
    patients = []
    if n_records:
        records = load_records(mitdb_dir(settings), config.records)
        patients += record_patients(records, n_records, loop=True)
    span_s = max(1, int(config.duration_s) - 30)
    for j in range(n_alarm):
        start_s = 8 + (j * 7) % span_s
        events = [f"asystole@{start_s}:8", f"tachycardia@{start_s + 14}:12"]
        patients += synthetic_patients(1, events=events, seed=j, first_index=n_records + j)
    return patients


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


def _recovery(obs: _Observed, kill_at_s: float, warmup_s: float) -> dict[str, Any]:
    """Recovery: from the kill to the last result later than anything seen before the kill."""
    t = np.asarray(obs.arrivals_s)
    lat = np.asarray(obs.latencies_s)
    before = lat[(t < kill_at_s) & (t > warmup_s)]
    normal_s = max(1.0, float(before.max())) if len(before) else 1.0
    late = t[(t >= kill_at_s) & (lat > normal_s)]
    return {
        "normal_max_latency_s": round(normal_s, 3),
        "recovery_s": round(float(late.max()) - kill_at_s, 2) if len(late) else 0.0,
        "max_latency_after_kill_s": round(float(lat[t >= kill_at_s].max()), 3)
        if (t >= kill_at_s).any() else None,
    }  # fmt: skip


def _pct(x: np.ndarray, q: float) -> float:
    return round(float(np.percentile(x, q)), 4)


def _latency(lat: np.ndarray) -> dict[str, float] | None:
    if not len(lat):
        return None
    return {q: _pct(lat, p) for q, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}


def summarise(
    config: LoadtestConfig, timeline: list[dict[str, Any]], obs: _Observed, chunks_sent: int,
    samples_sent: int, messages: int, lost: int, replay_s: float, elapsed_s: float,
) -> dict[str, Any]:  # fmt: skip
    """The run's figures from what was sampled."""
    lat = np.asarray(obs.latencies_s)
    steady = [p for p in timeline if p["t_s"] > config.warmup_s]
    lag = np.asarray([p["lag_chunks"] for p in steady] or [0])
    half = lag[len(lag) // 2 :]
    processes: dict[str, dict[str, float]] = {}
    for name in {n for p in steady for n in p["processes"]}:
        cpu = [p["processes"][name]["cpu_percent"] for p in steady if name in p["processes"]]
        rss = [p["processes"][name]["rss_mb"] for p in steady if name in p["processes"]]
        processes[name] = {
            "cpu_percent_mean": round(float(np.mean(cpu)), 1),
            "cpu_percent_max": round(float(np.max(cpu)), 1),
            "rss_mb_max": round(float(np.max(rss)), 1),
        }
    p99 = _pct(lat, 99) if len(lat) else None
    # Bounded: in the second half of the run, at most two rounds of chunks in flight.
    bounded = bool(lost == 0 and float(np.percentile(half, 99)) <= 2 * config.patients)
    return {
        "config": asdict(config),
        "wall_s": round(elapsed_s, 1),
        "replay_s": round(replay_s, 1),
        "produced": {
            "chunks": chunks_sent,
            "messages": messages,
            "msg_per_s": round(messages / replay_s, 1),
            "samples_per_s": round(samples_sent / replay_s, 1),
        },
        "consumed": {
            "vitals": obs.vitals,
            "msg_per_s": round(obs.vitals / elapsed_s, 1),
            "samples_per_s": round(obs.samples / elapsed_s, 1),
        },
        "lost_chunks": lost,
        "lag_chunks": {
            "median": float(np.median(lag)),
            "p99": float(np.percentile(lag, 99)),
            "max": int(lag.max()),
            "p99_second_half": float(np.percentile(half, 99)),
        },
        "latency_s": _latency(lat),
        "processes": dict(sorted(processes.items())),
        "lag_bounded": bounded,
        "passed": bool(bounded and p99 is not None and p99 < 1.0),
        "timeline": timeline,
    }
