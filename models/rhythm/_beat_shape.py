"""Beat shape against the patient's running dominant-beat template, one beat at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class BeatShapeMeasures:
    """How one beat's QRS compares with the patient's dominant beat and with the beat before.

    Parameters
    ----------
    template_corr
        Pearson correlation of the QRS window with the running dominant-beat template.
    previous_corr
        Pearson correlation of the QRS window with the previous beat's.
    width_ratio
        QRS width over the template's QRS width (a wide beat is ``> 1``).
    p_corr
        Pearson correlation of the P-wave window (before the QRS) with the previous beat's:
        high in sinus rhythm, where consecutive P waves look alike, near 0 in atrial
        fibrillation, where that window holds fibrillatory waves. NaN: not measured.
    """

    template_corr: float = 1.0
    previous_corr: float = 1.0
    width_ratio: float = 1.0
    p_corr: float = math.nan


class BeatShape:
    """Streaming stage: beat morphology windows in, :class:`BeatShapeMeasures` out.

    The windows are the beat featurizer's (``models.beats``): the filtered primary lead on a
    ``grid_hz`` grid from ``before_s`` before the R peak, in units of the running mean
    peak-to-peak amplitude. The *template* is an exponential mean (weight ``alpha``) of the
    windows of non-``V`` beats that match it (template correlation ``>= match_corr``) and are
    narrow (width ``< reseed_width_ratio`` times the template's: a ventricular beat the
    classifier missed may correlate with the template, but must not widen it); when
    ``reseed_beats`` non-``V`` beats in a row do not match, the newest becomes the template
    (a new dominant morphology after a lead or position change). The first beat seeds it.

    The QRS window for the correlations runs from ``qrs_before_s`` before to ``qrs_after_s``
    after the R peak; the P-wave window from the start of the beat window to ``p_end_s``
    before the R peak. The QRS width is the span over which the slope of the window from
    0.15 s before to 0.2 s after the R peak exceeds a quarter of its largest value.

    Parameters
    ----------
    grid_hz, before_s
        Sampling grid of the windows and where the R peak lies in them (seconds from the
        window start).
    alpha, match_corr, reseed_beats, reseed_width_ratio
        Template update (see above).
    qrs_before_s, qrs_after_s
        QRS window of the correlations, seconds around the R peak.
    p_end_s
        End of the P-wave window, seconds before the R peak.
    """

    def __init__(
        self,
        *,
        grid_hz: float = 180.0,
        before_s: float = 0.25,
        alpha: float = 1.0 / 16.0,
        match_corr: float = 0.8,
        reseed_beats: int = 8,
        reseed_width_ratio: float = 1.5,
        qrs_before_s: float = 0.10,
        qrs_after_s: float = 0.12,
        p_end_s: float = 0.08,
    ) -> None:
        if grid_hz <= 0 or not 0 < alpha <= 1 or reseed_beats < 1:
            raise ValueError("need grid_hz > 0, 0 < alpha <= 1, reseed_beats >= 1")
        self.grid_hz = float(grid_hz)
        self.before_s = float(before_s)
        self.alpha = float(alpha)
        self.match_corr = float(match_corr)
        self.reseed_beats = reseed_beats
        self.reseed_width_ratio = float(reseed_width_ratio)
        self.qrs_before_s = float(qrs_before_s)
        self.qrs_after_s = float(qrs_after_s)
        r = round(self.before_s * self.grid_hz)
        self._qrs = slice(r - round(qrs_before_s * grid_hz), r + round(qrs_after_s * grid_hz) + 1)
        self._p = slice(0, max(2, r - round(p_end_s * grid_hz)))
        self._slope = slice(max(0, r - round(0.15 * grid_hz)), r + round(0.2 * grid_hz) + 1)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """No look-ahead beyond the beat windows it is given."""
        return 0

    def reset(self) -> None:
        """Forget the template; afterwards the stage equals a fresh one."""
        self._template: npt.NDArray[np.float32] | None = None
        self._template_width_s = 0.0
        self._previous: npt.NDArray[np.float32] | None = None
        self._misses = 0

    def _corr(
        self, a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], part: slice | None = None
    ) -> float:
        x = a[part or self._qrs].astype(np.float64)
        y = b[part or self._qrs].astype(np.float64)
        x -= x.mean()
        y -= y.mean()
        den = math.sqrt(float(x @ x) * float(y @ y))
        return float(x @ y) / den if den > 0 else 0.0

    def _width_s(self, m: npt.NDArray[np.float32]) -> float:
        slope = np.abs(np.diff(m[self._slope].astype(np.float64)))
        if slope.size == 0 or slope.max() <= 0:
            return 0.0
        steep = np.flatnonzero(slope > 0.25 * slope.max())
        return float(steep[-1] - steep[0] + 1) / self.grid_hz

    def process(
        self, morph: npt.ArrayLike, labels: Sequence[str | None]
    ) -> list[BeatShapeMeasures]:
        """Measure consecutive beats and update the template.

        Parameters
        ----------
        morph
            One window per beat, shape ``(n_beats, n_morph)``.
        labels
            The beats' classifier labels (``V`` beats never update the template).

        Returns
        -------
        list of BeatShapeMeasures
            One per beat, in order.
        """
        if not labels:
            return []
        rows = np.asarray(morph, dtype=np.float32).reshape(len(labels), -1)
        out = []
        for m, label in zip(rows, labels, strict=True):
            if self._template is None:
                self._template = m.copy()
                self._template_width_s = self._width_s(m)
            corr = self._corr(m, self._template)
            prev = 1.0 if self._previous is None else self._corr(m, self._previous)
            p = math.nan if self._previous is None else self._corr(m, self._previous, self._p)
            width = self._width_s(m) / max(self._template_width_s, 1.0 / self.grid_hz)
            out.append(BeatShapeMeasures(corr, prev, width, p))
            if label != "V":
                if corr >= self.match_corr and width < self.reseed_width_ratio:
                    self._template += self.alpha * (m - self._template)
                    self._misses = 0
                elif width < self.reseed_width_ratio:
                    self._misses += 1
                    if self._misses >= self.reseed_beats:
                        self._template = m.copy()
                        self._misses = 0
                self._template_width_s = self._width_s(self._template)
            self._previous = m.copy()
        return out

    def flush(self) -> list[BeatShapeMeasures]:
        """End the record: nothing is pending; the template is forgotten."""
        self.reset()
        return []
