"""The streaming QRS detector and the ECG beat pipeline.

Stage contract on a synthetic ECG, localisation and latency on synthetic beats, and
beat-by-beat accuracy on MIT-BIH records (the data must be present, see ``tests/conftest.py``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings
from scipy import signal

from models.ecg import Beat, EcgBeatPipeline, QrsDetector, match_beats
from tests.stage_contract import check_stage_contract, split_points

FS_HZ = 360.0
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def _wave(t: np.ndarray, centre_s: float, width_s: float, amp_mv: float) -> np.ndarray:
    return amp_mv * np.exp(-0.5 * ((t - centre_s) / width_s) ** 2)


def synthetic_ecg(
    duration_s: float, *, seed: int = 0, noise_mv: float = 0.02, pvc_every: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two-lead ECG (mV) with P, QRS and T waves, RR variability, baseline wander and noise.

    Every ``pvc_every``-th beat (if > 0) is premature, wide and negative, like a PVC.
    Returns the samples ``(n, 2)`` and the true R-peak indices.
    """
    rng = np.random.default_rng(seed)
    n = round(duration_s * FS_HZ)
    t = np.arange(n) / FS_HZ
    lead = np.zeros(n)
    r_times: list[float] = []
    r_s = 0.4
    k = 0
    while r_s < duration_s - 0.4:
        k += 1
        pvc = pvc_every > 0 and k % pvc_every == 0
        if pvc:
            lead += _wave(t, r_s, 0.025, -1.4) + _wave(t, r_s + 0.3, 0.06, 0.4)
        else:
            lead += _wave(t, r_s - 0.16, 0.02, 0.15) + _wave(t, r_s - 0.03, 0.008, -0.15)
            lead += _wave(t, r_s, 0.01, 1.2) + _wave(t, r_s + 0.03, 0.008, -0.25)
            lead += _wave(t, r_s + 0.28, 0.045, 0.3)
        r_times.append(r_s)
        rr_s = rng.uniform(0.7, 1.0)
        next_pvc = pvc_every > 0 and (k + 1) % pvc_every == 0
        r_s += 0.6 * rr_s if next_pvc else rr_s
    wander = 0.3 * np.sin(2 * np.pi * 0.15 * t) + 0.5
    x = np.stack([lead + wander, 0.4 * lead - 0.2 * wander], axis=1)
    x += rng.normal(0.0, noise_mv, x.shape)
    r_index = np.round(np.asarray(r_times) * FS_HZ).astype(np.int64)
    return x, r_index


def run_stream(stage: EcgBeatPipeline | QrsDetector, x: np.ndarray, chunk: int) -> list[Beat]:
    beats: list[Beat] = []
    for a in range(0, len(x), chunk):
        beats.extend(stage.process(x[a : a + chunk]))
    beats.extend(stage.flush())
    return beats


X_CONTRACT, _ = synthetic_ecg(10.0, seed=1, pvc_every=4)


@settings(derandomize=True, max_examples=25, deadline=None)
@given(splits=split_points(len(X_CONTRACT)))
def test_detector_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: QrsDetector(FS_HZ, n_leads=2), X_CONTRACT, splits)


@settings(derandomize=True, max_examples=15, deadline=None)
@given(splits=split_points(len(X_CONTRACT)))
def test_pipeline_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: EcgBeatPipeline(FS_HZ, 2), X_CONTRACT, splits)


def test_one_sample_chunks_give_the_same_beats() -> None:
    x = X_CONTRACT[: round(6 * FS_HZ)]
    check_stage_contract(lambda: EcgBeatPipeline(FS_HZ, 2), x, list(range(1, len(x))))


def test_contract_signal_has_beats() -> None:
    """Guard: the contract tests compare non-trivial outputs."""
    beats = run_stream(EcgBeatPipeline(FS_HZ, 2), X_CONTRACT, 360)
    assert len(beats) >= 10


def test_synthetic_beats_are_all_found_and_localised() -> None:
    x, r_true = synthetic_ecg(120.0, seed=2, pvc_every=5)
    beats = run_stream(EcgBeatPipeline(FS_HZ, 2), x, 360)
    score = match_beats(r_true, [b.sample_index for b in beats], FS_HZ, exclude_first_s=0.0)
    assert (score.fn, score.fp) == (0, 0)
    found = np.array([b.sample_index for b in beats])
    # R peaks (positive) and PVC troughs (negative) within 10 ms of the truth.
    assert np.max(np.abs(found - r_true)) <= round(0.01 * FS_HZ)
    assert all(0.0 <= b.quality <= 1.0 for b in beats)
    assert np.median([b.quality for b in beats]) > 0.7


