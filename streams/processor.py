"""Per-patient chunk processing, independent of faust (so it is testable without a broker).

:func:`process_chunk` takes a patient's state (the faust table value) and one decoded chunk and
returns the new state and the messages to publish. It owns the stream-level rules:

* **Continuity.** A chunk is expected to continue the previous one of its stream
  (``stream_id``, ``seq`` and ``start_sample``). A chunk that starts elsewhere (a gap, a new
  stream, another record or sampling rate) restarts the patient's monitor there and is counted
  as a discontinuity; the old monitor is flushed first, so its last beats are published and
  its open alarms end where the old signal ended.
* **Redelivery.** Delivery is at least once: after a rebalance or a crash, chunks whose results
  are already in the state come again. The state keeps the published results of its last few
  chunks (the *outbox*); a redelivered chunk gets the same results re-published (consumers
  de-duplicate by beat sample and alert id) and does not touch the monitor.
* **Stale chunks** of the same stream older than the outbox are rejected as ``duplicate``.
* **Models.** The beat classifier is an argument (the worker's model cache hands in the
  current version for each chunk); it is never stored in the state. Each beat batch records
  the version that labelled it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cardiowatch.schemas import (
    Alert,
    BeatBatch,
    BeatRecord,
    SampleChunk,
    SchemaError,
    Vitals,
    alert_id,
)
from models.beats import BeatClassifier
from models.monitor import DETECTOR_VERSION, EcgMonitor, MonitorUpdate
from models.rhythm import LATCHING_KINDS

OUTBOX_CHUNKS = 16
STRIP_S = 4.0
#: Layout of the pickled :class:`PatientState`. 2: the monitor keeps a running dominant-beat
#: template (``BeatShape``) and the rate alarms it holds back during noise. 3: the arrhythmia
#: detector has ``af_skip_corr`` and keeps its AF measure through noise. 4: the beat
#: featurizer keeps the patient's beat template and P-wave history (fourth beat model). 5: the
#: arrhythmia detector's rules live in their own objects (bigeminy/trigeminy with a grace
#: period), the heart-rate average can restart on a sustained slowing, and the beat shape
#: and AF measure keep P-wave correlations. 6: the SVT rule keeps the previous beat's RR
#: interval (an onset is judged abrupt only against a trusted interval). 7: the beat
#: featurizer keeps a sinus RR history (for models that name its sinus columns). 8: the VT
#: rules' back-to-dominant and QRS-quality settings and run qualities, and the AF measure's
#: ``af_skip_label_corr`` (a version-7 state crashed the VT rule with an AttributeError), and
#: the state keeps its open alerts (``open_alerts``), so that a later layout can end them. A stored
#: state of another version (states pickled before the field existed read as 1) is dropped and
#: the patient restarts at the chunk (counted as a discontinuity; the beat count is kept), never
#: unpickled into a half-compatible monitor; the alarms it had open end where its signal ended.
ECG_STATE_VERSION = 8


@dataclass(frozen=True)
class ChunkOutputs:
    """Messages produced by one chunk."""

    seq: int
    beats: BeatBatch | None
    vitals: Vitals
    alerts: tuple[Alert, ...]


@dataclass
class PatientState:
    """Everything the worker keeps for one patient (a faust table value; pickled)."""

    patient_id: str
    source: str
    stream_id: str
    fs_hz: float
    n_leads: int
    monitor: EcgMonitor
    next_seq: int
    next_sample: int
    beats_total: int = 0
    # alarm type -> its latest raise or update alert, without its evidence strip: the open
    # alarms (active_alarms), and what it takes to end them when this state is dropped (a
    # stored state of another layout)
    open_alerts: dict[str, Alert] = field(default_factory=dict)
    outbox: deque[ChunkOutputs] = field(default_factory=lambda: deque(maxlen=OUTBOX_CHUNKS))
    # Lead 1 of the last STRIP_S seconds as sent (int16 ADC units or float32 physical): half the
    # size of float32 for recordings, and this state is written to the changelog every chunk.
    strip: npt.NDArray[Any] = field(default_factory=lambda: np.zeros(0, np.int16))
    # Where the last processed chunk sits in the source topic (set by the worker; -1 offline).
    # A later chunk of the same stream whose seq jumps ahead, at a larger offset of the same
    # partition, means the consumer skipped records: see streams/gap_repair.py.
    source_partition: int = -1
    source_offset: int = -1
    state_version: int = ECG_STATE_VERSION

    @property
    def active_alarms(self) -> dict[str, str]:
        """Alarm type -> alert id of the alarms open now."""
        return {kind: alert.id for kind, alert in self.open_alerts.items()}

    def compatible(self) -> bool:
        """Whether this (unpickled) state was written by this code's layout."""
        version: int = vars(self).get("state_version", 1)  # old pickles lack the field
        return version == ECG_STATE_VERSION

    @classmethod
    def start(cls, chunk: SampleChunk, *, mains_hz: float) -> PatientState:
        """A fresh state whose monitor starts at ``chunk``'s first sample."""
        n_leads = len(chunk.leads)
        monitor = EcgMonitor(
            chunk.fs_hz, n_leads=n_leads, mains_hz=mains_hz, start_index=chunk.start_sample
        )
        return cls(
            patient_id=chunk.patient_id,
            source=chunk.source,
            stream_id=chunk.stream_id,
            fs_hz=chunk.fs_hz,
            n_leads=n_leads,
            monitor=monitor,
            next_seq=chunk.seq,
            next_sample=chunk.start_sample,
        )

    def restart(self, chunk: SampleChunk, *, mains_hz: float) -> PatientState:
        """A new state at ``chunk`` that keeps the patient's beat count and open alarms."""
        fresh = PatientState.start(chunk, mains_hz=mains_hz)
        fresh.beats_total = self.beats_total
        fresh.open_alerts = dict(self.open_alerts)
        return fresh

    def continues(self, chunk: SampleChunk) -> bool:
        """Whether ``chunk`` is the next one of the same signal."""
        return (
            chunk.stream_id == self.stream_id
            and chunk.start_sample == self.next_sample
            and chunk.fs_hz == self.fs_hz
            and len(chunk.leads) == self.n_leads
            and chunk.source == self.source
        )


