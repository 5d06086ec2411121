"""Technical-alarm input: detection of a lost ECG signal (flat line, lead off, rail)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.rhythm._types import SignalLossEvent


class SignalLossDetector:
    """Detect intervals where the ECG signal is lost, on raw physical samples.

    A lead is *lost* at a sample when

    * the sample is not finite, or ``|x| >= rail_mv`` (the amplifier or ADC is saturated),
      or
    * it ends a run of at least ``flat_window_s`` during which the lead never moved by more
      than ``flat_tolerance_mv`` from one sample to the next (flat line: a disconnected
      electrode, a constant value from the front end). The whole run counts as lost, so
      the loss onset lies ``flat_window_s`` before the moment it is recognised.

    The *signal* is lost while at least ``min_lost_leads`` leads are lost (default: all of
    them, so that one good lead keeps arrhythmia monitoring alive). The detector emits a
    ``"start"`` event when a loss is recognised and an ``"end"`` event at the first sample
    with signal again; both carry absolute sample indices. Work per chunk is vectorised.

    The default tolerance (0.001 mV, a fifth of one ADU at 200 ADU/mV) is far below the
    noise of any real recording, including an asystolic one, which is never perfectly
    flat: a true asystole must not be mistaken for a lost signal, because signal loss
    suppresses the asystole alarm. A front end that reports lead-off directly should be
    preferred where available.

    Parameters
    ----------
    fs_hz
        Sampling rate, Hz.
    n_leads
        Number of leads (columns of each chunk).
    flat_window_s
        Duration a lead must stay flat to count as lost, seconds.
    flat_tolerance_mv
        Largest sample-to-sample change still considered flat, mV.
    rail_mv
        Magnitude at or beyond which a sample counts as saturated, mV; ``None`` disables.
    min_lost_leads
        Number of lost leads that makes the signal lost; ``None`` means all leads.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        n_leads: int,
        flat_window_s: float = 0.5,
        flat_tolerance_mv: float = 1e-3,
        rail_mv: float | None = None,
        min_lost_leads: int | None = None,
    ) -> None:
        if fs_hz <= 0 or n_leads < 1 or flat_window_s <= 0 or flat_tolerance_mv < 0:
            raise ValueError("need fs_hz > 0, n_leads >= 1, flat_window_s > 0, tolerance >= 0")
        if min_lost_leads is not None and not 1 <= min_lost_leads <= n_leads:
            raise ValueError("min_lost_leads must be between 1 and n_leads")
        self.fs_hz = float(fs_hz)
        self.n_leads = n_leads
        self.flat_window_s = float(flat_window_s)
        self.flat_tolerance_mv = float(flat_tolerance_mv)
        self.rail_mv = rail_mv
        self.min_lost_leads = min_lost_leads
        self._window = max(1, math.ceil(self.flat_window_s * self.fs_hz))
        self._k = n_leads if min_lost_leads is None else min_lost_leads
        self.reset()

    @property
    def latency_samples(self) -> int:
        """A loss is recognised ``flat_window_s`` (in samples, minus one) after its onset."""
        return self._window - 1

    @property
    def in_loss(self) -> bool:
        """Whether the signal is lost at the last processed sample."""
        return self._lost

    def reset(self) -> None:
        """Forget all samples."""
        self._n = 0
        self._prev: NDArray[np.float64] | None = None
        self._run = np.zeros(self.n_leads, dtype=np.int64)
        # Whether the current run began with a small step (its previous sample is flat too).
        self._run_back = np.zeros(self.n_leads, dtype=bool)
        self._lost = False
        self._onset = 0
        self._last_end = 0

    def _run_onsets(
        self, starts: NDArray[np.int64], step_small: NDArray[np.bool_]
    ) -> NDArray[np.int64]:
        """First flat sample of each lead's run, chunk-relative, given its first quiet sample.

        A run that begins with a small step also includes the sample before it (a flat line
        starts one sample before its first zero-length step); a run that begins with a
        saturated or missing sample starts there.
        """
        n = step_small.shape[0]
        back = np.where(
            starts >= 0,
            step_small[np.clip(starts, 0, n - 1), np.arange(self.n_leads)],
            self._run_back,
        )
        return starts - back.astype(np.int64)

    def process(self, chunk: ArrayLike) -> list[SignalLossEvent]:
        """Consume samples and return the loss starts and ends decided in them.

        Parameters
        ----------
        chunk
            Samples, shape ``(n, n_leads)``, millivolts.

        Returns
        -------
        list of SignalLossEvent
            In sample order.
        """
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_leads:
            raise ValueError(f"expected shape (n, {self.n_leads}), got {x.shape}")
        n = x.shape[0]
        if n == 0:
            return []
        n0 = self._n
        finite = np.isfinite(x)
        prev = x[:1] if self._prev is None else self._prev[None, :]
        with np.errstate(invalid="ignore"):
            steps = np.abs(np.diff(x, axis=0, prepend=prev))
            bad = ~finite
            if self.rail_mv is not None:
                bad |= np.abs(x) >= self.rail_mv
        step_small = steps <= self.flat_tolerance_mv  # NaN steps compare False
        quiet = bad | step_small
        # Run length of quiet samples ending at each sample, continuing the last chunk's run.
        idx = np.arange(n)[:, None]
        last_break = np.maximum.accumulate(np.where(quiet, -1 - self._run[None, :], idx), axis=0)
        run = idx - last_break
        lead_lost = bad | (run >= self._window)
        lost = np.count_nonzero(lead_lost, axis=1) >= self._k

        events: list[SignalLossEvent] = []
        states = np.concatenate([[self._lost], lost])
        for i in np.flatnonzero(states[1:] != states[:-1]):
            if lost[i]:
                starts = np.sort(self._run_onsets(i - run[i] + 1, step_small)[lead_lost[i]])
                self._onset = max(n0 + int(starts[self._k - 1]), self._last_end)
                events.append(SignalLossEvent("start", n0 + int(i), self._onset))
            else:
                self._last_end = n0 + int(i)
                events.append(SignalLossEvent("end", n0 + int(i), self._onset))
        self._lost = bool(lost[-1])
        start = n - run[-1]
        in_chunk = (run[-1] > 0) & (start >= 0)
        self._run_back = np.where(
            in_chunk, step_small[np.clip(start, 0, n - 1), np.arange(self.n_leads)], self._run_back
        ) & (run[-1] > 0)
        self._run = run[-1].astype(np.int64)
        self._prev = x[-1].copy()
        self._n = n0 + n
        return events

    def flush(self) -> list[SignalLossEvent]:
        """End an open loss at the end of the record."""
        if not self._lost:
            return []
        self._lost = False
        self._last_end = self._n
        return [SignalLossEvent("end", self._n, self._onset)]
