"""Monitor-style heart rate from detected beats."""

from __future__ import annotations

from collections.abc import Sequence

from models.ecg._types import Beat
from models.rhythm._types import HeartRateUpdate


class HeartRateMonitor:
    """Heart rate averaged over the most recent RR intervals, as a bedside monitor shows it.

    Method (disclosed as IEC 60601-2-27, 201.7.9.2.9.101 b) 3) asks of a monitor):
    at every accepted beat, take the last ``n_intervals`` RR intervals (fewer when they span
    more than ``max_span_s``, but never fewer than ``min_intervals``, so that a slow rhythm
    is not averaged over a long time: 80 -> 40 bpm is shown in about 5 s, not 12), drop the single
    shortest and the single longest (when at least three are available), and report
    ``60 / mean(remaining RR)`` in beats per minute. Averaging the intervals (not the
    instantaneous rates) and trimming the extremes keeps one missed or extra beat, or one
    long pause, from moving the displayed rate much. The rate is first reported once
    ``min_intervals`` intervals have been collected.

    A beat closer than ``min_rr_s`` (default 0.2 s, i.e. 300 bpm) to the previous accepted
    beat is physiologically impossible and is rejected (a double detection or noise). An
    interval longer than ``max_rr_s`` (a gap in the data, not a rhythm) starts the average
    afresh from that beat. Asystole is not this stage's business: it is timed on the sample
    clock by :class:`~models.rhythm.AlarmEngine`.

    Parameters
    ----------
    fs_hz
        Sampling rate of the beat sample indices, Hz.
    n_intervals
        Number of recent RR intervals averaged.
    min_intervals
        Intervals needed before the first rate is reported.
    min_rr_s
        Shortest plausible RR interval, seconds.
    max_rr_s
        Longest RR interval still treated as part of the rhythm, seconds.
    max_span_s
        Longest time the averaged intervals may span (down to ``min_intervals``), seconds.

    Examples
    --------
    >>> hr = HeartRateMonitor(360.0)
    >>> updates = hr.process([Beat(i * 360) for i in range(6)])
    >>> [round(u.heart_rate_bpm, 1) for u in updates]
    [60.0, 60.0]
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        n_intervals: int = 8,
        min_intervals: int = 4,
        min_rr_s: float = 0.2,
        max_rr_s: float = 10.0,
        max_span_s: float = 6.5,
    ) -> None:
        if fs_hz <= 0 or n_intervals < 1 or not 1 <= min_intervals <= n_intervals:
            raise ValueError("need fs_hz > 0 and 1 <= min_intervals <= n_intervals")
        if not 0 < min_rr_s < max_rr_s:
            raise ValueError("need 0 < min_rr_s < max_rr_s")
        self.fs_hz = float(fs_hz)
        self.n_intervals = n_intervals
        self.min_intervals = min_intervals
        self.min_rr_s = float(min_rr_s)
        self.max_rr_s = float(max_rr_s)
        self.max_span_s = float(max_span_s)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """No look-ahead: a rate is final at the beat that completes it."""
        return 0

    def reset(self) -> None:
        """Forget all beats."""
        self._last_beat: int | None = None
        self._rr_samples: list[int] = []

    def process(self, chunk: Sequence[Beat]) -> list[HeartRateUpdate]:
        """Consume beats (in time order) and return the rate updates they complete.

        Parameters
        ----------
        chunk
            Detected beats.

        Returns
        -------
        list of HeartRateUpdate
            One update per accepted beat once ``min_intervals`` intervals are known.
        """
        min_rr = self.min_rr_s * self.fs_hz
        max_rr = self.max_rr_s * self.fs_hz
        out: list[HeartRateUpdate] = []
        for beat in chunk:
            idx = int(beat.sample_index)
            if self._last_beat is None:
                self._last_beat = idx
                continue
            rr = idx - self._last_beat
            if rr < min_rr:
                continue
            self._last_beat = idx
            if rr > max_rr:
                self._rr_samples.clear()
                continue
            self._rr_samples.append(rr)
            del self._rr_samples[: -self.n_intervals]
            if len(self._rr_samples) >= self.min_intervals:
                recent = list(self._rr_samples)
                span = self.max_span_s * self.fs_hz
                while len(recent) > self.min_intervals and sum(recent) > span:
                    recent.pop(0)
                rrs = sorted(recent)
                if len(rrs) >= 3:
                    rrs = rrs[1:-1]
                mean_rr = sum(rrs) / len(rrs)
                out.append(HeartRateUpdate(idx, 60.0 * self.fs_hz / mean_rr, len(rrs)))
        return out

    def flush(self) -> list[HeartRateUpdate]:
        """Nothing is pending: every update is emitted at its beat."""
        return []
