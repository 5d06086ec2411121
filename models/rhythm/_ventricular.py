"""The ventricular rules: VT by label and shape, runs and couplets, bigeminy and trigeminy.

The rules themselves are documented once, in :class:`~models.rhythm.ArrhythmiaDetector`;
its settings are read at every beat (a monitor may change ``vt_bpm`` while running).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Protocol

from models.rhythm._rules import End, Episode, LabelledBeat, Raise, Verdict, rate_bpm
from models.rhythm._types import AlarmKind


class VtShapeRules(Protocol):
    """The settings that say whether a beat's shape is ventricular."""

    vt_corr: float
    vt_wide_ratio: float
    vt_return_corr: float


class VentricularRules(VtShapeRules, Protocol):
    """The settings of the ventricular rules (:class:`ArrhythmiaDetector` has them)."""

    fs_hz: float
    vt_min_beats: int
    vt_bpm: float
    vt_shape_fraction: float
    vt_quality: float
    vt_quality_beats: int
    cycles: int
    pattern_hold_beats: int


def vt_evidence(beat: LabelledBeat, rules: VtShapeRules) -> tuple[bool, bool]:
    """Whether a beat belongs to a ventricular run, and whether its shape says so.

    A beat belongs to the run when it is labelled ``V``, or when it is both unlike the
    dominant beat (template correlation ``< vt_corr``) and wide (width ``>=
    vt_wide_ratio`` times the template's), whatever its label. Its shape says
    ventricular when it is unlike the dominant beat or wide.

    A beat that is *back to the dominant beat* is in no run, whatever its label: it matches
    the template (correlation ``>= vt_return_corr``) but not the beat before it
    (correlation ``< vt_corr``). A sinus beat after a couplet, which the classifier calls
    ``V``, looks like that; the third beat of a monomorphic run looks like the second.

    Examples
    --------
    >>> from models.rhythm import ArrhythmiaDetector, BeatShapeMeasures, LabelledBeat
    >>> rules = ArrhythmiaDetector(360.0)
    >>> pvc = BeatShapeMeasures(template_corr=-0.8, previous_corr=0.9, width_ratio=2.5)
    >>> vt_evidence(LabelledBeat(0, "V", 1.0, 0, pvc), rules)
    (True, True)
    >>> back = BeatShapeMeasures(template_corr=0.98, previous_corr=-0.7, width_ratio=0.9)
    >>> vt_evidence(LabelledBeat(0, "V", 1.0, 0, back), rules)
    (False, False)
    """
    shape = beat.shape
    unlike = shape.template_corr < rules.vt_corr
    wide = shape.width_ratio >= rules.vt_wide_ratio
    steady = shape.previous_corr >= rules.vt_corr
    if shape.template_corr >= rules.vt_return_corr and not steady:
        return False, False
    return beat.label == "V" or (unlike and wide and steady), unlike or wide


class VentricularTachycardia:
    """Ventricular tachycardia from runs of ventricular beats that their shape confirms.

    A run raises only while its latest ``vt_quality_beats`` beats all have a QRS quality
    ``>= vt_quality``: each stands clearly above the noise level and, where there is a
    second lead, shows there too. Runs of noise spikes fail this; a real run with one weak
    beat raises ``vt_quality_beats`` beats after it at the latest.
    """

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Start the run afresh."""
        self._run: list[int] = []  # samples of the current run of ventricular-looking beats
        self._quality: list[float] = []  # QRS quality of those beats
        self._shaped = 0  # beats of that run whose shape is ventricular

    def step(
        self,
        beat: LabelledBeat,
        rules: VentricularRules,
        active: Container[AlarmKind],
        trusted: bool,
    ) -> list[Verdict]:
        """Take one beat; raise VT at the beat that completes a run, end it at the first out."""
        member, shaped = vt_evidence(beat, rules)
        if member:
            self._run.append(beat.sample_index)
            self._quality.append(beat.quality)
            self._shaped += shaped
            run = self._run
            if (
                "ventricular_tachycardia" not in active
                and len(run) >= rules.vt_min_beats
                and self._shaped >= rules.vt_shape_fraction * len(run)
                and rate_bpm(run, rules.fs_hz) >= rules.vt_bpm
                and min(self._quality[-rules.vt_quality_beats :]) >= rules.vt_quality
                and trusted
            ):
                return [Raise("ventricular_tachycardia", run[0], rate_bpm(run, rules.fs_hz))]
            return []
        verdicts: list[Verdict] = []
        if "ventricular_tachycardia" in active:
            verdicts.append(End("ventricular_tachycardia", beat.sample_index))
        self._run = []
        self._quality = []
        self._shaped = 0
        return verdicts


class VentricularRuns:
    """Couplets and ventricular runs from the ``V`` labels, reported when the run ends."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Start the run afresh."""
        self._run: list[int] = []  # samples of the current run of V beats
        self._vt = False  # whether VT was active during that run

    def step(self, beat: LabelledBeat, vt_active: bool) -> list[Verdict]:
        """Take one beat (``vt_active``: whether VT is active now)."""
        if beat.label == "V":
            self._run.append(beat.sample_index)
            self._vt = self._vt or vt_active
            return []
        run, was_vt = self._run, self._vt
        self._vt = False
        self._run = []
        if was_vt:
            return []  # reported as ventricular tachycardia
        if len(run) >= 3:
            return [Episode("ventricular_run", run[0], beat.sample_index)]
        if len(run) == 2:
            return [Episode("couplet", run[0], beat.sample_index)]
        return []


