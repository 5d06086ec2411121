"""Causal ECG pre-filters as second-order sections with explicit carried state.

Both filters follow the streaming-stage shape (``models/_stage.py``): samples in,
the same number of filtered samples out, no look-ahead. Arrays are shaped
``(n_samples, n_leads)`` (axis 0 is time); a 1-D array is treated as one lead.

The state is initialised on the first sample of the stream as the steady state
of a constant input equal to that sample (``sosfilt_zi`` scaled per lead), which
removes the start-up transient of a DC offset. It depends only on the first
sample, so the output is identical for every chunking of the stream.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

try:  # The compiled kernel behind ``scipy.signal.sosfilt``, without its ~50 us of validation.
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - layout of a future SciPy
    _sosfilt_kernel = None

FloatArray = NDArray[np.float64]

__all__ = ["BandpassFilter", "NotchFilter"]


def sosfilt_leads(sos: FloatArray, x: FloatArray, zi: FloatArray) -> FloatArray:
    """Filter every lead of ``x`` with ``sos``, updating the state ``zi`` in place.

    Equivalent, bit for bit, to ``scipy.signal.sosfilt(sos, x, axis=0, zi=...)``, but with the
    state laid out per lead and without the per-call validation, which costs more than the
    filtering itself for 1 s chunks.

    Parameters
    ----------
    sos
        Second-order sections, shape ``(n_sections, 6)``, float64.
    x
        Samples shaped ``(n_samples, n_leads)``.
    zi
        Filter state shaped ``(n_leads, n_sections, 2)``, float64, C-contiguous; updated.

    Returns
    -------
    numpy.ndarray
        The filtered samples shaped ``(n_samples, n_leads)``.
    """
    xt = np.array(x.T, dtype=np.float64, order="C")  # (n_leads, n_samples), a copy
    if _sosfilt_kernel is not None:
        _sosfilt_kernel(sos, xt, zi)
        return xt.T
    y, zf = signal.sosfilt(sos, xt, axis=-1, zi=np.moveaxis(zi, 0, 1))
    zi[...] = np.moveaxis(zf, 1, 0)
    return np.asarray(y, dtype=np.float64).T


def steady_state(sos: FloatArray, first_sample: FloatArray) -> FloatArray:
    """State ``(n_leads, n_sections, 2)`` of ``sos`` after a constant input ``first_sample``."""
    zi_unit = signal.sosfilt_zi(sos)  # (n_sections, 2) for a unit step
    return np.ascontiguousarray(first_sample[:, np.newaxis, np.newaxis] * zi_unit[np.newaxis])


def _as_2d(x: NDArray[np.floating] | FloatArray) -> FloatArray:
    """Return ``x`` as a float64 array shaped ``(n_samples, n_leads)``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return arr[:, np.newaxis]
    if arr.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D array (n_samples, n_leads), got shape {arr.shape}")
    return arr


class _SosStage:
    """A causal SOS filter applied independently to every lead, with carried state."""

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead of the filter: zero (it is causal)."""
        return 0

    def reset(self) -> None:
        """Forget the stream; the next sample initialises the state again."""
        self._zi: FloatArray | None = None  # (n_leads, n_sections, 2) once the stream starts
        self._n_leads: int | None = None

    def process(self, x: NDArray[np.floating] | FloatArray) -> FloatArray:
        """Filter a chunk.

        Parameters
        ----------
        x
            Samples shaped ``(n_samples, n_leads)`` or ``(n_samples,)``; any length, including 0.

        Returns
        -------
        numpy.ndarray
            Filtered samples, float64, shaped ``(n_samples, n_leads)``.
        """
        arr = _as_2d(x)
        n_leads = arr.shape[1]
        if self._n_leads is None:
            self._n_leads = n_leads
        elif n_leads != self._n_leads:
            raise ValueError(f"expected {self._n_leads} leads, got {n_leads}")
        if arr.shape[0] == 0:
            return np.empty((0, n_leads), dtype=np.float64)
        if self._zi is None:
            # Steady state for a constant input equal to the first sample of each lead.
            self._zi = steady_state(self._sos, arr[0])
        return sosfilt_leads(self._sos, arr, self._zi)

    def flush(self) -> FloatArray:
        """End the record: a causal filter has nothing pending; the state is reset.

        Returns
        -------
        numpy.ndarray
            An empty array shaped ``(0, n_leads)``.
        """
        out = np.empty((0, self._n_leads or 0), dtype=np.float64)
        self.reset()
        return out


class BandpassFilter(_SosStage):
    """Butterworth band-pass (causal, SOS) for ECG baseline and high-frequency noise.

    Parameters
    ----------
    fs_hz
        Sampling rate.
    low_hz
        High-pass corner (baseline wander removal).
    high_hz
        Low-pass corner (EMG noise removal).
    order
        Butterworth order of each edge (the band-pass has ``2 * order`` poles).

    Examples
    --------
    >>> import numpy as np
    >>> f = BandpassFilter(360.0)
    >>> f.process(np.zeros((5, 2))).shape
    (5, 2)
    """

    def __init__(
        self, fs_hz: float, *, low_hz: float = 0.5, high_hz: float = 40.0, order: int = 2
    ) -> None:
        if not 0.0 < low_hz < high_hz < fs_hz / 2.0:
            raise ValueError("need 0 < low_hz < high_hz < fs_hz / 2")
        self.fs_hz = float(fs_hz)
        self.low_hz = float(low_hz)
        self.high_hz = float(high_hz)
        self.order = int(order)
        sos = signal.butter(
            self.order, [self.low_hz, self.high_hz], btype="bandpass", output="sos", fs=self.fs_hz
        )
        super().__init__(sos)


class NotchFilter(_SosStage):
    """IIR notch (causal, SOS) at the mains frequency.

    Parameters
    ----------
    fs_hz
        Sampling rate.
    mains_hz
        Mains frequency to remove (60 Hz in the Americas, 50 Hz elsewhere).
    q
        Quality factor: ``mains_hz / bandwidth``.
    """

    def __init__(self, fs_hz: float, *, mains_hz: float = 60.0, q: float = 30.0) -> None:
        if not 0.0 < mains_hz < fs_hz / 2.0:
            raise ValueError("need 0 < mains_hz < fs_hz / 2")
        self.fs_hz = float(fs_hz)
        self.mains_hz = float(mains_hz)
        self.q = float(q)
        b, a = signal.iirnotch(self.mains_hz, self.q, fs=self.fs_hz)
        super().__init__(signal.tf2sos(b, a))
