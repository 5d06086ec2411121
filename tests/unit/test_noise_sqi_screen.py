"""The single-lead signal-quality measures of the noise screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.noise_sqi_screen import (
    MEASURES,
    SECOND_DETECTORS,
    bsqi,
    second_detector_beats,
    window_measures,
    write_flagged,
)
from models.ecg import EcgBeatPipeline
from simulators.synthetic import SyntheticPatient

FS_HZ = 360.0


def test_measures_tell_a_regular_ecg_from_gaussian_noise() -> None:
    ecg = SyntheticPatient(FS_HZ, n_leads=1, heart_rate_bpm=75.0, seed=3).generate(int(20 * FS_HZ))
    noise = np.random.default_rng(0).normal(0.0, 0.3, int(20 * FS_HZ))
    m_ecg = window_measures(ecg[:, 0], FS_HZ, 5.0, 1.0)
    m_noise = window_measures(noise, FS_HZ, 5.0, 1.0)
    assert m_ecg.shape == m_noise.shape == (16, len(MEASURES))
    col = {name: j for j, name in enumerate(MEASURES)}
    assert np.all(m_ecg[:, col["kurtosis"]] > 5.0), "an ECG is peaky"
    assert np.all(np.abs(m_noise[:, col["kurtosis"]] - 3.0) < 0.5), "Gaussian: about 3"
    assert np.all(m_ecg[:, col["periodicity"]] > 0.4), "beats repeat"
    assert np.all(m_noise[:, col["periodicity"]] < 0.2)


def test_detector_agreement_counts_beats_both_found_over_beats_either_found() -> None:
    assert bsqi(np.array([100, 400, 700]), np.array([105, 398, 900]), 10) == 0.5
    assert bsqi(np.array([100]), np.array([], np.int64), 10) == 0.0
    assert bsqi(np.array([], np.int64), np.array([], np.int64), 10) == 1.0
    beats = np.arange(180, 7200, 288, dtype=np.int64)
    x = np.zeros(7200)
    m = window_measures(x, FS_HZ, 5.0, 1.0, (beats, beats + 20))
    assert np.all(m[:, list(MEASURES).index("detector_agreement")] == 1.0)


def test_flagged_copy_zeroes_the_quality_of_beats_judged_by_a_flagged_trailing_window(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "101.npz"
    np.savez(cache, sample=np.array([100, 2000, 4000]), quality=np.full(3, 0.9), other=np.ones(2))
    m = np.ones((10, len(MEASURES)))
    m[6] = 0.1  # window 6 covers samples 2160..3960; beat 4000 is judged by it
    n = write_flagged(cache, tmp_path / "out", m, (0.8, 0.4), win=1800, step=360)
    with np.load(tmp_path / "out" / "101.npz") as z:
        assert z["quality"].tolist() == [0.9, 0.9, 0.0]
        assert z["other"].tolist() == [1.0, 1.0], "the rest of the cache is copied"
    assert n == 1


def test_both_second_detectors_agree_with_the_pipeline_on_a_clean_ecg() -> None:
    ecg = SyntheticPatient(FS_HZ, n_leads=1, heart_rate_bpm=75.0, seed=4).generate(int(40 * FS_HZ))
    pipe = EcgBeatPipeline(FS_HZ, 1)
    ours = np.asarray([b.sample_index for b in pipe.process(ecg) + pipe.flush()], np.int64)
    assert len(ours) >= 45
    for second in SECOND_DETECTORS:
        other = second_detector_beats(ecg[:, 0], FS_HZ, second)
        assert bsqi(ours, other, round(0.15 * FS_HZ)) >= 0.95, second
