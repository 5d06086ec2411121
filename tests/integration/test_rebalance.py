"""Per-patient state stays exact when a worker joins and another one is SIGKILLed.

This is also the guard of the Tansu compatibility setting (``broker_compat='tansu'``,
one-record producer batches): without it, table recovery after the kill stops early, the
surviving worker restarts some patients from scratch, and the beat counts below differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cardiowatch.schemas import Alert, Vitals
from cardiowatch.settings import Settings
from simulators.build import synthetic_patients
from simulators.replay import VirtualPatient, make_chunk
from streams.processor import PatientState, process_chunk
from tests.integration.harness import fresh_settings, read_topic, replay, start_worker
from tests.integration.test_spine import beats_of

pytestmark = pytest.mark.integration

N_PATIENTS = 6
PHASE_S = 20
EVENTS = ["asystole@45:7"]


def make_patients() -> list[VirtualPatient]:
    """The same patients every call (seeded)."""
    return synthetic_patients(N_PATIENTS, events=EVENTS, seed=11, first_index=0)


def expected(n_chunks: int) -> dict[str, tuple[list[int], int, set[str]]]:
    """Per patient: beats, final ``beats_total`` and alert ids, computed in-process."""
    out = {}
    for patient in make_patients():
        state: PatientState | None = None
        beats: list[int] = []
        alert_ids: set[str] = set()
        for _ in range(n_chunks):
            made = make_chunk(patient, 360)
            assert made is not None
            result = process_chunk(state, made[0])
            state = result.state
            assert result.outputs is not None
            if result.outputs.beats is not None:
                beats += [b.sample for b in result.outputs.beats.beats]
            alert_ids |= {a.id for a in result.outputs.alerts}
        assert state is not None
        out[patient.patient_id] = (beats, state.beats_total, alert_ids)
    return out


def latest_vitals(msgs: list[tuple[bytes, bytes]]) -> dict[str, Vitals]:
    """The vitals message with the largest sample index, per patient."""
    out: dict[str, Vitals] = {}
    for _, value in msgs:
        v = Vitals.decode(value)
        if v.patient_id not in out or v.sample_index > out[v.patient_id].sample_index:
            out[v.patient_id] = v
    return out


def wait_vitals(settings: Settings, end_sample: int, timeout_s: float = 120.0) -> dict[str, Vitals]:
    """Latest vitals per patient once every patient reached ``end_sample``."""

    def done(msgs: list[tuple[bytes, bytes]]) -> bool:
        got = latest_vitals(msgs)
        return len(got) == N_PATIENTS and all(v.sample_index >= end_sample for v in got.values())

    msgs = read_topic(settings, settings.topic_vitals, until=done, timeout_s=timeout_s)
    assert done(msgs), {k: v.sample_index for k, v in latest_vitals(msgs).items()}
    return latest_vitals(msgs)


def test_state_exact_across_join_and_sigkill(services: Settings, tmp_path: Path) -> None:
    # This failed in about one run in eight until faust's flow-control resume stopped dropping
    # fetched messages at the end of table recovery (streams/faust_compat.py); skips that
    # remain are read back by streams/gap_repair.py.
    run_scenario(services, tmp_path)


def run_scenario(services: Settings, tmp_path: Path) -> None:
    """Join a worker, SIGKILL the other, and compare every patient with an in-process run."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = fresh_settings(services, tmp_path)
    assert settings.tansu_compat, "the embedded broker runs with the Tansu compatibility setting"
    patients = make_patients()
    first = start_worker(settings, tmp_path, "worker-a")
    second = None
    try:
        replay(settings, patients, duration_s=PHASE_S)
        wait_vitals(settings, PHASE_S * 360)

        second = start_worker(settings, tmp_path, "worker-b")  # joins: partitions move
        replay(settings, patients, duration_s=PHASE_S)
        wait_vitals(settings, 2 * PHASE_S * 360)

        first.kill()  # no commit, no flush, no leave-group
        replay(settings, patients, duration_s=PHASE_S)
        final = wait_vitals(settings, 3 * PHASE_S * 360, timeout_s=180)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    want = expected(3 * PHASE_S)
    beat_msgs = read_topic(settings, settings.topic_beats, until=lambda m: False, timeout_s=3)
    alert_msgs = read_topic(settings, settings.topic_alerts, until=lambda m: False, timeout_s=2)
    for pid, (beats, beats_total, alert_ids) in want.items():
        assert final[pid].beats_total == beats_total, (pid, second.log() if second else "")
        assert beats_of(beat_msgs, pid) == sorted(set(beats)), pid
        got_alerts = {Alert.decode(v).id for k, v in alert_msgs if k == pid.encode()}
        assert got_alerts == alert_ids, pid
    assert any(ids for _, _, ids in want.values()), "the scenario raises at least one alert"
