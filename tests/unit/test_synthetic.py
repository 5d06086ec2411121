"""The synthetic ECGSYN patient: determinism, streaming, heart rate, injected events."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from simulators.synthetic import SyntheticEvent, SyntheticPatient, to_digital
from tests.stage_contract import split_points

FS_HZ = 360.0


def _rr_s(beats: list[int]) -> np.ndarray:
    return np.diff(np.asarray(beats)) / FS_HZ


def test_same_seed_same_signal_and_other_seed_differs() -> None:
    a = SyntheticPatient(FS_HZ, seed=7).generate(5000)
    b = SyntheticPatient(FS_HZ, seed=7).generate(5000)
    c = SyntheticPatient(FS_HZ, seed=8).generate(5000)
    assert a.shape == (5000, 2)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


EVENTS = (
    SyntheticEvent("noise", 1.0, 2.0, 0.3),
    SyntheticEvent("lead_off", 4.0, 1.5),
    SyntheticEvent("asystole", 6.0, 2.0),
    SyntheticEvent("vt", 9.0, 2.0),
)
N_CHUNKED = int(12 * FS_HZ)
WHOLE = SyntheticPatient(FS_HZ, seed=3, events=EVENTS).generate(N_CHUNKED)


@settings(derandomize=True, deadline=None, max_examples=30)
@given(splits=split_points(N_CHUNKED))
def test_any_chunking_gives_the_same_signal(splits: list[int]) -> None:
    patient = SyntheticPatient(FS_HZ, seed=3, events=EVENTS)
    bounds = [0, *splits, N_CHUNKED]
    parts = [patient.generate(b - a) for a, b in itertools.pairwise(bounds)]
    assert patient.position == N_CHUNKED
    np.testing.assert_array_equal(np.concatenate(parts), WHOLE)


def test_reset_rewinds_to_the_start() -> None:
    patient = SyntheticPatient(FS_HZ, seed=3, events=EVENTS)
    patient.generate(1234)
    patient.reset()
    np.testing.assert_array_equal(patient.generate(N_CHUNKED), WHOLE)


@pytest.mark.parametrize(("heart_rate_bpm", "seed"), [(72.0, 0), (50.0, 1), (110.0, 2)])
def test_mean_heart_rate_matches_request(heart_rate_bpm: float, seed: int) -> None:
    patient = SyntheticPatient(FS_HZ, heart_rate_bpm=heart_rate_bpm, hr_std_bpm=3.0, seed=seed)
    rr_s = _rr_s(patient.beats_between(0, int(300 * FS_HZ)))
    mean_hr_bpm = float(np.mean(60.0 / rr_s))
    assert mean_hr_bpm == pytest.approx(heart_rate_bpm, abs=1.5)
    # The variability is there (Mayer waves and RSA) but modest.
    assert 0.5 < float(np.std(60.0 / rr_s)) < 6.0


def test_ground_truth_beats_are_the_r_peaks_of_lead_1() -> None:
    patient = SyntheticPatient(FS_HZ, seed=4, amplitude_mv=1.5)
    x = patient.generate(int(20 * FS_HZ))
    beats = patient.beats_between(10, len(x) - 10)
    assert len(beats) >= 20
    for idx in beats:
        local = x[idx - 10 : idx + 11, 0]
        assert abs(int(np.argmax(local)) - 10) <= 2
        baseline_mv = np.median(x[max(idx - 150, 0) : idx + 150, 0])
        assert local.max() - baseline_mv == pytest.approx(1.5, rel=0.15)
    assert patient.beats_between(beats[3], beats[5]) == beats[3:5]


def test_asystole_has_no_beats_and_only_baseline() -> None:
    patient = SyntheticPatient(FS_HZ, seed=5, events=[SyntheticEvent("asystole", 10.0, 6.0)])
    x = patient.generate(int(25 * FS_HZ))
    beats = np.asarray(patient.beats_between(0, len(x))) / FS_HZ
    assert not np.any((beats >= 10.0) & (beats < 16.0))
    assert np.any((beats >= 16.0) & (beats < 17.5))  # the rhythm comes back
    quiet = x[int(11 * FS_HZ) : int(15.5 * FS_HZ), 0]  # before the next P wave
    assert np.ptp(quiet) < 0.4  # baseline wander and noise, no QRS
    assert np.std(np.diff(quiet)) > 0.005  # but not a flat line: the noise is still there


def test_pause_makes_one_long_rr_interval() -> None:
    patient = SyntheticPatient(FS_HZ, seed=6, events=[SyntheticEvent("pause", 20.0, 3.0)])
    rr_s = _rr_s(patient.beats_between(0, int(40 * FS_HZ)))
    assert np.count_nonzero(rr_s > 1.5) == 1
    assert float(rr_s.max()) == pytest.approx(3.0, abs=1.5 / FS_HZ)


@pytest.mark.parametrize(("kind", "value_bpm"), [("tachycardia", 150.0), ("bradycardia", 35.0)])
def test_rate_events_reach_their_heart_rate(kind: str, value_bpm: float) -> None:
    event = SyntheticEvent(kind, 30.0, 40.0, value_bpm)  # type: ignore[arg-type]
    patient = SyntheticPatient(FS_HZ, seed=7, events=[event])
    beats = np.asarray(patient.beats_between(0, int(90 * FS_HZ))) / FS_HZ
    rr_s = np.diff(beats)
    inside = (beats[1:] > 35.0) & (beats[1:] < 68.0)
    before = beats[1:] < 28.0
    assert float(np.mean(60.0 / rr_s[inside])) == pytest.approx(value_bpm, rel=0.05)
    assert float(np.mean(60.0 / rr_s[before])) == pytest.approx(72.0, abs=3.0)
    assert float(np.mean(60.0 / rr_s[beats[1:] > 75.0])) == pytest.approx(72.0, abs=3.0)


def test_vt_beats_are_fast_labelled_and_wide() -> None:
    patient = SyntheticPatient(FS_HZ, seed=8, events=[SyntheticEvent("vt", 10.0, 5.0)])
    x = patient.generate(int(20 * FS_HZ))
    ann = patient.annotations_between(0, len(x))
    vt = [i for i, label in ann if label == "V"]
    assert len(vt) >= 12
    assert all(10.0 <= i / FS_HZ < 15.0 for i in vt)
    assert float(np.median(60.0 / _rr_s(vt))) == pytest.approx(180.0, rel=0.05)

    def width_above_half_max(idx: int) -> int:
        seg = np.abs(x[idx - 40 : idx + 41, 0] - np.median(x[idx - 90 : idx + 91, 0]))
        return int(np.count_nonzero(seg > 0.5 * seg.max()))

    normal = [i for i, label in ann if label == "N" and 40 < i < len(x) - 100]
    assert np.median([width_above_half_max(i) for i in vt]) > 2 * np.median(
        [width_above_half_max(i) for i in normal]
    )


def test_noise_event_adds_noise_of_the_requested_rms() -> None:
    clean = SyntheticPatient(FS_HZ, seed=9).generate(int(20 * FS_HZ))
    noisy = SyntheticPatient(
        FS_HZ, seed=9, events=[SyntheticEvent("noise", 5.0, 10.0, 0.4)]
    ).generate(int(20 * FS_HZ))
    added = noisy - clean
    inside = added[int(5 * FS_HZ) : int(15 * FS_HZ)]
    assert float(np.sqrt(np.mean(inside**2))) == pytest.approx(0.4, rel=0.3)
    np.testing.assert_array_equal(added[: int(5 * FS_HZ)], 0.0)
    np.testing.assert_array_equal(added[int(15 * FS_HZ) :], 0.0)


def test_lead_off_is_exactly_flat_on_all_leads_and_hides_beats() -> None:
    rail_mv = 32767 / 200.0
    patient = SyntheticPatient(
        FS_HZ, n_leads=3, seed=10, events=[SyntheticEvent("lead_off", 5.0, 4.0, rail_mv)]
    )
    x = patient.generate(int(15 * FS_HZ))
    lo, hi = int(5 * FS_HZ), int(9 * FS_HZ)
    np.testing.assert_array_equal(x[lo:hi], rail_mv)
    assert np.all(to_digital(x[lo:hi]) == 32767)
    assert np.ptp(x[hi:, 0]) > 0.5
    assert patient.beats_between(lo, hi) == []
    assert len(patient.beats_between(lo, hi, include_hidden=True)) >= 4


def test_to_digital_rounds_and_clips() -> None:
    out = to_digital(np.array([0.0, 0.0049, 0.0051, -1.0, 500.0, -500.0]))
    assert out.dtype == np.int16
    assert out.tolist() == [0, 1, 1, -200, 32767, -32768]


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        SyntheticEvent("fibrillation", 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duration_s"):
        SyntheticEvent("pause", 1.0, 0.0)
    with pytest.raises(ValueError, match="n_leads"):
        SyntheticPatient(FS_HZ, n_leads=4)
    with pytest.raises(ValueError, match="n_samples"):
        SyntheticPatient(FS_HZ).generate(-1)
    assert SyntheticPatient(FS_HZ).generate(0).shape == (0, 2)
