"""Rhythm stages: heart rate, signal loss, alarms and the combined monitor."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings

from models._stage import Stage
from models.ecg._types import Beat
from models.rhythm import (
    AlarmEngine,
    AlarmEvent,
    AlarmInput,
    ClockTick,
    HeartRateMonitor,
    HeartRateUpdate,
    RhythmMonitor,
    SignalLossDetector,
    SignalLossEvent,
)
from simulators.synthetic import SyntheticEvent, SyntheticPatient
from tests.stage_contract import check_stage_contract, split_points

FS_HZ = 360.0
CONTRACT = settings(derandomize=True, deadline=None, max_examples=25)


def _detector_beats(patient: SyntheticPatient, n: int) -> list[Beat]:
    """Ground-truth beats of the visible signal, as the beat pipeline would report them."""
    return [Beat(i) for i in patient.beats_between(0, n)]


def _run_monitor(
    monitor: RhythmMonitor,
    x: np.ndarray,
    beats: Sequence[Beat],
    splits: Sequence[int],
    *,
    pickle_at: int | None = None,
) -> list[AlarmEvent]:
    """Stream ``x`` in chunks; each beat arrives in the chunk where its detector latency ends.

    Beat ``k`` is delayed by a different amount in ``[0, beat_latency_samples]``, like a
    detector whose look-ahead varies.
    """
    lat = monitor.beat_latency_samples
    arrival = [b.sample_index + (7 * k) % (lat + 1) for k, b in enumerate(beats)]
    bounds = [0, *splits, len(x)]
    out: list[AlarmEvent] = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        if pickle_at is not None and i == pickle_at:
            monitor = pickle.loads(pickle.dumps(monitor))
        chunk_beats = [bt for bt, t in zip(beats, arrival, strict=True) if a <= t < b]
        update = monitor.process(x[a:b], chunk_beats)
        assert update.end_sample == b
        assert all(e.sample_index < b for e in update.alarms)
        out.extend(update.alarms)
    late = [bt for bt, t in zip(beats, arrival, strict=True) if t >= len(x)]
    out.extend(monitor.flush(late).alarms)
    return out


def _alarms(events: list[AlarmEvent], kind: str, state: str | None = None) -> list[AlarmEvent]:
    return [e for e in events if e.kind == kind and (state is None or e.state == state)]


# ------------------------------------------------------------------ heart rate
def test_stages_follow_the_stage_protocol() -> None:
    engine = AlarmEngine(FS_HZ)
    for stage in (HeartRateMonitor(FS_HZ), SignalLossDetector(FS_HZ, n_leads=2), engine):
        assert isinstance(stage, Stage)
    assert engine.latency_samples == 0


def test_heart_rate_of_regular_beats() -> None:
    hr = HeartRateMonitor(FS_HZ, n_intervals=8)
    updates = hr.process([Beat(100 + 288 * k) for k in range(20)])  # 288 samples = 75 bpm
    assert len(updates) == 19 - 3  # from the 4th interval on
    assert updates[0].sample_index == 100 + 288 * 4
    assert all(u.heart_rate_bpm == pytest.approx(75.0) for u in updates)
    assert updates[-1].n_intervals == 6  # 8 intervals less the shortest and the longest


def test_heart_rate_trims_one_outlier_and_rejects_impossible_intervals() -> None:
    hr = HeartRateMonitor(FS_HZ)
    beats = [Beat(360 * k) for k in range(10)]
    beats.insert(5, Beat(360 * 4 + 30))  # 83 ms after a beat: impossible, ignored
    updates = hr.process(beats)
    assert [u.sample_index for u in updates] == [360 * k for k in range(4, 10)]
    assert all(u.heart_rate_bpm == pytest.approx(60.0) for u in updates)
    # One missed beat (a 2 s interval) is trimmed away as the longest interval.
    missed = hr.process([Beat(360 * 11), Beat(360 * 12), Beat(360 * 13)])
    assert missed[-1].heart_rate_bpm == pytest.approx(60.0)


def _beats_at(rr_s: Sequence[float]) -> list[Beat]:
    t = np.concatenate([[0.0], np.cumsum(rr_s)])
    return [Beat(round(v * FS_HZ)) for v in t]


def test_a_sustained_step_restarts_the_average_after_two_intervals() -> None:
    # 80 bpm, then 40 bpm: the second 1.5 s interval already shows 40 (without the restart,
    # the trimmed average of the last four intervals needs four of them)
    beats = _beats_at([0.75] * 10 + [1.5] * 5)
    updates = HeartRateMonitor(FS_HZ).process(beats)
    by_beat = {u.sample_index: u.heart_rate_bpm for u in updates}
    assert by_beat[beats[10].sample_index] == pytest.approx(80.0)
    assert by_beat[beats[11].sample_index] != pytest.approx(40.0, rel=0.05)
    assert all(by_beat[b.sample_index] == pytest.approx(40.0) for b in beats[12:])
    slow = {
        u.sample_index: u.heart_rate_bpm
        for u in HeartRateMonitor(FS_HZ, step_intervals=0).process(beats)
    }
    # without the restart: four long intervals needed (the trimmed mean of the last four)
    assert all(slow[b.sample_index] != pytest.approx(40.0, rel=0.05) for b in beats[11:14])
    assert slow[beats[14].sample_index] == pytest.approx(40.0)


def test_irregular_rhythm_ectopy_and_faster_runs_keep_the_long_average() -> None:
    rng = np.random.default_rng(3)
    af = list(rng.uniform(0.4, 1.1, 200))
    af[100:102] = [1.30, 1.32]  # two agreeing long intervals by chance, after irregular ones
    # a couplet in sinus rhythm (two short intervals, then a compensatory pause), and a
    # sinus pause followed by a long compensatory-like interval that does not agree with it
    couplet = [0.8] * 10 + [0.45, 0.45, 1.3] + [0.8] * 10
    pause = [0.8] * 10 + [2.0, 1.2] + [0.8] * 10
    for rr in (af, couplet, pause):
        hr = HeartRateMonitor(FS_HZ)
        hr.process(_beats_at(rr))
        assert not hr._restarted
    shown = HeartRateMonitor(FS_HZ).process(_beats_at(couplet))
    assert max(u.heart_rate_bpm for u in shown) < 90.0  # the couplet barely shows


def test_heart_rate_of_synthetic_patient() -> None:
    patient = SyntheticPatient(FS_HZ, heart_rate_bpm=84.0, seed=11)
    updates = HeartRateMonitor(FS_HZ).process(_detector_beats(patient, int(60 * FS_HZ)))
    assert len(updates) > 70
    rates = np.array([u.heart_rate_bpm for u in updates])
    assert np.all(np.abs(rates - 84.0) < 6.0)


def test_long_gap_restarts_the_average() -> None:
    hr = HeartRateMonitor(FS_HZ, max_rr_s=3.0)
    beats = [Beat(360 * k) for k in range(6)] + [Beat(360 * 20 + 180 * k) for k in range(6)]
    updates = hr.process(beats)
    after = [u for u in updates if u.sample_index > 360 * 20]
    assert [u.sample_index for u in after] == [360 * 20 + 180 * 4, 360 * 20 + 180 * 5]
    assert all(u.heart_rate_bpm == pytest.approx(120.0) for u in after)


BEATS_FOR_CONTRACT = [Beat(i) for i in SyntheticPatient(FS_HZ, seed=12).beats_between(0, 20_000)]


@CONTRACT
@given(splits=split_points(len(BEATS_FOR_CONTRACT)))
def test_heart_rate_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: HeartRateMonitor(FS_HZ), BEATS_FOR_CONTRACT, splits)  # type: ignore[arg-type]


# ---------------------------------------------------------------- signal loss
def _flat_test_signal() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal((3000, 2))
    x[1000:1500] = 0.0  # both leads flat (lead off)
    x[2000:2100] = 163.8  # a short rail hit: not long enough to matter for flatness...
    x[2500:2800, 0] = 1.0  # one lead flat only
    return x


def test_flat_line_on_all_leads_is_signal_loss() -> None:
    det = SignalLossDetector(FS_HZ, n_leads=2, flat_window_s=0.5)
    window = det.latency_samples + 1
    events = det.process(_flat_test_signal())
    assert events[:2] == [
        SignalLossEvent("start", 1000 + window, 1000),
        SignalLossEvent("end", 1500, 1000),
    ]
    assert not det.in_loss


def test_rail_is_lost_at_once_and_one_flat_lead_is_not_signal_loss() -> None:
    x = _flat_test_signal()
    events = SignalLossDetector(FS_HZ, n_leads=2, rail_mv=160.0).process(x)
    assert events[2:] == [SignalLossEvent("start", 2000, 2000), SignalLossEvent("end", 2100, 2000)]
    one_lead = SignalLossDetector(FS_HZ, n_leads=2, min_lost_leads=1).process(x)
    assert SignalLossEvent("start", 2500 + 180, 2500) in one_lead


def test_nan_samples_count_as_lost() -> None:
    x = np.zeros((400, 1)) + np.linspace(0, 1, 400)[:, None]
    x[100:120] = np.nan
    events = SignalLossDetector(FS_HZ, n_leads=1).process(x)
    assert events == [SignalLossEvent("start", 100, 100), SignalLossEvent("end", 120, 100)]


def test_asystole_is_not_mistaken_for_signal_loss() -> None:
    patient = SyntheticPatient(FS_HZ, seed=13, events=[SyntheticEvent("asystole", 2.0, 10.0)])
    assert SignalLossDetector(FS_HZ, n_leads=2).process(patient.generate(int(15 * FS_HZ))) == []


def test_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected shape"):
        SignalLossDetector(FS_HZ, n_leads=2).process(np.zeros((10, 3)))


X_LOSS = _flat_test_signal()


@pytest.mark.parametrize("split", [999, 1000, 1001, 1002, 1100, 1179, 1180, 1181, 1500, 2000])
def test_signal_loss_split_at_the_edges_of_a_flat_line(split: int) -> None:
    def make() -> SignalLossDetector:
        return SignalLossDetector(FS_HZ, n_leads=2, rail_mv=160.0)

    check_stage_contract(make, X_LOSS, [split, split + 1])


@CONTRACT
@given(splits=split_points(len(X_LOSS)))
def test_signal_loss_contract(splits: list[int]) -> None:
    check_stage_contract(
        lambda: SignalLossDetector(FS_HZ, n_leads=2, rail_mv=160.0), X_LOSS, splits
    )


# --------------------------------------------------------------------- alarms
def _rates(engine: AlarmEngine, rates_bpm: Sequence[float]) -> list[AlarmEvent]:
    inputs: list[AlarmInput] = []
    for k, hr in enumerate(rates_bpm):
        idx = 360 * (k + 1)
        inputs += [Beat(idx), HeartRateUpdate(idx, hr, 6)]
    return engine.process(inputs)


def test_bradycardia_has_hysteresis_and_escalates_below_the_extreme_limit() -> None:
    events = _rates(AlarmEngine(FS_HZ), [45, 39, 41, 44.9, 29, 34, 35, 44, 45, 39])
    assert [(e.kind, e.state, e.priority, e.heart_rate_bpm) for e in events] == [
        ("bradycardia", "raise", "medium", 39),
        ("bradycardia", "update", "high", 29),
        ("bradycardia", "update", "medium", 35),
        ("bradycardia", "end", "medium", 45),
        ("bradycardia", "raise", "medium", 39),
    ]
    assert events[3].onset_sample == 720
    assert events[3].end_sample == events[3].sample_index == 360 * 9


def test_tachycardia_has_hysteresis() -> None:
    events = _rates(AlarmEngine(FS_HZ, tachy_bpm=120.0), [110, 121, 118, 116, 115, 130])
    assert [(e.kind, e.state, e.sample_index) for e in events] == [
        ("tachycardia", "raise", 720),
        ("tachycardia", "end", 360 * 5),
        ("tachycardia", "raise", 360 * 6),
    ]


def test_asystole_is_timed_on_samples_and_raised_once() -> None:
    engine = AlarmEngine(FS_HZ, asystole_s=4.0)
    beats: list[AlarmInput] = [Beat(360 * k) for k in range(1, 4)]
    ticks: list[AlarmInput] = [ClockTick(t) for t in range(1200, 6000, 100)]
    events = engine.process([*beats, *ticks, Beat(6100), Beat(6400)])
    assert [(e.kind, e.state, e.onset_sample, e.sample_index) for e in events] == [
        ("asystole", "raise", 1080, 1080 + 1440),
        ("asystole", "end", 1080, 6400),
    ]
    assert events[0].priority == "high"


ENGINE_INPUTS: list[AlarmInput] = [
    *[x for k in range(1, 10) for x in (Beat(300 * k), HeartRateUpdate(300 * k, 72.0, 6))],
    SignalLossEvent("start", 3300, 3200),
    ClockTick(5000),
    SignalLossEvent("end", 5200, 3200),
    *[ClockTick(t) for t in range(5300, 7000, 250)],
    *[x for t in range(7000, 13400, 800) for x in (Beat(t), HeartRateUpdate(t, 27.0, 6))],
]  # fmt: skip


@CONTRACT
@given(splits=split_points(len(ENGINE_INPUTS)))
def test_alarm_engine_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: AlarmEngine(FS_HZ), ENGINE_INPUTS, splits)  # type: ignore[arg-type]


def test_alarm_engine_contract_inputs_raise_every_alarm_kind() -> None:
    engine = AlarmEngine(FS_HZ)
    events = engine.process(ENGINE_INPUTS) + engine.flush()
    assert {e.kind for e in events} == {"signal_loss", "asystole", "bradycardia"}
    assert not _alarms(events, "asystole", "raise")[0].onset_sample < 5200  # not during loss
    assert engine.active == ()


# -------------------------------------------------------------------- monitor
def _monitor_case(
    events: Sequence[SyntheticEvent], seconds: float, seed: int = 0
) -> tuple[SyntheticPatient, np.ndarray, list[Beat]]:
    patient = SyntheticPatient(FS_HZ, seed=seed, events=tuple(events))
    n = int(seconds * FS_HZ)
    return patient, patient.generate(n), _detector_beats(patient, n)


def test_one_asystole_alarm_for_a_six_second_pause_ended_when_beats_return() -> None:
    _, x, beats = _monitor_case([SyntheticEvent("asystole", 20.0, 6.0)], 40.0)
    monitor = RhythmMonitor(FS_HZ, n_leads=2, beat_latency_samples=90)
    events = _run_monitor(monitor, x, beats, [int(k * 0.5 * FS_HZ) for k in range(1, 80)])
    assert [(e.kind, e.state) for e in events] == [("asystole", "raise"), ("asystole", "end")]
    raised, ended = events
    idx = [b.sample_index for b in beats]
    last_before = max(i for i in idx if i < 20 * FS_HZ)
    first_two_after = [i for i in idx if i >= 26 * FS_HZ][:2]
    assert raised.onset_sample == last_before
    assert raised.sample_index == last_before + 4 * 360 + monitor.latency_samples
    assert raised.priority == "high"
    assert ended.end_sample == first_two_after[1]


def test_no_asystole_alarm_during_lead_off() -> None:
    _, x, beats = _monitor_case([SyntheticEvent("lead_off", 10.0, 12.0)], 35.0, seed=1)
    monitor = RhythmMonitor(FS_HZ, n_leads=2)
    events = _run_monitor(monitor, x, beats, list(range(0, len(x), 250)))
    assert [(e.kind, e.state) for e in events] == [("signal_loss", "raise"), ("signal_loss", "end")]
    assert events[0].onset_sample == 10 * FS_HZ
    assert events[1].end_sample == 22 * FS_HZ
    assert events[0].priority == "medium"


def test_asystole_timer_restarts_when_the_signal_returns() -> None:
    events_in = [SyntheticEvent("lead_off", 10.0, 5.0), SyntheticEvent("asystole", 9.0, 12.0)]
    _, x, beats = _monitor_case(events_in, 30.0, seed=2)
    monitor = RhythmMonitor(FS_HZ, n_leads=2)
    events = _run_monitor(monitor, x, beats, list(range(0, len(x), 1000)))
    asystole = _alarms(events, "asystole", "raise")
    assert len(asystole) == 1
    assert asystole[0].onset_sample == 15 * FS_HZ  # the end of the signal loss
    assert asystole[0].sample_index == 19 * FS_HZ + monitor.latency_samples


def test_tachycardia_and_heart_rate_reported() -> None:
    _, x, beats = _monitor_case([SyntheticEvent("tachycardia", 10.0, 30.0, 165.0)], 60.0, seed=3)
    monitor = RhythmMonitor(FS_HZ, n_leads=2)
    rates = []
    for a in range(0, len(x), 360):
        update = monitor.process(
            x[a : a + 360], [b for b in beats if a <= b.sample_index < a + 360]
        )
        rates.append(update.heart_rate_bpm)
        assert update.signal_ok
    assert rates[25] == pytest.approx(165.0, rel=0.06)
    assert rates[55] == pytest.approx(72.0, rel=0.06)
    final = monitor.flush()
    assert final.end_sample == len(x)


def test_flush_ends_open_alarms_at_the_end_of_the_record() -> None:
    _, x, beats = _monitor_case([SyntheticEvent("asystole", 5.0, 30.0)], 20.0, seed=4)
    monitor = RhythmMonitor(FS_HZ, n_leads=2)
    events = _run_monitor(monitor, x, beats, [])
    assert [(e.kind, e.state) for e in events] == [("asystole", "raise"), ("asystole", "end")]
    assert events[1].end_sample == events[1].sample_index == len(x)


MONITOR_EVENTS = (
    SyntheticEvent("asystole", 4.0, 5.0),
    SyntheticEvent("lead_off", 12.0, 3.0),
    SyntheticEvent("bradycardia", 16.0, 14.0, 32.0),
)
_, X_MON, BEATS_MON = _monitor_case(MONITOR_EVENTS, 32.0, seed=5)


def test_monitor_contract_signal_raises_every_alarm_kind() -> None:
    events = _run_monitor(RhythmMonitor(FS_HZ, n_leads=2), X_MON, BEATS_MON, [])
    assert {e.kind for e in events} == {"asystole", "signal_loss", "bradycardia"}


@CONTRACT
@given(splits=split_points(len(X_MON)))
def test_monitor_contract(splits: list[int]) -> None:
    """Chunking, a pickle mid-stream, reset() and empty chunks change no alarm."""

    def make() -> RhythmMonitor:
        return RhythmMonitor(FS_HZ, n_leads=2, beat_latency_samples=60)

    whole = _run_monitor(make(), X_MON, BEATS_MON, [])
    assert _run_monitor(make(), X_MON, BEATS_MON, splits) == whole
    assert _run_monitor(make(), X_MON, BEATS_MON, splits, pickle_at=len(splits) // 2 + 1) == whole
    used = make()
    _run_monitor(used, X_MON, BEATS_MON, splits)
    used.reset()
    assert _run_monitor(used, X_MON, BEATS_MON, []) == whole
    fresh = make()
    empty = fresh.process(X_MON[:0], [])
    assert empty.alarms == []
    assert empty.end_sample == 0
    assert pickle.dumps(fresh) == pickle.dumps(make())
