"""Events produced and consumed by the rhythm stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AlarmKind = Literal[
    "bradycardia",
    "tachycardia",
    "asystole",
    "signal_loss",
    "ventricular_tachycardia",
    "ventricular_run",
    "couplet",
    "bigeminy",
    "trigeminy",
    "svt",
    "atrial_fibrillation",
    "pause",
    "noise",
]
AlarmState = Literal["raise", "update", "end"]
Priority = Literal["high", "medium", "low"]
LossState = Literal["start", "end"]


@dataclass(frozen=True, slots=True)
class HeartRateUpdate:
    """A new averaged heart rate, computed at a beat.

    Parameters
    ----------
    sample_index
        Absolute sample index of the beat that completed the average.
    heart_rate_bpm
        Averaged heart rate, beats per minute.
    n_intervals
        Number of RR intervals the average was computed from.
    """

    sample_index: int
    heart_rate_bpm: float
    n_intervals: int


@dataclass(frozen=True, slots=True)
class SignalLossEvent:
    """Start or end of an interval where the ECG signal is lost (flat line, lead off, rail).

    Parameters
    ----------
    state
        ``"start"`` or ``"end"``.
    sample_index
        Sample at which the change was decided: for ``"start"`` the sample that completed
        the flat window, for ``"end"`` the first sample with signal again.
    onset_sample
        First lost sample of the interval (``<= sample_index``).
    """

    state: LossState
    sample_index: int
    onset_sample: int


@dataclass(frozen=True, slots=True)
class ClockTick:
    """Tells :class:`~models.rhythm.AlarmEngine` that all input up to ``sample_index`` was seen."""

    sample_index: int


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One step in the life of an alarm: raised, updated (priority change) or ended.

    Parameters
    ----------
    kind
        ``"bradycardia"``, ``"tachycardia"``, ``"asystole"`` (physiological) or
        ``"signal_loss"`` (technical).
    state
        ``"raise"`` once per episode, ``"update"`` when the priority changes (escalation to
        an extreme rate and back), ``"end"`` once when the condition clears.
    onset_sample
        Where the alarm condition began: the beat whose heart rate crossed the limit, the
        last beat (or end of signal loss) before an asystole, the first lost sample.
    end_sample
        Exclusive end of the episode on ``"end"`` events, else ``None``.
    priority
        IEC 60601-1-8 alarm priority: ``"high"``, ``"medium"`` or ``"low"``.
    heart_rate_bpm
        Averaged heart rate at the event (rate alarms), else ``None``.
    sample_index
        Sample at which the event was decided: it does not depend on how the input was
        cut into chunks.
    """

    kind: AlarmKind
    state: AlarmState
    onset_sample: int
    end_sample: int | None
    priority: Priority
    heart_rate_bpm: float | None
    sample_index: int


@dataclass(frozen=True, slots=True)
class RhythmUpdate:
    """What :meth:`~models.rhythm.RhythmMonitor.process` returns for one chunk.

    Parameters
    ----------
    heart_rate_bpm
        Current averaged heart rate, ``None`` while unknown, during signal loss or asystole.
    alarms
        Alarm lifecycle events that became final in this chunk, in order.
    signal_ok
        ``False`` while the signal-loss detector reports the signal lost.
    end_sample
        Absolute index one past the last sample processed so far.
    """

    heart_rate_bpm: float | None
    alarms: list[AlarmEvent] = field(default_factory=list)
    signal_ok: bool = True
    end_sample: int = 0
