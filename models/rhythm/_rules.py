"""What the arrhythmia rules share: the beat they read and the verdicts they return.

Each rule (:mod:`models.rhythm._ventricular`, :mod:`models.rhythm._supraventricular`,
:mod:`models.rhythm._noise_alarm`) keeps its own counters and returns verdicts;
:class:`~models.rhythm.ArrhythmiaDetector` applies them to the alarms it owns, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.rhythm._beat_shape import BeatShapeMeasures
from models.rhythm._types import AlarmKind

_DOMINANT = BeatShapeMeasures()


@dataclass(frozen=True, slots=True)
class LabelledBeat:
    """A classified beat, with the sample at which its label became final.

    Parameters
    ----------
    sample_index
        Absolute index of the R peak.
    label
        AAMI class ``N``, ``S``, ``V``, ``F``, ``Q`` (``None``: unlabelled, taken as ``N``).
    quality
        QRS detector quality in ``[0, 1]``.
    final_sample
        Sample at which the label was known (the next beat, where the classifier needs it):
        the ``sample_index`` of the events this beat decides.
    shape
        The beat's QRS against the patient's dominant beat (:class:`BeatShape`); the default
        says "looks like the dominant beat".
    """

    sample_index: int
    label: str | None
    quality: float
    final_sample: int
    shape: BeatShapeMeasures = _DOMINANT


@dataclass(frozen=True, slots=True)
class Raise:
    """Raise ``kind`` from ``onset_sample`` (with the rate, where the rule has one)."""

    kind: AlarmKind
    onset_sample: int
    heart_rate_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class End:
    """End the active ``kind`` at ``end_sample``."""

    kind: AlarmKind
    end_sample: int


@dataclass(frozen=True, slots=True)
class Episode:
    """An alarm that is over when it is recognised (raised and ended, if the beats are trusted)."""

    kind: AlarmKind
    onset_sample: int
    end_sample: int


#: What a rule decides at one beat.
Verdict = Raise | End | Episode


def rate_bpm(samples: Sequence[int], fs_hz: float) -> float:
    """Mean rate of a run of beats at ``samples``, bpm (0 for fewer than two beats)."""
    if len(samples) < 2:
        return 0.0
    return 60.0 * fs_hz * (len(samples) - 1) / (samples[-1] - samples[0])
