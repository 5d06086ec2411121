"""The ``noise`` technical alarm: beats of low QRS quality, or erratic in shape.

The rule is documented once, in :class:`~models.rhythm.ArrhythmiaDetector`, which also
holds back the arrhythmia alarms while it is active.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from models.rhythm._rules import End, LabelledBeat, Raise, Verdict


class NoiseRules(Protocol):
    """The settings of the noise alarm (:class:`ArrhythmiaDetector` has them)."""

    noise_beats: int
    noise_quality: float
    noise_corr: float
    noise_fraction: float
    noise_beat_quality: float
    noise_erratic_fraction: float


class NoiseAlarm:
    """Quality and erratic-shape shares over the last ``noise_beats`` beats.

    Parameters
    ----------
    window_beats
        Beats the shares are taken over (``noise_beats``).
    """

    def __init__(self, window_beats: int) -> None:
        self._quality: deque[float] = deque(maxlen=window_beats)
        # per beat: (erratic with a weak QRS, erratic)
        self._erratic: deque[tuple[bool, bool]] = deque(maxlen=window_beats)

    def step(self, beat: LabelledBeat, rules: NoiseRules, active: bool) -> list[Verdict]:
        """Take one beat (``active``: whether the noise alarm is active now)."""
        self._quality.append(beat.quality)
        shape = beat.shape
        unlike = shape.template_corr < rules.noise_corr and shape.previous_corr < rules.noise_corr
        self._erratic.append((unlike and beat.quality < rules.noise_beat_quality, unlike))
        if len(self._quality) < rules.noise_beats:
            return []
        mean_q = sum(self._quality) / len(self._quality)
        weak = sum(w for w, _ in self._erratic) / len(self._erratic)
        erratic = sum(e for _, e in self._erratic) / len(self._erratic)
        if not active and (
            mean_q < rules.noise_quality
            or weak >= rules.noise_fraction
            or erratic >= rules.noise_erratic_fraction
        ):
            return [Raise("noise", beat.sample_index)]
        if (
            active
            and mean_q >= rules.noise_quality + 0.1
            and weak < rules.noise_fraction / 2
            and erratic < rules.noise_erratic_fraction / 2
        ):
            return [End("noise", beat.sample_index)]
        return []
