"""Causal streaming QRS detector with R-peak localisation.

The detector follows Pan & Tompkins (1985) and Hamilton & Tompkins (1986):

1. **Features** (vectorised per chunk, state carried between chunks): a QRS band-pass
   (5-15 Hz, SOS), the first difference, its square, and a centred moving-window
   integration (150 ms boxcar, as differences of a running cumulative sum) that gives
   one envelope hump per QRS complex.
2. **Candidates**: samples where the envelope of the primary lead is the largest of the
   window from ``candidate_before_s`` back to ``candidate_after_s`` ahead (one hump, not
   the P wave before it). A candidate is final once that window has been seen.
3. **Decisions** (a Python loop over the few candidates per second): a threshold between
   the median of the last eight QRS peaks and the median of the last eight noise peaks
   (in the amplitude domain, the square root of the envelope), confirmed by the other leads
   (below); a 200 ms refractory period
   that only a clearly larger complex overrides (the earlier one was then a P wave); T-wave
   discrimination (within 360 ms of a beat, a candidate with less than half the usual QRS
   slope and size is a T wave); and search-back at half the threshold for a missed beat
   when none was found for ``searchback_rr`` mean RR intervals.
4. **R peak**: the largest absolute deflection of the primary lead's input signal (expected
   band-passed, e.g. by :class:`~models.ecg.EcgBeatPipeline`) in the window ``r_lag_s``
   before the envelope peak (the band-pass delays the envelope by about 60 ms), so negative
   (e.g. ventricular) complexes are located as well as positive ones.
5. **Quality**: how far the beat's peak stands above the noise level, and, with more than
   one lead, whether the other leads show a QRS of their usual size at the same time.

Candidates come from the primary (first) lead; the other leads **confirm** them. Noise is
independent between leads (electrode motion, muscle), a QRS is not, so a candidate above
lead 1's threshold is accepted only when the mean of the leads' normalised levels (0 at the
lead's noise level, 1 at its usual QRS level; a secondary lead's level is its largest within
``lead_skew_s``) exceeds ``confirm_fraction``. Only secondary leads whose QRS stands clearly
above their noise (``fusion_separation``) take part, so a lead with tiny complexes cannot
veto, and with none lead 1 decides alone. Search-back candidates need half that
confirmation. When lead 1 is noisy, a premature candidate (sooner than ``early_rr`` mean RR
intervals) needs ``early_confirm_fraction``. Summing the leads' envelopes (amplitude-
normalised or with fixed learned weights) was tried on MIT-BIH and lowered the positive
predictivity (the second lead, V1 in most records, adds T waves and noise); confirmation
raises it.

All arithmetic is deterministic per sample (SOS/IIR filters, windowed sums and maxima
over fixed windows), so the output is bit-identical for every chunking of the stream.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy import signal

from ._filters import sosfilt_leads, steady_state
from ._types import Beat

FloatArray = NDArray[np.float64]

__all__ = ["QrsDetector"]

_N_HISTORY = 8  # peaks and RR intervals kept for the adaptive thresholds


def _median(values: list[float]) -> float:
    """Median of a short list (0.0 when empty); far cheaper than ``np.median`` for 8 values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _quantile(values: list[float], q: float) -> float:
    """Lower ``q``-quantile (order statistic) of a short list (0.0 when empty)."""
    if not values:
        return 0.0
    return sorted(values)[int(q * (len(values) - 1))]


