"""A second, independent streaming QRS detector: the curve length transform.

The detector follows Zong, Moody & Jiang (2003), "A robust open-source algorithm to detect
onset and duration of QRS complexes" (the algorithm of wfdb's ``wqrs``); this is our own
streaming implementation of the published method, in floating point. Its front end shares
nothing with :class:`~models.ecg.QrsDetector` (Pan-Tompkins: 5-15 Hz band-pass, squared
slope, adaptive peak thresholds), which is the point: where the two detectors disagree,
the signal is more likely noise than ECG (the bSQI of Li, Clifford & Tarassenko 2008).

1. **Front end** on the raw lead, scaled to A/D units of ``gain_adu_per_mv`` (the method's
   constants are in those units): a low-pass derivative ``dy`` (two boxcars of
   ``int(fs / mains_hz)`` samples, at most 8, so the mains frequency is nulled), the curve
   length element ``sqrt(c + dy**2)`` with ``c = 1.25 gain**2 / fs``, summed over
   ``window_s`` (the widest QRS). **One change from the paper:** the transform here is the
   length in excess of a flat line's (``sqrt(c)`` per sample is subtracted). The paper's
   threshold, a third of the recent QRS maxima, otherwise falls below the flat-line length
   at 360 Hz (about 540 units against QRS maxima of about 1,500 on MIT-BIH record 100), and
   every P and T wave then crossed it.
2. **Learning**: the mean of the first ``learning_s`` of the transform is ``T0``; a first
   pass over them with the threshold at ``2 T0`` adapts the QRS level ``Ta`` (from ``3
   T0``), then detection restarts at the first sample with the threshold at ``T0``.
3. **Detection**: a sample above the threshold is a QRS when the transform rises by more
   than ``rise_adu`` between the half eye-closing period before it and the one after.
   Then ``Ta`` moves a tenth of the way to the transform's maximum, the threshold becomes
   ``Ta / 3``, and detection is locked out for ``eye_closing_s``. After ``expect_period_s``
   without a crossing, ``Ta`` falls by one unit per sample, down to ``min_threshold_adu``.
4. **Location**: the QRS onset is where the transform last rose by less than ``Ta / 100 +
   2`` per sample for four samples (minus the filter delay), as in the paper; the beat is
   placed at the largest deflection of the raw lead from its onset value within
   ``r_window_s`` after the onset, so that it can be matched with R peaks.

Every sample's arithmetic depends only on the stream, not on how it was chunked, so the
beats are the same for every chunking (the stage contract).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._types import Beat

FloatArray = NDArray[np.float64]

__all__ = ["LengthTransformDetector"]


class LengthTransformDetector:
    """Streaming single-lead QRS detector on the curve length transform (Zong et al. 2003).

    Parameters
    ----------
    fs_hz
        Sampling rate.
    mains_hz
        Mains frequency nulled by the low-pass derivative.
    start_index
        Absolute sample index of the first sample of the stream.

    Notes
    -----
    ``process`` takes raw samples of one lead in mV (a 1-D array, or the first column of a
    2-D one), of any length. A beat at sample ``R`` is emitted by the ``process`` call that
    delivers sample ``R + latency_samples`` or earlier, except the beats of the first
    ``learning_s`` seconds, which wait for the end of the learning period. ``flush`` ends
    the record and resets the detector.

    Examples
    --------
    >>> import numpy as np
    >>> det = LengthTransformDetector(360.0)
    >>> det.process(np.zeros(720)) + det.flush()
    []
    """

    gain_adu_per_mv = 200.0  # the method's constants are in A/D units of this gain
    window_s = 0.13  # widest QRS: the transform sums this long
    eye_closing_s = 0.25
    expect_period_s = 2.5
    learning_s = 8.0
    min_threshold_adu = 20.0  # 100 uV at 200 adu/mV
    rise_adu = 10.0  # a crossing is a QRS when the transform rises more than this
    r_window_s = 0.15

    def __init__(self, fs_hz: float, *, mains_hz: float = 60.0, start_index: int = 0) -> None:
        if fs_hz < mains_hz:
            raise ValueError("fs_hz must be at least mains_hz")
        self.fs_hz = float(fs_hz)
        self.mains_hz = float(mains_hz)
        self.start_index = int(start_index)
        fs = self.fs_hz
        self._lp = min(8, max(1, int(fs / self.mains_hz)))  # boxcar length (wqrs: <= 8)
        self._kernel = np.concatenate([np.ones(self._lp), -np.ones(self._lp)]) / (2 * self._lp)
        self._scale = 1.25 * self.gain_adu_per_mv**2 / fs
        self._flat = math.sqrt(self._scale)  # length element of a flat line
        self._window = max(1, int(self.window_s * fs))
        self._eye = max(2, int(self.eye_closing_s * fs))
        self._half = self._eye // 2
        self._expect = int(self.expect_period_s * fs)
        self._learn_n = max(1, int(self.learning_s * fs))
        self._r_window = max(1, round(self.r_window_s * fs))
        self._lookahead = max(self._half, self._r_window)  # decide a crossing this much later
        self._block = max(self._eye, round(fs))  # samples searched for a crossing at a time
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead (samples) after a beat's sample before the beat is final.

        A crossing is decided ``_lookahead`` samples after it, and the beat lies at most
        ``half eye-closing + filter delay`` before its crossing.
        """
        return self._lookahead + self._half + 2 * self._lp - 1

    def reset(self) -> None:
        """Forget the stream; afterwards the detector equals a fresh one."""
        self._n_seen = 0
        self._x_tail: FloatArray | None = None  # last 2 lp - 1 raw samples (adu)
        self._e_tail = np.zeros(self._window - 1)
        # Buffers from local index ``_base``: the transform and the raw lead (adu).
        self._lt = np.empty(0)
        self._x = np.empty(0)
        self._base = 0
        self._learning = True
        self._ta = 0.0
        self._t1 = 0.0
        self._timer = 0
        self._t = 0  # next local index to examine
        self._last_r = -1

    # ----------------------------------------------------------------- front end
    def _append(self, x_adu: FloatArray) -> None:
        if self._x_tail is None:
            self._x_tail = np.full(2 * self._lp - 1, x_adu[0])
        xx = np.concatenate([self._x_tail, x_adu])
        dy = np.convolve(xx, self._kernel, mode="valid")
        self._x_tail = xx[len(xx) - (2 * self._lp - 1) :]
        e = np.sqrt(self._scale + dy * dy) - self._flat
        ee = np.concatenate([self._e_tail, e])
        lt = np.convolve(ee, np.ones(self._window), mode="valid")
        self._e_tail = ee[len(ee) - (self._window - 1) :]
        self._lt = np.concatenate([self._lt, lt])
        self._x = np.concatenate([self._x, x_adu])
        self._n_seen += len(x_adu)

    def _lt_at(self, lo: int, hi: int) -> FloatArray:
        """The transform at local indices ``lo..hi-1`` (clipped to what is buffered)."""
        lo = max(lo, self._base)
        return self._lt[lo - self._base : max(lo, hi) - self._base]

    # ----------------------------------------------------------------- decisions
    def _threshold_run(self, lo: int, hi: int) -> int | None:
        """Examine ``lo..hi-1`` below the threshold; return the first crossing, or None.

        The samples before the crossing (all of them when there is none) advance the
        timer and, once ``expect_period_s`` has passed without a crossing, lower ``Ta``.
        """
        seg = self._lt_at(lo, hi)
        k = np.arange(len(seg))
        first = max(0, self._expect - self._timer)  # the first sample that lowers Ta
        room = self._room()
        if self._learning:
            decrements = np.zeros(len(seg), np.int64)
        else:
            decrements = np.minimum(np.clip(k - first, 0, None), room)
        thr = np.where(decrements > 0, (self._ta - decrements) / 3.0, self._t1)
        above = np.flatnonzero(seg > thr)
        n_below = int(above[0]) if above.size else len(seg)
        if not self._learning and n_below:
            done = min(max(0, n_below - first), room)
            if done:
                self._ta -= done
                self._t1 = self._ta / 3.0
            self._timer += n_below
        return lo + n_below if above.size else None

    def _room(self) -> int:
        """How many one-unit steps ``Ta`` may still fall (while above the minimum)."""
        excess = self._ta - self.min_threshold_adu
        return math.ceil(excess) if excess > 0.0 else 0

    def _qrs_at(self, t: int) -> tuple[float, int] | None:
        """``(max, onset)`` of the transform when the crossing at ``t`` is a QRS."""
        after = self._lt_at(t, t + self._half)
        before = self._lt_at(t - self._half + 1, t + 1)
        peak, trough = float(after.max()), float(before.min())
        if not peak > trough + self.rise_adu:
            return None
        step = peak / 100.0 + 2.0
        seg = self._lt_at(t - self._half - 3, t + 1)  # local t - half - 3 .. t
        onset = t - 5
        if len(seg) >= 5:
            slow = np.diff(seg) < step  # slow[i]: rise into seg index i + 1
            four = slow[3:] & slow[2:-1] & slow[1:-2] & slow[:-3]  # ends at seg index i + 4
            first_tt = t + 1 - len(seg) + 4  # the tt of four[0]
            ok = np.flatnonzero(four & (np.arange(len(four)) + first_tt > t - self._half))
            if ok.size:
                onset = int(ok[-1]) + first_tt - 2 * self._lp
        return peak, onset

    def _locate(self, onset: int) -> int:
        lo = max(onset, self._last_r + 1, self._base)
        hi = max(lo + 1, min(onset + self._r_window + 1, self._base + len(self._x)))
        seg = self._x[lo - self._base : hi - self._base]
        ref = self._x[lo - self._base]
        return lo + int(np.argmax(np.abs(seg - ref)))

    def _run(self, end: int, *, final: bool) -> list[Beat]:
        """Examine every sample whose look-ahead is buffered (all of them when ``final``)."""
        out: list[Beat] = []
        if self._learning:
            if self._n_seen < self._learn_n + self._lookahead and not final:
                return out
            t0 = float(np.mean(self._lt[: min(self._n_seen, self._learn_n)]))
            self._ta = 3.0 * t0
            self._t1 = 2.0 * t0
            self._t = 0
            self._scan(min(self._learn_n, self._n_seen), out)
            self._learning = False
            self._t1 = t0
            self._t = 0
            self._timer = 0
        self._scan(end, out)
        keep = self._t - self._half - 2 * self._lp - 8
        if keep > self._base:
            self._lt = self._lt[keep - self._base :]
            self._x = self._x[keep - self._base :]
            self._base = keep
        return out

    def _scan(self, end: int, out: list[Beat]) -> None:
        """Run the decisions over local indices ``_t .. end - 1``."""
        while self._t < end:
            # A bounded block, so each step's arrays stay small however long the chunk:
            # examined in blocks or at once, the samples give the same decisions.
            hi = min(end, self._t + self._block)
            t = self._threshold_run(self._t, hi)
            if t is None:
                self._t = hi
                continue
            self._timer = 0
            found = self._qrs_at(t)
            if found is None:
                self._t = t + 1
                continue
            peak, onset = found
            if not self._learning:
                r = self._locate(onset)
                self._last_r = r
                out.append(Beat(sample_index=self.start_index + r))
            self._ta += (peak - self._ta) / 10.0
            self._t1 = self._ta / 3.0
            self._t = t + self._eye + 1

    # ----------------------------------------------------------------------- API
    def process(self, chunk: NDArray[np.floating] | FloatArray) -> list[Beat]:
        """Consume a chunk of raw samples (mV) and return the beats that became final.

        Parameters
        ----------
        chunk
            One lead, shaped ``(n_samples,)`` or ``(n_samples, n_leads)`` (the first column
            is used); any length, including 0.

        Returns
        -------
        list of Beat
            Beats in increasing ``sample_index`` order (quality 1.0: the detector has no
            quality measure of its own).
        """
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim == 2:
            x = x[:, 0]
        if x.ndim != 1:
            raise ValueError(f"expected one lead, got shape {x.shape}")
        if x.shape[0] == 0:
            return []
        self._append(x * self.gain_adu_per_mv)
        return self._run(self._n_seen - self._lookahead, final=False)

    def flush(self) -> list[Beat]:
        """End the record: decide the remaining samples, then reset.

        Returns
        -------
        list of Beat
            The beats still pending, in increasing ``sample_index`` order.
        """
        out = self._run(self._n_seen, final=True) if self._n_seen else []
        self.reset()
        return out
