"""From window probabilities to alarms (streaming) and to one decision per recording.

Alarms, on the stream of scored windows (a window is *usable* when ``poor_quality < 0.5``):

* ``poor_recording_quality`` ("poor recording quality, re-record", technical, priority
  ``low``): raised when the last ``quality_windows`` windows are all unusable; ends when that
  many consecutive windows are usable again.
* ``abnormal_heart_sound`` ("abnormal heart sound suspected", priority ``medium``): raised when
  the mean ``abnormal`` probability of the last ``abnormal_windows`` usable windows reaches
  ``raise_at``; ends when it falls below ``end_below``.

The onset of an alarm is the start sample of the first window of the run that raised it, so
the alert id (patient, type, onset) is the same on every replay.

Recording decision (``analyze pcg``, ``evaluate pcg``): ``quality`` is the mean of
``1 - poor_quality``; ``abnormal_probability`` the mean ``abnormal`` over usable windows (over
all windows when none is usable); ``decision`` is ``"unsure"`` when ``quality < 0.5`` or the
probability lies in ``[0.45, 0.55)``, else ``"abnormal"`` (>= 0.55) or ``"normal"``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ALARM_ABNORMAL",
    "ALARM_POOR_QUALITY",
    "MESSAGES",
    "AlarmEvent",
    "PcgAlarms",
    "WindowScore",
    "recording_decision",
]

ALARM_ABNORMAL = "abnormal_heart_sound"
ALARM_POOR_QUALITY = "poor_recording_quality"
PRIORITIES = {ALARM_ABNORMAL: "medium", ALARM_POOR_QUALITY: "low"}
MESSAGES = {
    ALARM_ABNORMAL: "abnormal heart sound suspected",
    ALARM_POOR_QUALITY: "poor recording quality, re-record",
}


@dataclass(frozen=True)
class WindowScore:
    """The classifier's probabilities for one window (start at the internal rate)."""

    start_sample: int
    abnormal: float
    murmur: float
    poor_quality: float

    @property
    def usable(self) -> bool:
        """Whether the window's quality is good enough to judge the heart sound."""
        return self.poor_quality < 0.5


@dataclass(frozen=True)
class AlarmEvent:
    """A state change of a PCG alarm."""

    kind: str
    state: str  # "raise" | "end"
    onset_sample: int
    end_sample: int | None
    sample_index: int
    priority: str
    probability: float


@dataclass
class PcgAlarms:
    """Streaming alarm rules over scored windows (see the module docstring)."""

    quality_windows: int = 3
    abnormal_windows: int = 4
    raise_at: float = 0.6
    end_below: float = 0.4
    _recent: deque[WindowScore] = field(default_factory=lambda: deque(maxlen=16))
    _usable: deque[WindowScore] = field(default_factory=lambda: deque(maxlen=16))
    _open: dict[str, int] = field(default_factory=dict)  # kind -> onset sample

    def update(self, scores: list[WindowScore], window_samples: int) -> list[AlarmEvent]:
        """Feed newly scored windows; return the alarm events they cause."""
        events: list[AlarmEvent] = []
        for s in scores:
            self._recent.append(s)
            if s.usable:
                self._usable.append(s)
            end = s.start_sample + window_samples
            events += self._quality(s, end)
            events += self._abnormal(s, end)
        return events

    def _quality(self, s: WindowScore, end: int) -> list[AlarmEvent]:
        n = self.quality_windows
        last = list(self._recent)[-n:]
        if len(last) < n:
            return []
        kind = ALARM_POOR_QUALITY
        p = float(np.mean([w.poor_quality for w in last]))
        if kind not in self._open and all(not w.usable for w in last):
            return [self._raise(kind, last[0].start_sample, end, p)]
        if kind in self._open and all(w.usable for w in last):
            return [self._end(kind, end, p)]
        return []

    def _abnormal(self, s: WindowScore, end: int) -> list[AlarmEvent]:
        n = self.abnormal_windows
        if not s.usable or len(self._usable) < n:
            return []
        last = list(self._usable)[-n:]
        kind = ALARM_ABNORMAL
        p = float(np.mean([w.abnormal for w in last]))
        if kind not in self._open and p >= self.raise_at:
            return [self._raise(kind, last[0].start_sample, end, p)]
        if kind in self._open and p < self.end_below:
            return [self._end(kind, end, p)]
        return []

    def _raise(self, kind: str, onset: int, end: int, p: float) -> AlarmEvent:
        self._open[kind] = onset
        return AlarmEvent(kind, "raise", onset, None, end, PRIORITIES[kind], round(p, 3))

    def _end(self, kind: str, end: int, p: float) -> AlarmEvent:
        onset = self._open.pop(kind)
        return AlarmEvent(kind, "end", onset, end, end, PRIORITIES[kind], round(p, 3))

    def close(self, end: int) -> list[AlarmEvent]:
        """End every open alarm at ``end`` (the record ended)."""
        return [self._end(kind, end, 0.0) for kind in sorted(self._open)]


def recording_decision(scores: NDArray[np.floating]) -> dict[str, Any]:
    """Aggregate window probabilities ``(n, 3)`` (abnormal, murmur, poor_quality) of a recording.

    >>> recording_decision(np.array([[0.9, 0.2, 0.1], [0.7, 0.1, 0.2]]))["decision"]
    'abnormal'
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1, 3)
    if len(s) == 0:
        return {"abnormal_probability": None, "murmur_probability": None, "quality": None,
                "decision": "unsure", "windows": 0}  # fmt: skip
    usable = s[s[:, 2] < 0.5]
    judged = usable if len(usable) else s
    quality = float(np.mean(1.0 - s[:, 2]))
    p = float(np.mean(judged[:, 0]))
    if quality < 0.5 or 0.45 <= p < 0.55:
        decision = "unsure"
    else:
        decision = "abnormal" if p >= 0.55 else "normal"
    return {
        "abnormal_probability": round(p, 4),
        "murmur_probability": round(float(np.mean(judged[:, 1])), 4),
        "quality": round(quality, 4),
        "decision": decision,
        "windows": len(s),
    }
