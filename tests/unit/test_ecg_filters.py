"""The causal ECG pre-filters: stage contract, equivalence with SciPy, frequency response."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import signal

from models.ecg import BandpassFilter, NotchFilter, _filters
from tests.stage_contract import check_stage_contract, split_points

FS_HZ = 360.0


def _ecg_like(n: int, n_leads: int = 2, seed: int = 0) -> np.ndarray:
    """Offset, baseline wander, mains hum and noise: everything the filters act on."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS_HZ
    base = 0.8 + 0.3 * np.sin(2 * np.pi * 0.2 * t) + 0.05 * np.sin(2 * np.pi * 60.0 * t)
    spikes = (np.arange(n) % 300 < 8).astype(float)
    leads = base[:, None] + spikes[:, None] * np.arange(1, n_leads + 1)
    out: np.ndarray = leads + rng.normal(0.0, 0.02, (n, n_leads))
    return out


def _tone(freq_hz: float, n: int) -> np.ndarray:
    tone: np.ndarray = np.sin(2 * np.pi * freq_hz * np.arange(n) / FS_HZ)
    return tone[:, None]


X = _ecg_like(1500)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(splits=split_points(len(X)))
def test_bandpass_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: BandpassFilter(FS_HZ), X, splits)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(splits=split_points(len(X)))
def test_notch_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: NotchFilter(FS_HZ), X, splits)


def test_one_sample_chunks_equal_whole_signal() -> None:
    check_stage_contract(lambda: BandpassFilter(FS_HZ), X[:400], list(range(1, 400)))


@pytest.mark.parametrize(
    "make", [lambda: BandpassFilter(FS_HZ), lambda: NotchFilter(FS_HZ, mains_hz=50.0)]
)
def test_chunked_output_equals_one_shot_scipy_sosfilt(make: object) -> None:
    stage = make()  # type: ignore[operator]
    chunks = [stage.process(X[a : a + 97]) for a in range(0, len(X), 97)]
    got = np.concatenate(chunks, axis=0)
    zi = signal.sosfilt_zi(stage._sos)[:, :, None] * X[0][None, None, :]
    want, _ = signal.sosfilt(stage._sos, X, axis=0, zi=zi)
    np.testing.assert_array_equal(got, want)


def test_fast_kernel_and_public_fallback_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    sos = BandpassFilter(FS_HZ)._sos
    zi_fast = _filters.steady_state(sos, X[0])
    zi_slow = zi_fast.copy()
    fast = _filters.sosfilt_leads(sos, X, zi_fast)
    monkeypatch.setattr(_filters, "_sosfilt_kernel", None)
    slow = _filters.sosfilt_leads(sos, X, zi_slow)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(zi_fast, zi_slow)


def test_bandpass_removes_offset_and_wander_without_start_up_transient() -> None:
    n = round(20 * FS_HZ)
    x = 1.5 + 0.5 * _tone(0.05, n) + 0.2 * _tone(10.0, n)
    y = BandpassFilter(FS_HZ).process(x)
    assert abs(y[0, 0]) < 1e-9  # steady state on the first sample: no step response
    assert np.max(np.abs(y[: round(FS_HZ)])) < 0.3  # no transient beyond the 10 Hz tone
    steady = y[round(10 * FS_HZ) :, 0]
    assert abs(np.mean(steady)) < 0.01  # offset gone
    assert 0.18 < np.max(np.abs(steady)) < 0.21  # 10 Hz passes


def test_notch_removes_mains_and_keeps_qrs_band() -> None:
    n = round(10 * FS_HZ)
    settle = round(5 * FS_HZ)
    hum = NotchFilter(FS_HZ).process(_tone(60.0, n))[settle:]
    qrs = NotchFilter(FS_HZ).process(_tone(10.0, n))[settle:]
    assert np.max(np.abs(hum)) < 10 ** (-30 / 20)  # at least 30 dB down
    assert np.max(np.abs(qrs)) > 0.99


def test_one_dimensional_input_is_one_lead_and_shapes_are_kept() -> None:
    f = BandpassFilter(FS_HZ)
    assert f.latency_samples == 0
    assert f.process(X[:10, 0]).shape == (10, 1)
    assert f.process(np.empty((0, 1))).shape == (0, 1)
    with pytest.raises(ValueError, match="leads"):
        f.process(X[:10])
    assert f.flush().shape == (0, 1)


def test_invalid_corners_are_rejected() -> None:
    with pytest.raises(ValueError, match="low_hz"):
        BandpassFilter(FS_HZ, low_hz=40.0, high_hz=30.0)
    with pytest.raises(ValueError, match="mains_hz"):
        NotchFilter(100.0, mains_hz=60.0)
