"""Arrhythmia alarms from the labelled beat stream: ectopy, VT, SVT, AF and the noise alarm."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from models.rhythm._af_measure import rr_irregular
from models.rhythm._beat_shape import BeatShapeMeasures
from models.rhythm._types import AlarmEvent, AlarmKind, Priority

#: Alarms this stage raises, with their IEC 60601-1-8 priority.
ARRHYTHMIA_PRIORITY: dict[AlarmKind, Priority] = {
    "ventricular_tachycardia": "high",
    "ventricular_run": "medium",
    "couplet": "low",
    "bigeminy": "low",
    "trigeminy": "low",
    "svt": "medium",
    "atrial_fibrillation": "medium",
    "pause": "medium",
    "noise": "low",
}


#: IEC 60601-1-8 latching alarms: they stay shown after their condition ends, until someone
#: acknowledges them (a life-threatening rhythm that came and went must still be seen). The
#: other kinds are non-latching: shown while their condition lasts.
LATCHING_KINDS: frozenset[AlarmKind] = frozenset(
    {"asystole", "ventricular_tachycardia", "ventricular_run", "pause"}
)


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


class ArrhythmiaDetector:
    """Raise and end arrhythmia and noise alarms from classified beats, one beat at a time.

    Every decision is a function of the beat sequence alone, so the output does not depend
    on how the stream was cut into chunks. Each beat carries its label and its shape against
    the patient's running dominant-beat template (:class:`BeatShape`: template correlation,
    correlation with the previous beat, QRS width ratio). A beat is *ventricular-shaped*
    when it is unlike the template (correlation ``< vt_corr``) or wide (width ``>=
    vt_wide_ratio`` times the template's). VT rests on label and shape together; couplets,
    runs and bigeminy/trigeminy on the ``V`` labels (``N``, ``S``, ``F``, ``Q``, ``None``
    count as non-ventricular there). The beat classifier is weak on ``S`` beats, so the
    supraventricular alarms use RR intervals first.

    =======================  ===============================================================
    kind                     condition
    =======================  ===============================================================
    ventricular_tachycardia  a run of ``vt_min_beats`` or more ventricular beats at a mean
                             rate ``>= vt_bpm``, of which at least ``vt_shape_fraction`` are
                             ventricular-shaped; a beat is in the run when labelled ``V``,
                             or, whatever its label, when it is unlike the template, wide
                             and like the beat before it (correlation ``>= vt_corr``);
                             raised at the beat that completes it, ends at the first beat
                             not in the run
    ventricular_run          a run of 3 or more V beats during which VT was not active
                             (reported when the run ends)
    couplet                  exactly two V beats in a row (reported at the beat after)
    bigeminy                 ``cycles`` V beats each followed by one non-V beat; ends at
                             the beat that breaks the pattern, decided when it has not
                             come back within ``pattern_hold_beats`` beats (a pattern
                             that misses a cycle stays one episode, one alarm)
    trigeminy                as bigeminy, with two non-V beats per V
    svt                      ``svt_min_beats`` beats in a row, none in a VT run, at ``>=
                             svt_bpm`` whose run began abruptly (first RR ``<=
                             svt_onset_ratio`` times the RR before it, or an ``S`` beat),
                             outside atrial fibrillation
    atrial_fibrillation      RR irregularity over the last ``af_window_beats`` intervals
                             between two non-ectopic beats (all intervals if
                             ``af_sinus_rr`` is false; ectopic: a label in
                             ``af_skip_labels``, or, if ``af_skip_shape``, a
                             template correlation ``< af_skip_corr``; not the
                             width, which atrial activity widens): normalised RMS
                             difference of intervals 1, 2 and 3 apart (the least of the
                             three, so bigeminy and trigeminy are regular) ``>=
                             af_rmssd`` and entropy of the RR histogram ``>=
                             af_entropy`` after dropping the extremes; raised after
                             ``af_confirm`` windows in a row, ended after as many not
    pause                    an RR interval ``>= pause_s`` (up to the asystole limit, which
                             the rate engine owns); raised and ended at the beat after it
    noise (technical)        over the last ``noise_beats`` beats: mean QRS quality ``<
                             noise_quality``, or a share ``>= noise_fraction`` of *erratic*
                             beats of QRS quality ``< noise_beat_quality``, or a share ``>=
                             noise_erratic_fraction`` of erratic beats of any quality
                             (erratic: template and previous-beat correlation both ``<
                             noise_corr``); ends once the mean quality is back over its
                             limit by 0.1 and both shares under half their limits
    =======================  ===============================================================

    While the noise alarm is active no arrhythmia alarm is raised (the beats cannot be
    trusted) and the ectopy, VT and SVT counters start afresh; the AF measure is frozen
    instead (no intervals, no votes), so an AF episode that was building goes on from where
    it was when the noise ends. Alarms already active stay active until their own
    condition ends (:class:`~models.monitor.EcgMonitor` also holds back the
    bradycardia and tachycardia alarms). A gap of more than ``gap_s`` between beats (signal
    loss, lead off) also starts the counters afresh.

    The shape thresholds were chosen on the MIT-BIH DS1 records only, with
    ``benchmarks/alarm_design.py`` (figures in ``BENCHMARKS.md``).

    Parameters
    ----------
    fs_hz
        Sampling rate of the sample indices, Hz.
    vt_min_beats, vt_bpm
        VT definition: V beats in a row, and the least mean rate, bpm.
    cycles
        Bigeminal / trigeminal cycles needed to raise.
    pattern_hold_beats
        Beats a broken bigeminy/trigeminy pattern has to come back before its alarm ends.
    svt_min_beats, svt_bpm, svt_onset_ratio
        SVT definition (see the table).
    af_window_beats, af_rmssd, af_entropy, af_confirm
        AF detector (see the table).
    pause_s, gap_s
        Pause threshold and the gap that restarts the counters, seconds.
    noise_beats, noise_quality, noise_corr, noise_fraction, noise_beat_quality
        Noise alarm (see the table).
    noise_erratic_fraction
        Noise alarm (see the table).
    vt_corr, vt_wide_ratio, vt_shape_fraction
        VT confirmation by shape (see the table).
    af_skip_labels, af_skip_shape, af_skip_corr
        Beats whose RR intervals the AF measure leaves out (see the table).
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        vt_min_beats: int = 3,
        vt_bpm: float = 100.0,
        cycles: int = 4,
        pattern_hold_beats: int = 6,
        svt_min_beats: int = 5,
        svt_bpm: float = 140.0,
        svt_onset_ratio: float = 0.7,
        af_window_beats: int = 32,
        af_rmssd: float = 0.2,
        af_entropy: float = 0.6,
        af_confirm: int = 8,
        af_sinus_rr: bool = True,
        pause_s: float = 2.5,
        gap_s: float = 4.0,
        noise_beats: int = 8,
        noise_quality: float = 0.3,
        noise_corr: float = 0.5,
        noise_fraction: float = 0.5,
        noise_beat_quality: float = 0.85,
        noise_erratic_fraction: float = 0.75,
        vt_corr: float = 0.7,
        vt_wide_ratio: float = 1.5,
        vt_shape_fraction: float = 0.5,
        af_skip_labels: str = "V",
        af_skip_shape: bool = True,
        af_skip_corr: float = 0.5,
    ) -> None:
        if fs_hz <= 0 or vt_min_beats < 3 or cycles < 2 or svt_min_beats < 3:
            raise ValueError("need fs_hz > 0, vt_min_beats >= 3, cycles >= 2, svt_min_beats >= 3")
        if af_window_beats < 8 or af_confirm < 1 or noise_beats < 1 or not 0 < pause_s < gap_s:
            raise ValueError("need af_window_beats >= 8, af_confirm >= 1, 0 < pause_s < gap_s")
        self.fs_hz = float(fs_hz)
        self.vt_min_beats = vt_min_beats
        self.vt_bpm = float(vt_bpm)
        self.cycles = cycles
        self.pattern_hold_beats = pattern_hold_beats
        self.svt_min_beats = svt_min_beats
        self.svt_bpm = float(svt_bpm)
        self.svt_onset_ratio = float(svt_onset_ratio)
        self.af_window_beats = af_window_beats
        self.af_rmssd = float(af_rmssd)
        self.af_entropy = float(af_entropy)
        self.af_confirm = af_confirm
        self.af_sinus_rr = af_sinus_rr
        self.pause_s = float(pause_s)
        self.gap_s = float(gap_s)
        self.noise_beats = noise_beats
        self.noise_quality = float(noise_quality)
        self.noise_corr = float(noise_corr)
        self.noise_fraction = float(noise_fraction)
        self.noise_beat_quality = float(noise_beat_quality)
        self.noise_erratic_fraction = float(noise_erratic_fraction)
        self.vt_corr = float(vt_corr)
        self.vt_wide_ratio = float(vt_wide_ratio)
        self.vt_shape_fraction = float(vt_shape_fraction)
        self.af_skip_labels = af_skip_labels
        self.af_skip_shape = af_skip_shape
        self.af_skip_corr = float(af_skip_corr)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """No look-ahead beyond the beat stream: decisions are made at each beat."""
        return 0

    @property
    def active(self) -> tuple[AlarmKind, ...]:
        """Kinds of the alarms active now."""
        return tuple(self._active)

    def reset(self) -> None:
        """Forget every beat; no alarm is active."""
        self._active: dict[AlarmKind, int] = {}  # kind -> onset sample
        self._prev: int | None = None  # sample of the previous beat
        self._rr: deque[int] = deque(maxlen=self.af_window_beats)
        # RR between two non-V beats only: ventricular ectopy is irregular, but not AF.
        self._af_rr: deque[int] = deque(maxlen=self.af_window_beats)
        self._prev_v = False
        self._quality: deque[float] = deque(maxlen=self.noise_beats)
        self._erratic: deque[tuple[bool, bool]] = deque(maxlen=self.noise_beats)
        self._vt_run: list[int] = []  # samples of the current run of ventricular-looking beats
        self._vt_shaped = 0  # beats of that run whose shape is ventricular
        self._run_vt = False  # whether VT was active during the current run of V beats
        self._v_run: list[int] = []  # samples of the current run of V beats
        self._n_since_v = -1  # non-V beats since the last V (-1: no V yet)
        self._pattern: tuple[int, int] = (0, 0)  # (non-V beats per cycle, cycles in a row)
        # (sample of the beat that broke an active pattern, beats since), None: not broken
        self._pattern_break: tuple[int, int] | None = None
        self._fast: list[int] = []  # samples of the current run of fast non-V beats
        self._fast_abrupt = False
        self._af_votes = 0
        self._onsets: deque[int] = deque(
            maxlen=self.af_window_beats + self.af_confirm + 3 * self.cycles + 2
        )
        self._end_sample = 0

    # ----------------------------------------------------------------- helpers
    def _raise(
        self, out: list[AlarmEvent], kind: AlarmKind, onset: int, at: int, hr: float | None = None
    ) -> None:
        self._active[kind] = onset
        out.append(AlarmEvent(kind, "raise", onset, None, ARRHYTHMIA_PRIORITY[kind], hr, at))

    def _end(self, out: list[AlarmEvent], kind: AlarmKind, end: int, at: int) -> None:
        onset = self._active.pop(kind)
        out.append(AlarmEvent(kind, "end", onset, end, ARRHYTHMIA_PRIORITY[kind], None, at))

    def _event(self, out: list[AlarmEvent], kind: AlarmKind, onset: int, end: int, at: int) -> None:
        """An alarm that is over when it is recognised (couplet, short run, pause)."""
        if self._trusted():
            self._raise(out, kind, onset, at)
            self._end(out, kind, end, at)

    def _trusted(self) -> bool:
        return "noise" not in self._active

    def _rate_bpm(self, samples: Sequence[int]) -> float:
        if len(samples) < 2:
            return 0.0
        return 60.0 * self.fs_hz * (len(samples) - 1) / (samples[-1] - samples[0])

    def _restart_counters(self, *, keep_af: bool = False) -> None:
        """Start the ectopy, VT and SVT counters afresh (and the AF ones unless ``keep_af``)."""
        if not keep_af:
            self._rr.clear()
            self._af_rr.clear()
            self._af_votes = 0
        self._v_run = []
        self._vt_run = []
        self._vt_shaped = 0
        self._run_vt = False
        self._n_since_v = -1
        self._pattern = (0, 0)
        self._fast = []

    # -------------------------------------------------------------- detectors
    def _noise(self, out: list[AlarmEvent], beat: LabelledBeat) -> None:
        self._quality.append(beat.quality)
        shape = beat.shape
        unlike = shape.template_corr < self.noise_corr and shape.previous_corr < self.noise_corr
        self._erratic.append((unlike and beat.quality < self.noise_beat_quality, unlike))
        if len(self._quality) < self.noise_beats:
            return
        mean_q = sum(self._quality) / len(self._quality)
        weak = sum(w for w, _ in self._erratic) / len(self._erratic)
        erratic = sum(e for _, e in self._erratic) / len(self._erratic)
        if "noise" not in self._active and (
            mean_q < self.noise_quality
            or weak >= self.noise_fraction
            or erratic >= self.noise_erratic_fraction
        ):
            self._raise(out, "noise", beat.sample_index, beat.final_sample)
            self._restart_counters(keep_af=True)
        elif (
            "noise" in self._active
            and mean_q >= self.noise_quality + 0.1
            and weak < self.noise_fraction / 2
            and erratic < self.noise_erratic_fraction / 2
        ):
            self._end(out, "noise", beat.sample_index, beat.final_sample)

    def _vt_evidence(self, beat: LabelledBeat) -> tuple[bool, bool]:
        """Whether a beat belongs to a ventricular run, and whether its shape says so.

        A beat belongs to the run when it is labelled ``V``, or when it is both unlike the
        dominant beat (template correlation ``< vt_corr``) and wide (width ``>=
        vt_wide_ratio`` times the template's), whatever its label. Its shape says
        ventricular when it is unlike the dominant beat or wide.
        """
        shape = beat.shape
        unlike = shape.template_corr < self.vt_corr
        wide = shape.width_ratio >= self.vt_wide_ratio
        steady = shape.previous_corr >= self.vt_corr
        return beat.label == "V" or (unlike and wide and steady), unlike or wide

    def _ectopic(self, beat: LabelledBeat) -> bool:
        """Whether a beat's RR intervals stay out of the AF irregularity measure."""
        if beat.label is not None and beat.label in self.af_skip_labels:
            return True
        return self.af_skip_shape and beat.shape.template_corr < self.af_skip_corr

    def _tachycardia(self, out: list[AlarmEvent], beat: LabelledBeat) -> None:
        """Ventricular tachycardia from runs of ventricular beats that their shape confirms."""
        s, at = beat.sample_index, beat.final_sample
        member, shaped = self._vt_evidence(beat)
        if member:
            self._vt_run.append(s)
            self._vt_shaped += shaped
            run = self._vt_run
            if (
                "ventricular_tachycardia" not in self._active
                and len(run) >= self.vt_min_beats
                and self._vt_shaped >= self.vt_shape_fraction * len(run)
                and self._rate_bpm(run) >= self.vt_bpm
                and self._trusted()
            ):
                self._raise(out, "ventricular_tachycardia", run[0], at, self._rate_bpm(run))
            return
        if "ventricular_tachycardia" in self._active:
            self._end(out, "ventricular_tachycardia", s, at)
        self._vt_run = []
        self._vt_shaped = 0

    def _ventricular(self, out: list[AlarmEvent], beat: LabelledBeat) -> None:
        """Couplets and ventricular runs from the ``V`` labels (VT is :meth:`_tachycardia`)."""
        s, at = beat.sample_index, beat.final_sample
        if beat.label == "V":
            self._v_run.append(s)
            self._run_vt = self._run_vt or "ventricular_tachycardia" in self._active
            return
        run, was_vt = self._v_run, self._run_vt
        self._run_vt = False
        if was_vt:
            pass  # reported as ventricular tachycardia
        elif len(run) >= 3:
            self._event(out, "ventricular_run", run[0], s, at)
        elif len(run) == 2:
            self._event(out, "couplet", run[0], s, at)
        self._v_run = []

    def _pattern_step(self, out: list[AlarmEvent], beat: LabelledBeat) -> None:
        """Bigeminy (one non-V beat per V) and trigeminy (two), ended after a grace period.

        When the pattern of an active alarm breaks, the alarm stays active for
        ``pattern_hold_beats`` beats: if a V beat comes back at the pattern's spacing within
        them, the episode goes on (same alarm); otherwise it ends at the beat that broke it.
        """
        s, at = beat.sample_index, beat.final_sample
        per, count = self._pattern
        if self._pattern_break is not None:
            self._pattern_break = (self._pattern_break[0], self._pattern_break[1] + 1)
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
            if count and kind in self._active:
                self._pattern_break = None  # the pattern came back: the same episode goes on
            elif count >= self.cycles and self._trusted():
                self._end_pattern(out, at)
                cycle_beats = per + 1
                back = min(count * cycle_beats + 1, len(self._onsets))
                onset = self._onsets[-back]
                self._raise(out, kind, onset, at)
        else:
            if self._n_since_v >= 0:
                self._n_since_v += 1
            limit = per if per else 0
            if self._n_since_v > limit:
                if self._pattern_break is None and self._pattern_active():
                    self._pattern_break = (s, 0)
                if self._n_since_v > 2:
                    self._pattern = (0, 0)
        if self._pattern_break is not None and self._pattern_break[1] >= self.pattern_hold_beats:
            self._end_pattern(out, at)

    def _pattern_active(self) -> bool:
        return "bigeminy" in self._active or "trigeminy" in self._active

    def _end_pattern(self, out: list[AlarmEvent], at: int) -> None:
        """End an active bigeminy or trigeminy at the beat that broke its pattern."""
        if self._pattern_break is None:
            return
        for kind in ("bigeminy", "trigeminy"):
            if kind in self._active:
                self._end(out, kind, self._pattern_break[0], at)
        self._pattern_break = None

    def _svt(self, out: list[AlarmEvent], beat: LabelledBeat, rr: int | None) -> None:
        s, at = beat.sample_index, beat.final_sample
        fast = (
            not self._vt_evidence(beat)[0]
            and rr is not None
            and 60.0 * self.fs_hz / rr >= self.svt_bpm
            and "atrial_fibrillation" not in self._active
        )
        if not fast:
            if "svt" in self._active:
                self._end(out, "svt", s, at)
            self._fast = []
            return
        assert rr is not None
        if not self._fast:
            before = self._rr[-2] if len(self._rr) >= 2 else None
            self._fast_abrupt = beat.label == "S" or (
                before is not None and rr <= self.svt_onset_ratio * before
            )
            self._fast = [self._prev if self._prev is not None else s]
        self._fast.append(s)
        if (
            "svt" not in self._active
            and self._fast_abrupt
            and len(self._fast) - 1 >= self.svt_min_beats
            and self._trusted()
        ):
            self._raise(out, "svt", self._fast[0], at, self._rate_bpm(self._fast))

    def _af_score(self) -> bool:
        """Whether the last ``af_window_beats`` RR intervals are irregularly irregular."""
        rr = self._af_rr if self.af_sinus_rr else self._rr
        if len(rr) < self.af_window_beats:
            return False
        return rr_irregular(
            rr, self.fs_hz, min_irregularity=self.af_rmssd, min_entropy=self.af_entropy
        )

    def _af(self, out: list[AlarmEvent], beat: LabelledBeat) -> None:
        if not self._trusted():
            return  # frozen while the beats cannot be trusted
        s, at = beat.sample_index, beat.final_sample
        irregular = self._af_score()
        active = "atrial_fibrillation" in self._active
        if irregular != active:
            self._af_votes += 1
        else:
            self._af_votes = 0
        if self._af_votes >= self.af_confirm:
            self._af_votes = 0
            if active:
                self._end(out, "atrial_fibrillation", s, at)
            else:
                back = min(self.af_window_beats // 2 + self.af_confirm, len(self._onsets))
                onset = self._onsets[-back]
                self._raise(out, "atrial_fibrillation", onset, at)

    # -------------------------------------------------------------------- API
    def process(self, chunk: Sequence[LabelledBeat]) -> list[AlarmEvent]:
        """Consume labelled beats in time order and return the alarm events they decide.

        Parameters
        ----------
        chunk
            Labelled beats.

        Returns
        -------
        list of AlarmEvent
            In the order decided; ``sample_index`` is the deciding beat's ``final_sample``.
        """
        out: list[AlarmEvent] = []
        for beat in chunk:
            s = beat.sample_index
            rr = None if self._prev is None else s - self._prev
            if rr is not None and rr > self.gap_s * self.fs_hz:
                self._restart_counters()
                rr = None
            elif rr is not None and rr >= self.pause_s * self.fs_hz:
                self._event(out, "pause", self._prev or 0, s, beat.final_sample)
            if rr is not None and self._trusted():
                self._rr.append(rr)
                if not self._ectopic(beat) and not self._prev_v:
                    self._af_rr.append(rr)
            self._onsets.append(s)
            self._noise(out, beat)
            self._tachycardia(out, beat)
            self._ventricular(out, beat)
            self._pattern_step(out, beat)
            self._svt(out, beat, rr)
            self._af(out, beat)
            self._prev = s
            self._prev_v = self._ectopic(beat)
            self._end_sample = max(self._end_sample, beat.final_sample)
        return out

    def flush(self, end_sample: int | None = None) -> list[AlarmEvent]:
        """End every active alarm at ``end_sample`` (default: the last beat's final sample)."""
        end = self._end_sample if end_sample is None else end_sample
        out: list[AlarmEvent] = []
        for kind in list(self._active):
            self._end(out, kind, end, end)
        self.reset()
        return out