def test_quality_drops_with_noise() -> None:
    clean, _ = synthetic_ecg(60.0, seed=3, noise_mv=0.01)
    noisy, _ = synthetic_ecg(60.0, seed=3, noise_mv=0.15)
    q_clean = np.median([b.quality for b in run_stream(EcgBeatPipeline(FS_HZ, 2), clean, 360)])
    q_noisy = np.median([b.quality for b in run_stream(EcgBeatPipeline(FS_HZ, 2), noisy, 360)])
    assert q_noisy < q_clean


def test_beats_are_emitted_within_the_declared_latency() -> None:
    det = QrsDetector(FS_HZ, n_leads=2)
    assert det.latency_samples <= 0.25 * FS_HZ
    x, _ = synthetic_ecg(30.0, seed=4)
    learning_n = round(QrsDetector.learning_s * FS_HZ)
    checked = 0
    for k in range(len(x)):  # one sample per call: emission time is exact
        for beat in det.process(x[k : k + 1]):
            if beat.sample_index > learning_n:
                assert k <= beat.sample_index + det.latency_samples
                checked += 1
    assert checked >= 25


def test_start_index_offsets_every_beat_and_flush_resets() -> None:
    x, _ = synthetic_ecg(20.0, seed=5)
    plain = run_stream(EcgBeatPipeline(FS_HZ, 2), x, 360)
    shifted = run_stream(EcgBeatPipeline(FS_HZ, 2, start_index=1_000_000), x, 360)
    assert [b.sample_index + 1_000_000 for b in plain] == [b.sample_index for b in shifted]
    pipe = EcgBeatPipeline(FS_HZ, 2)
    assert run_stream(pipe, x, 500) == plain
    assert run_stream(pipe, x, 500) == plain  # flush() left it ready for the next record


def test_one_lead_accepts_a_one_dimensional_array() -> None:
    x, r_true = synthetic_ecg(30.0, seed=6)
    beats = run_stream(EcgBeatPipeline(FS_HZ, 1), x[:, 0], 360)
    score = match_beats(r_true, [b.sample_index for b in beats], FS_HZ, exclude_first_s=0.0)
    assert (score.fn, score.fp) == (0, 0)
    with pytest.raises(ValueError, match="expected shape"):
        EcgBeatPipeline(FS_HZ, 1).process(x)


def test_clean_second_lead_vetoes_noise_on_the_first() -> None:
    """Electrode-motion-like noise on lead 1 only: lead 2 confirms the QRS, not the noise."""
    x, r_true = synthetic_ecg(180.0, seed=7)
    rng = np.random.default_rng(3)
    sos = signal.butter(2, (1.0, 12.0), btype="bandpass", output="sos", fs=FS_HZ)
    noise = signal.sosfilt(sos, rng.standard_normal(len(x)))
    noise *= 0.2 / np.std(noise)  # mV, against 1.2 mV R waves
    noise[: round(60 * FS_HZ)] = 0.0  # a clean first minute to learn the leads' levels
    x[:, 0] += noise
    scores = {}
    for n_leads in (1, 2):
        beats = run_stream(EcgBeatPipeline(FS_HZ, n_leads), x[:, :n_leads], 360)
        found = [b.sample_index for b in beats]
        scores[n_leads] = match_beats(r_true, found, FS_HZ, exclude_first_s=60.0)
    assert scores[1].fp >= 20  # lead 1 alone takes noise for beats
    assert scores[2].fp <= 2
    assert scores[2].fn <= scores[1].fn


def test_pickled_detector_state_is_plain_and_small() -> None:
    det = EcgBeatPipeline(FS_HZ, 2)
    det.process(X_CONTRACT)
    assert len(pickle.dumps(det)) < 100_000  # buffers are trimmed, not the whole stream


def test_flat_signal_gives_no_beats() -> None:
    assert run_stream(EcgBeatPipeline(FS_HZ, 2), np.zeros((3600, 2)), 360) == []


# --------------------------------------------------------------------------- MIT-BIH


@pytest.mark.parametrize("record", ["100", "103", "119", "208"])
def test_mitdb_record_accuracy(record: str, mitdb: Path) -> None:
    path = mitdb / record
    rec = wfdb.rdrecord(str(path), physical=True)
    ann = wfdb.rdann(str(path), "atr")
    ref = [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    beats = run_stream(EcgBeatPipeline(float(rec.fs), 2), rec.p_signal, round(rec.fs))
    score = match_beats(ref, [b.sample_index for b in beats], float(rec.fs))
    assert score.tp > 1000
    assert score.se >= 99.5
    assert score.ppv >= 99.5
