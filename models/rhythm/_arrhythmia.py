"""Arrhythmia alarms from the labelled beat stream: ectopy, VT, SVT, AF and the noise alarm.

:class:`ArrhythmiaDetector` documents every rule, owns the alarms and composes the rules,
which live in :mod:`models.rhythm._ventricular` (VT, runs, couplets, bigeminy, trigeminy),
:mod:`models.rhythm._supraventricular` (SVT, AF) and :mod:`models.rhythm._noise_alarm`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from models.rhythm._noise_alarm import NoiseAlarm
from models.rhythm._rules import End, LabelledBeat, Raise, Verdict
from models.rhythm._supraventricular import AtrialFibrillation, SupraventricularTachycardia
from models.rhythm._types import AlarmEvent, AlarmKind, Priority
from models.rhythm._ventricular import EctopyPattern, VentricularRuns, VentricularTachycardia

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
                             and like the beat before it (correlation ``>= vt_corr``); a
                             beat back to the dominant beat (template correlation ``>=
                             vt_return_corr``, unlike the beat before it) is in no run;
                             the run's last ``vt_quality_beats`` beats need QRS quality
                             ``>= vt_quality`` (clear of the noise level);
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
                             svt_onset_ratio`` times the RR before it, that one
                             measured on trusted signal, or an ``S`` beat), outside
                             atrial fibrillation
    atrial_fibrillation      RR irregularity over the last ``af_window_beats`` intervals
                             between two non-ectopic beats (all intervals if
                             ``af_sinus_rr`` is false; ectopic: a label in
                             ``af_skip_labels`` on a beat of template correlation
                             ``< af_skip_label_corr`` (a V label on a beat shaped
                             like the dominant one is taken for a wrong label), or,
                             if ``af_skip_shape``, a template correlation ``<
                             af_skip_corr``; not the
                             width, which atrial activity widens): normalised RMS
                             difference of intervals 1, 2 and 3 apart (the least of the
                             three, so bigeminy and trigeminy are regular) ``>=
                             af_rmssd`` and entropy of the RR histogram ``>=
                             af_entropy`` after dropping the extremes, and no P waves:
                             the median P-window correlation of consecutive beats over
                             those beats ``< af_p_corr`` (sinus rhythm with irregular
                             ectopy keeps alike P waves; ``None``, or P windows not
                             measured: RR alone); raised after
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
    trusted) and the ectopy, VT and SVT counters start afresh when it is raised; beats
    during it do count towards a run, so a VT whose onset raised the noise alarm (its
    beats erratic in shape) is raised as soon as the noise alarm ends, with its onset
    inside the noise (restarting the counters again at that point lost 3 of 39 DS1 VT
    episodes for one false alarm fewer); the AF measure is frozen
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
    vt_corr, vt_wide_ratio, vt_shape_fraction, vt_return_corr
        VT confirmation by shape (see the table); ``vt_return_corr`` above 1 turns the
        back-to-the-dominant-beat rule off.
    vt_quality, vt_quality_beats
        QRS quality that the latest beats of a VT run need (see the table; 0 turns it off).
    af_skip_labels, af_skip_shape, af_skip_corr, af_skip_label_corr
        Beats whose RR intervals the AF measure leaves out (see the table);
        ``af_skip_label_corr`` above 1 leaves out every labelled beat.
    af_p_corr
        P-wave consistency at or above which an irregular rhythm is not AF (see the table).
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
        vt_return_corr: float = 0.9,
        vt_quality: float = 0.6,
        vt_quality_beats: int = 6,
        af_skip_labels: str = "V",
        af_skip_shape: bool = True,
        af_skip_corr: float = 0.5,
        af_p_corr: float | None = 0.4,
        af_skip_label_corr: float = 0.95,
    ) -> None:
        if fs_hz <= 0 or vt_min_beats < 3 or cycles < 2 or svt_min_beats < 3:
            raise ValueError("need fs_hz > 0, vt_min_beats >= 3, cycles >= 2, svt_min_beats >= 3")
        if vt_quality_beats < 1:
            raise ValueError("need vt_quality_beats >= 1")
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
        self.vt_return_corr = float(vt_return_corr)
        self.vt_quality = float(vt_quality)
        self.vt_quality_beats = vt_quality_beats
        self.af_skip_labels = af_skip_labels
        self.af_skip_shape = af_skip_shape
        self.af_skip_corr = float(af_skip_corr)
        self.af_skip_label_corr = float(af_skip_label_corr)
        self.af_p_corr = None if af_p_corr is None else float(af_p_corr)
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
        self._rr: deque[int] = deque(maxlen=self.af_window_beats)  # latest trusted RR intervals
        self._onsets: deque[int] = deque(
            maxlen=self.af_window_beats + self.af_confirm + 3 * self.cycles + 2
        )  # samples of the latest beats
        self._end_sample = 0
        self._noise = NoiseAlarm(self.noise_beats)
        self._vt = VentricularTachycardia()
        self._runs = VentricularRuns()
        self._pattern = EctopyPattern()
        self._svt = SupraventricularTachycardia()
        self._af = AtrialFibrillation(self.af_window_beats)

    # ----------------------------------------------------------------- alarms
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

    def _apply(self, out: list[AlarmEvent], verdicts: list[Verdict], at: int) -> None:
        """Apply a rule's verdicts, in order, as decided at sample ``at``."""
        for v in verdicts:
            if isinstance(v, Raise):
                self._raise(out, v.kind, v.onset_sample, at, v.heart_rate_bpm)
            elif isinstance(v, End):
                self._end(out, v.kind, v.end_sample, at)
            else:
                self._event(out, v.kind, v.onset_sample, v.end_sample, at)

    def _trusted(self) -> bool:
        return "noise" not in self._active

    def _restart_counters(self, *, keep_af: bool = False) -> None:
        """Start the ectopy, VT and SVT counters afresh (and the AF ones unless ``keep_af``)."""
        if not keep_af:
            self._rr.clear()
            self._af.restart()
        self._runs.restart()
        self._vt.restart()
        self._pattern.restart()
        self._svt.restart()

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
            s, at = beat.sample_index, beat.final_sample
            rr = None if self._prev is None else s - self._prev
            if rr is not None and rr > self.gap_s * self.fs_hz:
                self._restart_counters()
                rr = None
            elif rr is not None and rr >= self.pause_s * self.fs_hz:
                self._event(out, "pause", self._prev or 0, s, at)
            trusted = rr_trusted = self._trusted()
            if rr is not None and trusted:
                self._rr.append(rr)
            self._af.add_beat(beat, rr if trusted else None, self)
            self._onsets.append(s)
            self._apply(out, self._noise.step(beat, self, not trusted), at)
            if trusted and not self._trusted():
                self._restart_counters(keep_af=True)  # the noise alarm was raised
            trusted, active, onsets = self._trusted(), self._active, self._onsets
            self._apply(out, self._vt.step(beat, self, active, trusted), at)
            self._apply(out, self._runs.step(beat, "ventricular_tachycardia" in active), at)
            self._apply(out, self._pattern.step(beat, self, active, trusted, onsets), at)
            self._apply(out, self._svt.step(beat, rr, rr_trusted, self, active, trusted), at)
            self._apply(out, self._af.step(beat, self._rr, self, active, trusted, onsets), at)
            self._prev = s
            self._end_sample = max(self._end_sample, at)
        return out

    def flush(self, end_sample: int | None = None) -> list[AlarmEvent]:
        """End every active alarm at ``end_sample`` (default: the last beat's final sample)."""
        end = self._end_sample if end_sample is None else end_sample
        out: list[AlarmEvent] = []
        for kind in list(self._active):
            self._end(out, kind, end, end)
        self.reset()
        return out
