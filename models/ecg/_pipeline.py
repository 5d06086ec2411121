"""The ECG beat pipeline: band-pass, mains notch and QRS detection in one stage."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._filters import BandpassFilter, NotchFilter
from ._qrs import QrsDetector
from ._types import Beat

__all__ = ["EcgBeatPipeline"]


class EcgBeatPipeline:
    """Raw ECG chunks in, beats out: the one stage the stream worker and the analyzer call.

    Parameters
    ----------
    fs_hz
        Sampling rate.
    n_leads
        Number of leads per chunk; the first lead is the primary one (MLII where available).
    mains_hz
        Mains frequency removed by the notch filter.
    start_index
        Absolute sample index of the first sample of the stream; beats carry absolute indices.

    Notes
    -----
    ``process`` takes samples in physical units (mV) shaped ``(n_samples, n_leads)``, or a
    1-D array when ``n_leads == 1``, of any length. The band-pass (0.5-40 Hz) and the notch
    are causal, so the pipeline's look-ahead is the detector's (``latency_samples``); the
    beats' ``sample_index`` refers to the filtered signal, which lags the raw signal by the
    band-pass group delay (about 2 samples at 360 Hz). ``flush`` ends the record and
    resets every stage, so the object can start the next record.

    Examples
    --------
    >>> import numpy as np
    >>> pipe = EcgBeatPipeline(360.0, n_leads=2)
    >>> pipe.process(np.zeros((360, 2))) + pipe.flush()
    []
    """

    def __init__(
        self, fs_hz: float, n_leads: int, *, mains_hz: float = 60.0, start_index: int = 0
    ) -> None:
        self.fs_hz = float(fs_hz)
        self.n_leads = int(n_leads)
        self.mains_hz = float(mains_hz)
        self.start_index = int(start_index)
        self._bandpass = BandpassFilter(self.fs_hz)
        self._notch = NotchFilter(self.fs_hz, mains_hz=self.mains_hz)
        self._detector = QrsDetector(self.fs_hz, n_leads=self.n_leads, start_index=self.start_index)

    @property
    def latency_samples(self) -> int:
        """Look-ahead (samples) after an R peak before its beat is final."""
        filters = self._bandpass.latency_samples + self._notch.latency_samples
        return filters + self._detector.latency_samples

    def reset(self) -> None:
        """Forget the stream; afterwards the pipeline equals a fresh one."""
        self._bandpass.reset()
        self._notch.reset()
        self._detector.reset()

    def process(self, chunk: NDArray[np.floating] | NDArray[np.float64]) -> list[Beat]:
        """Filter a chunk and return the beats that became final.

        Parameters
        ----------
        chunk
            Samples in mV shaped ``(n_samples, n_leads)`` (or ``(n_samples,)`` for one lead).

        Returns
        -------
        list of Beat
            Beats in increasing ``sample_index`` order.
        """
        return self.process_filtered(chunk)[0]

    def process_filtered(
        self, chunk: NDArray[np.floating] | NDArray[np.float64]
    ) -> tuple[list[Beat], NDArray[np.float64]]:
        """Like :meth:`process`, and also return the chunk's filtered samples.

        Parameters
        ----------
        chunk
            Samples in mV shaped ``(n_samples, n_leads)`` (or ``(n_samples,)`` for one lead).

        Returns
        -------
        beats : list of Beat
            Beats in increasing ``sample_index`` order.
        filtered_mv : ndarray
            The band-passed and notched chunk, shape ``(n_samples, n_leads)``; its row ``i``
            is absolute sample ``start_index + samples seen before + i``, the clock of the
            beats' ``sample_index`` (what a beat classifier reads its morphology from).
        """
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, np.newaxis]
        if x.ndim != 2 or x.shape[1] != self.n_leads:
            raise ValueError(f"expected shape (n, {self.n_leads}), got {x.shape}")
        if x.shape[0] == 0:
            return [], np.zeros((0, self.n_leads))
        filtered = self._notch.process(self._bandpass.process(x))
        return self._detector.process(filtered), filtered

    def flush(self) -> list[Beat]:
        """End the record: return the pending beats and reset every stage.

        Returns
        -------
        list of Beat
            The beats still pending.
        """
        beats = self._detector.flush()
        self.reset()
        return beats
