"""Causal S1/S2 segmentation from the heart-sound envelope, and heart rate from S1.

Peaks: an envelope sample is a heart-sound peak when it is the largest within ``peak_half_s``
on both sides and stands above an adaptive threshold (``threshold`` of the way from the 20th
to the 95th percentile of the last ``context_s`` seconds of envelope). A peak is known
``peak_half_s`` after it happened.

Labels: systole (S1 -> S2) is shorter than diastole (S2 -> S1) at resting heart rates, so a
peak is an S1 when the interval before it is longer than the interval after it, and an S2
otherwise. A peak is therefore labelled when the next peak arrives; a peak followed by no other
within ``max_gap_s`` is dropped. The declared latency is ``peak_half_s + max_gap_s``.
This is a simpler, causal stand-in for Springer's HSMM (which is offline and needs the whole
recording); its F1 against ``set_a_timing.csv`` is in ``BENCHMARKS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = ["HeartSound", "S1S2Segmenter", "heart_rate_bpm"]


@dataclass(frozen=True)
class HeartSound:
    """One S1 or S2 at an absolute sample index of the internal rate."""

    sample_index: int
    sound: str  # "S1" | "S2"


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
    """

    def __init__(
        self, env_fs_hz: float, *, decim: int = 20, peak_half_s: float = 0.1,
        context_s: float = 3.0, threshold: float = 0.3, max_gap_s: float = 1.5,
        delay_s: float = 0.03,
    ) -> None:  # fmt: skip
        self.env_fs_hz = float(env_fs_hz)
        self.decim = int(decim)
        self.peak_half_s = float(peak_half_s)
        self.context_s = float(context_s)
        self.threshold = float(threshold)
        self.max_gap_s = float(max_gap_s)
        self.delay_s = float(delay_s)
        self._delay = round(delay_s * env_fs_hz * decim)
        self._half = max(1, round(peak_half_s * env_fs_hz))
        self._context = max(2 * self._half + 1, round(context_s * env_fs_hz))
        self._max_gap = max(1, round(max_gap_s * env_fs_hz))
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead in internal-rate samples before an S1/S2 label is final."""
        return (self._half + self._max_gap) * self.decim

    def reset(self) -> None:
        """Forget the stream."""
        self._buf = np.empty(0, dtype=np.float64)
        self._buf_start = 0  # envelope index of self._buf[0]
        self._next_t = 0  # next envelope index to examine as a peak candidate
        self._peaks: list[int] = []  # last (at most 2) peaks, envelope indices
        self._first_pending = False  # whether self._peaks[0] still awaits its label

    def process(self, env: NDArray[np.floating] | FloatArray) -> list[HeartSound]:
        """Consume envelope samples; return the S1/S2 events that became final."""
        arr = np.asarray(env, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            return []
        self._buf = np.concatenate((self._buf, arr))
        end = self._buf_start + self._buf.size  # one past the last envelope index
        out: list[HeartSound] = []
        buf, start, half = self._buf, self._buf_start, self._half
        for t in range(self._next_t, end - half):
            i = t - start
            v = buf[i]
            lo_i = max(0, i - half)
            if v < buf[lo_i : i + half + 1].max() or (i > 0 and buf[i - 1] == v):
                continue
            ctx = buf[max(0, i - self._context) : i + 1]
            floor, top = np.percentile(ctx, (20.0, 95.0))
            if v <= floor + self.threshold * (top - floor):
                continue
            out += self._on_peak(t)
        self._next_t = max(self._next_t, end - half)
        self._expire(end - half)
        keep_from = max(0, self._next_t - self._context - half - start)
        self._buf = self._buf[keep_from:]
        self._buf_start = start + keep_from
        return out

    def _on_peak(self, t: int) -> list[HeartSound]:
        out: list[HeartSound] = []
        if self._peaks and t - self._peaks[-1] > self._max_gap:
            self._peaks, self._first_pending = [], False
        if not self._peaks:
            self._peaks, self._first_pending = [t], True
            return out
        self._peaks.append(t)
        if len(self._peaks) == 3:
            p0, p1, p2 = self._peaks
            label = "S1" if p1 - p0 > p2 - p1 else "S2"
            if self._first_pending:
                out.append(self._event(p0, "S2" if label == "S1" else "S1"))
                self._first_pending = False
            out.append(self._event(p1, label))
            self._peaks = [p1, p2]
        return out

    def _expire(self, known_until: int) -> None:
        """Drop a lone peak when no other can follow it within ``max_gap_s``."""
        if self._peaks and known_until - self._peaks[-1] > self._max_gap:
            self._peaks, self._first_pending = [], False

    def _event(self, t: int, sound: str) -> HeartSound:
        return HeartSound(max(0, t * self.decim - self._delay), sound)

    def flush(self) -> list[HeartSound]:
        """End the record: peaks still waiting for a neighbour are dropped; resets."""
        self.reset()
        return []


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
