"""The rhythm monitor: heart rate, signal loss and alarms for one patient stream."""

from __future__ import annotations

import copy
import dataclasses
import heapq
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from models.ecg._types import Beat
from models.rhythm._alarms import AlarmEngine, AlarmInput
from models.rhythm._heart_rate import HeartRateMonitor
from models.rhythm._signal_quality import SignalLossDetector
from models.rhythm._types import AlarmEvent, ClockTick, RhythmUpdate, SignalLossEvent

_DEFAULT_BEAT_LATENCY_S = 0.25
# Order of inputs that refer to the same sample: a loss that ends there comes first (the
# sample has signal), a loss that starts there next (the sample is lost), then the beat.
_ORDER_END, _ORDER_START, _ORDER_BEAT = 0, 1, 2


class RhythmMonitor:
    """Heart rate, signal-loss detection and rhythm alarms on a live ECG stream.

    Each call to :meth:`process` takes the next chunk of raw samples and the beats the ECG
    beat pipeline returned for the same chunk. The beat detector looks ahead, so a beat
    may arrive up to ``beat_latency_samples`` after its R peak (in the chunk after the one
    that holds it); the signal-loss detector recognises a flat line
    ``flat_window_s`` after it begins. The monitor therefore decides on a timeline that
    trails the newest sample by ``latency_samples = max(beat latency, loss latency)``:
    every input about a sample before that horizon is known, the inputs are merged in
    sample order (beats inside a signal loss are dropped; the rate average restarts after
    one) and fed to the :class:`AlarmEngine`, and the clock is advanced to the horizon,
    which is how asystole is timed on samples rather than on wall-clock time.

    An alarm event's ``sample_index`` is the sample whose arrival made it final (the
    decision sample plus ``latency_samples``), so the output does not depend on the
    chunking of the input.

    Parameters
    ----------
    fs_hz
        Sampling rate, Hz.
    n_leads
        Number of leads of each chunk.
    beat_latency_samples
        Largest delay between a beat's ``sample_index`` and the end of the chunk in which
        the beat detector returns it, samples; ``None`` means 0.25 s.
    heart_rate
        Configured :class:`HeartRateMonitor` (copied); ``None`` uses the defaults.
    signal_loss
        Configured :class:`SignalLossDetector` (copied); ``None`` uses the defaults.
    alarms
        Configured :class:`AlarmEngine` (copied); ``None`` uses the defaults.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        n_leads: int,
        beat_latency_samples: int | None = None,
        heart_rate: HeartRateMonitor | None = None,
        signal_loss: SignalLossDetector | None = None,
        alarms: AlarmEngine | None = None,
    ) -> None:
        self.fs_hz = float(fs_hz)
        self.n_leads = n_leads
        self.beat_latency_samples = (
            math.ceil(_DEFAULT_BEAT_LATENCY_S * self.fs_hz)
            if beat_latency_samples is None
            else int(beat_latency_samples)
        )
        if self.beat_latency_samples < 0:
            raise ValueError("beat_latency_samples must be >= 0")
        self._hr = copy.deepcopy(heart_rate) if heart_rate else HeartRateMonitor(fs_hz)
        self._loss = (
            copy.deepcopy(signal_loss)
            if signal_loss
            else SignalLossDetector(fs_hz, n_leads=n_leads)
        )
        self._engine = copy.deepcopy(alarms) if alarms else AlarmEngine(fs_hz)
        for stage in (self._hr, self._loss, self._engine):
            if stage.fs_hz != self.fs_hz:
                raise ValueError("all components need the monitor's fs_hz")
        if self._loss.n_leads != n_leads:
            raise ValueError("signal_loss.n_leads differs from n_leads")
        self.reset()

    @property
    def latency_samples(self) -> int:
        """How far the alarm timeline trails the newest sample."""
        return max(self.beat_latency_samples, self._loss.latency_samples)

    def set_limits(self, **limits: float) -> None:
        """Change the rate and asystole limits of the alarm engine while running.

        See :meth:`AlarmEngine.set_limits` (same keywords).
        """
        self._engine.set_limits(**limits)

    def reset(self) -> None:
        """Forget the stream; afterwards the monitor equals a fresh one."""
        self._hr.reset()
        self._loss.reset()
        self._engine.reset()
        self._n = 0
        self._seq = 0
        self._pending: list[tuple[int, int, int, Beat | SignalLossEvent]] = []
        self._in_loss = False
        self._heart_rate_bpm: float | None = None

    def _push(self, key: int, order: int, item: Beat | SignalLossEvent) -> None:
        heapq.heappush(self._pending, (key, order, self._seq, item))
        self._seq += 1

    def _drain(self, horizon: float) -> list[AlarmEvent]:
        """Feed every pending input about a sample before ``horizon`` to the engine."""
        out: list[AlarmEvent] = []
        while self._pending and self._pending[0][0] < horizon:
            _, _, _, item = heapq.heappop(self._pending)
            inputs: list[AlarmInput] = [item]
            if isinstance(item, SignalLossEvent):
                self._in_loss = item.state == "start"
                if not self._in_loss:
                    self._hr.reset()  # the rate average restarts after a gap
                    self._heart_rate_bpm = None
            elif self._in_loss:
                continue
            else:
                rates = self._hr.process([item])
                inputs.extend(rates)
                if rates:
                    self._heart_rate_bpm = rates[-1].heart_rate_bpm
            out.extend(self._engine.process(inputs))
        return out

    def _announce(self, events: list[AlarmEvent], last_sample: int) -> list[AlarmEvent]:
        delay = self.latency_samples
        return [
            dataclasses.replace(e, sample_index=min(e.sample_index + delay, last_sample))
            for e in events
        ]

    def _update(self, alarms: list[AlarmEvent]) -> RhythmUpdate:
        shown = None if self._in_loss or "asystole" in self._engine.active else self._heart_rate_bpm
        return RhythmUpdate(shown, alarms, not self._loss.in_loss, self._n)

    def process(self, samples: ArrayLike, beats: Sequence[Beat] = ()) -> RhythmUpdate:
        """Consume the next chunk of samples and the beats detected up to its end.

        Parameters
        ----------
        samples
            Raw ECG, shape ``(n, n_leads)``, millivolts (any ``n``, including 0).
        beats
            Beats the beat pipeline returned for this chunk, in time order; each must lie
            at most ``beat_latency_samples`` before the end of the chunk. A later beat
            (e.g. from a detector's learning period or search-back) is still used, but as
            if it happened at the horizon, and the output may then depend on chunking.

        Returns
        -------
        RhythmUpdate
            Heart rate, alarm events decided in this chunk, signal state, ``end_sample``.
        """
        x = np.asarray(samples, dtype=np.float64)
        if x.size == 0:
            x = x.reshape(0, self.n_leads)
        for e in self._loss.process(x):
            if e.state == "start":
                self._push(e.onset_sample, _ORDER_START, e)
            else:
                self._push(e.sample_index, _ORDER_END, e)
        self._n += x.shape[0]
        for b in beats:
            self._push(int(b.sample_index), _ORDER_BEAT, b)
        horizon = self._n - self.latency_samples
        events = self._drain(horizon)
        if horizon > 0:
            events.extend(self._engine.process([ClockTick(horizon - 1)]))
        return self._update(self._announce(events, self._n - 1))

    def flush(self, beats: Sequence[Beat] = ()) -> RhythmUpdate:
        """End the record: take the beat detector's last beats and end all open alarms.

        Parameters
        ----------
        beats
            Beats the beat pipeline returned from its own ``flush()``.

        Returns
        -------
        RhythmUpdate
            The final events; every alarm still active is ended at ``end_sample``.
        """
        for e in self._loss.flush():
            self._push(e.sample_index, _ORDER_END, e)
        for b in beats:
            self._push(int(b.sample_index), _ORDER_BEAT, b)
        events = self._drain(math.inf)
        if self._n > 0:
            events.extend(self._engine.process([ClockTick(self._n - 1)]))
        events = self._announce(events, self._n)
        events.extend(self._engine.flush())
        self._in_loss = False
        return self._update(events)
