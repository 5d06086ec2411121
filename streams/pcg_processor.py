"""Per-patient heart-sound chunk processing, independent of faust (mirrors ``processor.py``).

The stream rules are those of the ECG path (:mod:`streams.processor`): a chunk continues its
stream or restarts the patient's monitor (the old one is flushed first, so its alarms end);
redelivered chunks get their stored outputs again (outbox of the last ``OUTBOX_CHUNKS``); older
ones are rejected as ``duplicate``. The window classifier is an argument, never in the state.

Sample indices of heart-sound alerts and vitals are at the monitor's internal rate (the
model's ``WindowSpec.fs_hz``, 1000 Hz), which the messages' ``fs_hz`` states.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from cardiowatch.schemas import Alert, SampleChunk, SchemaError, Vitals, alert_id
from models.pcg import (
    MESSAGES,
    PCG_DETECTOR_VERSION,
    PcgClassifier,
    PcgMonitor,
    PcgUpdate,
    WindowSpec,
)
from streams.processor import OUTBOX_CHUNKS, ChunkOutputs, ChunkResult

__all__ = ["PCG_STATE_VERSION", "PcgState", "process_pcg_chunk"]

#: Layout of the pickled :class:`PcgState`. 2: the windower keeps running per-band sums
#: (``WindowSpec.norm == "running"``). 3: the S1/S2 segmenter keeps each pending peak's noise
#: cost. A stored state of another version (states pickled before
#: the field existed read as 1), or one whose monitor was built for another window spec, is
#: dropped and the patient restarts at the chunk (counted as a discontinuity), never unpickled
#: into a half-compatible monitor.
PCG_STATE_VERSION = 3


@dataclass
class PcgState:
    """Everything the worker keeps for one heart-sound patient (a faust table value; pickled)."""

    patient_id: str
    source: str
    stream_id: str
    fs_hz: float
    monitor: PcgMonitor
    next_seq: int
    next_sample: int
    s1_total: int = 0
    active_alarms: dict[str, str] = field(default_factory=dict)  # alarm type -> alert id
    signal_ok: bool = True
    outbox: deque[ChunkOutputs] = field(default_factory=lambda: deque(maxlen=OUTBOX_CHUNKS))
    state_version: int = PCG_STATE_VERSION
    # Where the last processed chunk sits in the source topic (set by the worker; -1 offline),
    # for the gap repair (streams/gap_repair.py). Older pickles take these class defaults.
    source_partition: int = -1
    source_offset: int = -1

    def compatible(self, spec: WindowSpec) -> bool:
        """Whether this (unpickled) state was written by this code for this window spec."""
        version = vars(self).get("state_version", 1)  # not the class default: old pickles lack it
        return version == PCG_STATE_VERSION and self.monitor.spec == spec

    @classmethod
    def start(cls, chunk: SampleChunk, spec: WindowSpec) -> PcgState:
        """A fresh state whose monitor starts at ``chunk``'s first sample."""
        monitor = PcgMonitor(chunk.fs_hz, spec, start_index=chunk.start_sample)
        return cls(chunk.patient_id, chunk.source, chunk.stream_id, chunk.fs_hz, monitor,
                   chunk.seq, chunk.start_sample)  # fmt: skip

    def continues(self, chunk: SampleChunk) -> bool:
        """Whether ``chunk`` is the next one of the same signal."""
        return (
            chunk.stream_id == self.stream_id
            and chunk.start_sample == self.next_sample
            and chunk.fs_hz == self.fs_hz
            and chunk.source == self.source
        )


def process_pcg_chunk(
    state: PcgState | None,
    chunk: SampleChunk,
    classifier: PcgClassifier | None,
    *,
    spec: WindowSpec | None = None,
    now_unix_s: float | None = None,
) -> tuple[ChunkResult, PcgState | None]:
    """Apply a heart-sound ``chunk`` to ``state``.

    Returns the result (its ``state`` field is unused, ``None``) and the new state.
    """
    now = time.time() if now_unix_s is None else now_unix_s
    if state is not None and chunk.stream_id == state.stream_id and chunk.seq < state.next_seq:
        for outputs in state.outbox:
            if outputs.seq == chunk.seq:
                return ChunkResult("redelivered", None, outputs), state
        error = SchemaError(
            "duplicate", f"chunk seq {chunk.seq} is older than the next expected {state.next_seq}"
        )
        return ChunkResult("rejected", None, error=error), state
    if len(chunk.leads) != 1:
        error = SchemaError("invalid_field", f"a heart sound has 1 channel, not {len(chunk.leads)}")
        return ChunkResult("rejected", None, error=error), state
    spec = spec or (classifier.spec if classifier is not None else WindowSpec())
    restarted = state is not None and not state.continues(chunk)
    alerts: list[Alert] = []
    if state is not None and not state.compatible(spec):
        state, restarted = PcgState.start(chunk, spec), True  # stale layout: start afresh
    elif state is None:
        state = PcgState.start(chunk, spec)
    elif restarted:
        alerts += _alerts(state, state.monitor.flush(classifier), now)
        fresh = PcgState.start(chunk, spec)
        fresh.s1_total, fresh.active_alarms = state.s1_total, dict(state.active_alarms)
        state = fresh
    update = state.monitor.process(chunk.physical()[:, 0], classifier)
    alerts += _alerts(state, update, now)
    if update.windows:
        state.signal_ok = update.windows[-1].usable
    state.s1_total += sum(s.sound == "S1" for s in update.sounds)
    vitals = Vitals(
        patient_id=state.patient_id,
        source=state.source,
        fs_hz=spec.fs_hz,
        sample_index=update.end_sample,
        heart_rate_bpm=None if update.heart_rate_bpm is None else round(update.heart_rate_bpm, 1),
        signal_ok=state.signal_ok,
        beats_total=state.s1_total,
        active_alarms=sorted(state.active_alarms),
        time_unix_s=now,
    )
    outputs = ChunkOutputs(chunk.seq, None, vitals, tuple(alerts))
    state.next_seq = chunk.seq + 1
    state.next_sample = chunk.end_sample
    state.outbox.append(outputs)
    return ChunkResult("processed", None, outputs, restarted=restarted), state


def _alerts(state: PcgState, update: PcgUpdate, now: float) -> list[Alert]:
    out = []
    fs_hz = state.monitor.spec.fs_hz
    for event in update.alarms:
        aid = alert_id(state.patient_id, event.kind, event.onset_sample)
        if event.state == "raise":
            state.active_alarms[event.kind] = aid
        else:
            state.active_alarms.pop(event.kind, None)
        out.append(
            Alert(
                id=aid,
                patient_id=state.patient_id,
                alarm_type=event.kind,
                state=event.state,
                priority=event.priority,
                onset_sample=event.onset_sample,
                end_sample=event.end_sample,
                sample_index=event.sample_index,
                fs_hz=fs_hz,
                source=state.source,
                heart_rate_bpm=update.heart_rate_bpm,
                evidence={
                    "message": MESSAGES[event.kind],
                    "probability": event.probability,
                    "heart_rate_bpm": update.heart_rate_bpm,
                    "model_version": update.model_version,
                },
                detector_version=PCG_DETECTOR_VERSION,
                time_unix_s=now,
            )
        )
    return out
