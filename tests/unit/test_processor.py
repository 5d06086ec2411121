"""Stream-level rules of per-patient processing, without a broker."""

from __future__ import annotations

import pickle

from cardiowatch.schemas import SampleChunk
from simulators.build import synthetic_patients
from simulators.replay import VirtualPatient, make_chunk
from streams.processor import (
    ECG_STATE_VERSION,
    OUTBOX_CHUNKS,
    PatientState,
    process_chunk,
    skipped_over,
)


def chunks(n: int, *, events: tuple[str, ...] = (), seed: int = 1) -> list[SampleChunk]:
    [patient] = synthetic_patients(1, events=list(events), seed=seed, first_index=0)
    return _take(patient, n)


def _take(patient: VirtualPatient, n: int) -> list[SampleChunk]:
    out = []
    for _ in range(n):
        made = make_chunk(patient, 360)
        assert made is not None
        out.append(made[0])
    return out


def run(cs: list[SampleChunk], state: PatientState | None = None) -> tuple[PatientState, list[int]]:
    beats: list[int] = []
    for c in cs:
        result = process_chunk(state, c, now_unix_s=0.0)
        assert result.outcome == "processed"
        state = result.state
        assert result.outputs is not None
        if result.outputs.beats is not None:
            beats += [b.sample for b in result.outputs.beats.beats]
    assert state is not None
    return state, beats


def test_beats_and_vitals_follow_the_signal() -> None:
    state, beats = run(chunks(20))
    assert state.next_seq == 20
    assert state.next_sample == 20 * 360
    assert state.beats_total == len(beats)
    hr = state.outbox[-1].vitals.heart_rate_bpm
    assert hr is not None
    assert 50 < hr < 80  # the first synthetic patient beats at 60 bpm


def test_redelivered_chunk_republishes_identical_outputs_without_touching_state() -> None:
    cs = chunks(10)
    state, _ = run(cs)
    before = pickle.dumps(state.monitor)
    again = process_chunk(state, cs[7], now_unix_s=5.0)
    assert again.outcome == "redelivered"
    assert again.outputs == state.outbox[-3]
    assert pickle.dumps(state.monitor) == before


def test_chunk_older_than_outbox_is_rejected_as_duplicate() -> None:
    cs = chunks(OUTBOX_CHUNKS + 3)
    state, _ = run(cs)
    result = process_chunk(state, cs[0])
    assert result.outcome == "rejected"
    assert result.error is not None
    assert result.error.reason == "duplicate"
    assert result.state is state


def test_state_survives_pickle_mid_stream() -> None:
    cs = chunks(30)
    whole, beats_whole = run(cs)
    half, beats_a = run(cs[:13])
    resumed, beats_b = run(cs[13:], pickle.loads(pickle.dumps(half)))
    assert beats_a + beats_b == beats_whole
    assert resumed.beats_total == whole.beats_total


def test_gap_restarts_the_monitor_at_the_new_position() -> None:
    cs = chunks(20)
    state, _ = run(cs[:8])
    beats_before = state.beats_total
    result = process_chunk(state, cs[12])  # chunks 8-11 never arrived
    assert result.outcome == "processed"
    assert result.restarted
    assert result.state is not None
    assert result.state is not state
    assert result.state.next_sample == cs[12].end_sample
    assert result.state.monitor.start_index == cs[12].start_sample
    assert result.state.beats_total >= beats_before  # the patient's count goes on


def test_restart_ends_the_open_alarms_of_the_old_signal() -> None:
    cs = chunks(40, events=("asystole@15:20",))
    state, _ = run(cs[:25])  # asystole raised, still going
    assert "asystole" in state.active_alarms
    result = process_chunk(state, cs[30])  # a gap
    assert result.outputs is not None
    ends = [a for a in result.outputs.alerts if a.state == "end"]
    assert [a.alarm_type for a in ends] == ["asystole"]
    assert ends[0].id == state.active_alarms["asystole"]
    assert ends[0].end_sample == cs[24].end_sample
    assert result.state is not None
    assert "asystole" not in result.state.active_alarms


def test_new_stream_of_the_same_patient_starts_afresh_instead_of_duplicate() -> None:
    cs = chunks(10)
    state, _ = run(cs)
    [again] = synthetic_patients(1, events=[], seed=1, first_index=0)  # a restarted simulator
    first = _take(again, 1)[0]
    assert first.seq == 0
    assert first.stream_id != cs[0].stream_id
    result = process_chunk(state, first)
    assert result.outcome == "processed"
    assert result.restarted


