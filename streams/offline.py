"""The offline twin: run a whole record through the stream's own code, chunk by chunk.

``cardiowatch analyze ecg RECORD --json OUT`` calls :func:`analyze_record`. It builds the same
:class:`~cardiowatch.schemas.SampleChunk` messages the simulator sends and feeds them to the same
:func:`~streams.processor.process_chunk` the worker runs, so offline and streaming results are
identical by construction. With a beat classifier, the beats carry its labels, as the
worker's do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cardiowatch.schemas import alert_id
from models.beats import BeatClassifier
from models.monitor import MonitorUpdate
from simulators.replay import VirtualPatient, make_chunk
from simulators.sources import ChunkSource, WfdbRecord, WfdbSource
from streams.processor import PatientState, process_chunk


def analyze_source(
    source: ChunkSource,
    *,
    chunk_s: float = 1.0,
    mains_hz: float = 60.0,
    classifier: BeatClassifier | None = None,
) -> dict[str, Any]:
    """Beats and alarms of a whole source, in the JSON layout of ``cardiowatch analyze ecg``.

    Each alarm carries ``raised_sample``: the end of the chunk whose processing published it
    (when a live viewer would see it with this chunking).
    """
    patient = VirtualPatient("offline", source)
    chunk_samples = max(1, round(chunk_s * source.info.fs_hz))
    state: PatientState | None = None
    beats: list[dict[str, Any]] = []
    alarms: dict[str, dict[str, Any]] = {}

    def collect_alarm(
        alarm_id: str,
        kind: str,
        state_name: str,
        priority: str,
        onset: int,
        end: int | None,
        published: int,
    ) -> None:
        entry = alarms.setdefault(
            alarm_id,
            {
                "type": kind,
                "onset_sample": onset,
                "end_sample": None,
                "priority": priority,
                "raised_sample": published,
            },
        )
        if state_name == "end":
            entry["end_sample"] = end
        entry["priority"] = priority

    while (made := make_chunk(patient, chunk_samples)) is not None:
        chunk, _ = made
        result = process_chunk(
            state, chunk, mains_hz=mains_hz, now_unix_s=0.0, classifier=classifier
        )
        state = result.state
        assert result.outputs is not None
        if result.outputs.beats is not None:
            beats.extend({"sample": b.sample, "label": b.label} for b in result.outputs.beats.beats)
        for alert in result.outputs.alerts:
            collect_alarm(
                alert.id,
                alert.alarm_type,
                alert.state,
                alert.priority,
                alert.onset_sample,
                alert.end_sample,
                chunk.end_sample,
            )
    if state is not None:
        final: MonitorUpdate = state.monitor.flush(classifier)
        beats.extend({"sample": b.sample_index, "label": b.label} for b in final.beats)
        for event in final.alarms:
            aid = alert_id(state.patient_id, event.kind, event.onset_sample)
            collect_alarm(
                aid,
                event.kind,
                event.state,
                event.priority,
                event.onset_sample,
                event.end_sample,
                final.end_sample,
            )
    return {
        "record": source.info.source,
        "fs_hz": source.info.fs_hz,
        "model_version": None if classifier is None else classifier.version,
        "beats": beats,
        "alarms": sorted(alarms.values(), key=lambda a: (a["onset_sample"], a["type"])),
    }


def analyze_record(
    path: Path,
    *,
    chunk_s: float = 1.0,
    mains_hz: float = 60.0,
    classifier: BeatClassifier | None = None,
) -> dict[str, Any]:
    """:func:`analyze_source` over a WFDB record at ``path`` (no extension)."""
    source = WfdbSource(WfdbRecord.load(path))
    return analyze_source(source, chunk_s=chunk_s, mains_hz=mains_hz, classifier=classifier)
