"""Causal S1/S2 segmentation from the heart-sound envelope, and heart rate from S1.

Peaks: an envelope sample is a heart-sound peak when it is the largest within ``peak_half_s``
on both sides and stands above an adaptive threshold (``threshold`` of the way from the 20th
to the 95th percentile of the last ``context_s`` seconds of envelope; low, so that a faint S2
still becomes a candidate). A peak is known ``peak_half_s`` after it happened. Its height on
that scale (0 at the 20th, 1 at the 95th percentile) prices calling it noise: a faint peak
is cheap to skip, a loud one is not.

Labels by interval durations (the logic of Schmidt 2010 and Springer 2016, as a fixed-lag
decoder): the heart period ``T`` is the highest envelope autocorrelation at lags 0.4-2.0 s
and the systolic interval ``T_sys`` the highest at lags 0.2 s to ``T / 2``, both over the last
``acf_window_s`` seconds of envelope; both lags are refined to a fraction of a sample by a
parabola through the peak, and a peak near half the best period lag that reaches 80 % of it is
taken as the period (with whole lags the peak at 2 T can top the one at T, which at fast rates
doubled the period and mislabelled every sound). A peak is labelled ``lag_s`` after it
happened, by the best (Viterbi) labelling of the peaks from the last labelled sound up to that
moment: each is S1, S2 or noise; S1 -> S2 intervals score as a Gaussian around ``T_sys``,
S2 -> S1 around ``T - T_sys`` (wider: diastole varies more), S1 -> S1 and S2 -> S2 (a missed
sound) around ``T`` with a penalty, a noise peak with a penalty proportional to its height.
Systole is shorter and steadier than diastole, so the labels follow the rhythm, not the
loudness. Decisions are final (earlier labels anchor later ones). The declared latency is
``peak_half_s + lag_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._stats import mean, percentiles, sliding_max

FloatArray = NDArray[np.float64]

__all__ = ["HeartSound", "S1S2Segmenter", "heart_rate_bpm"]

_S1, _S2 = 0, 1
_NAMES = ("S1", "S2")
_MAX_NOISE_RUN = 2  # noise peaks in a row between two labelled sounds


@dataclass(frozen=True)
class HeartSound:
    """One S1 or S2 at an absolute sample index of the internal rate."""

    sample_index: int
    sound: str  # "S1" | "S2"


@dataclass(frozen=True)
class _Rhythm:
    """Interval model in envelope samples."""

    period: float
    systole: float
    sd_sys: float
    sd_dia: float


class S1S2Segmenter:
    """Streaming S1/S2 labelling of envelope peaks.

    Parameters
    ----------
    env_fs_hz
        Rate of the envelope input.
    decim
        Internal-rate samples per envelope sample (events are reported at the internal rate).
    peak_half_s
        Half-width of the local-maximum window.
    context_s
        Envelope history the adaptive threshold looks at.
    threshold
        Fraction of the way from the envelope's floor to its peaks.
    max_gap_s
        Longest plausible interval between consecutive heart sounds.
    delay_s
        Group delay of the envelope low-pass at the sounds' rhythm, subtracted from peak times.
    lag_s
        Look-ahead of the labelling: a peak is labelled when the envelope ``lag_s`` after it
        has been examined.
    acf_window_s
        Envelope history for the heart period and systole estimates.
    """

    def __init__(
        self, env_fs_hz: float, *, decim: int = 20, peak_half_s: float = 0.1,
        context_s: float = 3.0, threshold: float = 0.1, max_gap_s: float = 2.0,
        delay_s: float = 0.03, lag_s: float = 1.5, acf_window_s: float = 6.0,
    ) -> None:  # fmt: skip
        self.env_fs_hz = float(env_fs_hz)
        self.decim = int(decim)
        self.peak_half_s = float(peak_half_s)
        self.context_s = float(context_s)
        self.threshold = float(threshold)
        self.max_gap_s = float(max_gap_s)
        self.delay_s = float(delay_s)
        self.lag_s = float(lag_s)
        self.acf_window_s = float(acf_window_s)
        self._delay = round(delay_s * env_fs_hz * decim)
        self._half = max(1, round(peak_half_s * env_fs_hz))
        self._context = max(2 * self._half + 1, round(context_s * env_fs_hz))
        self._max_gap = max(1, round(max_gap_s * env_fs_hz))
        self._lag = max(1, round(lag_s * env_fs_hz))
        self._acf_window = max(4, round(acf_window_s * env_fs_hz))
        self._keep = max(self._context, self._acf_window) + self._half + 1
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead in internal-rate samples before an S1/S2 label is final."""
        return (self._half + self._lag) * self.decim

    def reset(self) -> None:
        """Forget the stream."""
        self._buf = np.empty(0, dtype=np.float64)
        self._buf_start = 0  # envelope index of self._buf[0]
        self._next_t = 0  # next envelope index to examine as a peak candidate
        self._seq0 = 0  # peak number of self._peaks[0]
        self._peaks: list[int] = []  # recent peaks (envelope indices), decided and pending
        self._noise: list[float] = []  # cost of calling each of those peaks noise
        self._cost: list[list[float]] = []  # best path cost ending in S1 / S2 at each peak
        self._back: list[list[tuple[int, int] | None]] = []  # (peak number, label) before
        self._n_pending = 0  # the last ``_n_pending`` peaks await their label

    def process(self, env: NDArray[np.floating] | FloatArray) -> list[HeartSound]:
        """Consume envelope samples; return the S1/S2 events that became final."""
        arr = np.asarray(env, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            return []
        self._buf = np.concatenate((self._buf, arr))
        end = self._buf_start + self._buf.size  # one past the last envelope index
        out: list[HeartSound] = []
        buf, start, half = self._buf, self._buf_start, self._half
        i0, i1 = self._next_t - start, end - half - start  # candidates buf[i0:i1]
        if i1 > i0:
            # A candidate is a peak when no sample within +-half tops it and its left
            # neighbour differs (the first of a plateau); the same comparisons as one sample at
            # a time, for the whole chunk at once.
            lo_pad = max(0, half - i0)
            seg = buf[max(0, i0 - half) : i1 + half]
            if lo_pad:
                seg = np.concatenate((np.full(lo_pad, -np.inf), seg))
            local = sliding_max(seg, 2 * half + 1)
            v = buf[i0:i1]
            prev = buf[max(0, i0 - 1) : i1 - 1]
            same = v == prev if i0 > 0 else np.concatenate(([False], v[1:] == prev))
            candidates = np.flatnonzero(~((v < local) | same)) + i0
            for i in candidates.tolist():
                t = i + start
                self._decide_until(t - 1, out)
                ctx = buf[max(0, i - self._context) : i + 1]
                floor, top = percentiles(ctx, (20.0, 95.0))
                value = float(buf[i])
                if value > floor + self.threshold * (top - floor):
                    height = float((value - floor) / max(top - floor, _TINY))
                    self._add_peak(t, height)
                self._decide_until(t, out)
            self._decide_until(end - half - 1, out)
        self._next_t = max(self._next_t, end - half)
        keep_from = max(0, self._next_t - self._keep - start)
        self._buf = self._buf[keep_from:]
        self._buf_start = start + keep_from
        return out

    def _decide_until(self, t: int, out: list[HeartSound]) -> None:
        """Label, in order, the pending peaks whose look-ahead has ended by envelope index ``t``."""
        while self._n_pending and self._peaks[-self._n_pending] + self._lag <= t:
            out += self._decide()

    def _rhythm(self, t: int) -> _Rhythm:
        """Heart period and systole from the envelope autocorrelation ending at ``t``."""
        lo = max(self._buf_start, t + 1 - self._acf_window)
        seg = self._buf[lo - self._buf_start : t + 1 - self._buf_start]
        fs = self.env_fs_hz
        period, systole = 0.8 * fs, 0.3 * fs  # resting defaults when history is short
        lo_lag = round(0.4 * fs)
        hi_lag = min(round(2.0 * fs), (2 * seg.size) // 3)
        if hi_lag > lo_lag:
            z = seg - mean(seg)
            acf = np.correlate(z, z, mode="full")[z.size - 1 : z.size + hi_lag + 1]
            if acf[0] > 0:
                k = lo_lag + int(np.argmax(acf[lo_lag : hi_lag + 1]))
                half = round(k / 2)  # the peak at 2 T can top the one at T (lags are whole)
                if half - 1 >= lo_lag:
                    h = half - 1 + int(np.argmax(acf[half - 1 : half + 2]))
                    if acf[h] >= _HARMONIC_SHARE * acf[k]:
                        k = h
                period = _refine(acf, k)
                s_lo, s_hi = round(0.2 * fs), max(round(0.2 * fs), int(period // 2))
                systole = _refine(acf, s_lo + int(np.argmax(acf[s_lo : s_hi + 1])))
        diastole = max(period - systole, systole)
        return _Rhythm(period, systole, 0.05 * fs, 0.07 * diastole + 0.04 * fs)

    def _add_peak(self, t: int, height: float) -> None:
        """One forward step of the Viterbi recursion over peaks (``height``: see ``process``)."""
        r = self._rhythm(t)
        k = len(self._peaks)  # position of the new peak
        seq = self._seq0 + k
        cost = [math.inf, math.inf]
        back: list[tuple[int, int] | None] = [None, None]
        if seq <= _MAX_NOISE_RUN:  # the walk may start here, the peaks before it noise
            cost = [sum(self._noise), sum(self._noise)]
        for j in range(max(0, k - _MAX_NOISE_RUN - 1), k):
            skip = sum(self._noise[j + 1 : k])
            d = float(t - self._peaks[j])
            for a in (_S1, _S2):
                for b in (_S1, _S2):
                    c = self._cost[j][a] + skip + _trans_cost(a, b, d, r, self._max_gap)
                    if c < cost[b]:
                        cost[b], back[b] = c, (self._seq0 + j, a)
        self._noise.append(_NOISE_COST * height)
        self._peaks.append(t)
        self._cost.append(cost)
        self._back.append(back)
        self._n_pending += 1
        shift = min(cost)
        if math.isfinite(shift):
            self._cost = [[c[0] - shift, c[1] - shift] for c in self._cost]

    def _decide(self) -> list[HeartSound]:
        """Label the oldest pending peak from the best path through every peak so far."""
        n = len(self._peaks)
        target = n - self._n_pending
        self._n_pending -= 1
        best, node = math.inf, None
        for i in range(max(0, n - _MAX_NOISE_RUN - 1), n):
            for lab in (_S1, _S2):
                c = self._cost[i][lab] + sum(self._noise[i + 1 :])
                if c < best:
                    best, node = c, (self._seq0 + i, lab)
        label = None
        while node is not None and node[0] - self._seq0 >= target:
            if node[0] - self._seq0 == target:
                label = node[1]
                break
            node = self._back[node[0] - self._seq0][node[1]]
        t = self._peaks[target]
        drop = max(0, min(target + 1, n - _MAX_NOISE_RUN - 1))
        if drop:
            self._peaks, self._cost = self._peaks[drop:], self._cost[drop:]
            self._noise = self._noise[drop:]
            self._back = self._back[drop:]
            self._seq0 += drop
        if label is None:
            return []
        return [HeartSound(max(0, t * self.decim - self._delay), _NAMES[label])]

    def flush(self) -> list[HeartSound]:
        """End the record: label the peaks still waiting, with what is known; resets."""
        out: list[HeartSound] = []
        while self._n_pending:
            out += self._decide()
        self.reset()
        return out


_TINY = 1e-12
#: Cost of calling a peak noise, per unit of its height (0 at the envelope's floor, 1 at its
#: 95th percentile): a faint peak is cheap to skip, a loud one is not.
_NOISE_COST = 6.0
_MISS_COST = 3.0
#: The autocorrelation peak near half the best period lag is taken as the period when it reaches
#: this share of the best (the best can be a multiple of the period).
_HARMONIC_SHARE = 0.8
_RESTART_COST = 8.0


def _refine(acf: FloatArray, k: int) -> float:
    """Lag of the autocorrelation peak at whole lag ``k``, refined by a parabola."""
    if not 0 < k < acf.size - 1:
        return float(k)
    a, b, c = float(acf[k - 1]), float(acf[k]), float(acf[k + 1])
    den = a - 2.0 * b + c
    if den >= 0.0:  # not a local maximum
        return float(k)
    return float(k + min(max(0.5 * (a - c) / den, -0.5), 0.5))  # np.clip, without its overhead


def _trans_cost(a: int, b: int, d: float, r: _Rhythm, max_gap: int) -> float:
    """Negative log-likelihood of label ``b`` ``d`` envelope samples after label ``a``."""
    if d > max_gap:
        return _RESTART_COST
    if a == _S1 and b == _S2:
        mu, sd, extra = r.systole, r.sd_sys, 0.0
    elif a == _S2 and b == _S1:
        mu, sd, extra = r.period - r.systole, r.sd_dia, 0.0
    else:
        mu, sd, extra = r.period, r.sd_dia, _MISS_COST
    z = (d - mu) / sd
    return min(0.5 * z * z + math.log(sd) + extra, _RESTART_COST)


def heart_rate_bpm(
    s1_samples: list[int] | NDArray[np.int64], fs_hz: float, *, n_last: int = 10
) -> float | None:
    """Heart rate from the median of the last ``n_last`` plausible S1-S1 intervals (0.3-2 s).

    >>> heart_rate_bpm([0, 1000, 2000, 3000], 1000.0)
    60.0
    """
    s = np.asarray(s1_samples, dtype=np.float64)
    if s.size < 2:
        return None
    rr_s = np.diff(s) / fs_hz
    rr_s = rr_s[(rr_s >= 0.3) & (rr_s <= 2.0)][-n_last:]
    if rr_s.size == 0:
        return None
    return float(60.0 / np.median(rr_s))
