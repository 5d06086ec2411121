"""Build the list of virtual patients a replay sends, and run a replay against Kafka."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from cardiowatch.metrics import SimulatorMetrics
from cardiowatch.settings import Settings
from simulators.replay import ReplayStats, VirtualPatient, replay
from simulators.sources import WfdbRecord, WfdbSource

log = logging.getLogger(__name__)


def patient_id(index: int) -> str:
    """Virtual patient ids: ``p00000``, ``p00001``, ... (no record names, no real identifiers)."""
    return f"p{index:05d}"


def mitdb_dir(settings: Settings) -> Path:
    """Where the MIT-BIH Arrhythmia records are read from."""
    return Path(settings.data_dir) / "mitdb"


def load_records(directory: Path, names: Sequence[str]) -> list[WfdbRecord]:
    """Load each named record, with a clear error when one is missing."""
    records = []
    for name in names:
        path = directory / name
        if not path.with_suffix(".hea").exists():
            raise FileNotFoundError(
                f"record {name!r} not found in {directory}; set CARDIOWATCH_DATA or run "
                "'cardiowatch data fetch mitdb'"
            )
        records.append(WfdbRecord.load(path))
    return records


def record_patients(
    records: Sequence[WfdbRecord],
    n_patients: int,
    *,
    loop: bool = False,
    offset_step_s: float = 97.0,
    first_index: int = 0,
) -> list[VirtualPatient]:
    """``n_patients`` patients cycling over ``records``.

    When there are more patients than records, a record is reused with a time offset of
    ``offset_step_s`` per reuse, so that reused records are not in lock-step.
    """
    if not records:
        raise ValueError("no records to replay")
    patients = []
    for i in range(n_patients):
        record = records[i % len(records)]
        reuse = i // len(records)
        offset = int(reuse * offset_step_s * record.fs_hz)
        source = WfdbSource(record, offset_samples=offset, loop=loop)
        patients.append(VirtualPatient(patient_id(first_index + i), source))
    return patients


async def run_replay(
    settings: Settings,
    patients: Sequence[VirtualPatient],
    *,
    speed: float,
    duration_s: float | None,
    stop: asyncio.Event | None = None,
    on_round: Callable[[ReplayStats], None] | None = None,
    kind: str = "ecg",
    metrics: SimulatorMetrics | None = None,
) -> ReplayStats:
    """Replay ``patients`` into ``settings.topic_ecg`` (and annotations) on the broker.

    ``kind="pcg"``: into ``settings.topic_pcg``, without annotations.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_url,
        client_id="cardiowatch-simulator",
        linger_ms=5,
        acks=1,
        max_request_size=max(settings.max_chunk_bytes * 2, 1_048_576),
    )
    await producer.start()
    try:
        stats = await replay(
            producer,
            patients,
            topic=settings.topic_pcg if kind == "pcg" else settings.topic_ecg,
            annotation_topic=None if kind == "pcg" else settings.topic_annotations,
            chunk_s=settings.chunk_s,
            speed=speed,
            duration_s=duration_s,
            stop=stop,
            on_round=on_round,
            metrics=metrics,
        )
        await producer.flush()
    finally:
        await producer.stop()
    return stats