class QrsDetector:
    """Streaming QRS detector emitting one :class:`Beat` per detected R peak.

    Parameters
    ----------
    fs_hz
        Sampling rate.
    n_leads
        Number of leads in each chunk (1 or more); the first lead is the primary one.
    start_index
        Absolute sample index of the first sample of the stream.

    Notes
    -----
    ``latency_samples`` bounds the look-ahead of a beat found by the main threshold: it
    is emitted by the ``process`` call that delivers sample ``R + latency_samples``.
    Beats recovered by search-back are emitted when the search-back runs, about
    ``searchback_rr`` mean RR intervals after the previous beat, and the beats of the first
    ``learning_s`` seconds wait for the end of that learning period. Events are emitted
    in increasing ``sample_index`` order, each exactly once. ``flush`` ends the record and
    resets the detector.

    Examples
    --------
    >>> import numpy as np
    >>> det = QrsDetector(360.0, n_leads=1)
    >>> det.process(np.zeros((360, 1))) + det.flush()
    []
    """

    # Parameters in physical units, converted to samples in ``__init__`` only.
    band_hz: tuple[float, float] = (5.0, 15.0)
    band_order = 2
    integration_s = 0.15
    candidate_before_s = 0.11  # a candidate is the largest envelope value this far back
    candidate_after_s = 0.08  # ... and this far ahead (part of the look-ahead)
    r_lag_s: tuple[float, float] = (0.03, 0.095)  # envelope peak lags the R peak by this
    refractory_s = 0.2
    t_wave_window_s = 0.36
    learning_s = 2.0
    threshold_fraction = 0.36  # Hamilton & Tompkins use 0.3125
    searchback_fraction = 0.5
    searchback_rr = 1.66
    weak_slope_fraction = 0.5  # T wave: less than this fraction of the usual QRS slope
    refractory_override = 1.15  # a complex this much larger overrides the refractory period
    lead_skew_s = 0.05  # a secondary lead's QRS is looked for this far either side
    fusion_separation = 0.5  # a secondary lead confirms when (QRS - noise) / QRS is above this
    secondary_qrs_quantile = 0.5  # a secondary lead's QRS level: this quantile of the last 8
    sure_level = 0.8  # ... unless lead 1 is clean and its level is above this
    confirm_fraction = 0.5  # mean normalised level of the confirming leads
    early_rr = 0.6  # a candidate sooner than this fraction of the mean RR ...
    early_confirm_fraction = 0.7  # ... needs this mean normalised level
    noisy_level = 0.15  # ... when lead 1's noise level is above this fraction of its QRS level

    def __init__(self, fs_hz: float, *, n_leads: int = 1, start_index: int = 0) -> None:
        if n_leads < 1:
            raise ValueError("n_leads must be >= 1")
        self.fs_hz = float(fs_hz)
        self.n_leads = int(n_leads)
        self.start_index = int(start_index)
        fs = self.fs_hz
        self._h = max(1, round(self.integration_s * fs / 2.0))  # boxcar half width
        self._before = max(1, round(self.candidate_before_s * fs))
        self._after = max(1, round(self.candidate_after_s * fs))
        self._lag_lo = round(self.r_lag_s[0] * fs)
        self._lag_hi = max(self._lag_lo, round(self.r_lag_s[1] * fs))
        self._refractory = round(self.refractory_s * fs)
        self._t_window = round(self.t_wave_window_s * fs)
        self._learn_n = max(1, round(self.learning_s * fs))
        self._skew = round(self.lead_skew_s * fs)
        self._sos = np.ascontiguousarray(
            signal.butter(self.band_order, self.band_hz, btype="bandpass", output="sos", fs=fs)
        )
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead (samples) after an R peak before its beat is final."""
        return self._after + self._h + self._lag_hi

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the stream; afterwards the detector equals a fresh one."""
        n_leads = self.n_leads
        self._n_seen = 0  # samples consumed (local index of the next sample)
        self._zi: FloatArray | None = None  # QRS band-pass state (n_leads, n_sections, 2)
        self._prev = np.zeros(n_leads)  # last band-passed sample (for the difference)
        # Running sum S[k] = sum(e[:k + 1]) of the squared slope e, last 2h + 1 values
        # (zeros before the stream starts); window sums are differences of S.
        self._s_tail = np.zeros((2 * self._h + 1, n_leads))
        # Buffers indexed by local sample index: the envelopes from ``_env_base`` (the
        # envelope is centred, so it starts h samples before the signal), the primary
        # lead's input and |slope| from ``_sig_base``.
        self._env = np.empty((0, n_leads))
        self._env_base = -self._h
        self._sig = np.empty(0)
        self._slope = np.empty(0)
        self._sig_base = 0
        self._scan_next = 0  # next envelope index to examine for candidates
        self._learned = False
        # Decision state.
        self._qrs_peaks: list[float] = []
        self._noise_peaks: list[float] = []
        self._lead_levels: list[list[float]] = [[] for _ in range(n_leads)]  # at beats
        self._lead_noise: list[list[float]] = [[] for _ in range(n_leads)]  # at non-beats
        self._rr: list[int] = []
        self._last_j: int | None = None  # envelope index of the last beat
        self._qrs_slopes: list[float] = []
        self._last_peak = 0.0
        self._deadline = 0  # search back once the candidates up to here are final
        self._pending: list[_Candidate] = []  # below threshold since the last beat

    # --------------------------------------------------------------- features
    def _features(self, x: FloatArray) -> None:
        """Append the features of chunk ``x`` (n, n_leads) to the buffers."""
        if self._zi is None:
            self._zi = steady_state(self._sos, x[0])
        y = sosfilt_leads(self._sos, x, self._zi)
        d = np.diff(y, axis=0, prepend=self._prev[np.newaxis, :])
        self._prev = y[-1].copy()
        self._append_envelope(d * d)
        self._sig = np.concatenate([self._sig, x[:, 0]])
        self._slope = np.concatenate([self._slope, np.abs(d[:, 0])])
        self._n_seen += x.shape[0]

    def _append_envelope(self, e: FloatArray) -> None:
        """Append the centred window sums completed by the squared slopes ``e``."""
        n = e.shape[0]
        # np.cumsum accumulates strictly left to right, so continuing it from the last
        # value is bit-identical for every chunking.
        s = np.cumsum(np.concatenate([self._s_tail[-1:], e], axis=0), axis=0)
        full = np.concatenate([self._s_tail, s[1:]], axis=0)  # S[k - 2h - 1 .. k + n)
        self._s_tail = full[n:]
        self._env = np.concatenate([self._env, np.maximum(full[-n:] - full[:n], 0.0)])

    def _trim(self) -> None:
        """Drop buffered samples no future decision can need."""
        keep_env = self._scan_next - self._before - 1
        if self._learned and keep_env > self._env_base:
            self._env = self._env[keep_env - self._env_base :]
            self._env_base = keep_env
        keep_sig = self._scan_next - max(self._h, self._lag_hi) - 1
        if self._learned and keep_sig > self._sig_base:
            self._sig = self._sig[keep_sig - self._sig_base :]
            self._slope = self._slope[keep_sig - self._sig_base :]
            self._sig_base = keep_sig

    # -------------------------------------------------------------- decisions
    def _learn(self, end: int) -> None:
        """Initialise the thresholds from the envelope of the first ``end`` samples."""
        lo = -self._env_base
        seg = np.sqrt(self._env[lo : lo + max(1, end), 0])
        if seg.size:
            half = max(1, seg.size // 2)
            peaks = [float(seg[:half].max()), float(seg[half:].max(initial=0.0))]
            self._qrs_peaks = [p for p in peaks if p > 0.0] or [float(seg.max())]
            self._noise_peaks = [float(np.median(seg))]
        self._deadline = round(self.searchback_rr * self.fs_hz)
        self._learned = True

    def _threshold(self) -> float:
        npk = _median(self._noise_peaks)
        return npk + self.threshold_fraction * (_median(self._qrs_peaks) - npk)

    def _mean_rr(self) -> float:
        return sum(self._rr) / len(self._rr) if self._rr else self.fs_hz

    def _candidate(self, j: int) -> _Candidate:
        """Features of the candidate at envelope index ``j``."""
        k = j - self._env_base
        levels = np.sqrt(self._env[k])
        if self.n_leads > 1:
            near = self._env[max(0, k - self._skew) : k + self._skew + 1, 1:].max(axis=0)
            levels[1:] = np.sqrt(near)
        lo = max(j - self._h, self._sig_base) - self._sig_base
        slope = float(self._slope[lo : j + self._h + 1 - self._sig_base].max())
        lo = max(j - self._lag_hi, self._sig_base) - self._sig_base
        hi = max(j - self._lag_lo + 1 - self._sig_base, lo + 1)  # never empty at the start
        window = self._sig[lo:hi]
        r = lo + self._sig_base + int(np.argmax(np.abs(window)))
        return _Candidate(j, float(levels[0]), slope, r, tuple(float(v) for v in levels[1:]))

    def _accept(self, cand: _Candidate) -> Beat:
        if self._last_j is not None:
            _push(self._rr, cand.j - self._last_j)
        _push(self._qrs_peaks, cand.peak)
        self._last_j = cand.j
        _push(self._qrs_slopes, cand.slope)
        self._last_peak = cand.peak
        self._pending = []
        self._deadline = cand.j + round(self.searchback_rr * self._mean_rr())
        npk = _median(self._noise_peaks)
        quality = min(1.0, max(0.0, 1.0 - npk / cand.peak)) if cand.peak > 0.0 else 0.0
        if cand.secondary:
            # Agreement of the other leads: their QRS size here relative to their usual.
            agree = []
            for level, history in zip(cand.secondary, self._lead_levels[1:], strict=True):
                usual = _median(history)
                agree.append(min(1.0, level / usual) if usual > 0.0 else 1.0)
                _push(history, level)
            quality = 0.5 * quality + 0.5 * sum(agree) / len(agree)
        return Beat(sample_index=self.start_index + cand.r, quality=quality)

    def _confirmed(self, cand: _Candidate, fraction: float) -> bool:
        """Whether the mean normalised level of lead 1 and the reliable other leads > ``fraction``.

        A lead's level is normalised between its noise level (0) and its QRS level (1); a
        secondary lead takes part when its QRS stands clearly above its noise
        (``fusion_separation``). With no reliable secondary lead, lead 1 decides alone.
        """
        npk = _median(self._noise_peaks)
        span = _median(self._qrs_peaks) - npk
        total = (cand.peak - npk) / span if span > 0.0 else 0.0
        if total >= self.sure_level and npk <= self.noisy_level * (npk + span):
            return True  # lead 1 is clean and shows a QRS of its usual size
        count = 1
        for level, good, bad in zip(
            cand.secondary, self._lead_levels[1:], self._lead_noise[1:], strict=True
        ):
            q2 = _quantile(good, self.secondary_qrs_quantile)
            n2 = _median(bad)
            if q2 > 0.0 and q2 - n2 >= self.fusion_separation * q2:
                total += (level - n2) / (q2 - n2)
                count += 1
        return count == 1 or total > fraction * count

    def _search_back(self, out: list[Beat]) -> None:
        """Accept the largest pending candidate up to the deadline above the lower threshold."""
        limit = self.searchback_fraction * self._threshold()
        confirm = self.searchback_fraction * self.confirm_fraction
        best: _Candidate | None = None
        for cand in self._pending:
            eligible = cand.j <= self._deadline and cand.peak > limit
            eligible = eligible and self._confirmed(cand, confirm)
            if eligible and (best is None or cand.peak > best.peak):
                best = cand
        if best is None:
            self._pending = [c for c in self._pending if c.j > self._deadline]
            self._deadline += round(self._mean_rr())
            return
        rest = [c for c in self._pending if c.j > best.j + self._refractory]
        out.append(self._accept(best))
        self._pending = rest

    def _decide(self, j: int, out: list[Beat]) -> None:
        """Classify the candidate at envelope index ``j`` as QRS, T wave or noise."""
        while self._deadline < j:
            self._search_back(out)
        cand = self._candidate(j)
        in_refractory = self._last_j is not None and j - self._last_j < self._refractory
        if in_refractory and cand.peak <= self.refractory_override * self._last_peak:
            # Within the refractory period only a clearly larger complex counts: the last
            # beat was then probably a P wave (it has been emitted already; this one is
            # emitted too rather than lost).
            return
        # A P or T wave: well below the usual QRS in both slope and size.
        usual_slope = _median(self._qrs_slopes)
        weak = cand.slope < self.weak_slope_fraction * usual_slope
        weak = weak and cand.peak < 0.5 * _median(self._qrs_peaks)
        is_t_wave = weak and self._last_j is not None and j - self._last_j < self._t_window
        confirm = self.confirm_fraction
        early = self._last_j is not None and j - self._last_j < self.early_rr * self._mean_rr()
        if early and _median(self._noise_peaks) > self.noisy_level * _median(self._qrs_peaks):
            confirm = self.early_confirm_fraction
        is_qrs = cand.peak > self._threshold() and self._confirmed(cand, confirm)
        if is_qrs and not is_t_wave:
            out.append(self._accept(cand))
            return
        _push(self._noise_peaks, cand.peak)
        for level, history in zip(cand.secondary, self._lead_noise[1:], strict=True):
            _push(history, level)
        if not is_t_wave:
            self._pending.append(cand)

    def _scan(self, env_end: int, *, final: bool) -> list[Beat]:
        """Decide every candidate whose window is complete (all of them when ``final``)."""
        out: list[Beat] = []
        if not self._learned:
            if env_end < self._learn_n and not final:
                return out
            self._learn(min(env_end, self._learn_n))
        hi = env_end if final else env_end - self._after
        lo = self._scan_next
        if hi > lo:
            before, after = self._before, self._after
            start, stop = lo - before, hi + after
            pad_left = max(0, self._env_base - start)
            pad_right = max(0, stop - env_end)
            base = self._env_base
            seg = self._env[start + pad_left - base : stop - pad_right - base, 0]
            seg = np.concatenate([np.full(pad_left, -np.inf), seg, np.full(pad_right, -np.inf)])
            window_max = sliding_window_view(seg, before + after + 1).max(axis=1)
            core = seg[before : before + hi - lo]
            # Largest value of its window, first sample of a plateau, above zero.
            is_peak = (core == window_max) & (core > seg[before - 1 : before - 1 + hi - lo])
            is_peak &= core > 0.0
            for offset in np.flatnonzero(is_peak):
                self._decide(lo + int(offset), out)
            self._scan_next = hi
        while self._deadline < self._scan_next:
            self._search_back(out)
        self._trim()
        return out

    # ------------------------------------------------------------------- API
    def process(self, chunk: NDArray[np.floating] | FloatArray) -> list[Beat]:
        """Consume a chunk and return the beats that became final.

        Parameters
        ----------
        chunk
            Samples shaped ``(n_samples, n_leads)`` (or ``(n_samples,)`` for one lead),
            physical units; any length, including 0.

        Returns
        -------
        list of Beat
            Beats in increasing ``sample_index`` order.
        """
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, np.newaxis]
        if x.ndim != 2 or x.shape[1] != self.n_leads:
            raise ValueError(f"expected shape (n, {self.n_leads}), got {x.shape}")
        if x.shape[0] == 0:
            return []
        self._features(x)
        return self._scan(self._n_seen - self._h, final=False)

    def flush(self) -> list[Beat]:
        """End the record: decide the remaining candidates, then reset.

        Returns
        -------
        list of Beat
            The beats still pending, in increasing ``sample_index`` order.
        """
        out: list[Beat] = []
        if self._n_seen > 0:
            # Complete the centred envelope as if the record ended in silence.
            self._append_envelope(np.zeros((self._h, self.n_leads)))
            out = self._scan(self._n_seen, final=True)
            while self._deadline < self._n_seen:
                self._search_back(out)
        self.reset()
        return out


class _Candidate(NamedTuple):
    """A local maximum of the primary lead's envelope."""

    j: int  # envelope index
    peak: float  # sqrt of the primary lead's envelope
    slope: float  # largest |slope| of the primary lead's band-passed signal around j
    r: int  # local index of the R peak
    secondary: tuple[float, ...]  # sqrt of the other leads' envelopes at j


def _push(history: list[Any], value: Any) -> None:
    """Append to a bounded history of ``_N_HISTORY`` values."""
    history.append(value)
    if len(history) > _N_HISTORY:
        del history[0]
