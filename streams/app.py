"""The faust application: topics, the per-patient table and the ECG agent.

Only the worker entry point (``cardiowatch worker``) builds the app, through
:func:`create_app`; nothing else imports a faust app object.
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from cardiowatch.metrics import WorkerMetrics
from cardiowatch.schemas import DeadLetter, SampleChunk, SchemaError
from cardiowatch.settings import Settings
from models.beats import BeatClassifier
from streams.faust_compat import apply_fixes, keep_queued_on_resume, set_fetch_max_wait
from streams.gap_repair import ChunkRefetcher
from streams.limits import LimitsCache
from streams.model_registry import BEATS, ModelCache, beat_kind, pcg_kind
from streams.ops import LagTracker, MetricsSensor
from streams.processor import (
    ChunkOutputs,
    ChunkResult,
    SourcePosition,
    process_chunk,
    skipped_over,
)
from streams.redis_sink import RedisSink

log = logging.getLogger(__name__)

#: Fetch long-poll of the worker's consumer with Tansu (see :mod:`streams.faust_compat`).
TANSU_FETCH_MAX_WAIT_MS = 50
#: How often the latest vitals of every patient are written to Redis.
VITALS_FLUSH_INTERVAL_S = 0.25
#: How often the consumer lag per partition is exported.
LAG_INTERVAL_S = 1.0


def faust_config(settings: Settings) -> dict[str, Any]:
    """faust settings derived from ours, including the broker-compatibility ones.

    With ``broker_compat='tansu'`` every producer batch holds one record: Tansu answers
    ListOffsets(latest) with the base offset of the last batch + 1, so a changelog written in
    multi-record batches looks shorter than it is and faust's table recovery stops early,
    silently losing per-patient state after a rebalance. Tansu also fails aiokafka's
    InitProducerId, so the guarantee stays at-least-once (results are de-duplicated downstream),
    and it answers a long-poll fetch only at its deadline (see :mod:`streams.faust_compat`).
    """
    config: dict[str, Any] = {
        "broker": f"kafka://{settings.kafka_url}",
        "store": "memory://",
        "web_enabled": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": max(settings.session_timeout_s / 6.0, 0.5),
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "datadir": str(Path(settings.worker_data_dir)),
        "table_standby_replicas": 0,
        "producer_max_request_size": max(settings.max_chunk_bytes * 2, 1_048_576),
        "consumer_max_fetch_size": max(settings.max_chunk_bytes * 4, 4_194_304),
    }
    if settings.tansu_compat:
        config["producer_max_batch_size"] = 1
    return config


class EcgHandler:
    """Handles one ECG chunk message: decode, process, publish, count."""

    #: The signal kind this handler's topic carries; other kinds are dead-lettered.
    kind = "ecg"

    def __init__(
        self,
        settings: Settings,
        table: Any,
        topics: dict[str, faust.TopicT],
        sink: RedisSink,
        metrics: WorkerMetrics,
        models: ModelCache[BeatClassifier],
        limits: LimitsCache | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.limits = limits
        self.table = table
        self.topics = topics
        self.sink = sink
        self.metrics = metrics
        self.refetcher = ChunkRefetcher(
            settings.kafka_url, max_fetch_bytes=max(settings.max_chunk_bytes * 4, 4_194_304)
        )
        self._cache: dict[bytes, tuple[bytes, Any]] = {}
        self.lag = LagTracker(settings.topic_ecg, metrics)

    async def handle(
        self, key: bytes | None, value: bytes, topic: str, partition: int, offset: int
    ) -> None:
        """Process one message; a bad one is dead-lettered and the stream goes on."""
        t0 = time.perf_counter()
        chunk = await self.decode(key, value, topic, partition, offset)
        if chunk is None:
            return
        self.metrics.stage_seconds.labels(stage="decode").observe(time.perf_counter() - t0)
        state: SourcePosition | None = self.load_pickled(chunk.patient_id.encode())
        if state is not None and skipped_over(state, chunk, partition, offset):
            await self.repair_gap(state, chunk, topic, partition, offset)
        await self.apply(chunk, key, value, topic, partition, offset)

    async def decode(
        self, key: bytes | None, value: bytes, topic: str, partition: int, offset: int
    ) -> SampleChunk | None:
        """The message's chunk, or ``None`` after dead-lettering a bad message."""
        try:
            chunk = SampleChunk.decode(value, max_bytes=self.settings.max_chunk_bytes)
            if chunk.kind != self.kind:
                raise SchemaError("invalid_field", f"kind {chunk.kind!r} on the {self.kind} topic")
            if key is not None and key != chunk.patient_id.encode():
                raise SchemaError("invalid_field", "message key differs from patient_id")
        except SchemaError as error:
            await self.dead_letter(error, key, value, topic, partition, offset)
            return None
        return chunk

    async def repair_gap(
        self, state: SourcePosition, chunk: SampleChunk, topic: str, partition: int, offset: int
    ) -> None:
        """Read back and process the patient's chunks the consumer skipped (see gap_repair).

        Subclasses for other signal kinds get this for free: it only reads the state's source
        position (:class:`streams.processor.SourcePosition`) and calls :meth:`apply`.
        """
        key = chunk.patient_id.encode()
        start = state.source_offset + 1
        try:
            records = await self.refetcher.fetch(topic, partition, start, offset, key)
        except (KafkaError, OSError, TimeoutError) as exc:
            self.metrics.broker_errors.labels(operation="refetch").inc()
            log.warning("re-reading skipped offsets failed (%s)", type(exc).__name__)
            return
        repaired = 0
        for record in records:
            missing = await self.decode(key, record.value, topic, partition, record.offset)
            current: SourcePosition | None = self.load_pickled(key)
            if (
                missing is None
                or current is None
                or not skipped_over(current, chunk, partition, offset)
            ):
                continue
            if missing.stream_id != current.stream_id or missing.seq < current.next_seq:
                continue  # already in the state
            await self.apply(missing, key, record.value, topic, partition, record.offset)
            repaired += 1
        self.metrics.chunks_reread.inc(repaired)
        log.warning(
            "consumer skipped offsets %d-%d of partition %d; re-read %d chunk(s) of the patient",
            start,
            offset - 1,
            partition,
            repaired,
        )

    async def apply(
        self,
        chunk: SampleChunk,
        key: bytes | None,
        value: bytes,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Process a decoded chunk against the patient's state; publish and store the result.

        The same for every signal kind: :meth:`process` (the kind's stage code) and
        :meth:`count_processed` (its own metrics) are what a subclass overrides. The stored
        state records ``partition`` and ``offset`` (its source position), which :meth:`handle`
        compares with the next chunk's to find skipped records.
        """
        m = self.metrics
        t1 = time.perf_counter()
        table_key = chunk.patient_id.encode()
        state = self.load_pickled(table_key)
        try:
            result, new_state = await self.process(state, chunk)
        except Exception as exc:  # a stage bug must not stop the worker
            log.exception("%s processing failed (%s)", self.kind, type(exc).__name__)
            failure = SchemaError("processing_error", type(exc).__name__)
            await self.dead_letter(failure, key, value, topic, partition, offset)
            return
        t2 = time.perf_counter()
        m.stage_seconds.labels(stage="detect").observe(t2 - t1)
        m.chunks.labels(outcome=result.outcome).inc()
        if result.error is not None:
            await self.dead_letter(result.error, key, value, topic, partition, offset)
            return
        assert result.outputs is not None
        assert new_state is not None
        if result.restarted:
            m.discontinuities.inc()
            assert state is not None
            log.warning(
                "stream discontinuity (topic %s partition %d offset %d): expected seq %d "
                "sample %d, got seq %d sample %d; the patient's monitor restarts",
                topic,
                partition,
                offset,
                state.next_seq,
                state.next_sample,
                chunk.seq,
                chunk.start_sample,
            )
        await self.publish(chunk, result.outputs)
        if result.outcome == "processed":
            m.samples.inc(chunk.n_samples)
            for alert in result.outputs.alerts:
                m.alerts.labels(alert.alarm_type, alert.priority, alert.state).inc()
            new_state.source_partition = partition
            new_state.source_offset = offset
            # Assigning the value writes the table's changelog; faust flushes the producer
            # (outputs and changelog) before it commits the source offset.
            self.store_pickled(table_key, new_state)
            self.count_processed(chunk, result.outputs)
        m.stage_seconds.labels(stage="publish").observe(time.perf_counter() - t2)
        if chunk.sent_unix_s > 0:
            m.end_to_end_seconds.observe(max(0.0, time.time() - chunk.sent_unix_s))

    async def process(self, state: Any, chunk: SampleChunk) -> tuple[ChunkResult, Any]:
        """The ECG stage code on one chunk: the result and the patient's new state.

        ``state`` is what the table holds for the patient (:meth:`load_pickled`): a
        :class:`~streams.processor.PatientState` here, the kind's own state in a subclass.
        """
        classifier = await self.models.ensure()
        self.metrics.set_model_version(BEATS, None if classifier is None else classifier.version)
        limits = None if self.limits is None else await self.limits.get(chunk.patient_id)
        result = process_chunk(
            state, chunk, mains_hz=self.settings.mains_hz, classifier=classifier, limits=limits
        )
        return result, result.state

    def count_processed(self, chunk: SampleChunk, outputs: ChunkOutputs) -> None:
        """ECG metrics of a processed chunk: beats by label, the patient gauges."""
        m = self.metrics
        if outputs.beats is not None:
            for beat in outputs.beats.beats:
                m.beats.labels(label=beat.label or "none").inc()
        m.patients.set(len(self.table))
        vitals = outputs.vitals
        m.patient.update(
            chunk.patient_id, time_unix_s=time.time(),
            heart_rate_bpm=vitals.heart_rate_bpm, n_alarms=len(vitals.active_alarms),
        )  # fmt: skip

    def load_pickled(self, key: bytes) -> Any:
        """The cached state object while the table still holds what this handler wrote.

        The table keeps pickled bytes (written to its changelog on every assignment). After a
        recovery or a rebalance the table holds other bytes objects, so the cache misses and the
        state is unpickled from what the table recovered.
        """
        raw = self.table.get(key)
        if raw is None:
            self._cache.pop(key, None)
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] is raw:
            return cached[1]
        state = pickle.loads(raw)  # our own changelog, written only by workers
        self._cache[key] = (raw, state)
        return state

    def store_pickled(self, key: bytes, state: object) -> None:
        """Pickle ``state`` into the table and keep the object as the cached one."""
        raw = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        self.table[key] = raw
        self._cache[key] = (raw, state)

    async def publish(self, chunk: SampleChunk, outputs: ChunkOutputs) -> None:
        """Send the chunk's results to Kafka (buffered) and Redis.

        Kafka sends go through faust's producer buffer (``send_soon``); faust flushes it before
        it commits the source offset, so results are never behind a committed offset.
        """
        key = chunk.patient_id.encode()
        if outputs.beats is not None:
            self.topics["beats"].send_soon(key=key, value=outputs.beats.encode())
        self.topics["vitals"].send_soon(key=key, value=outputs.vitals.encode())
        for alert in outputs.alerts:
            self.topics["alerts"].send_soon(key=key, value=alert.encode())
        self.sink.queue_vitals(outputs.vitals)
        if outputs.alerts:
            try:
                await self.sink.write_alerts(outputs.alerts)
            except (RedisError, OSError) as exc:
                self.metrics.redis_errors.labels(operation="alerts").inc()
                log.warning("redis alert write failed (%s)", type(exc).__name__)

    async def flush_vitals(self) -> None:
        """Write the queued vitals to Redis (run on a timer)."""
        try:
            await self.sink.flush_vitals()
        except (RedisError, OSError) as exc:
            self.metrics.redis_errors.labels(operation="vitals").inc()
            log.warning("redis vitals write failed (%s)", type(exc).__name__)

    async def dead_letter(
        self,
        error: SchemaError,
        key: bytes | None,
        value: bytes,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Send the message to the dead-letter topic, count it, log the reason (no payload)."""
        self.metrics.dead_letters.labels(reason=error.reason).inc()
        if error.reason != "duplicate":
            self.metrics.chunks.labels(outcome="rejected").inc()
        log.warning(
            "dead letter: %s (topic %s partition %d offset %d)",
            error.reason,
            topic,
            partition,
            offset,
        )
        letter = DeadLetter.for_payload(
            error, value, topic=topic, partition=partition, offset=offset, time_unix_s=time.time()
        )
        self.topics["dead_letters"].send_soon(key=key or b"", value=letter.encode())


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the worker's faust app on ``settings`` with metrics on ``registry``."""
    apply_fixes()
    set_fetch_max_wait(TANSU_FETCH_MAX_WAIT_MS if settings.tansu_compat else None)
    app = faust.App(settings.app_id, **faust_config(settings))
    keep_queued_on_resume(app.flow_control)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    ecg_topic = app.topic(settings.topic_ecg, partitions=settings.partitions, **raw)
    topics = {
        "beats": app.topic(settings.topic_beats, partitions=settings.partitions, **raw),
        "vitals": app.topic(settings.topic_vitals, partitions=settings.partitions, **raw),
        "alerts": app.topic(settings.topic_alerts, partitions=settings.partitions, **raw),
        "dead_letters": app.topic(
            settings.topic_dead_letters, partitions=settings.partitions, **raw
        ),
    }
    table = app.Table(
        "patients",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
    )
    metrics = WorkerMetrics(
        registry if registry is not None else CollectorRegistry(),
        max_patients=settings.metrics_max_patients,
    )
    app.sensors.add(MetricsSensor(metrics))
    redis = Redis.from_url(settings.redis_url)
    sink = RedisSink(
        redis,
        prefix=settings.redis_key_prefix,
        alerts_stream=settings.redis_alerts_stream,
        alerts_maxlen=settings.redis_alerts_maxlen,
    )
    models = ModelCache(
        redis, beat_kind(), prefix=settings.redis_key_prefix, default_path=settings.beats_model
    )
    limits = LimitsCache(redis, prefix=settings.redis_key_prefix)
    handler = EcgHandler(settings, table, topics, sink, metrics, models, limits)

    @app.agent(ecg_topic, name="ecg")
    async def process_ecg(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            await handler.handle(event.key, event.value, msg.topic, msg.partition, msg.offset)
            handler.lag.processed(msg.partition, msg.offset)

    _add_pcg_agent(app, settings, topics, sink, metrics, models, raw)

    @app.timer(interval=VITALS_FLUSH_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def flush_vitals() -> None:
        await handler.flush_vitals()

    @app.timer(interval=LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def export_lag() -> None:
        metrics.rebalancing.set(1 if app.rebalancing else 0)
        handler.lag.export(app.consumer)

    @app.task  # type: ignore[untyped-decorator]
    async def watch_models() -> None:
        await models.watch(settings.model_poll_s)

    @app.on_before_shutdown.connect
    async def close_refetcher(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await handler.refetcher.close()

    return app


def _add_pcg_agent(
    app: faust.App, settings: Settings, topics: dict[str, faust.TopicT], sink: RedisSink,
    metrics: WorkerMetrics, models: ModelCache[BeatClassifier], raw: dict[str, Any],
) -> None:  # fmt: skip
    """The heart-sound agent: its own topic and table (``pcg_patients``), the same outputs."""
    from streams.pcg_handler import PcgHandler

    pcg_topic = app.topic(settings.topic_pcg, partitions=settings.partitions, **raw)
    table = app.Table(
        "pcg_patients", default=None, partitions=settings.partitions, key_type=bytes,
        value_type=bytes,
    )  # fmt: skip
    pcg_models = ModelCache(
        models.client, pcg_kind(), prefix=settings.redis_key_prefix, default_path=settings.pcg_model
    )
    handler = PcgHandler(settings, table, topics, sink, metrics, models, pcg_models=pcg_models)

    @app.task  # type: ignore[untyped-decorator]
    async def watch_pcg_models() -> None:
        await pcg_models.watch(settings.model_poll_s)

    @app.agent(pcg_topic, name="pcg")
    async def process_pcg(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            await handler.handle(event.key, event.value, msg.topic, msg.partition, msg.offset)
