"""Causal homomorphic envelope of a band-passed heart sound, decimated on an absolute grid.

``log(|x| + eps)`` is low-passed (Butterworth SOS, carried state) and exponentiated, which
follows the energy of S1 and S2 while ignoring their oscillations (the homomorphic envelope
Springer's segmentation uses, computed causally). The result is kept every ``decim``-th input
sample, at absolute input indices ``0, decim, 2 * decim, ...``, so the grid is the same for
every chunking.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from ._iir import sosfilt_1d

FloatArray = NDArray[np.float64]

__all__ = ["HomomorphicEnvelope"]

_EPS = 1e-6


class HomomorphicEnvelope:
    """Envelope stage: samples at ``fs_hz`` in, envelope at ``fs_hz / decim`` out.

    Parameters
    ----------
    fs_hz
        Rate of the input (the band-passed heart sound).
    lowpass_hz
        Corner of the envelope low-pass.
    decim
        Keep every ``decim``-th envelope sample.
    """

    def __init__(self, fs_hz: float, *, lowpass_hz: float = 8.0, decim: int = 20) -> None:
        if not 0 < lowpass_hz < fs_hz / (2 * decim):
            raise ValueError("need 0 < lowpass_hz < fs_hz / (2 * decim)")
        self.fs_hz = float(fs_hz)
        self.lowpass_hz = float(lowpass_hz)
        self.decim = int(decim)
        self._sos = signal.butter(2, self.lowpass_hz, output="sos", fs=self.fs_hz)
        self.reset()

    @property
    def out_fs_hz(self) -> float:
        """Rate of the envelope output."""
        return self.fs_hz / self.decim

    @property
    def latency_samples(self) -> int:
        """Look-ahead in input samples: zero (causal)."""
        return 0

    def reset(self) -> None:
        """Forget the stream."""
        self._zi: FloatArray | None = None
        self._n_in = 0

    def process(self, x: NDArray[np.floating] | FloatArray) -> FloatArray:
        """Envelope values at the grid points inside this chunk."""
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            return np.empty(0, dtype=np.float64)
        log_abs = np.log(np.abs(arr) + _EPS)
        if self._zi is None:
            self._zi = signal.sosfilt_zi(self._sos) * log_abs[0]
        smooth, self._zi = sosfilt_1d(self._sos, log_abs, self._zi)
        first = self._n_in
        offset = (-first) % self.decim  # first grid point inside the chunk
        self._n_in += arr.size
        return np.asarray(np.exp(smooth[offset :: self.decim]), dtype=np.float64)

    def flush(self) -> FloatArray:
        """End the record (nothing pending); resets."""
        self.reset()
        return np.empty(0, dtype=np.float64)