class SourcePosition(Protocol):
    """What :func:`skipped_over` reads of a patient's state (ECG and heart-sound states alike)."""

    stream_id: str
    next_seq: int
    source_partition: int
    source_offset: int


def skipped_over(state: SourcePosition, chunk: SampleChunk, partition: int, offset: int) -> bool:
    """Whether chunks of ``state``'s stream lie unprocessed before ``chunk`` in its partition.

    True when ``chunk`` (at ``offset`` of ``partition``) continues the patient's stream with a
    sequence number ahead of the next expected one and the records between the state's last
    chunk and this one are still in the partition to be read again.
    """
    return (
        state.source_offset >= 0
        and state.source_partition == partition
        and chunk.stream_id == state.stream_id
        and chunk.seq > state.next_seq
        and offset > state.source_offset + 1
    )


@dataclass(frozen=True)
class ChunkResult:
    """The outcome of one chunk: ``processed``, ``redelivered`` or ``rejected``."""

    outcome: str
    state: PatientState | None
    outputs: ChunkOutputs | None = None
    error: SchemaError | None = None
    restarted: bool = False


def process_chunk(
    state: PatientState | None,
    chunk: SampleChunk,
    *,
    mains_hz: float = 60.0,
    now_unix_s: float | None = None,
    classifier: BeatClassifier | None = None,
    limits: dict[str, float] | None = None,
) -> ChunkResult:
    """Apply ``chunk`` to ``state``; see the module docstring for the rules.

    ``classifier`` labels the beats that become final in this chunk (``None``: no labels).
    ``limits`` are the patient's alarm limits (:mod:`streams.limits`), applied before the
    chunk (``None``: keep the monitor's).
    """
    now = time.time() if now_unix_s is None else now_unix_s
    if state is not None and chunk.stream_id == state.stream_id and chunk.seq < state.next_seq:
        for outputs in state.outbox:
            if outputs.seq == chunk.seq:
                return ChunkResult("redelivered", state, outputs)
        error = SchemaError(
            "duplicate", f"chunk seq {chunk.seq} is older than the next expected {state.next_seq}"
        )
        return ChunkResult("rejected", state, error=error)

    restarted = state is not None and not state.continues(chunk)
    ended: MonitorUpdate | None = None
    orphans: list[Alert] = []
    if state is not None and not state.compatible():
        # Stale layout: start afresh, and end the alarms it had open (its monitor is not to be
        # trusted to flush them) where its signal ended.
        orphans = _end_open_alerts(state, now)
        fresh = PatientState.start(chunk, mains_hz=mains_hz)
        fresh.beats_total, state, restarted = state.beats_total, fresh, True
    elif state is None:
        state = PatientState.start(chunk, mains_hz=mains_hz)
    elif restarted:
        # Close the old signal: its last beats, and every alarm still open ends there.
        ended = state.monitor.flush(classifier)
        state = state.restart(chunk, mains_hz=mains_hz)

    if limits is not None:
        state.monitor.set_limits(limits)
    x_mv = chunk.physical()
    update = state.monitor.process(x_mv, classifier)
    if ended is not None:
        update = MonitorUpdate(
            end_sample=update.end_sample,
            beats=[*ended.beats, *update.beats],
            heart_rate_bpm=update.heart_rate_bpm,
            signal_ok=update.signal_ok,
            alarms=[*ended.alarms, *update.alarms],
            model_version=update.model_version,
        )
    _update_strip(state, chunk)
    outputs = _outputs(state, chunk, update, now, orphans)
    state.next_seq = chunk.seq + 1
    state.next_sample = chunk.end_sample
    state.outbox.append(outputs)
    return ChunkResult("processed", state, outputs, restarted=restarted)


