"""One patient's ECG monitor: beat detection and labelling, heart rate and alarms, one stage.

This is the single object that the stream worker and the offline twin (``cardiowatch analyze
ecg``) feed chunk by chunk, so both produce identical beats and alarms. The beat classifier
is passed to each :meth:`EcgMonitor.process` call (the worker's model cache owns it), never
stored in the monitor, whose state is pickled with the patient every chunk.

Examples
--------
>>> import numpy as np
>>> monitor = EcgMonitor(360.0, n_leads=1)
>>> update = monitor.process(np.zeros((360, 1)))
>>> update.end_sample
360
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from models.beats import BeatClassifier, BeatLabeller
from models.ecg import Beat, EcgBeatPipeline
from models.rhythm import (
    AlarmEvent,
    ArrhythmiaDetector,
    BeatShape,
    LabelledBeat,
    RhythmMonitor,
)

DETECTOR_VERSION = "cw-qrs-1"
#: Rate alarms held back while the noise technical alarm is active.
HELD_IN_NOISE = ("bradycardia", "tachycardia")


@dataclass(frozen=True)
class MonitorUpdate:
    """What became final while processing one chunk."""

    end_sample: int
    beats: list[Beat] = field(default_factory=list)
    heart_rate_bpm: float | None = None
    signal_ok: bool = True
    alarms: list[AlarmEvent] = field(default_factory=list)
    model_version: str | None = None  # the beat classifier that labelled ``beats``


class EcgMonitor:
    """Band-pass, QRS detection, heart rate, signal-loss and rhythm alarms for one patient.

    Parameters
    ----------
    fs_hz
        Sampling rate of the incoming chunks.
    n_leads
        Number of leads per sample row.
    mains_hz
        Power-line frequency removed by the notch filter.
    start_index
        Absolute index of the first sample this monitor will see.

    Notes
    -----
    The heart rate and the alarms use every beat as soon as the detector finds it. The
    beats of a :class:`MonitorUpdate` are labelled by the classifier of the call, so they
    come out one beat later (a beat's features include the next RR interval): a beat is
    returned by the call in which the following beat is detected, or by :meth:`flush`.
    """

    def __init__(
        self, fs_hz: float, *, n_leads: int, mains_hz: float = 60.0, start_index: int = 0
    ) -> None:
        self.fs_hz = fs_hz
        self.n_leads = n_leads
        self.mains_hz = mains_hz
        self.start_index = start_index
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead of the slowest part: the beat detector or the rhythm monitor."""
        return max(self._beats.latency_samples, self._rhythm.latency_samples)

    def reset(self) -> None:
        """Forget everything; equal to a fresh monitor."""
        self._beats = EcgBeatPipeline(
            self.fs_hz, self.n_leads, mains_hz=self.mains_hz, start_index=self.start_index
        )
        # The rhythm monitor counts samples from 0; this class shifts its events by start_index.
        self._rhythm = RhythmMonitor(
            self.fs_hz, n_leads=self.n_leads, beat_latency_samples=self._beats.latency_samples
        )
        self._labeller = BeatLabeller(self.fs_hz, start_index=self.start_index)
        self._shape = BeatShape(
            grid_hz=self._labeller.spec.grid_hz, before_s=self._labeller.spec.before_s
        )
        self._arrhythmia = ArrhythmiaDetector(self.fs_hz)
        self._unlabelled: list[int] = []  # detected beats not yet labelled (absolute samples)
        self._held: list[AlarmEvent] = []  # arrhythmia events before their sample_index
        self._noisy = False  # the noise technical alarm is active
        self._held_rate: dict[str, AlarmEvent] = {}  # rate alarms raised during noise, not shown
        self._end = self.start_index

    def set_limits(self, limits: dict[str, float]) -> None:
        """Apply per-patient alarm limits while running; limits not named keep their value.

        Keys: ``brady_bpm``, ``tachy_bpm``, ``extreme_brady_bpm``, ``extreme_tachy_bpm``,
        ``asystole_s`` (rate engine) and ``vt_bpm`` (arrhythmia detector). Limits that are
        out of order raise ``ValueError`` and change nothing.
        """
        rate = {k: v for k, v in limits.items() if k != "vt_bpm"}
        self._rhythm.set_limits(**rate)
        if "vt_bpm" in limits:
            self._arrhythmia.vt_bpm = float(limits["vt_bpm"])

    def _arrhythmia_alarms(
        self, labelled: list[Beat], morph: npt.NDArray[np.float32], *, final: bool
    ) -> list[AlarmEvent]:
        """Feed labelled beats to the arrhythmia detector.

        A beat's label is final once the next beat is detected, i.e. at that beat's sample
        plus the detector's look-ahead: that sample (a function of the signal only) is the
        ``sample_index`` of the alarms the beat decides. At the end of the record it is the
        end of the record.
        """
        items = []
        shapes = self._shape.process(morph, [b.label for b in labelled])
        for b, shape in zip(labelled, shapes, strict=True):
            while self._unlabelled and self._unlabelled[0] <= b.sample_index:
                self._unlabelled.pop(0)
            if self._unlabelled:
                at = self._unlabelled[0] + self._beats.latency_samples
            else:
                at = self._end
            items.append(LabelledBeat(b.sample_index, b.label, b.quality, at, shape))
        self._held.extend(self._arrhythmia.process(items))
        if final:
            self._held.extend(self._arrhythmia.flush(self._end))
        ready = [e for e in self._held if final or e.sample_index < self._end]
        self._held = [e for e in self._held if not (final or e.sample_index < self._end)]
        return ready

    def _merge(self, rate: list[AlarmEvent], arrhythmia: list[AlarmEvent]) -> list[AlarmEvent]:
        """Both alarm streams in ``sample_index`` order (rate alarms first on a tie), gated.

        Each event is released in the call whose chunk holds its ``sample_index``, so this
        order does not depend on the chunking. A bradycardia or tachycardia alarm raised
        while the noise technical alarm is active is held back (its updates and end too);
        if it is still active when the noise alarm ends, it is raised then, with its
        original onset (so its id is the one its later end carries).
        """
        tagged = [(e.sample_index, 0, i, e) for i, e in enumerate(rate)]
        tagged += [(e.sample_index, 1, i, e) for i, e in enumerate(arrhythmia)]
        out: list[AlarmEvent] = []
        for *_, e in sorted(tagged, key=lambda t: t[:3]):
            if e.kind == "noise":
                out.append(e)
                self._noisy = e.state == "raise"
                if not self._noisy:
                    out += [
                        replace(h, sample_index=e.sample_index) for h in self._held_rate.values()
                    ]
                    self._held_rate.clear()
            elif e.kind in self._held_rate:
                if e.state == "end":
                    del self._held_rate[e.kind]
                else:
                    self._held_rate[e.kind] = replace(self._held_rate[e.kind], priority=e.priority)
            elif self._noisy and e.kind in HELD_IN_NOISE and e.state == "raise":
                self._held_rate[e.kind] = e
            else:
                out.append(e)
        return out

    def process(
        self, x_mv: npt.NDArray[np.floating], classifier: BeatClassifier | None = None
    ) -> MonitorUpdate:
        """Consume samples in mV, shape ``(n_samples, n_leads)``.

        Parameters
        ----------
        x_mv
            The next chunk of samples.
        classifier
            Beat classifier for the beats that become final (``None``: unlabelled beats).

        Returns
        -------
        MonitorUpdate
            What became final.
        """
        x = np.asarray(x_mv, dtype=np.float64).reshape(-1, self.n_leads)
        beats, filtered = self._beats.process_filtered(x)
        rhythm = self._rhythm.process(x, self._relative(beats))
        labelled, morph = self._labeller.process_with_morph(filtered, beats, classifier)
        self._end += len(x)
        self._unlabelled.extend(b.sample_index for b in beats)
        arrhythmia = self._arrhythmia_alarms(labelled, morph, final=False)
        return MonitorUpdate(
            end_sample=self._end,
            beats=labelled,
            heart_rate_bpm=rhythm.heart_rate_bpm,
            signal_ok=rhythm.signal_ok,
            alarms=self._merge(self._absolute(rhythm.alarms), arrhythmia),
            model_version=None if classifier is None else classifier.version,
        )

    def _relative(self, beats: list[Beat]) -> list[Beat]:
        if self.start_index == 0:
            return beats
        return [replace(b, sample_index=b.sample_index - self.start_index) for b in beats]

    def _absolute(self, alarms: list[AlarmEvent]) -> list[AlarmEvent]:
        k = self.start_index
        if k == 0:
            return list(alarms)
        return [
            replace(
                a,
                onset_sample=a.onset_sample + k,
                end_sample=None if a.end_sample is None else a.end_sample + k,
                sample_index=a.sample_index + k,
            )
            for a in alarms
        ]

    def flush(self, classifier: BeatClassifier | None = None) -> MonitorUpdate:
        """End the record: pending beats (labelled by ``classifier``), every open alarm ended."""
        beats = self._beats.flush()
        final = self._rhythm.flush(self._relative(beats))
        labelled, morph = self._labeller.process_with_morph(
            np.zeros((0, self.n_leads)), beats, classifier
        )
        last, last_morph = self._labeller.flush_with_morph(classifier)
        labelled += last
        self._unlabelled.extend(b.sample_index for b in beats)
        arrhythmia = self._arrhythmia_alarms(
            labelled, np.concatenate([morph, last_morph]), final=True
        )
        return MonitorUpdate(
            end_sample=self._end,
            beats=labelled,
            heart_rate_bpm=final.heart_rate_bpm,
            signal_ok=final.signal_ok,
            alarms=self._merge(self._absolute(final.alarms), arrhythmia),
            model_version=None if classifier is None else classifier.version,
        )
