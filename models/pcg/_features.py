"""Sliding windows of the band-passed heart sound and their log-mel features.

Windows lie on an absolute grid: window ``k`` covers internal-rate samples
``[k * hop, k * hop + window)``, so streaming and offline use cut the same windows. A window is
final (and emitted) once its last sample has arrived: the windower's latency is one window.
A record shorter than one window is scored once, zero-padded, when it ends (``flush``).
Features are a log-mel spectrogram, normalised by ``WindowSpec.norm``: ``"window"`` standardises
each window on its own (no whole-record statistics); ``"running"`` first subtracts, per mel band,
the running mean of the recording so far (the mean of the per-window band means of every window
up to and including this one: causal cepstral-mean-style normalisation, which removes a
device's or site's spectral colouring), then scales by the window's standard deviation. The
running sums are the windower's only extra state (``n_mels`` floats and a count). With
``WindowSpec.cycle`` each window also carries heart-cycle features computed from the same
un-normalised frames (:mod:`models.pcg._cycle`: no extra latency, no extra state).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._cycle import CYCLE_FEATURES, cycle_features
from ._quality import high_band_share

FloatArray = NDArray[np.float64]
F32Array = NDArray[np.float32]

__all__ = ["NORMS", "PcgWindow", "WindowSpec", "Windower", "log_mel", "raw_log_mel"]

#: Feature normalisations (``WindowSpec.norm``).
NORMS = ("window", "running")


@dataclass(frozen=True)
class WindowSpec:
    """Everything that shapes the classifier's input; saved with the model.

    Parameters
    ----------
    fs_hz
        Internal sampling rate every recording is resampled to.
    low_hz, high_hz
        Band-pass corners.
    window_s, hop_s
        Window length and step of the sliding windows.
    min_s
        A record shorter than a window but at least this long gets one zero-padded window.
    n_fft, stft_hop
        STFT frame length and step, in internal-rate samples.
    n_mels
        Mel bands between ``low_hz`` and ``high_hz``.
    norm
        ``"window"`` (standardised per window) or ``"running"`` (per-band running mean of the
        recording subtracted, then scaled per window); see the module docstring.
    cycle
        Whether windows also carry the heart-cycle feature vector
        (:func:`models.pcg._cycle.cycle_features`), the classifier's second input.
    """

    fs_hz: float = 1000.0
    low_hz: float = 25.0
    high_hz: float = 400.0
    window_s: float = 3.0
    hop_s: float = 1.0
    min_s: float = 0.75
    n_fft: int = 128
    stft_hop: int = 32
    n_mels: int = 24
    norm: str = "window"
    cycle: bool = False

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown feature normalisation {self.norm!r}; one of {NORMS}")

    @property
    def window_samples(self) -> int:
        """Samples per window at the internal rate."""
        return round(self.window_s * self.fs_hz)

    @property
    def hop_samples(self) -> int:
        """Samples between window starts at the internal rate."""
        return round(self.hop_s * self.fs_hz)

    @property
    def n_cycle(self) -> int:
        """Length of each window's cycle-feature vector (0 without ``cycle``)."""
        return len(CYCLE_FEATURES) if self.cycle else 0

    @property
    def n_frames(self) -> int:
        """STFT frames per window."""
        return 1 + (self.window_samples - self.n_fft) // self.stft_hop

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in model artifacts); ``norm`` only when not ``"window"`` and
        ``cycle`` only when true, so artifacts and window caches from before these options keep
        their bytes and keys."""
        d = asdict(self)
        if d["norm"] == "window":
            del d["norm"]
        if not d["cycle"]:
            del d["cycle"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass(frozen=True)
class PcgWindow:
    """One final window: its first internal-rate sample, its log-mel features, its
    high-band share (un-normalised quality cue, :func:`models.pcg.high_band_share`) and its
    heart-cycle features (empty unless ``WindowSpec.cycle``)."""

    start_sample: int
    features: F32Array  # (n_mels, n_frames)
    hf_share: float = 0.0
    cycle: F32Array = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


@functools.lru_cache(maxsize=8)
def _mel_basis(spec: WindowSpec) -> F32Array:
    import librosa

    basis = librosa.filters.mel(
        sr=spec.fs_hz, n_fft=spec.n_fft, n_mels=spec.n_mels, fmin=spec.low_hz, fmax=spec.high_hz
    )
    return np.asarray(basis, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> F32Array:
    window = np.hanning(n_fft).astype(np.float32)
    window.flags.writeable = False
    return window


def raw_log_mel(x: NDArray[np.floating], spec: WindowSpec) -> F32Array:
    """Log-mel spectrogram ``(n_mels, n_frames)`` of one window of samples, not normalised."""
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, dtype=np.float32), spec.n_fft)[
        :: spec.stft_hop
    ]
    window = _hann(spec.n_fft)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (n_frames, n_fft // 2 + 1)
    mel = _mel_basis(spec) @ power.T.astype(np.float32)
    return np.asarray(np.log(mel + 1e-10), dtype=np.float32)


def standardise(logm: F32Array, band_mean: F32Array | None = None) -> F32Array:
    """Subtract ``band_mean`` per band (or the window's mean), divide by the window's std."""
    z = logm - (logm.mean() if band_mean is None else band_mean[:, None])
    z = z / (z.std() + 1e-3)
    return np.asarray(z, dtype=np.float32)


def log_mel(x: NDArray[np.floating], spec: WindowSpec) -> F32Array:
    """Log-mel spectrogram ``(n_mels, n_frames)`` of one window, standardised within it."""
    return standardise(raw_log_mel(x, spec))


class Windower:
    """Streaming stage: band-passed samples in, final :class:`PcgWindow` events out."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.reset()

    @property
    def latency_samples(self) -> int:
        """A window is emitted when its last sample arrives."""
        return self.spec.window_samples

    def reset(self) -> None:
        """Forget the stream."""
        self._buf = np.empty(0, dtype=np.float32)
        self._buf_start = 0  # absolute index of self._buf[0]
        self._next_start = 0  # start of the next window to emit
        self._band_sum = np.zeros(self.spec.n_mels, dtype=np.float64)  # norm "running"
        self._n_windows = 0

    def _window(self, start: int, x: NDArray[np.floating]) -> PcgWindow:
        logm = raw_log_mel(x, self.spec)
        cycle = (
            cycle_features(logm, self.spec.fs_hz / self.spec.stft_hop)
            if self.spec.cycle
            else np.zeros(0, dtype=np.float32)
        )
        hf = round(high_band_share(x, self.spec.fs_hz), 4)
        if self.spec.norm == "window":
            return PcgWindow(start, standardise(logm), hf, cycle)
        self._band_sum += logm.mean(axis=1, dtype=np.float64)
        self._n_windows += 1
        z = standardise(logm, (self._band_sum / self._n_windows).astype(np.float32))
        return PcgWindow(start, z, hf, cycle)

    def process(self, x: NDArray[np.floating]) -> list[PcgWindow]:
        """Consume samples; return the windows that became complete."""
        arr = np.asarray(x, dtype=np.float32).reshape(-1)
        if arr.size == 0:
            return []
        self._buf = np.concatenate((self._buf, arr))
        end = self._buf_start + self._buf.size
        n, hop = self.spec.window_samples, self.spec.hop_samples
        out = []
        while self._next_start + n <= end:
            i = self._next_start - self._buf_start
            w = self._buf[i : i + n]
            out.append(self._window(self._next_start, w))
            self._next_start += hop
        drop = max(0, self._next_start - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return out

    def flush(self) -> list[PcgWindow]:
        """End the record; resets.

        A record shorter than one window (but at least ``min_s`` long) gets one window, its
        samples at the end and zeros before them; otherwise an incomplete last window is not
        scored.
        """
        out = []
        n = self.spec.window_samples
        if self._next_start == 0 and self._buf.size >= round(self.spec.min_s * self.spec.fs_hz):
            padded = np.zeros(n, dtype=np.float32)
            padded[n - self._buf.size :] = self._buf
            out.append(self._window(self._buf.size - n, padded))
        self.reset()
        return out
