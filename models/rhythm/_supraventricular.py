"""The supraventricular rules: SVT from abrupt fast runs, AF from irregular RR and no P waves.

The rules themselves are documented once, in :class:`~models.rhythm.ArrhythmiaDetector`;
the irregularity measure is :func:`~models.rhythm._af_measure.rr_irregular`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Container, Sequence
from typing import Protocol

import numpy as np

from models.rhythm._af_measure import rr_irregular
from models.rhythm._rules import End, LabelledBeat, Raise, Verdict, rate_bpm
from models.rhythm._types import AlarmKind
from models.rhythm._ventricular import VtShapeRules, vt_evidence


class SupraventricularRules(VtShapeRules, Protocol):
    """The settings of the SVT and AF rules (:class:`ArrhythmiaDetector` has them)."""

    fs_hz: float
    svt_min_beats: int
    svt_bpm: float
    svt_onset_ratio: float
    af_window_beats: int
    af_rmssd: float
    af_entropy: float
    af_confirm: int
    af_sinus_rr: bool
    af_skip_labels: str
    af_skip_shape: bool
    af_skip_corr: float
    af_skip_label_corr: float
    af_p_corr: float | None


def af_ectopic(beat: LabelledBeat, rules: SupraventricularRules) -> bool:
    """Whether a beat's RR intervals stay out of the AF irregularity measure.

    A beat labelled ectopic (``af_skip_labels``) that is shaped like the dominant beat
    (template correlation ``>= af_skip_label_corr``) is taken for a conducted beat with a
    wrong label, as the beat classifier gives many beats of AF, and stays in.
    """
    corr = beat.shape.template_corr
    labelled = beat.label is not None and beat.label in rules.af_skip_labels
    if labelled and not corr >= rules.af_skip_label_corr:  # NaN correlation: ectopic
        return True
    return rules.af_skip_shape and corr < rules.af_skip_corr


class SupraventricularTachycardia:
    """SVT: a run of fast beats outside any VT run and outside AF, that began abruptly."""

    def __init__(self) -> None:
        self._abrupt = False  # whether the current fast run began abruptly
        self._prev_rr: int | None = None  # the previous beat's RR interval, if trusted
        self.restart()

    def restart(self) -> None:
        """Start the run afresh."""
        self._fast: list[int] = []  # samples of the current run of fast non-V beats

    def step(
        self,
        beat: LabelledBeat,
        rr: int | None,
        rr_trusted: bool,
        rules: SupraventricularRules,
        active: Container[AlarmKind],
        trusted: bool,
    ) -> list[Verdict]:
        """Take one beat and its RR interval (``None``: none, after a gap or at the start).

        ``rr_trusted`` says whether that interval was measured on trusted signal. A run's
        onset is judged abrupt only against the interval just before it, and only when that
        interval was trusted: an onset inside noise is not evidence of SVT.
        """
        before, self._prev_rr = self._prev_rr, rr if rr_trusted else None
        s = beat.sample_index
        fast = (
            not vt_evidence(beat, rules)[0]
            and rr is not None
            and 60.0 * rules.fs_hz / rr >= rules.svt_bpm
            and "atrial_fibrillation" not in active
        )
        if not fast:
            self._fast = []
            return [End("svt", s)] if "svt" in active else []
        assert rr is not None
        if not self._fast:
            self._abrupt = beat.label == "S" or (
                before is not None and rr <= rules.svt_onset_ratio * before
            )
            self._fast = [s - rr]  # the run begins at the beat before
        self._fast.append(s)
        if (
            "svt" not in active
            and self._abrupt
            and len(self._fast) - 1 >= rules.svt_min_beats
            and trusted
        ):
            return [Raise("svt", self._fast[0], rate_bpm(self._fast, rules.fs_hz))]
        return []


class AtrialFibrillation:
    """AF: irregular RR intervals, raised and ended after ``af_confirm`` beats in a row.

    Parameters
    ----------
    window_beats
        RR intervals the measure looks at (``af_window_beats``).
    """

    def __init__(self, window_beats: int) -> None:
        # RR between two non-ectopic beats only: ventricular ectopy is irregular, but not AF.
        self._sinus_rr: deque[int] = deque(maxlen=window_beats)
        # P-wave consistency (BeatShapeMeasures.p_corr) of the beats closing those intervals
        self._p_corr: deque[float] = deque(maxlen=window_beats)
        self._prev_ectopic = False  # whether the previous beat was ectopic
        self._votes = 0  # beats in a row that disagree with the alarm's state

    def restart(self) -> None:
        """Forget the intervals and the votes."""
        self._sinus_rr.clear()
        self._p_corr.clear()
        self._votes = 0

    def add_beat(self, beat: LabelledBeat, rr: int | None, rules: SupraventricularRules) -> None:
        """Take a beat's RR interval (``None``: none, or not to be trusted) into the measure."""
        ectopic = af_ectopic(beat, rules)
        if rr is not None and not ectopic and not self._prev_ectopic:
            self._sinus_rr.append(rr)
            self._p_corr.append(beat.shape.p_corr)
        self._prev_ectopic = ectopic

    def _p_waves(self, rules: SupraventricularRules) -> bool:
        """Whether consecutive P waves look alike (median P-window correlation over the
        window ``>= af_p_corr``); unknown (fewer than half measured, or no limit) is no."""
        if rules.af_p_corr is None:
            return False
        known = [c for c in self._p_corr if not math.isnan(c)]
        if 2 * len(known) < len(self._p_corr) or not known:
            return False
        return float(np.median(known)) >= rules.af_p_corr

    def step(
        self,
        beat: LabelledBeat,
        recent_rr: Sequence[int],
        rules: SupraventricularRules,
        active: Container[AlarmKind],
        trusted: bool,
        onsets: Sequence[int],
    ) -> list[Verdict]:
        """Vote at one beat; ``onsets`` holds the samples of the latest beats, this one last.

        ``recent_rr`` holds the latest trusted RR intervals, ectopic or not (scored when
        ``af_sinus_rr`` is false).
        """
        if not trusted:
            return []  # frozen while the beats cannot be trusted
        rr = self._sinus_rr if rules.af_sinus_rr else recent_rr
        irregular = (
            len(rr) >= rules.af_window_beats
            and rr_irregular(
                rr, rules.fs_hz, min_irregularity=rules.af_rmssd, min_entropy=rules.af_entropy
            )
            and not self._p_waves(rules)
        )
        is_active = "atrial_fibrillation" in active
        if irregular != is_active:
            self._votes += 1
        else:
            self._votes = 0
        if self._votes < rules.af_confirm:
            return []
        self._votes = 0
        if is_active:
            return [End("atrial_fibrillation", beat.sample_index)]
        back = min(rules.af_window_beats // 2 + rules.af_confirm, len(onsets))
        return [Raise("atrial_fibrillation", onsets[-back])]
