"""Noise stress test: ECG noise synthesised here and added the way the MIT-BIH NST was made.

The MIT-BIH Noise Stress Test Database (Moody, Muldrow & Mark 1984) adds recorded noise to
clean records at a chosen signal-to-noise ratio. We have no noise recordings, so the three NST
noise kinds are synthesised:

* ``bw``, baseline wander: respiration (0.15-0.4 Hz) and slow drift (below 0.15 Hz), large
  and smooth.
* ``em``, electrode motion: bursts of 0.5-12 Hz noise with random onsets and lengths, plus
  baseline steps; it looks like QRS complexes and is the hardest kind for a detector (the NST
  records 118e/119e use it).
* ``ma``, muscle artifact: broadband 10-100 Hz noise whose amplitude follows slow random
  contractions.

Scaling follows NST's ``nst`` program: the signal power is ``S = A**2 / 8`` with ``A`` the
mean peak-to-peak amplitude of the QRS complexes (each measured within 50 ms of a reference
beat, on the lead's baseline-corrected signal), the noise power ``N`` is the mean square of
the noise, and the noise is scaled so that ``10 log10(S / N)`` equals the requested SNR. As in
NST, noise is on for 2 minutes and off for 2 minutes from minute 5 on (``pattern="nst"``);
``pattern="continuous"`` adds it everywhere.

Examples
--------
>>> import numpy as np
>>> noise = synthesize_noise("ma", 3600, 360.0, seed=1)
>>> noise.shape
(3600,)
>>> x = np.zeros((3600, 1)); x[::360, 0] = 1.0
>>> noisy = add_noise(x, [0, 360, 720], 360.0, snr_db=6.0, kind="ma", pattern="continuous")
>>> noisy.shape
(3600, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import signal

NoiseKind = Literal["bw", "em", "ma", "mixed"]
NOISE_KINDS: tuple[NoiseKind, ...] = ("bw", "em", "ma", "mixed")
FloatArray = npt.NDArray[np.float64]

_NST_START_S = 300.0
_NST_SEGMENT_S = 120.0


def _band_noise(
    rng: np.random.Generator, n: int, fs_hz: float, lo_hz: float, hi_hz: float
) -> FloatArray:
    hi_hz = min(hi_hz, 0.45 * fs_hz)
    sos = signal.butter(2, (lo_hz, hi_hz), btype="bandpass", output="sos", fs=fs_hz)
    return np.asarray(signal.sosfilt(sos, rng.standard_normal(n)), dtype=np.float64)


def _slow_envelope(rng: np.random.Generator, n: int, fs_hz: float, cutoff_hz: float) -> FloatArray:
    sos = signal.butter(2, cutoff_hz, btype="lowpass", output="sos", fs=fs_hz)
    env = np.abs(np.asarray(signal.sosfilt(sos, rng.standard_normal(n)), dtype=np.float64))
    return np.asarray(env / (env.mean() + 1e-12), dtype=np.float64)


def synthesize_noise(kind: NoiseKind, n_samples: int, fs_hz: float, *, seed: int = 0) -> FloatArray:
    """``n_samples`` of unit-power noise of ``kind`` (``mixed`` = em + ma + bw, equal power)."""
    rng = np.random.default_rng([seed, NOISE_KINDS.index(kind)])
    t_s = np.arange(n_samples) / fs_hz
    if kind == "bw":
        resp_hz = rng.uniform(0.15, 0.4)
        x = np.sin(2 * np.pi * resp_hz * t_s + rng.uniform(0, 2 * np.pi))
        x += 1.5 * _band_noise(rng, n_samples, fs_hz, 0.01, 0.15) / 0.05
    elif kind == "em":
        x = _band_noise(rng, n_samples, fs_hz, 0.5, 12.0)
        # On/off bursts: electrodes move for a second or a few, then rest.
        gate = np.zeros(n_samples)
        pos = 0
        while pos < n_samples:
            pos += int(rng.exponential(2.0) * fs_hz)
            length = int(rng.uniform(0.5, 4.0) * fs_hz)
            gate[pos : pos + length] = rng.uniform(0.5, 2.0)
            pos += length
        x = x * signal.sosfilt(signal.butter(1, 5.0, output="sos", fs=fs_hz), gate)
        steps = np.cumsum(
            np.where(rng.random(n_samples) < 0.3 / fs_hz, rng.normal(0, 1, n_samples), 0)
        )
        x += 0.3 * np.std(x) * steps / (np.std(steps) + 1e-12)
    elif kind == "ma":
        x = _band_noise(rng, n_samples, fs_hz, 10.0, 100.0) * _slow_envelope(
            rng, n_samples, fs_hz, 0.5
        )
    elif kind == "mixed":
        parts = [synthesize_noise(k, n_samples, fs_hz, seed=seed) for k in ("em", "ma", "bw")]
        x = sum(parts, np.zeros(n_samples)) / np.sqrt(3.0)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; use one of {NOISE_KINDS}")
    x = np.asarray(x, dtype=np.float64)
    x -= x.mean()
    return np.asarray(x / (np.sqrt(np.mean(x**2)) + 1e-12), dtype=np.float64)


def qrs_signal_power(
    x: FloatArray, beat_samples: Sequence[int] | npt.NDArray[np.integer], fs_hz: float
) -> float:
    """NST signal power ``A**2 / 8`` of one lead, ``A`` the mean peak-to-peak QRS amplitude."""
    half = max(1, round(0.05 * fs_hz))
    amplitudes = [
        float(np.ptp(x[max(0, s - half) : s + half + 1]))
        for s in np.asarray(beat_samples, dtype=np.int64)
        if half <= s < len(x) - half
    ]
    if not amplitudes:
        raise ValueError("no beats to measure the QRS amplitude on")
    return float(np.mean(amplitudes)) ** 2 / 8.0


def nst_mask(n_samples: int, fs_hz: float) -> npt.NDArray[np.bool_]:
    """Where NST adds noise: 2 minutes on, 2 minutes off, from minute 5."""
    t_s = np.arange(n_samples) / fs_hz
    after = t_s >= _NST_START_S
    phase = ((t_s - _NST_START_S) // _NST_SEGMENT_S).astype(np.int64) % 2 == 0
    return np.asarray(after & phase, dtype=bool)


def add_noise(
    x_mv: FloatArray,
    beat_samples: Sequence[int] | npt.NDArray[np.integer],
    fs_hz: float,
    *,
    snr_db: float,
    kind: NoiseKind = "mixed",
    pattern: Literal["nst", "continuous"] = "nst",
    seed: int = 0,
) -> FloatArray:
    """``x_mv`` (``(n, n_leads)``) with noise at ``snr_db`` per lead, as NST scales it.

    Each lead gets its own noise realisation, scaled to that lead's QRS amplitude.
    """
    x = np.asarray(x_mv, dtype=np.float64).reshape(len(x_mv), -1)
    out = x.copy()
    mask = nst_mask(len(x), fs_hz) if pattern == "nst" else np.ones(len(x), dtype=bool)
    # Offline tooling, not a stream stage: a zero-phase high-pass is fine for measuring.
    highpass = signal.butter(2, 0.5, btype="highpass", output="sos", fs=fs_hz)
    for lead in range(x.shape[1]):
        centred = signal.sosfiltfilt(highpass, x[:, lead])
        power = qrs_signal_power(centred, beat_samples, fs_hz)
        noise = synthesize_noise(kind, len(x), fs_hz, seed=seed * 16 + lead)
        gain = np.sqrt(power / 10.0 ** (snr_db / 10.0))
        out[:, lead] += np.where(mask, gain * noise, 0.0)
    return out
