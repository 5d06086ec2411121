"""A stateful, causal resampler to the pipeline's internal rate.

Rates are handled as an exact rational ratio ``p / q`` (input samples per output sample), so
output sample ``k`` sits at input position ``k * p / q`` for every chunking of the stream.
Downsampling first low-passes with a Butterworth SOS filter (carried state) below the output
Nyquist rate; the value at the output position is then interpolated linearly between the two
neighbouring filtered input samples. The look-ahead is one input sample.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from ._iir import sosfilt_1d

FloatArray = NDArray[np.float64]

__all__ = ["Resampler"]


class Resampler:
    """Causal resampler from ``fs_in_hz`` to ``fs_out_hz``; 1-D float in, 1-D float64 out.

    Parameters
    ----------
    fs_in_hz
        Rate of the incoming samples.
    fs_out_hz
        Rate of the output samples.
    cutoff_ratio
        Anti-alias corner as a fraction of the output Nyquist rate (downsampling only).
    order
        Butterworth order of the anti-alias low-pass.

    Examples
    --------
    >>> import numpy as np
    >>> r = Resampler(4000.0, 1000.0)
    >>> len(r.process(np.zeros(4000))) + len(r.flush())
    1000
    """

    def __init__(
        self, fs_in_hz: float, fs_out_hz: float, *, cutoff_ratio: float = 0.9, order: int = 8
    ) -> None:
        if fs_in_hz <= 0 or fs_out_hz <= 0:
            raise ValueError("sampling rates must be > 0")
        self.fs_in_hz = float(fs_in_hz)
        self.fs_out_hz = float(fs_out_hz)
        ratio = Fraction(self.fs_in_hz).limit_denominator(10_000) / Fraction(
            self.fs_out_hz
        ).limit_denominator(10_000)
        self._p, self._q = ratio.numerator, ratio.denominator
        self._sos: FloatArray | None = None
        if self.fs_in_hz > self.fs_out_hz:
            corner_hz = cutoff_ratio * self.fs_out_hz / 2.0
            self._sos = signal.butter(order, corner_hz, output="sos", fs=self.fs_in_hz)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead in input samples: one (the right neighbour of an output position)."""
        return 1

    def reset(self) -> None:
        """Forget the stream."""
        self._zi: FloatArray | None = None
        self._n_in = 0  # input samples consumed so far
        self._k = 0  # next output index
        self._last = 0.0  # last filtered input sample (index self._n_in - 1)

    def process(self, x: NDArray[np.floating] | FloatArray) -> FloatArray:
        """Resample a chunk (any length); returns the output samples that became final."""
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            return np.empty(0, dtype=np.float64)
        if self._sos is not None:
            if self._zi is None:
                self._zi = signal.sosfilt_zi(self._sos) * arr[0]
            arr, self._zi = sosfilt_1d(self._sos, arr, self._zi)
        first = self._n_in  # absolute index of arr[0]
        # Known samples: self._last at first - 1 (when first > 0), then arr.
        ext = np.concatenate(([self._last], arr)) if first > 0 else arr
        ext_first = first - 1 if first > 0 else 0
        n_known_end = first + arr.size  # one past the last known input index
        # Output k needs input indices floor(k p / q) and floor(k p / q) + 1 (unless exact).
        k_max = ((n_known_end - 1) * self._q) // self._p  # last k with floor(pos) <= end - 1
        ks = np.arange(self._k, k_max + 1, dtype=np.int64)
        num = ks * self._p
        lo = num // self._q
        frac = (num % self._q).astype(np.float64) / self._q
        # An inexact position needs its right neighbour too.
        ok = (frac == 0.0) | (lo + 1 <= n_known_end - 1)
        ks, lo, frac = ks[ok], lo[ok], frac[ok]
        i = lo - ext_first
        right = np.minimum(i + 1, ext.size - 1)
        out = ext[i] * (1.0 - frac) + ext[right] * frac
        if ks.size:
            self._k = int(ks[-1]) + 1
        self._n_in = n_known_end
        self._last = float(arr[-1])
        return np.asarray(out, dtype=np.float64)

    def flush(self) -> FloatArray:
        """End the record: nothing is pending that could still be computed; resets."""
        self.reset()
        return np.empty(0, dtype=np.float64)
