"""A synthetic patient: streaming multi-lead ECG from the ECGSYN model, with injectable events.

The waveform model and how it is integrated are described in :mod:`simulators._ecgsyn`.
On top of it this module schedules the beats (mean heart rate, variability and the
injected rhythm events), adds respiratory baseline wander, white measurement noise,
muscle/motion noise bursts and lead-off, and keeps the ground truth (R-peak sample
indices) for tests and benchmarks.

Everything random is drawn from streams keyed by the seed and by absolute position
(a tachogram segment, a block of samples), so the signal is a deterministic function of
the seed and the sample index: ``generate`` called in any chunking returns the same
samples.

Examples
--------
>>> p = SyntheticPatient(360.0, heart_rate_bpm=60.0, seed=1)
>>> x = p.generate(3600)
>>> x.shape
(3600, 2)
>>> 8 <= len(p.beats_between(0, 3600)) <= 11
True
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from simulators import _ecgsyn

EventKind = Literal[
    "asystole", "pause", "tachycardia", "bradycardia", "noise", "lead_off", "vt", "hr_step"
]

#: ``value`` used when an event gives none: bpm for rates, mV for noise and lead-off.
DEFAULT_EVENT_VALUE: dict[str, float] = {
    "tachycardia": 150.0,
    "bradycardia": 35.0,
    "vt": 180.0,
    "hr_step": 120.0,
    "noise": 0.5,
    "lead_off": 0.0,
}

_RAMP_S = 3.0  # tachycardia / bradycardia ramp in and out over this long (or a quarter)
_RESP_HZ = 0.25
_RESP_WANDER_MV = 0.15  # z0 amplitude of ECGSYN
_NOISE_BLOCK = 4096  # samples per block of random numbers (absolute grid)
_SHAPE_RR_S = (0.25, 1.5)  # clip of the RR that sets a beat's wave widths
_HR_LIMITS_BPM = (15.0, 300.0)
_MAX_BEAT_REACH_S = 2.5  # no wave lies further than this from its R peak


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    """An event injected into a :class:`SyntheticPatient`.

    Parameters
    ----------
    kind
        ``asystole`` (no beats: baseline and noise only), ``pause`` (the first RR interval
        that starts at or after ``start_s`` lasts ``duration_s``), ``tachycardia`` and
        ``bradycardia`` (heart rate ramps to ``value`` bpm, holds, ramps back), ``hr_step``
        (heart rate steps to ``value`` bpm at once and back at the end: the IEC 60601-2-27
        heart-rate response test), ``vt``
        (wide-QRS ventricular beats at ``value`` bpm), ``noise`` (muscle and motion noise
        of RMS ``value`` mV on all leads), ``lead_off`` (every lead exactly constant at
        ``value`` mV, e.g. an ADC rail).
    start_s
        Start, seconds from the beginning of the record.
    duration_s
        Duration, seconds.
    value
        Parameter of the event; ``None`` uses :data:`DEFAULT_EVENT_VALUE`.
    """

    kind: EventKind
    start_s: float
    duration_s: float
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(EventKind):
            raise ValueError(f"unknown event kind {self.kind!r}")
        if self.start_s < 0 or self.duration_s <= 0:
            raise ValueError("events need start_s >= 0 and duration_s > 0")

    @property
    def end_s(self) -> float:
        """End of the event, seconds."""
        return self.start_s + self.duration_s

    @property
    def resolved_value(self) -> float:
        """``value``, or the kind's default."""
        return self.value if self.value is not None else DEFAULT_EVENT_VALUE.get(self.kind, 0.0)


def to_digital(x_mv: NDArray[np.floating], gain_adu_per_mv: float = 200.0) -> NDArray[np.int16]:
    """Quantise millivolts to a 16-bit ADC (round to nearest, clip at the rails).

    Parameters
    ----------
    x_mv
        Signal in millivolts.
    gain_adu_per_mv
        ADC units per millivolt (200 as in the MIT-BIH database).

    Returns
    -------
    ndarray of int16
        Same shape as ``x_mv``.
    """
    info = np.iinfo(np.int16)
    adu = np.clip(np.rint(np.asarray(x_mv, dtype=np.float64) * gain_adu_per_mv), info.min, info.max)
    return adu.astype(np.int16)


