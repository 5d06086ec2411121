"""Causal beat features: morphology around the R peak and patient-normalised RR intervals.

:class:`BeatFeaturizer` is the streaming stage that turns the ECG beat pipeline's output (the
filtered samples and the detected beats of each chunk) into one feature row per beat. It is
used unchanged by the dataset builder (training, evaluation) and by the stream (serving), so
both preprocess identically; :class:`FeatureSpec` holds every parameter that shapes the
features and is saved inside each model artifact.

A beat's features need the *next* beat (the next RR interval): a beat becomes final when the
following beat is detected, a declared one-beat latency. ``flush`` finalises the last beat with
its previous RR interval standing in for the next one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models.ecg import Beat

__all__ = [
    "ALL_RR_FEATURES",
    "RR_FEATURES",
    "SHIPPED_RR_FEATURES",
    "SINUS_FEATURES",
    "TEMPLATE_FEATURES",
    "BeatFeatures",
    "BeatFeaturizer",
    "FeatureSpec",
]

F32 = npt.NDArray[np.float32]

#: Names of the columns of :attr:`BeatFeatures.rr`, in order.
RR_FEATURES = (
    "prev_rr_rel",  # previous RR / the patient's running mean RR
    "next_rr_rel",  # next RR / running mean RR
    "local_rr_rel",  # mean of the last ``rr_local_beats`` RR / running mean RR
    "prev_over_local",  # previous RR / local mean RR (prematurity)
    "next_over_prev",  # next RR / previous RR (compensatory pause)
    "prev_rr_s",  # previous RR in seconds
    "mean_rr_s",  # running mean RR in seconds
    "amplitude_rel",  # peak-to-peak of the beat / running mean peak-to-peak
    "rr_irregularity",  # mean |successive difference| of the last RR intervals / local mean RR
    "next_over_local",  # next RR / local mean RR
)

#: Columns the featurizer can compute beyond :data:`RR_FEATURES`: the beat against the
#: patient's running dominant-beat template (causal: the template holds past beats only).
TEMPLATE_FEATURES = (
    "prev_over_median_local",  # previous RR / median of the last RR intervals (prematurity)
    "qrs_corr",  # correlation with the template around the QRS (-50..+100 ms)
    "qrs_amp_ratio",  # QRS peak-to-peak / the template's
    "qrs_width_ratio",  # QRS width (sum |slope| / max |slope|) / the template's
    "p_energy_ratio",  # std of the P-wave window (-230..-70 ms) / the template's
    "p_corr",  # correlation with the template in the P-wave window
    "beat_corr",  # correlation with the template over the whole window
    "template_p_rel",  # std of the template's P window / the template's QRS peak-to-peak
    "p_corr_local",  # mean p_corr of the last ``rr_local_beats`` beats (rhythm context)
)

#: Columns against a sinus RR reference that ectopic runs do not drag down: an upper
#: percentile (``FeatureSpec.sinus_percentile``) of the last ``sinus_beats`` RR intervals,
#: which stays the sinus interval while fewer than about a quarter of them are short.
SINUS_FEATURES = (
    "prev_over_sinus",  # previous RR / sinus reference (prematurity inside runs, bigeminy)
    "next_over_sinus",  # next RR / sinus reference (compensatory pause)
    "local_over_sinus",  # median of the last ``rr_local_beats`` RR / sinus reference (in a run)
)

#: Template columns of a beat with nothing to compare against (the first beat, or unused).
_NEUTRAL_TEMPLATE = (1.0,) * (len(TEMPLATE_FEATURES) - 1)

#: Every column a :class:`FeatureSpec` may name, in the order they are computed.
ALL_RR_FEATURES = RR_FEATURES + TEMPLATE_FEATURES + SINUS_FEATURES

#: The columns of the committed model (and of a default :class:`FeatureSpec`).
SHIPPED_RR_FEATURES = RR_FEATURES + TEMPLATE_FEATURES


@dataclass(frozen=True)
class FeatureSpec:
    """Every parameter that shapes a beat's features (saved with each model).

    Parameters
    ----------
    grid_hz
        Sampling rate of the morphology window (the filtered lead is interpolated onto it, so
        any stream rate works).
    before_s, after_s
        Morphology window around the R peak, seconds.
    lead
        Index of the lead the morphology is read from (0 = the primary lead).
    rr_local_beats
        Number of previous RR intervals in the local mean.
    rr_long_beats
        Horizon of the running mean RR and amplitude (an exact mean for the first
        ``rr_long_beats`` beats, then an exponential mean with ``1 / rr_long_beats``).
    rr_max_s
        RR intervals are clipped to this, seconds.
    ratio_max
        RR and amplitude ratios are clipped to ``[0, ratio_max]``.
    filter_band_hz
        Band-pass of the ECG pipeline the features are computed on (for the record).
    rr_features
        Names of the RR feature columns, any of :data:`ALL_RR_FEATURES` (an artifact saved
        with fewer columns gets exactly those).
    template_beats
        Horizon of the running dominant-beat template (exponential mean with
        ``1 / template_beats`` once that many beats were averaged).
    template_min_corr
        A beat updates the template at the full rate only when its QRS correlates with it at
        least this much; other beats move it ``template_slow`` times slower (so a wrong start
        is forgotten, but ectopic beats barely change it).
    template_slow
        Rate divisor for beats below ``template_min_corr``.
    sinus_beats, sinus_percentile
        The sinus RR reference of :data:`SINUS_FEATURES`: this percentile of the last
        ``sinus_beats`` RR intervals (the running mean RR until 4 are known).
    """

    grid_hz: float = 180.0
    before_s: float = 0.25
    after_s: float = 0.40
    lead: int = 0
    rr_local_beats: int = 10
    rr_long_beats: int = 300
    rr_max_s: float = 3.0
    ratio_max: float = 4.0
    filter_band_hz: tuple[float, float] = (0.5, 40.0)
    rr_features: tuple[str, ...] = field(default=SHIPPED_RR_FEATURES)
    template_beats: int = 20
    template_min_corr: float = 0.8
    template_slow: float = 25.0
    sinus_beats: int = 32
    sinus_percentile: float = 75.0

    def __post_init__(self) -> None:
        unknown = set(self.rr_features) - set(ALL_RR_FEATURES)
        if unknown:
            raise ValueError(f"unknown RR feature columns: {sorted(unknown)}")

    @property
    def offsets_s(self) -> npt.NDArray[np.float64]:
        """Times of the morphology samples relative to the R peak, seconds."""
        n_before = round(self.before_s * self.grid_hz)
        n_after = round(self.after_s * self.grid_hz)
        return np.arange(-n_before, n_after + 1, dtype=np.float64) / self.grid_hz

    @property
    def uses_sinus(self) -> bool:
        """Whether any column needs the sinus RR reference (:data:`SINUS_FEATURES`)."""
        return bool(set(self.rr_features) & set(SINUS_FEATURES))

    @property
    def n_morph(self) -> int:
        """Number of morphology samples per beat."""
        return len(self.offsets_s)

    @property
    def n_rr(self) -> int:
        """Number of RR (rhythm) features per beat."""
        return len(self.rr_features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (saved in model artifacts)."""
        d = asdict(self)
        d["filter_band_hz"] = list(self.filter_band_hz)
        d["rr_features"] = list(self.rr_features)
        if not self.uses_sinus:
            # Unused: left out, so specs without these columns keep their saved form (and
            # their feature-cache key).
            del d["sinus_beats"], d["sinus_percentile"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["filter_band_hz"] = tuple(d["filter_band_hz"])
        d["rr_features"] = tuple(d["rr_features"])
        return cls(**d)


@dataclass(frozen=True)
class BeatFeatures:
    """Features of consecutive final beats (row ``i`` of every array is beat ``i``)."""

    sample_index: npt.NDArray[np.int64]
    quality: npt.NDArray[np.float64]
    morph: F32  # (n_beats, n_morph), in units of the running mean peak-to-peak amplitude
    rr: F32  # (n_beats, n_rr), columns as in FeatureSpec.rr_features

    def __len__(self) -> int:
        return len(self.sample_index)

    @classmethod
    def empty(cls, spec: FeatureSpec) -> BeatFeatures:
        """No beats."""
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros((0, spec.n_morph), np.float32),
            np.zeros((0, spec.n_rr), np.float32),
        )

    @classmethod
    def concat(cls, parts: list[BeatFeatures], spec: FeatureSpec) -> BeatFeatures:
        """Concatenate in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(spec)
        return cls(
            np.concatenate([p.sample_index for p in parts]),
            np.concatenate([p.quality for p in parts]),
            np.concatenate([p.morph for p in parts]),
            np.concatenate([p.rr for p in parts]),
        )


class _Running:
    """Mean of the first ``horizon`` values, then an exponential mean with ``1 / horizon``."""

    __slots__ = ("count", "horizon", "mean")

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.count = 0
        self.mean = 0.0

    def update(self, value: float) -> None:
        self.count += 1
        self.mean += (value - self.mean) / min(self.count, self.horizon)

    def __getstate__(self) -> tuple[int, int, float]:
        return self.horizon, self.count, self.mean

    def __setstate__(self, state: tuple[int, int, float]) -> None:
        self.horizon, self.count, self.mean = state


class BeatFeaturizer:
    """Streaming stage: (filtered chunk, its beats) in, features of the beats now final out.

    Parameters
    ----------
    fs_hz
        Sampling rate of the filtered samples, Hz.
    start_index
        Absolute sample index of the first filtered sample (the beats' clock).
    spec
        Feature parameters; the defaults are those of the committed model.

    Notes
    -----
    The state is small and plain (it is pickled with the patient every chunk): the last
    filtered samples of one lead as float32 (from the morphology window of the newest beat,
    at most ``keep_s`` seconds), the beats not final yet with their morphology once its
    window has been seen, the last ``rr_local_beats`` RR intervals and two running means.
    Beats must arrive in increasing ``sample_index`` order, at most ``keep_s`` seconds after
    their R peak (the QRS detector's search-back and learning period stay well inside).

    Examples
    --------
    >>> import numpy as np
    >>> from models.ecg import Beat
    >>> feat = BeatFeaturizer(360.0)
    >>> x = np.zeros((720, 1))
    >>> len(feat.process(x, [Beat(100), Beat(400)])), len(feat.flush())
    (1, 1)
    """

    keep_s = 6.0

    def __init__(
        self, fs_hz: float, *, start_index: int = 0, spec: FeatureSpec | None = None
    ) -> None:
        self.fs_hz = float(fs_hz)
        self.start_index = int(start_index)
        self.spec = spec if spec is not None else FeatureSpec()
        self._offsets = self.spec.offsets_s * self.fs_hz  # in samples of the stream
        self._before_n = math.ceil(float(-self._offsets[0])) + 1
        self._after_n = math.ceil(float(self._offsets[-1])) + 1
        self._keep_n = round(self.keep_s * self.fs_hz)
        self._columns = np.asarray([ALL_RR_FEATURES.index(n) for n in self.spec.rr_features])
        offsets_s = self.spec.offsets_s
        self._qrs = (offsets_s >= -0.05) & (offsets_s <= 0.10)
        self._p_wave = (offsets_s >= -0.23) & (offsets_s <= -0.07)
        template_cols = [ALL_RR_FEATURES.index(n) for n in TEMPLATE_FEATURES[1:]]
        self._uses_template = bool(np.isin(self._columns, template_cols).any())
        self._uses_sinus = self.spec.uses_sinus
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Samples after an R peak its morphology needs; the next beat is needed as well."""
        return self._after_n

    def reset(self) -> None:
        """Forget the stream; afterwards the stage equals a fresh one."""
        self._buf = np.zeros(0, np.float32)
        self._buf_start = self.start_index
        # Beats not final yet: [sample_index, quality, morphology or None, peak-to-peak].
        self._pending: list[list[Any]] = []
        self._last_r: int | None = None
        self._rr_local: deque[int] = deque(maxlen=self.spec.rr_local_beats)
        self._rr_mean = _Running(self.spec.rr_long_beats)
        self._amp_mean = _Running(self.spec.rr_long_beats)
        self._template: F32 | None = None  # running dominant beat (scaled morphology)
        self._template_count = 0
        self._p_corr_local: deque[float] = deque(maxlen=self.spec.rr_local_beats)
        self._rr_sinus: deque[int] = deque(maxlen=self.spec.sinus_beats)

    @property
    def _end(self) -> int:
        return self._buf_start + len(self._buf)

    def process(self, filtered: npt.NDArray[np.floating], beats: list[Beat]) -> BeatFeatures:
        """Consume filtered samples and the beats detected in them.

        Parameters
        ----------
        filtered
            Filtered samples, shape ``(n_samples, n_leads)``, continuing the previous chunk.
        beats
            The beats the detector returned for this chunk, increasing ``sample_index``.

        Returns
        -------
        BeatFeatures
            The beats that became final (their next beat is known), in order.
        """
        x = np.asarray(filtered)
        if x.ndim == 1:
            x = x[:, np.newaxis]
        if len(x):
            lead = x[:, self.spec.lead].astype(np.float32)
            self._buf = np.concatenate([self._buf, lead])
        for beat in beats:
            self._pending.append([beat.sample_index, beat.quality, None, 0.0])
        self._extract(final=False)
        out = self._finalise(final=False)
        self._trim()
        return out

    def flush(self) -> BeatFeatures:
        """End the record: the pending beats (the last with its previous RR as next), then reset.

        Returns
        -------
        BeatFeatures
            The beats still pending.
        """
        self._extract(final=True)
        out = self._finalise(final=True)
        self.reset()
        return out

    def _extract(self, *, final: bool) -> None:
        """Read the morphology of the pending beats whose window has been seen."""
        grid = np.arange(len(self._buf), dtype=np.float64)
        for entry in self._pending:
            if entry[2] is not None:
                continue
            r = int(entry[0])
            if not final and r + self._after_n > self._end:
                break
            if len(self._buf) == 0:
                morph = np.zeros(len(self._offsets), np.float32)
            else:
                pos = r - self._buf_start + self._offsets
                morph = np.interp(pos, grid, self._buf).astype(np.float32)
            entry[2] = morph
            entry[3] = float(morph.max() - morph.min())

    def _finalise(self, *, final: bool) -> BeatFeatures:
        ready = []
        while self._pending and self._pending[0][2] is not None:
            if len(self._pending) >= 2:
                ready.append(self._features(self._pending[0], int(self._pending[1][0])))
            elif final:
                ready.append(self._features(self._pending[0], None))
            else:
                break
            self._pending.pop(0)
        if not ready:
            return BeatFeatures.empty(self.spec)
        return BeatFeatures(
            np.asarray([r[0] for r in ready], np.int64),
            np.asarray([r[1] for r in ready], np.float64),
            np.stack([r[2] for r in ready]).astype(np.float32),
            np.stack([r[3] for r in ready]).astype(np.float32),
        )

    def _features(self, entry: list[Any], next_r: int | None) -> tuple[Any, ...]:
        spec = self.spec
        r, quality, morph, p2p = int(entry[0]), float(entry[1]), entry[2], float(entry[3])
        prev = None if self._last_r is None else r - self._last_r
        nxt = None if next_r is None else next_r - r
        if prev is None:
            prev = nxt
        if nxt is None:
            nxt = prev
        max_n = spec.rr_max_s * self.fs_hz
        prev_n = min(float(prev), max_n) if prev is not None else 0.0
        next_n = min(float(nxt), max_n) if nxt is not None else 0.0
        mean_n = self._rr_mean.mean if self._rr_mean.count else prev_n
        local_n = float(np.mean(self._rr_local)) if self._rr_local else mean_n
        if len(self._rr_local) >= 2:
            past = np.asarray(self._rr_local, np.float64)
            irregularity = float(np.mean(np.abs(np.diff(past))))
        else:
            irregularity = 0.0
        self._amp_mean.update(p2p)
        amp = self._amp_mean.mean

        def ratio(a: float, b: float) -> float:
            return min(a / b, spec.ratio_max) if b > 0 else 1.0

        median_n = float(np.median(self._rr_local)) if self._rr_local else mean_n
        if self._uses_sinus and len(self._rr_sinus) >= 4:
            sinus_n = float(np.percentile(self._rr_sinus, spec.sinus_percentile))
        else:
            sinus_n = mean_n
        scaled = morph / np.float32(amp) if amp > 0 else morph
        template = self._template_features(scaled) if self._uses_template else _NEUTRAL_TEMPLATE
        every = np.asarray(
            [
                ratio(prev_n, mean_n),
                ratio(next_n, mean_n),
                ratio(local_n, mean_n),
                ratio(prev_n, local_n),
                ratio(next_n, prev_n),
                prev_n / self.fs_hz,
                mean_n / self.fs_hz,
                ratio(p2p, amp),
                ratio(irregularity, local_n),
                ratio(next_n, local_n),
                ratio(prev_n, median_n),
                *template,
                ratio(prev_n, sinus_n),
                ratio(next_n, sinus_n),
                ratio(median_n, sinus_n),
            ],
            np.float32,
        )
        rr = every[self._columns]
        if self._last_r is not None and prev is not None:
            self._rr_local.append(min(int(prev), round(max_n)))
            if self._uses_sinus:
                self._rr_sinus.append(min(int(prev), round(max_n)))
            self._rr_mean.update(prev_n)
        self._last_r = r
        return r, quality, scaled, rr

    def _template_features(self, beat: F32) -> tuple[float, ...]:
        """Beat against the running template (then update it): corr, ratios; see spec."""
        spec = self.spec
        t = self._template
        if t is None:
            self._template = beat.astype(np.float32).copy()
            self._template_count = 1
            return _NEUTRAL_TEMPLATE
        qrs_corr = _corr(beat[self._qrs], t[self._qrs])
        p_corr = _corr(beat[self._p_wave], t[self._p_wave])
        p_local = float(np.mean(self._p_corr_local)) if self._p_corr_local else 1.0
        features = (
            qrs_corr,
            _ratio(_p2p(beat[self._qrs]), _p2p(t[self._qrs]), spec.ratio_max),
            _ratio(_width(beat[self._qrs]), _width(t[self._qrs]), spec.ratio_max),
            _ratio(float(np.std(beat[self._p_wave])), float(np.std(t[self._p_wave])),
                   spec.ratio_max),
            p_corr,
            _corr(beat, t),
            _ratio(float(np.std(t[self._p_wave])), _p2p(t[self._qrs]), spec.ratio_max),
            p_local,
        )  # fmt: skip
        self._p_corr_local.append(p_corr)
        self._template_count += 1
        rate = 1.0 / min(self._template_count, spec.template_beats)
        if qrs_corr < spec.template_min_corr:
            rate /= spec.template_slow
        self._template = (t + np.float32(rate) * (beat - t)).astype(np.float32)
        return features

    def _trim(self) -> None:
        """Keep samples from the newest beat's window start (at most ``keep_s`` seconds)."""
        start = self._end - self._keep_n
        if self._pending:
            first_open = next((e for e in self._pending if e[2] is None), None)
            if first_open is not None:
                start = max(start, int(first_open[0]) - self._before_n)
            else:
                start = max(start, int(self._pending[-1][0]) - self._before_n)
        start = min(start, self._end)
        if start > self._buf_start:
            self._buf = self._buf[start - self._buf_start :]
            self._buf_start = start


def _corr(a: F32, b: F32) -> float:
    """Pearson correlation, 0 when either side is flat."""
    da = a - a.mean()
    db = b - b.mean()
    den = float(np.sqrt(float(np.dot(da, da)) * float(np.dot(db, db))))
    return float(np.dot(da, db)) / den if den > 1e-12 else 0.0


def _p2p(a: F32) -> float:
    return float(a.max() - a.min())


def _width(a: F32) -> float:
    """Width of a wave in samples: total |slope| over the largest |slope|."""
    slope = np.abs(np.diff(a))
    top = float(slope.max()) if len(slope) else 0.0
    return float(slope.sum()) / top if top > 0 else 0.0


def _ratio(a: float, b: float, ratio_max: float) -> float:
    return min(a / b, ratio_max) if b > 0 else 1.0
