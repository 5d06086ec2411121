"""Rhythm alarms: bradycardia, tachycardia, asystole and the signal-loss technical alarm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.ecg._types import Beat
from models.rhythm._types import (
    AlarmEvent,
    AlarmKind,
    ClockTick,
    HeartRateUpdate,
    Priority,
    SignalLossEvent,
)

AlarmInput = Beat | HeartRateUpdate | SignalLossEvent | ClockTick

#: The physiological (arrhythmia) alarms; suppressed while the signal is lost.
ARRHYTHMIA_KINDS: tuple[AlarmKind, ...] = ("bradycardia", "tachycardia", "asystole")


@dataclass(slots=True)
class _Active:
    onset_sample: int
    priority: Priority


def input_time(item: AlarmInput) -> int:
    """The sample an input refers to: a loss start refers to its onset, others to their index."""
    if isinstance(item, SignalLossEvent) and item.state == "start":
        return item.onset_sample
    return item.sample_index


class AlarmEngine:
    """Raise, update and end rhythm alarms from beats, heart rates and signal-loss events.

    Alarm conditions and priorities (IEC 60601-1-8 priorities; IEC 60601-2-27 makes
    asystole, extreme tachycardia and extreme bradycardia high-priority alarms):

    ==============  ===========================================  ==========================
    kind            raised when                                  priority
    ==============  ===========================================  ==========================
    asystole        no beat for ``asystole_s`` of sample time    high
    bradycardia     heart rate ``< brady_bpm``                   medium; high below
                                                                 ``extreme_brady_bpm``
    tachycardia     heart rate ``> tachy_bpm``                   medium; high above
                                                                 ``extreme_tachy_bpm``
    signal_loss     a signal-loss interval starts (technical)    ``signal_loss_priority``
    ==============  ===========================================  ==========================

    Each alarm is raised once per episode. A rate alarm ends when the rate is back inside
    its limit by ``hysteresis_bpm`` (e.g. bradycardia raised below 40 bpm ends at 45 bpm);
    crossing an extreme limit (and coming back by ``hysteresis_bpm``) emits ``"update"``
    with the new priority. Asystole is timed on the sample clock only: it fires at the
    sample where ``asystole_s`` have elapsed since the last beat (or the end of the last
    signal loss, or sample 0), and ends once ``asystole_clear_beats`` beats arrive with no
    gap of ``asystole_s`` between them.

    While the signal is lost no arrhythmia alarm is raised and beats and rates are ignored
    (the signal cannot be trusted): in particular a lead-off is never reported as asystole.
    Arrhythmia alarms already active stay active until the signal returns and their
    condition is seen to clear, so pulling a lead never silences an asystole.

    Input is a time-ordered sequence of :class:`~models.ecg.Beat`,
    :class:`HeartRateUpdate`, :class:`SignalLossEvent` and :class:`ClockTick` (order by
    :func:`input_time`). :class:`~models.rhythm.RhythmMonitor` builds that sequence from a
    live stream. Every output carries the sample at which it was decided, which is a
    function of the input only, never of how the input was cut into chunks.

    Parameters
    ----------
    fs_hz
        Sampling rate of the sample indices, Hz.
    brady_bpm, tachy_bpm
        Rate alarm limits, bpm.
    extreme_brady_bpm, extreme_tachy_bpm
        Limits beyond which a rate alarm is high priority, bpm.
    hysteresis_bpm
        How far back inside a limit the rate must come to end or de-escalate an alarm, bpm.
    asystole_s
        Time without a beat that is asystole, seconds.
    asystole_clear_beats
        Beats in a row (each within ``asystole_s`` of the previous) that end an asystole.
    signal_loss_priority
        Priority of the signal-loss technical alarm.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        brady_bpm: float = 40.0,
        tachy_bpm: float = 150.0,
        extreme_brady_bpm: float = 30.0,
        extreme_tachy_bpm: float = 180.0,
        hysteresis_bpm: float = 5.0,
        asystole_s: float = 4.0,
        asystole_clear_beats: int = 2,
        signal_loss_priority: Priority = "medium",
    ) -> None:
        if fs_hz <= 0 or asystole_s <= 0 or hysteresis_bpm < 0 or asystole_clear_beats < 1:
            raise ValueError("need fs_hz > 0, asystole_s > 0, hysteresis_bpm >= 0, clear >= 1")
        if not extreme_brady_bpm <= brady_bpm < tachy_bpm <= extreme_tachy_bpm:
            raise ValueError("need extreme_brady <= brady < tachy <= extreme_tachy")
        self.fs_hz = float(fs_hz)
        self.brady_bpm = float(brady_bpm)
        self.tachy_bpm = float(tachy_bpm)
        self.extreme_brady_bpm = float(extreme_brady_bpm)
        self.extreme_tachy_bpm = float(extreme_tachy_bpm)
        self.hysteresis_bpm = float(hysteresis_bpm)
        self.asystole_s = float(asystole_s)
        self.asystole_clear_beats = asystole_clear_beats
        self.signal_loss_priority: Priority = signal_loss_priority
        self._asystole_samples = max(1, math.ceil(self.asystole_s * self.fs_hz))
        self.reset()

    @property
    def latency_samples(self) -> int:
        """No look-ahead: decisions are made on the inputs as they come."""
        return 0

    def set_limits(
        self,
        *,
        brady_bpm: float | None = None,
        tachy_bpm: float | None = None,
        extreme_brady_bpm: float | None = None,
        extreme_tachy_bpm: float | None = None,
        asystole_s: float | None = None,
    ) -> None:
        """Change alarm limits while running (``None`` keeps a limit); state is kept.

        An active alarm is judged against the new limits from the next heart rate on.

        Raises
        ------
        ValueError
            The limits would be out of order; nothing is changed.
        """
        new = (
            self.extreme_brady_bpm if extreme_brady_bpm is None else float(extreme_brady_bpm),
            self.brady_bpm if brady_bpm is None else float(brady_bpm),
            self.tachy_bpm if tachy_bpm is None else float(tachy_bpm),
            self.extreme_tachy_bpm if extreme_tachy_bpm is None else float(extreme_tachy_bpm),
        )
        asystole = self.asystole_s if asystole_s is None else float(asystole_s)
        if not new[0] <= new[1] < new[2] <= new[3] or asystole <= 0:
            raise ValueError("need extreme_brady <= brady < tachy <= extreme_tachy, asystole_s > 0")
        self.extreme_brady_bpm, self.brady_bpm, self.tachy_bpm, self.extreme_tachy_bpm = new
        self.asystole_s = asystole
        self._asystole_samples = max(1, math.ceil(self.asystole_s * self.fs_hz))

    @property
    def active(self) -> tuple[AlarmKind, ...]:
        """Kinds of the alarms active now."""
        return tuple(self._active)

    def reset(self) -> None:
        """Forget everything; no alarm is active."""
        self._now = -1  # every input up to this sample has been seen
        self._ref = 0  # last beat, or end of the last signal loss, or record start
        self._last_beat: int | None = None
        self._loss = False
        self._clear_count = 0
        self._active: dict[AlarmKind, _Active] = {}

    # ----------------------------------------------------------------- helpers
    def _raise(
        self,
        out: list[AlarmEvent],
        kind: AlarmKind,
        at: int,
        priority: Priority,
        heart_rate_bpm: float | None = None,
        *,
        onset: int | None = None,
    ) -> None:
        onset_sample = at if onset is None else onset
        self._active[kind] = _Active(onset_sample, priority)
        out.append(AlarmEvent(kind, "raise", onset_sample, None, priority, heart_rate_bpm, at))

    def _update(
        self, out: list[AlarmEvent], kind: AlarmKind, at: int, priority: Priority, hr: float
    ) -> None:
        act = self._active[kind]
        act.priority = priority
        out.append(AlarmEvent(kind, "update", act.onset_sample, None, priority, hr, at))

    def _end(
        self, out: list[AlarmEvent], kind: AlarmKind, at: int, hr: float | None = None
    ) -> None:
        act = self._active.pop(kind)
        out.append(AlarmEvent(kind, "end", act.onset_sample, at, act.priority, hr, at))

    def _advance(self, known: int, out: list[AlarmEvent]) -> None:
        """All input up to sample ``known`` (inclusive) has been seen."""
        self._now = max(self._now, known)
        due = self._ref + self._asystole_samples
        if not self._loss and "asystole" not in self._active and self._now >= due:
            self._clear_count = 0
            self._raise(out, "asystole", due, "high", onset=self._ref)

    def _on_rate(self, idx: int, hr: float, out: list[AlarmEvent]) -> None:
        h = self.hysteresis_bpm
        limits: tuple[tuple[AlarmKind, float, float, float], ...] = (
            # kind, limit, extreme limit, +1 for a lower limit / -1 for an upper limit
            ("bradycardia", self.brady_bpm, self.extreme_brady_bpm, 1.0),
            ("tachycardia", self.tachy_bpm, self.extreme_tachy_bpm, -1.0),
        )
        for kind, limit, extreme, sign in limits:
            # "sign * (limit - hr) > 0" reads "hr is beyond limit" for both directions.
            beyond_extreme = sign * (extreme - hr) > 0
            act = self._active.get(kind)
            if act is None:
                if sign * (limit - hr) > 0:
                    self._raise(out, kind, idx, "high" if beyond_extreme else "medium", hr)
            elif sign * (limit + sign * h - hr) <= 0:
                self._end(out, kind, idx, hr)
            elif act.priority != "high" and beyond_extreme:
                self._update(out, kind, idx, "high", hr)
            elif act.priority == "high" and sign * (extreme + sign * h - hr) <= 0:
                self._update(out, kind, idx, "medium", hr)

    # -------------------------------------------------------------------- API
    def process(self, chunk: Sequence[AlarmInput]) -> list[AlarmEvent]:
        """Consume time-ordered inputs and return the alarm events they decide.

        Parameters
        ----------
        chunk
            Beats, heart-rate updates, signal-loss events and clock ticks, ordered by
            :func:`input_time`.

        Returns
        -------
        list of AlarmEvent
            In the order decided.
        """
        out: list[AlarmEvent] = []
        for item in chunk:
            t = max(input_time(item), self._now)  # a late input is taken as arriving now
            if isinstance(item, ClockTick):
                self._advance(t, out)
                continue
            self._advance(t - 1, out)
            if isinstance(item, SignalLossEvent):
                if item.state == "start" and not self._loss:
                    self._loss = True
                    self._raise(out, "signal_loss", t, self.signal_loss_priority)
                elif item.state == "end" and self._loss:
                    self._loss = False
                    self._ref = max(self._ref, t)
                    self._end(out, "signal_loss", t)
            elif self._loss:
                continue  # beats and rates during signal loss are not trusted
            elif isinstance(item, Beat):
                if "asystole" in self._active:
                    near = (
                        self._last_beat is not None and t - self._last_beat < self._asystole_samples
                    )
                    self._clear_count = self._clear_count + 1 if near and self._clear_count else 1
                    if self._clear_count >= self.asystole_clear_beats:
                        self._end(out, "asystole", t)
                self._last_beat = t
                self._ref = max(self._ref, t)
            else:
                self._on_rate(t, item.heart_rate_bpm, out)
        return out

    def flush(self) -> list[AlarmEvent]:
        """End every active alarm at the last sample seen (end of the record)."""
        out: list[AlarmEvent] = []
        for kind in list(self._active):
            self._end(out, kind, self._now + 1)
        return out