class _BeatSchedule:
    """R-peak times, generated lazily and deterministically in time order."""

    def __init__(
        self,
        heart_rate_bpm: float,
        hr_std_bpm: float,
        seed: int,
        events: tuple[SyntheticEvent, ...],
    ) -> None:
        self._hr_bpm = heart_rate_bpm
        self._cv = hr_std_bpm / heart_rate_bpm
        self._tachogram = _ecgsyn.Tachogram(seed)
        self._rate_events = [
            e for e in events if e.kind in ("tachycardia", "bradycardia", "vt", "hr_step")
        ]
        self._pauses = [e for e in events if e.kind == "pause"]
        self._asystoles = sorted(
            (e for e in events if e.kind == "asystole"), key=lambda e: e.start_s
        )
        self._vts = [e for e in events if e.kind == "vt"]
        self.times_s: list[float] = []
        self.shape_rr_s: list[float] = []
        self.is_vt: list[bool] = []

    def heart_rate_at(self, t_s: float) -> float:
        """Instantaneous heart rate (bpm) that sets the RR interval starting at ``t_s``."""
        base = self._hr_bpm
        for e in self._rate_events:
            if e.start_s <= t_s < e.end_s:
                if e.kind in ("vt", "hr_step"):
                    base = e.resolved_value
                    continue
                ramp_s = min(_RAMP_S, e.duration_s / 4.0)
                frac = min(1.0, (t_s - e.start_s) / ramp_s, (e.end_s - t_s) / ramp_s)
                base += frac * (e.resolved_value - base)
        hr = base * (1.0 + self._cv * self._tachogram.value(t_s))
        return min(max(hr, _HR_LIMITS_BPM[0]), _HR_LIMITS_BPM[1])

    def _skip_asystole(self, t_s: float) -> float:
        for e in self._asystoles:
            if e.start_s <= t_s < e.end_s:
                t_s = e.end_s
        return t_s

    def extend_to(self, t_s: float) -> None:
        """Schedule beats until the last one lies beyond ``t_s``."""
        while not self.times_s or self.times_s[-1] <= t_s:
            if self.times_s:
                prev = self.times_s[-1]
                before = self.times_s[-2] if len(self.times_s) > 1 else -math.inf
                t = prev + 60.0 / self.heart_rate_at(prev)
                for e in self._pauses:
                    if before < e.start_s <= prev:
                        t = prev + e.duration_s
            else:
                prev = -60.0 / self.heart_rate_at(0.0)
                t = 0.5 * (60.0 / self._hr_bpm)
            t = self._skip_asystole(t)
            shape = min(max(t - prev, _SHAPE_RR_S[0]), _SHAPE_RR_S[1])
            self.times_s.append(t)
            self.shape_rr_s.append(shape)
            self.is_vt.append(any(e.start_s <= t < e.end_s for e in self._vts))


