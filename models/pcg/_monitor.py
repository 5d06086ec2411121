"""One patient's heart-sound pipeline: the stages chained, as the worker and offline twin use it.

``input (any rate) -> Resampler -> band-pass -> HomomorphicEnvelope -> S1S2Segmenter``
and ``band-pass -> Windower -> classifier -> PcgAlarms``. Every index the monitor reports is at
the internal rate ``spec.fs_hz`` and absolute: the monitor started at input sample
``start_index`` counts from ``start_index * spec.fs_hz // fs_in_hz``. The classifier is an
argument of :meth:`PcgMonitor.process` and never part of the (pickled) state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.ecg import BandpassFilter

from ._decision import AlarmEvent, PcgAlarms, WindowScore
from ._envelope import HomomorphicEnvelope
from ._features import PcgWindow, Windower, WindowSpec
from ._model import PcgClassifier
from ._quality import HF_SHARE_MAX, with_quality_rule
from ._resample import Resampler
from ._segment import HeartSound, S1S2Segmenter, heart_rate_bpm

__all__ = ["PCG_DETECTOR_VERSION", "PcgMonitor", "PcgUpdate"]

PCG_DETECTOR_VERSION = "pcg-0.3"  # 0.2: S1/S2 by interval durations; 0.3: faint peaks
_HR_HISTORY = 11


@dataclass(frozen=True)
class PcgUpdate:
    """What one chunk made final."""

    end_sample: int  # internal-rate index one past the last sample processed
    sounds: list[HeartSound]
    windows: list[WindowScore]
    heart_rate_bpm: float | None
    alarms: list[AlarmEvent]
    model_version: str | None


class PcgMonitor:
    """Per-patient heart-sound state (picklable).

    Parameters
    ----------
    fs_in_hz
        Rate of the recording or stream.
    spec
        Internal rate, band and window parameters (the classifier's, when there is one).
    start_index
        Absolute input-rate index of the first sample this monitor will see.
    """

    def __init__(self, fs_in_hz: float, spec: WindowSpec, *, start_index: int = 0) -> None:
        self.fs_in_hz = float(fs_in_hz)
        self.spec = spec
        self.origin = int(start_index * spec.fs_hz // self.fs_in_hz)
        self.resampler = Resampler(self.fs_in_hz, spec.fs_hz)
        self.bandpass = BandpassFilter(spec.fs_hz, low_hz=spec.low_hz, high_hz=spec.high_hz)
        self.envelope = HomomorphicEnvelope(spec.fs_hz)
        self.segmenter = S1S2Segmenter(self.envelope.out_fs_hz, decim=self.envelope.decim)
        self.windower = Windower(spec)
        self.alarms = PcgAlarms()
        self.n_internal = 0
        self.s1_history: list[int] = []
        self.heart_rate: float | None = None

    def filtered(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """Resample and band-pass a chunk (updates state); 1-D internal-rate samples."""
        y = self.resampler.process(x)
        return np.asarray(self.bandpass.process(y)[:, 0], dtype=np.float64)

    def process(self, x: NDArray[np.floating], classifier: PcgClassifier | None) -> PcgUpdate:
        """Consume one chunk of the recording (1-D, any length)."""
        y = self.filtered(np.asarray(x, dtype=np.float64).reshape(-1))
        self.n_internal += len(y)
        sounds = self._sounds(self.segmenter.process(self.envelope.process(y)))
        windows = self.windower.process(y)  # cut even without a classifier: same grid later
        scores: list[WindowScore] = []
        alarms: list[AlarmEvent] = []
        if classifier is not None:
            scores = score_windows(classifier, windows, self.origin)
            alarms = self.alarms.update(scores, self.spec.window_samples)
        return PcgUpdate(
            end_sample=self.origin + self.n_internal,
            sounds=sounds,
            windows=scores,
            heart_rate_bpm=self.heart_rate,
            alarms=alarms,
            model_version=None if classifier is None else classifier.version,
        )

    def _sounds(self, found: list[HeartSound]) -> list[HeartSound]:
        """Shift sounds to absolute indices and update the heart rate from their S1."""
        sounds = [HeartSound(s.sample_index + self.origin, s.sound) for s in found]
        s1 = [s.sample_index for s in sounds if s.sound == "S1"]
        if s1:
            self.s1_history = (self.s1_history + s1)[-_HR_HISTORY:]
            self.heart_rate = heart_rate_bpm(self.s1_history, self.spec.fs_hz)
        return sounds

    def flush(self, classifier: PcgClassifier | None) -> PcgUpdate:
        """End the record: the sounds still in the segmenter's look-ahead are labelled with what
        is known, a short record's padded window is scored, every open alarm ends."""
        end = self.origin + self.n_internal
        self.envelope.flush()
        sounds = self._sounds(self.segmenter.flush())
        scores: list[WindowScore] = []
        alarms: list[AlarmEvent] = []
        windows = self.windower.flush()
        if classifier is not None:
            scores = score_windows(classifier, windows, self.origin)
            alarms = self.alarms.update(scores, self.spec.window_samples)
        alarms += self.alarms.close(end)
        version = None if classifier is None else classifier.version
        return PcgUpdate(end, sounds, scores, self.heart_rate, alarms, version)


def score_windows(
    classifier: PcgClassifier, windows: list[PcgWindow], origin: int = 0
) -> list[WindowScore]:
    """Score windows in one batch; start samples shifted by ``origin``."""
    probs = with_quality_rule(
        classifier.score(windows), np.array([w.hf_share for w in windows]), HF_SHARE_MAX
    )
    return [
        WindowScore(w.start_sample + origin, round(float(p[0]), 4), round(float(p[1]), 4),
                    round(float(p[2]), 4))
        for w, p in zip(windows, probs, strict=True)
    ]  # fmt: skip


def recording_windows(
    x: NDArray[np.floating], fs_in_hz: float, spec: WindowSpec
) -> list[PcgWindow]:
    """Every window of a whole recording, cut by the stream's own stages (training, evaluation)."""
    monitor = PcgMonitor(fs_in_hz, spec)
    windows = monitor.windower.process(monitor.filtered(np.asarray(x, dtype=np.float64)))
    return windows + monitor.windower.flush()
