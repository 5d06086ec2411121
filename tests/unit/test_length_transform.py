"""The second QRS detector (curve length transform): stage contract, synthetic beats, MIT-BIH."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings

from models.ecg import Beat, LengthTransformDetector, match_beats
from tests.stage_contract import check_stage_contract, split_points
from tests.unit.test_qrs import BEAT_SYMBOLS, FS_HZ, synthetic_ecg

X_LEAD, R_LEAD = synthetic_ecg(14.0, seed=1, pvc_every=4)


def _run(det: LengthTransformDetector, x: np.ndarray, chunk: int) -> list[Beat]:
    beats = [b for a in range(0, len(x), chunk) for b in det.process(x[a : a + chunk])]
    return beats + det.flush()


@settings(derandomize=True, max_examples=20, deadline=None)
@given(splits=split_points(len(X_LEAD)))
def test_detector_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: LengthTransformDetector(FS_HZ), X_LEAD[:, 0], splits)


def test_one_sample_chunks_give_the_same_beats() -> None:
    x = X_LEAD[:, 0]
    check_stage_contract(lambda: LengthTransformDetector(FS_HZ), x, list(range(1, len(x))))


def test_contract_signal_beats_are_found_after_learning() -> None:
    """Guard for the contract tests, and the learning period's beats come out too."""
    beats = _run(LengthTransformDetector(FS_HZ), X_LEAD, 360)
    score = match_beats(R_LEAD, [b.sample_index for b in beats], FS_HZ, exclude_first_s=0.0)
    assert (score.tp, score.fn, score.fp) == (len(R_LEAD), 0, 0)


def test_synthetic_beats_are_found_and_placed_near_the_r_peak() -> None:
    x, r_true = synthetic_ecg(120.0, seed=2, pvc_every=5)
    det = LengthTransformDetector(FS_HZ, start_index=1000)
    beats = _run(det, x[:, 0], 360)
    found = np.array([b.sample_index for b in beats]) - 1000
    score = match_beats(r_true, found, FS_HZ, exclude_first_s=0.0)
    assert (score.fn, score.fp) == (0, 0)
    # R peaks (positive) and PVC troughs (negative) within 20 ms of the truth.
    assert np.max(np.abs(found - r_true)) <= round(0.02 * FS_HZ)
    assert np.all(np.diff(found) > 0)


def test_beats_are_final_within_the_declared_latency() -> None:
    x, _ = synthetic_ecg(30.0, seed=4)
    det = LengthTransformDetector(FS_HZ)
    assert det.latency_samples <= 0.35 * FS_HZ
    seen, late = 0, []
    for a in range(0, len(x), 36):
        seen += 36
        for beat in det.process(x[a : a + 36, 0]):
            if seen > det.learning_s * FS_HZ + FS_HZ:  # past the learning period
                late.append(seen - 1 - beat.sample_index)  # samples it waited for
    assert len(late) > 15
    assert max(late) < det.latency_samples + 36


def test_flat_signal_gives_no_beats_and_a_short_record_is_decided_at_flush() -> None:
    assert _run(LengthTransformDetector(FS_HZ), np.zeros(3600), 360) == []
    x, r_true = synthetic_ecg(5.0, seed=5)  # shorter than the learning period
    det = LengthTransformDetector(FS_HZ)
    assert det.process(x[:, 0]) == []
    found = [b.sample_index for b in det.flush()]
    assert match_beats(r_true, found, FS_HZ, exclude_first_s=0.0).fn <= 1


def test_two_dimensional_chunks_use_the_first_lead() -> None:
    a = _run(LengthTransformDetector(FS_HZ), X_LEAD, 360)
    b = _run(LengthTransformDetector(FS_HZ), X_LEAD[:, 0], 360)
    assert a == b
    assert a
    with pytest.raises(ValueError, match="one lead"):
        LengthTransformDetector(FS_HZ).process(np.zeros((2, 2, 2)))


def test_pickled_state_is_trimmed() -> None:
    x, _ = synthetic_ecg(120.0, seed=6)
    det = LengthTransformDetector(FS_HZ)
    det.process(x[:, 0])
    assert len(pickle.dumps(det)) < 20_000


@pytest.mark.parametrize("record", ["100", "119"])
def test_mitdb_record_accuracy(record: str, mitdb: Path) -> None:
    path = mitdb / record
    rec = wfdb.rdrecord(str(path), physical=True)
    ann = wfdb.rdann(str(path), "atr")
    ref = [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    beats = _run(LengthTransformDetector(float(rec.fs)), rec.p_signal[:, 0], round(rec.fs))
    score = match_beats(ref, [b.sample_index for b in beats], float(rec.fs))
    assert score.tp > 1500
    assert score.se >= 99.5
    assert score.ppv >= 99.5
