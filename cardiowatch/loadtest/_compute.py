"""The compute limit: the worker's per-chunk code in a tight loop, no broker, one core.

Per chunk, as :class:`streams.app.EcgHandler` does it: decode the message, unpickle nothing
(the worker keeps the live object), :func:`process_chunk` with the beat classifier, pickle the
state for the changelog, encode the output messages.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import torch

from cardiowatch.schemas import SampleChunk
from cardiowatch.settings import Settings
from models.beats import BeatClassifier
from simulators.patients import load_records, mitdb_dir, record_patients
from simulators.replay import make_chunk
from streams.processor import PatientState, process_chunk


def compute_limit(
    settings: Settings, records: tuple[str, ...], *, patients: int = 12, duration_s: float = 60.0
) -> dict[str, Any]:
    """Chunks per CPU second of the stage code, and what that is in real-time patients."""
    torch.set_num_threads(1)
    torch.backends.mkldnn.set_flags(False)  # type: ignore[no-untyped-call]  # as the worker
    classifier = (
        BeatClassifier.from_bytes(Path(settings.beats_model).read_bytes())
        if settings.beats_model
        else None
    )
    vps = record_patients(load_records(mitdb_dir(settings), records), patients, loop=True)
    chunk_samples = round(settings.chunk_s * vps[0].source.info.fs_hz)
    payloads = []
    for _ in range(round(duration_s / settings.chunk_s)):
        for vp in vps:
            made = make_chunk(vp, chunk_samples)
            if made is not None:
                payloads.append(made[0].encode())
    states: dict[str, PatientState | None] = {}
    state_bytes = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for payload in payloads:
        chunk = SampleChunk.decode(payload, max_bytes=settings.max_chunk_bytes)
        result = process_chunk(
            states.get(chunk.patient_id), chunk, mains_hz=settings.mains_hz, classifier=classifier
        )
        states[chunk.patient_id] = result.state
        raw = pickle.dumps(result.state, protocol=pickle.HIGHEST_PROTOCOL)
        state_bytes += len(raw)
        assert result.outputs is not None
        if result.outputs.beats is not None:
            result.outputs.beats.encode()
        result.outputs.vitals.encode()
        for alert in result.outputs.alerts:
            alert.encode()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    per_cpu_s = len(payloads) / cpu
    return {
        "chunks": len(payloads),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "ms_per_chunk": round(1000 * cpu / len(payloads), 3),
        "chunks_per_cpu_s": round(per_cpu_s, 1),
        "realtime_patients_per_core": round(per_cpu_s * settings.chunk_s, 1),
        "state_bytes_per_chunk": round(state_bytes / len(payloads)),
        "classifier": None if classifier is None else classifier.version,
    }