class SyntheticPatient:
    """Streaming synthetic ECG patient (ECGSYN model) with ground truth and events.

    Parameters
    ----------
    fs_hz
        Sampling rate, Hz.
    n_leads
        Number of leads, 1 to 3: MLII-like, V1-like, V5-like projections.
    heart_rate_bpm
        Mean heart rate outside events, bpm.
    hr_std_bpm
        Standard deviation of the heart rate (Mayer-wave and RSA modulation), bpm.
    seed
        Seed of every random quantity; equal seeds give equal signals.
    events
        Injected events (:class:`SyntheticEvent`).
    amplitude_mv
        R-peak amplitude of lead 1 on a normal beat, mV.
    noise_mv
        Standard deviation of the white measurement noise, mV.

    Notes
    -----
    Generation is vectorised per beat and per wave (the Gaussian-sum form of the ``z``
    equation, see :mod:`simulators._ecgsyn`): about a thousand times faster than real
    time for 2 leads at 360 Hz on one core, in 1 s chunks or longer.
    """

    def __init__(
        self,
        fs_hz: float = 360.0,
        *,
        n_leads: int = 2,
        heart_rate_bpm: float = 72.0,
        hr_std_bpm: float = 1.0,
        seed: int = 0,
        events: tuple[SyntheticEvent, ...] | list[SyntheticEvent] = (),
        amplitude_mv: float = 1.0,
        noise_mv: float = 0.01,
    ) -> None:
        if not 1 <= n_leads <= _ecgsyn.MAX_LEADS:
            raise ValueError(f"n_leads must be between 1 and {_ecgsyn.MAX_LEADS}")
        if fs_hz <= 0 or not 20.0 <= heart_rate_bpm <= 250.0 or hr_std_bpm < 0:
            raise ValueError("need fs_hz > 0, 20 <= heart_rate_bpm <= 250, hr_std_bpm >= 0")
        self.fs_hz = float(fs_hz)
        self.n_leads = n_leads
        self.heart_rate_bpm = float(heart_rate_bpm)
        self.hr_std_bpm = float(hr_std_bpm)
        self.seed = seed
        self.events = tuple(events)
        self.amplitude_mv = float(amplitude_mv)
        self.noise_mv = float(noise_mv)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Rewind to sample 0."""
        self._next_sample = 0
        self._schedule = _BeatSchedule(self.heart_rate_bpm, self.hr_std_bpm, self.seed, self.events)
        self._scale_mv = self.amplitude_mv / _ecgsyn.beat_peak(_ecgsyn.NORMAL_LEADS[0])
        rng = np.random.default_rng([self.seed, _ecgsyn.STREAM_PHASES])
        self._resp_phase = rng.uniform(0.0, 2.0 * math.pi, self.n_leads)
        self._decay = math.exp(-1.0 / self.fs_hz)
        self._y_zi = np.zeros((1, self.n_leads))
        self._block_cache: dict[int, tuple[int, NDArray[np.float64]]] = {}
        self._noise_sos: list[NDArray[np.float64]] = []
        self._noise_zi: list[NDArray[np.float64]] = []
        self._noise_gain: list[float] = []
        if any(e.kind == "noise" for e in self.events):
            nyq = 0.5 * self.fs_hz
            for band in ((20.0, min(100.0, 0.8 * nyq)), (0.5, min(3.0, 0.8 * nyq))):
                sos = signal.butter(2, band, btype="bandpass", output="sos", fs=self.fs_hz)
                impulse = np.zeros(int(20 * self.fs_hz))
                impulse[0] = 1.0
                gain = math.sqrt(float(np.sum(signal.sosfilt(sos, impulse) ** 2)))
                self._noise_sos.append(sos)
                self._noise_zi.append(np.zeros((sos.shape[0], 2, self.n_leads)))
                self._noise_gain.append(gain)

    @property
    def position(self) -> int:
        """Index of the next sample ``generate`` will return."""
        return self._next_sample

    # ------------------------------------------------------------- generation
    def _blocks(self, stream: int, n0: int, n1: int, width: int) -> NDArray[np.float64]:
        """Standard normals for samples ``[n0, n1)``, drawn per absolute block."""
        out = np.empty((n1 - n0, width))
        for j in range(n0 // _NOISE_BLOCK, (n1 - 1) // _NOISE_BLOCK + 1):
            cached = self._block_cache.get(stream)
            if cached is not None and cached[0] == j:
                block = cached[1]
            else:
                rng = np.random.default_rng([self.seed, stream, j])
                block = rng.standard_normal((_NOISE_BLOCK, width))
                self._block_cache[stream] = (j, block)
            lo, hi = max(n0, j * _NOISE_BLOCK), min(n1, (j + 1) * _NOISE_BLOCK)
            out[lo - n0 : hi - n0] = block[lo - j * _NOISE_BLOCK : hi - j * _NOISE_BLOCK]
        return out

    def _mask(self, kind: str, n0: int, n1: int) -> list[tuple[slice, float]]:
        """Chunk-relative slices covered by events of ``kind``, with their values."""
        out = []
        for e in self.events:
            if e.kind != kind:
                continue
            lo = max(round(e.start_s * self.fs_hz), n0)
            hi = min(round(e.end_s * self.fs_hz), n1)
            if hi > lo:
                out.append((slice(lo - n0, hi - n0), e.resolved_value))
        return out

    def generate(self, n_samples: int) -> NDArray[np.float64]:
        """The next ``n_samples`` samples, continuing where the last call stopped.

        Parameters
        ----------
        n_samples
            Number of samples (``>= 0``).

        Returns
        -------
        ndarray, shape (n_samples, n_leads), float64
            ECG in millivolts.
        """
        if n_samples < 0:
            raise ValueError("n_samples must be >= 0")
        n0, n1 = self._next_sample, self._next_sample + n_samples
        if n_samples == 0:
            return np.zeros((0, self.n_leads))
        fs = self.fs_hz
        sched = self._schedule
        sched.extend_to(n1 / fs + _MAX_BEAT_REACH_S)
        k0 = bisect.bisect_left(sched.times_s, n0 / fs - _MAX_BEAT_REACH_S)
        k1 = bisect.bisect_right(sched.times_s, n1 / fs + _MAX_BEAT_REACH_S)

        g = np.zeros((n_samples, self.n_leads))
        for lead in range(self.n_leads):
            col = np.zeros(n_samples)
            for k in range(k0, k1):
                morph = (_ecgsyn.VT_LEADS if sched.is_vt[k] else _ecgsyn.NORMAL_LEADS)[lead]
                _ecgsyn.add_beat(col, n0, fs, sched.times_s[k], sched.shape_rr_s[k], morph)
            g[:, lead] = col

        t_s = np.arange(n0, n1) / fs
        z0 = (_RESP_WANDER_MV / self._scale_mv) * np.sin(
            2.0 * math.pi * _RESP_HZ * t_s[:, None] + self._resp_phase[None, :]
        )
        y, self._y_zi = signal.lfilter(
            [1.0 - self._decay], [1.0, -self._decay], z0 - g, axis=0, zi=self._y_zi
        )
        x = self._scale_mv * (g + y)
        if self.noise_mv > 0:
            x += self.noise_mv * self._blocks(_ecgsyn.STREAM_WHITE_NOISE, n0, n1, self.n_leads)
        if self._noise_sos:
            raw = self._blocks(_ecgsyn.STREAM_EVENT_NOISE, n0, n1, 2 * self.n_leads)
            burst = np.zeros_like(x)
            for i, (sos, gain) in enumerate(zip(self._noise_sos, self._noise_gain, strict=True)):
                part = raw[:, i * self.n_leads : (i + 1) * self.n_leads]
                filtered, self._noise_zi[i] = signal.sosfilt(
                    sos, part, axis=0, zi=self._noise_zi[i]
                )
                burst += filtered / (gain * math.sqrt(2.0))
            for sl, rms_mv in self._mask("noise", n0, n1):
                x[sl] += rms_mv * burst[sl]
        for sl, level_mv in self._mask("lead_off", n0, n1):
            x[sl] = level_mv
        self._next_sample = n1
        return np.asarray(x, dtype=np.float64)

    # ----------------------------------------------------------- ground truth
    def annotations_between(
        self, start: int, stop: int, *, include_hidden: bool = False
    ) -> list[tuple[int, str]]:
        """Ground-truth beats with sample index in ``[start, stop)`` and AAMI label.

        Parameters
        ----------
        start, stop
            Absolute sample indices.
        include_hidden
            Also return beats that fall inside a ``lead_off`` event (the heart beats,
            but the signal does not show it).

        Returns
        -------
        list of (int, str)
            ``(sample_index, label)`` with label ``"N"`` or ``"V"`` (ventricular, in VT).
        """
        fs = self.fs_hz
        sched = self._schedule
        sched.extend_to(stop / fs + 1.0)
        hidden = [
            (round(e.start_s * fs), round(e.end_s * fs))
            for e in self.events
            if e.kind == "lead_off"
        ]
        out = []
        for k in range(bisect.bisect_left(sched.times_s, (start - 1) / fs), len(sched.times_s)):
            idx = round(sched.times_s[k] * fs)
            if idx >= stop:
                break
            if idx < start or (not include_hidden and any(a <= idx < b for a, b in hidden)):
                continue
            out.append((idx, "V" if sched.is_vt[k] else "N"))
        return out

    def beats_between(self, start: int, stop: int, *, include_hidden: bool = False) -> list[int]:
        """Ground-truth R-peak sample indices in ``[start, stop)``.

        See :meth:`annotations_between` for the parameters.
        """
        return [i for i, _ in self.annotations_between(start, stop, include_hidden=include_hidden)]

    def heart_rate_at(self, t_s: float) -> float:
        """Instantaneous programmed heart rate (bpm) at time ``t_s`` (events included)."""
        return self._schedule.heart_rate_at(t_s)
