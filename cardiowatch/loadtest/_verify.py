"""Check a load test's results against the offline twin: no alert and no state lost.

Every chunk sent is run again, in order, through the worker's own :func:`process_chunk` with
the same beat classifier. A patient whose state was lost (a worker took over without its table
state) restarts its monitor, so its beat count and alerts differ from the twin's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cardiowatch.schemas import SampleChunk, Vitals
from cardiowatch.settings import Settings
from models.beats import BeatClassifier
from streams.processor import PatientState, process_chunk


def expected(
    payloads: list[bytes], *, mains_hz: float, classifier: BeatClassifier | None
) -> tuple[int, set[tuple[str, str, int]]]:
    """Beat count after the last chunk and every alert event, as the offline twin sees them."""
    state: PatientState | None = None
    alerts: set[tuple[str, str, int]] = set()
    for payload in payloads:
        result = process_chunk(
            state, SampleChunk.decode(payload), mains_hz=mains_hz, classifier=classifier
        )
        state = result.state
        assert result.outputs is not None
        alerts |= {(a.id, a.state, a.sample_index) for a in result.outputs.alerts}
    return (0 if state is None else state.beats_total), alerts


def verify(
    settings: Settings,
    chunks: dict[str, list[bytes]],
    last_vitals: dict[str, Vitals],
    alert_events: dict[str, set[tuple[str, str, int]]],
) -> dict[str, Any]:
    """Compare every patient's last vitals and alert events with the offline twin."""
    classifier = (
        BeatClassifier.from_bytes(Path(settings.beats_model).read_bytes())
        if settings.beats_model
        else None
    )
    state_mismatch: list[str] = []
    details: list[dict[str, Any]] = []
    missing = unexpected = expected_alerts = 0
    for patient, payloads in sorted(chunks.items()):
        beats_total, alerts = expected(payloads, mains_hz=settings.mains_hz, classifier=classifier)
        seen = alert_events.get(patient, set())
        expected_alerts += len(alerts)
        missing += len(alerts - seen)
        unexpected += len(seen - alerts)
        vitals = last_vitals.get(patient)
        last_end = SampleChunk.decode(payloads[-1]).end_sample
        if vitals is None or vitals.sample_index != last_end or vitals.beats_total != beats_total:
            state_mismatch.append(patient)
            details.append({
                "patient": patient, "expected_beats_total": beats_total,
                "seen_beats_total": None if vitals is None else vitals.beats_total,
                "expected_last_sample": last_end,
                "seen_last_sample": None if vitals is None else vitals.sample_index,
            })  # fmt: skip
    return {
        "patients_checked": len(chunks),
        "patients_with_state_lost_or_unfinished": len(state_mismatch),
        "examples": details[:5],
        "alert_events_expected": expected_alerts,
        "alert_events_missing": missing,
        "alert_events_unexpected": unexpected,
        "ok": not state_mismatch and missing == 0 and unexpected == 0,
    }
