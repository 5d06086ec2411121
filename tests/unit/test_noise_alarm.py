"""The noise technical alarm and shape-confirmed VT on synthetic ECG, through the EcgMonitor."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.monitor import EcgMonitor
from models.rhythm import AlarmEvent, BeatShape
from simulators.synthetic import SyntheticEvent, SyntheticPatient

FS_HZ = 360.0


def _alarms(x: npt.NDArray[np.float64]) -> list[AlarmEvent]:
    """Alarms of the monitor fed in 1 s chunks, without a beat classifier (no V labels)."""
    monitor = EcgMonitor(FS_HZ, n_leads=x.shape[1])
    step = round(FS_HZ)
    out = [a for i in range(0, len(x), step) for a in monitor.process(x[i : i + step]).alarms]
    return [*out, *monitor.flush().alarms]


def _patient(seed: int, *events: SyntheticEvent, bpm: float = 70.0) -> npt.NDArray[np.float64]:
    patient = SyntheticPatient(FS_HZ, n_leads=2, heart_rate_bpm=bpm, seed=seed, events=events)
    return patient.generate(int(70 * FS_HZ))


def _spans(alarms: list[AlarmEvent], kind: str) -> list[tuple[float, float]]:
    raised = {
        a.onset_sample: a.sample_index for a in alarms if a.kind == kind and a.state == "raise"
    }
    ended = {a.onset_sample: a.sample_index for a in alarms if a.kind == kind and a.state == "end"}
    return [(raised[k] / FS_HZ, ended[k] / FS_HZ) for k in sorted(raised)]


def test_noise_alarm_fires_on_noise_added_to_clean_ecg_and_stays_quiet_on_clean_ecg() -> None:
    for seed in (1, 2):
        assert _alarms(_patient(seed)) == []
        noisy = _alarms(_patient(seed, SyntheticEvent("noise", 20.0, 30.0, 1.5)))
        spans = _spans(noisy, "noise")
        assert len(spans) == 1
        raised_s, ended_s = spans[0]
        assert 20.0 < raised_s < 25.0  # within 5 s of the noise onset
        assert 50.0 < ended_s < 58.0  # and over once the signal is clean again


def test_noise_holds_back_the_rate_alarms_it_would_cause() -> None:
    # Without the noise alarm, the detector locks onto this noise at ~180 bpm (tachycardia
    # and SVT alarms); with it, only the technical alarm is shown.
    alarms = _alarms(_patient(1, SyntheticEvent("noise", 20.0, 30.0, 1.5)))
    assert {a.kind for a in alarms} == {"noise"}


def test_a_tachycardia_that_began_in_noise_is_raised_when_the_noise_ends() -> None:
    events = (
        SyntheticEvent("noise", 20.0, 15.0, 1.5),
        SyntheticEvent("tachycardia", 25.0, 40.0, 170.0),
    )
    alarms = _alarms(_patient(2, *events))
    (noise_end,) = [a for a in alarms if a.kind == "noise" and a.state == "end"]
    tachy = [a for a in alarms if a.kind == "tachycardia"]
    assert [a.state for a in tachy] == ["raise", "end"]
    raised, ended = tachy
    assert raised.sample_index == noise_end.sample_index  # held back until then
    assert raised.onset_sample < noise_end.sample_index  # its onset is where the rate rose
    assert ended.onset_sample == raised.onset_sample  # so the end carries the same alarm id


def test_wide_complex_run_raises_vt_without_v_labels() -> None:
    alarms = _alarms(_patient(3, SyntheticEvent("vt", 30.0, 15.0, 180.0)))
    spans = _spans(alarms, "ventricular_tachycardia")
    assert len(spans) == 1
    assert 30.0 < spans[0][0] < 34.0
    assert 44.0 < spans[0][1] < 48.0


def test_beat_shape_measures_a_different_beat_against_the_template() -> None:
    t = np.linspace(-0.25, 0.40, 118)
    narrow = np.exp(-((t / 0.012) ** 2)).astype(np.float32)
    wide = (-0.8 * np.exp(-((t / 0.05) ** 2))).astype(np.float32)
    shape = BeatShape()
    measures = shape.process(np.stack([narrow] * 10 + [wide, wide, narrow]), ["N"] * 13)
    assert all(m.template_corr > 0.99 for m in measures[:10])
    assert measures[10].template_corr < 0
    assert measures[10].width_ratio > 2.0
    assert measures[11].previous_corr > 0.99  # like the beat before it
    assert measures[12].template_corr > 0.99  # the two wide beats did not become the template


def test_wide_beats_that_correlate_with_the_template_do_not_pull_it_wider() -> None:
    # a ventricular beat of the same polarity as the dominant beat: it correlates with the
    # template, but it is wide; labelled N (a classifier miss), it must not update it
    t = np.linspace(-0.25, 0.40, 118)
    narrow = np.exp(-((t / 0.012) ** 2)).astype(np.float32)
    broad = np.exp(-((t / 0.03) ** 2)).astype(np.float32)
    shape = BeatShape()
    n_wide = 40
    measures = shape.process(np.stack([narrow] * 10 + [broad] * n_wide), ["N"] * (10 + n_wide))
    first = measures[10]
    assert first.template_corr >= shape.match_corr  # the premise: it "matches" by shape
    assert first.width_ratio >= shape.reseed_width_ratio
    last = measures[-1]
    assert last.width_ratio == pytest.approx(first.width_ratio)  # the template stayed narrow
    assert last.template_corr == pytest.approx(first.template_corr)


def test_p_window_correlation_tells_alike_p_waves_from_fibrillatory_waves() -> None:
    t = np.linspace(-0.25, 0.40, 118)
    qrs = np.exp(-((t / 0.012) ** 2))
    p_wave = 0.15 * np.exp(-(((t + 0.16) / 0.025) ** 2))
    rng = np.random.default_rng(2)
    sinus = np.stack([qrs + p_wave + 0.005 * rng.standard_normal(t.size) for _ in range(20)])
    # fibrillatory waves: a 6 Hz wave of random phase in front of every QRS
    f_waves = np.stack(
        [qrs + 0.05 * np.sin(2 * np.pi * 6 * t + rng.uniform(0, 2 * np.pi)) for _ in range(20)]
    )
    in_sinus = BeatShape().process(sinus.astype(np.float32), ["N"] * 20)
    in_af = BeatShape().process(f_waves.astype(np.float32), ["N"] * 20)
    assert np.isnan(in_sinus[0].p_corr)  # no previous beat yet
    assert np.median([m.p_corr for m in in_sinus[1:]]) > 0.9
    assert abs(np.median([m.p_corr for m in in_af[1:]])) < 0.4
    assert min(m.template_corr for m in in_af) > 0.9  # the QRS alone is unchanged
