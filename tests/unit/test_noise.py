"""NST-style noise: kinds, scaling to the requested SNR, the on/off pattern, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from simulators.noise import NOISE_KINDS, add_noise, nst_mask, qrs_signal_power, synthesize_noise

FS_HZ = 360.0


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_has_unit_power_and_is_deterministic(kind: str) -> None:
    a = synthesize_noise(kind, 20_000, FS_HZ, seed=3)  # type: ignore[arg-type]
    b = synthesize_noise(kind, 20_000, FS_HZ, seed=3)  # type: ignore[arg-type]
    c = synthesize_noise(kind, 20_000, FS_HZ, seed=4)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.mean(a**2) == pytest.approx(1.0, rel=1e-6)
    assert abs(np.mean(a)) < 1e-9


def test_noise_kinds_live_in_their_bands() -> None:
    def share_below(x: np.ndarray, f_hz: float) -> float:
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / FS_HZ)
        return float(spectrum[freqs < f_hz].sum() / spectrum.sum())

    assert share_below(synthesize_noise("bw", 200_000, FS_HZ), 1.0) > 0.9
    assert share_below(synthesize_noise("ma", 200_000, FS_HZ), 8.0) < 0.1
    em = synthesize_noise("em", 200_000, FS_HZ)
    assert share_below(em, 15.0) > 0.8  # electrode motion overlaps the QRS band


def test_signal_power_is_mean_peak_to_peak_squared_over_8() -> None:
    x = np.zeros(3600)
    beats = [360, 1080, 1800]
    for s, amp in zip(beats, (1.0, 2.0, 3.0), strict=True):
        x[s] = amp
    assert qrs_signal_power(x, beats, FS_HZ) == pytest.approx(2.0**2 / 8)


@pytest.mark.parametrize("snr_db", [24.0, 6.0, -6.0])
def test_noise_is_scaled_to_the_requested_snr(snr_db: float) -> None:
    n = int(600 * FS_HZ)
    beats = np.arange(180, n - 180, 300)
    x = np.zeros((n, 2))
    x[beats, 0] = 1.5
    x[beats, 1] = 0.5
    noisy = add_noise(x, beats, FS_HZ, snr_db=snr_db, kind="em", pattern="continuous", seed=2)
    for lead in range(2):
        noise = noisy[:, lead] - x[:, lead]
        # The clean lead is baseline-corrected (high-passed) before its QRS amplitude is measured.
        hp = sps.butter(2, 0.5, btype="highpass", output="sos", fs=FS_HZ)
        power = qrs_signal_power(sps.sosfiltfilt(hp, x[:, lead]), beats, FS_HZ)
        measured = 10 * np.log10(power / np.mean(noise**2))
        assert measured == pytest.approx(snr_db, abs=0.01)


def test_nst_pattern_two_minutes_on_two_off_from_minute_five() -> None:
    mask = nst_mask(int(15 * 60 * FS_HZ), FS_HZ)

    def minute(m: float) -> int:
        return int(m * 60 * FS_HZ)

    assert not mask[: minute(5)].any()
    assert mask[minute(5) : minute(7)].all()
    assert not mask[minute(7) : minute(9)].any()
    assert mask[minute(9) : minute(11)].all()
