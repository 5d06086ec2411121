"""Heart-cycle features of one window, from the sounds inside it (the classifier's second input).

A window-local segmentation on the log-mel frames the window already has (no extra latency, no
state): the frame energy ``e`` (log of the summed mel power) has a peak at each heart sound (a
local maximum within +-``_PEAK_HALF`` frames standing above the window's 20th percentile by half
its 20th-90th percentile range). Consecutive peaks bound intervals; an interval shorter than the
mean interval is systolic (S1 -> S2), a longer one diastolic (systole is the shorter, steadier
part of the cycle, the rule :mod:`models.pcg._segment` also uses). Per cycle and per band group
(``N_GROUPS`` equal groups of mel bands) the energy inside an interval, away from its bounding
sounds, is taken relative to the energy of those sounds (as in the PhysioNet/CinC 2016
entries' systolic/diastolic energy features, e.g. Potes et al. 2016). The vector
(:data:`CYCLE_FEATURES`, in this order):

* ``period_s``, ``acf_period``: lag (s) and height of the frame-energy autocorrelation peak at
  0.4-2 s; ``systole_ratio``, ``acf_systole``: the peak at 0.2 s to half the period, as a
  fraction of the period, and its height.
* ``sys_over_period``, ``dia_over_period``: mean systolic and diastolic interval / period;
  ``interval_cv``: coefficient of variation of all intervals; ``sys_sd``, ``dia_sd``: standard
  deviation of the systolic and diastolic intervals / period; ``peaks_per_s``; ``has_cycles``:
  1 when at least one systolic and one diastolic interval were found, else every interval
  feature is 0.
* ``sys_energy_g``, ``dia_energy_g`` for each band group ``g``: mean over cycles of the interval
  energy minus its sounds' energy (log units / 5); ``sys_energy_sd``, ``dia_energy_sd``: their
  spread over cycles (mean over groups).
* ``dynamic_range``: 90th minus 10th percentile of ``e`` (log units / 10).

Every value is clipped to [-5, 5].
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._stats import mean, percentiles, sliding_max, std

F32Array = NDArray[np.float32]
FloatArray = NDArray[np.float64]

__all__ = ["CYCLE_FEATURES", "N_GROUPS", "cycle_features"]

N_GROUPS = 4
_PEAK_HALF = 4  # frames either side of a peak's local-maximum window
_SOUND_HALF = 2  # frames either side of a peak that belong to the sound
_GUARD = 3  # frames after / before a bounding peak left out of an interval's energy

CYCLE_FEATURES: tuple[str, ...] = (
    "period_s",
    "acf_period",
    "systole_ratio",
    "acf_systole",
    "sys_over_period",
    "dia_over_period",
    "interval_cv",
    "sys_sd",
    "dia_sd",
    "peaks_per_s",
    "has_cycles",
    *(f"sys_energy_{g}" for g in range(N_GROUPS)),
    *(f"dia_energy_{g}" for g in range(N_GROUPS)),
    "sys_energy_sd",
    "dia_energy_sd",
    "dynamic_range",
)


def _acf_peak(r: FloatArray, lo: int, hi: int) -> tuple[int, float]:
    """Lag and height of the highest autocorrelation in lags ``[lo, hi]`` (``(0, 0.0)`` if none)."""
    hi = min(hi, len(r) - 1)
    if hi < lo:
        return 0, 0.0
    k = lo + int(np.argmax(r[lo : hi + 1]))
    return k, float(r[k])


def _peaks(e: FloatArray, p20: float, p90: float) -> list[int]:
    """Frames of the heart-sound peaks of the frame energy ``e`` (percentiles of ``e`` given)."""
    floor = p20 + 0.5 * (p90 - p20)
    padded = np.full(e.size + 2 * _PEAK_HALF, -np.inf)
    padded[_PEAK_HALF : _PEAK_HALF + e.size] = e
    local = sliding_max(padded, 2 * _PEAK_HALF + 1)
    out: list[int] = []
    for i in np.flatnonzero((e >= floor) & (e == local)).tolist():
        if not out or i - out[-1] > _PEAK_HALF:
            out.append(i)
    return out


def _band_means(lm: FloatArray) -> FloatArray:
    """Mean log-mel value of each of ``N_GROUPS`` groups of bands per frame (array_split)."""
    n_mels = lm.shape[0]
    if n_mels % N_GROUPS == 0:  # equal groups: one reduction (the same additions, in order)
        return np.asarray(mean(lm.reshape(N_GROUPS, n_mels // N_GROUPS, -1), axis=1))
    groups = np.array_split(np.arange(n_mels), N_GROUPS)
    return np.stack([lm[g].mean(axis=0) for g in groups])


def _sound_means(band: FloatArray, peaks: list[int]) -> FloatArray:
    """Mean of ``band`` over each peak's frames (``+-_SOUND_HALF``, cut at the edges),
    ``(N_GROUPS, len(peaks))``."""
    n_frames = band.shape[1]
    p = np.asarray(peaks, dtype=np.intp)
    full = (p >= _SOUND_HALF) & (p + _SOUND_HALF < n_frames)
    out = np.empty((band.shape[0], p.size), dtype=np.float64)
    if full.any():
        # Whole windows: gathered, each reduced over its 2 * _SOUND_HALF + 1 frames in order.
        idx = p[full, None] + np.arange(-_SOUND_HALF, _SOUND_HALF + 1)
        out[:, full] = mean(band[:, idx], axis=2)
    for j in np.flatnonzero(~full).tolist():
        out[:, j] = band[:, max(0, peaks[j] - _SOUND_HALF) : peaks[j] + _SOUND_HALF + 1].mean(
            axis=1
        )
    return out


def _interval_features(
    out: FloatArray, d: FloatArray, dur: FloatArray, systolic: NDArray[np.bool_],
    rel: FloatArray, period: float,
) -> None:  # fmt: skip
    """Fill the interval and energy features of ``out`` from the intervals ``d`` (s), those
    with an energy estimate ``dur``, which of them are ``systolic`` and their energies ``rel``
    ``(len(dur), N_GROUPS)`` (both kinds present)."""
    scale = period if period > 0 else float(mean(d))
    sys_d, dia_d = dur[systolic], dur[~systolic]
    out[4] = mean(sys_d) / scale
    out[5] = mean(dia_d) / scale
    out[6] = float(std(d) / mean(d))
    out[7] = std(sys_d) / scale
    out[8] = std(dia_d) / scale
    out[10] = 1.0
    s, t = rel[systolic], rel[~systolic]  # rows in interval order, as np.stack made them
    out[11 : 11 + N_GROUPS] = mean(s, axis=0) / 5.0
    out[11 + N_GROUPS : 11 + 2 * N_GROUPS] = mean(t, axis=0) / 5.0
    out[11 + 2 * N_GROUPS] = mean(std(s, axis=0)) / 5.0
    out[12 + 2 * N_GROUPS] = mean(std(t, axis=0)) / 5.0


def cycle_features(logm: F32Array, frame_rate_hz: float) -> F32Array:
    """The :data:`CYCLE_FEATURES` vector of one window.

    Parameters
    ----------
    logm
        Raw (not normalised) log-mel spectrogram ``(n_mels, n_frames)`` of the window.
    frame_rate_hz
        Frames per second of ``logm``.
    """
    lm = np.asarray(logm, dtype=np.float64)
    n_frames = lm.shape[1]
    top = lm.max()
    e = np.log(np.exp(lm - top).sum(axis=0)) + top
    out = np.zeros(len(CYCLE_FEATURES), dtype=np.float64)
    # Rhythm from the autocorrelation of the frame energy.
    z = e - mean(e)
    r = np.correlate(z, z, mode="full")[n_frames - 1 :]
    r = r / r[0] if r[0] > 0 else np.zeros_like(r)
    k_t, acf_t = _acf_peak(r, round(0.4 * frame_rate_hz), round(2.0 * frame_rate_hz))
    k_s, acf_s = _acf_peak(r, round(0.2 * frame_rate_hz), k_t // 2)
    period = k_t / frame_rate_hz
    out[0:4] = period, acf_t, (k_s / k_t if k_t else 0.0), acf_s
    # Window-local segmentation: peaks, intervals, systolic / diastolic by length.
    p10, p20, p90 = percentiles(e, (10.0, 20.0, 90.0))
    peaks = _peaks(e, p20, p90)
    out[9] = len(peaks) * frame_rate_hz / n_frames
    d = np.diff(np.asarray(peaks, dtype=np.float64)) / frame_rate_hz
    if len(d) >= 2:
        band = _band_means(lm)  # (N_GROUPS, n_frames)
        sound = _sound_means(band, peaks)  # (N_GROUPS, len(peaks))
        # Each interval's frames away from its bounding sounds: [a, b), where not empty.
        p = np.asarray(peaks, dtype=np.intp)
        a, b = p[:-1] + _GUARD, p[1:] - _GUARD + 1
        keep = b > a
        if keep.any():
            a, b = a[keep], b[keep]
            # Sums over [a, b) by one reduceat (the additions of each slice's own sum).
            sums = np.add.reduceat(band, np.stack((a, b), axis=1).ravel(), axis=1)[:, ::2]
            rel = sums / (b - a) - 0.5 * (sound[:, :-1][:, keep] + sound[:, 1:][:, keep])
            dur = d[keep]
            systolic = dur < float(mean(d))
            if systolic.any() and not systolic.all():
                _interval_features(out, d, dur, systolic, rel.T, period)
    out[-1] = (p90 - p10) / 10.0
    # np.clip(np.nan_to_num(out), -5, 5): NaN -> 0, +-inf -> +-5.
    out[np.isnan(out)] = 0.0
    return np.minimum(np.maximum(out, -5.0), 5.0).astype(np.float32)