def test_asystole_alert_carries_id_priority_and_strip() -> None:
    cs = chunks(40, events=("asystole@15:8",))
    state: PatientState | None = None
    alerts = []
    for c in cs:
        result = process_chunk(state, c, now_unix_s=0.0)
        state = result.state
        assert result.outputs is not None
        alerts += list(result.outputs.alerts)
    raised = [a for a in alerts if a.alarm_type == "asystole" and a.state == "raise"]
    assert len(raised) == 1
    assert raised[0].priority == "high"
    assert len(raised[0].evidence["strip"]["mv"]) == 4 * 360
    assert raised[0].evidence["latching"] is True  # shown until acknowledged
    assert state is not None
    assert "asystole" not in state.active_alarms  # ended when the beats came back


def test_skipped_over_needs_a_sequence_jump_at_a_later_offset_of_the_same_partition() -> None:
    cs = chunks(6)
    state, _ = run(cs[:3])
    assert not skipped_over(state, cs[5], 0, 40)  # no source position recorded (offline)
    state.source_partition, state.source_offset = 0, 20
    assert skipped_over(state, cs[5], 0, 40)  # seq 5 while 3 is next: 3 and 4 lie in 21..39
    assert not skipped_over(state, cs[3], 0, 40)  # the next chunk: nothing skipped
    assert not skipped_over(state, cs[5], 1, 40)  # another partition: offsets not comparable
    assert not skipped_over(state, cs[5], 0, 21)  # adjacent offset: nothing to read back
    other = chunks(6, seed=2)[5]
    assert not skipped_over(state, other, 0, 40)  # another stream is a restart, not a gap


def test_a_stored_state_of_another_layout_restarts_the_patient() -> None:
    cs = chunks(6)
    state, _ = run(cs[:5])
    old = pickle.loads(pickle.dumps(state))
    del old.__dict__["state_version"]  # as pickled before the field existed (version 1)
    result = process_chunk(old, cs[5], now_unix_s=1.0)
    assert result.outcome == "processed"
    assert result.restarted
    assert result.state is not None
    assert result.state.state_version == ECG_STATE_VERSION
    assert result.state.beats_total == state.beats_total
    assert result.state.monitor.start_index == cs[5].start_sample


def test_a_dropped_state_of_another_layout_ends_the_alarms_it_had_open() -> None:
    cs = chunks(12, events=("asystole@3:20",))
    state, _ = run(cs[:10])
    assert "asystole" in state.open_alerts  # raised, not ended
    open_alert = state.open_alerts["asystole"]
    assert open_alert.id == state.active_alarms["asystole"]
    stale = pickle.loads(pickle.dumps(state))
    stale.state_version = ECG_STATE_VERSION - 1  # as a release of another layout wrote it
    result = process_chunk(stale, cs[10], now_unix_s=2.0)
    assert result.outcome == "processed"
    assert result.restarted
    assert result.outputs is not None
    ends = [a for a in result.outputs.alerts if a.id == open_alert.id]
    assert [(a.state, a.end_sample, a.priority) for a in ends] == [
        ("end", state.next_sample, open_alert.priority)
    ]
    assert "strip" not in ends[0].evidence  # the state keeps no strip per open alarm
    assert ends[0].evidence["latching"] is True  # asystole latches
    assert result.state is not None
    assert open_alert.id not in result.state.active_alarms.values()
    # a state from before the field existed ends nothing, and is still replaced
    older = pickle.loads(pickle.dumps(state))
    del older.__dict__["open_alerts"]
    older.state_version = ECG_STATE_VERSION - 1
    result = process_chunk(older, cs[10], now_unix_s=2.0)
    assert result.outcome == "processed"
    assert result.restarted
    assert result.outputs is not None
    assert all(a.id != open_alert.id for a in result.outputs.alerts)


def test_open_alerts_follow_the_alarms_raised_and_ended() -> None:
    cs = chunks(30, events=("asystole@3:8",))
    state, _ = run(cs[:8])
    assert set(state.open_alerts) == set(state.active_alarms) == {"asystole"}
    state, _ = run(cs[8:], state)
    assert "asystole" not in state.open_alerts
    assert set(state.open_alerts) == set(state.active_alarms)