def _end_open_alerts(stale: PatientState, now: float) -> list[Alert]:
    """End events for the alarms a dropped state had open, at the sample its signal ended.

    Only the plain fields of the state are read (``open_alerts``, ``next_sample``), which
    unpickle whatever the monitor's layout; a state older than ``open_alerts`` ends nothing.
    """
    fields = vars(stale)
    end = int(fields.get("next_sample", 0))
    ended = []
    for alert in fields.get("open_alerts", {}).values():
        last = max(end, alert.onset_sample)
        ended.append(
            replace(alert, state="end", end_sample=last, sample_index=last, heart_rate_bpm=None,
                    time_unix_s=now)
        )  # fmt: skip
    return ended


def _update_strip(state: PatientState, chunk: SampleChunk) -> None:
    """Keep the last ``STRIP_S`` seconds of lead 1 as the evidence strip of alerts."""
    keep = int(STRIP_S * state.fs_hz)
    lead = chunk.samples[:, 0]
    if state.strip.dtype != lead.dtype:
        state.strip = np.zeros(0, lead.dtype)
    state.strip = np.concatenate([state.strip, lead])[-keep:]


def _strip_mv(state: PatientState, chunk: SampleChunk) -> list[float]:
    """The evidence strip in mV, rounded to the microvolt."""
    x = state.strip.astype(np.float64)
    if state.strip.dtype.kind == "i":
        x = (x - chunk.baseline[0]) / chunk.gain[0]
    return [round(float(v), 3) for v in x]


def _outputs(
    state: PatientState,
    chunk: SampleChunk,
    update: MonitorUpdate,
    now: float,
    ended: list[Alert] | None = None,
) -> ChunkOutputs:
    """The chunk's messages; ``ended`` are end events published before the monitor's."""
    beats = None
    if update.beats:
        state.beats_total += len(update.beats)
        beats = BeatBatch(
            patient_id=state.patient_id,
            source=state.source,
            fs_hz=state.fs_hz,
            chunk_seq=chunk.seq,
            beats=[BeatRecord(b.sample_index, round(b.quality, 3), b.label) for b in update.beats],
            detector_version=DETECTOR_VERSION,
            model_version=update.model_version,
        )
    alerts = list(ended or [])
    strip_start = chunk.end_sample - len(state.strip)
    for event in update.alarms:
        aid = alert_id(state.patient_id, event.kind, event.onset_sample)
        alerts.append(
            Alert(
                id=aid,
                patient_id=state.patient_id,
                alarm_type=event.kind,
                state=event.state,
                priority=event.priority,
                onset_sample=event.onset_sample,
                end_sample=event.end_sample,
                sample_index=event.sample_index,
                fs_hz=state.fs_hz,
                source=state.source,
                heart_rate_bpm=event.heart_rate_bpm,
                evidence={
                    "heart_rate_bpm": event.heart_rate_bpm,
                    "latching": event.kind in LATCHING_KINDS,
                    "strip": {
                        "start_sample": strip_start,
                        "fs_hz": state.fs_hz,
                        "mv": _strip_mv(state, chunk),
                    },
                },
                detector_version=DETECTOR_VERSION,
                time_unix_s=now,
            )
        )
        if event.state == "end":
            state.open_alerts.pop(event.kind, None)
        elif event.state == "raise" or event.kind in state.open_alerts:
            # without the strip: this state is pickled to the changelog every chunk
            evidence = {k: v for k, v in alerts[-1].evidence.items() if k != "strip"}
            state.open_alerts[event.kind] = replace(alerts[-1], evidence=evidence)
    vitals = Vitals(
        patient_id=state.patient_id,
        source=state.source,
        fs_hz=state.fs_hz,
        sample_index=chunk.end_sample,
        heart_rate_bpm=None if update.heart_rate_bpm is None else round(update.heart_rate_bpm, 1),
        signal_ok=update.signal_ok,
        beats_total=state.beats_total,
        active_alarms=sorted(state.open_alerts),
        time_unix_s=now,
    )
    return ChunkOutputs(chunk.seq, beats, vitals, tuple(alerts))