class EctopyPattern:
    """Bigeminy (one non-V beat per V) and trigeminy (two), ended after a grace period.

    When the pattern of an active alarm breaks, the alarm stays active for
    ``pattern_hold_beats`` beats: if a V beat comes back at the pattern's spacing within
    them, the episode goes on (same alarm); otherwise it ends at the beat that broke it.
    """

    def __init__(self) -> None:
        # (sample of the beat that broke an active pattern, beats since), None: not broken
        self._break: tuple[int, int] | None = None
        self.restart()

    def restart(self) -> None:
        """Start counting cycles afresh (a pattern break already seen keeps counting)."""
        self._n_since_v = -1  # non-V beats since the last V (-1: no V yet)
        self._pattern: tuple[int, int] = (0, 0)  # (non-V beats per cycle, cycles in a row)

    def step(
        self,
        beat: LabelledBeat,
        rules: VentricularRules,
        active: Container[AlarmKind],
        trusted: bool,
        onsets: Sequence[int],
    ) -> list[Verdict]:
        """Take one beat; ``onsets`` holds the samples of the latest beats, this one last."""
        verdicts: list[Verdict] = []
        per, count = self._pattern
        if self._break is not None:
            self._break = (self._break[0], self._break[1] + 1)
        if beat.label == "V":
            gap = self._n_since_v
            if gap in (1, 2) and (gap == per or count == 0):
                count = count + 1 if gap == per else 1
                per = gap
            else:
                per, count = 0, 0
            self._pattern = (per, count)
            self._n_since_v = 0
            kind: AlarmKind = "bigeminy" if per == 1 else "trigeminy"
            if count and kind in active:
                self._break = None  # the pattern came back: the same episode goes on
            elif count >= rules.cycles and trusted:
                verdicts += self._end_pattern(active)
                cycle_beats = per + 1
                back = min(count * cycle_beats + 1, len(onsets))
                verdicts.append(Raise(kind, onsets[-back]))
        else:
            if self._n_since_v >= 0:
                self._n_since_v += 1
            limit = per if per else 0
            # after a restart (gap, noise) no V has been seen yet: an active pattern is broken
            if self._n_since_v > limit or self._n_since_v < 0:
                if self._break is None and ("bigeminy" in active or "trigeminy" in active):
                    self._break = (beat.sample_index, 0)
                if self._n_since_v > 2:
                    self._pattern = (0, 0)
        if self._break is not None and self._break[1] >= rules.pattern_hold_beats:
            verdicts += self._end_pattern(active)
        return verdicts

    def _end_pattern(self, active: Container[AlarmKind]) -> list[Verdict]:
        """End an active bigeminy or trigeminy at the beat that broke its pattern."""
        if self._break is None:
            return []
        ends: list[Verdict] = [
            End(kind, self._break[0]) for kind in ("bigeminy", "trigeminy") if kind in active
        ]
        self._break = None
        return ends
