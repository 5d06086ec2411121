"""The ECGSYN dynamical model, arranged for streaming synthesis.

McSharry, Clifford, Tarassenko and Smith (2003), "A dynamical model for generating
synthetic electrocardiogram signals", IEEE Trans. Biomed. Eng. 50(3):289-294, define
the ECG as the ``z`` coordinate of a trajectory in three dimensions::

    dx/dt = alpha x - omega y          alpha = 1 - sqrt(x**2 + y**2)
    dy/dt = alpha y + omega x
    dz/dt = -sum_i a_i dtheta_i exp(-dtheta_i**2 / (2 b_i**2)) - (z - z0(t))

with ``theta = atan2(y, x)``, ``dtheta_i = (theta - theta_i) mod 2 pi`` and
``omega = 2 pi / RR``. The P, Q, R, S and T waves are Gaussian events at the angles
``theta_i`` with amplitudes ``a_i`` and widths ``b_i``; ``z0`` is the baseline wander
driven by respiration.

How this module integrates it (exactly, not with a general ODE solver):

* ``(x, y)``: the unit circle is the attracting limit cycle and the trajectory starts
  on it, so ``alpha = 0`` and the phase simply advances at ``omega``. Within beat ``k``
  (R peak at ``t_k``, angular speed ``omega_k``) the phase is
  ``theta = omega_k (t - t_k)``, with R at ``theta = 0``.
* ``z``: the equation is linear in ``z``. Writing
  ``G(t) = sum_i (a_i b_i**2 / omega_k) exp(-dtheta_i**2 / (2 b_i**2))`` gives
  ``dG/dt = -sum_i a_i dtheta_i exp(...)``, the forcing term, so ``z = G + y`` with
  ``dy/dt = -y + (z0 - G)``. ``G`` (the fast waves) is evaluated analytically at each
  sample (the Gaussian-sum form); ``y`` (a one-second relaxation towards the
  respiratory baseline) is integrated with the exponential integrator
  ``y[n] = e^{-h} y[n-1] + (1 - e^{-h}) u[n]`` (``scipy.signal.lfilter`` with carried
  state). Each beat's waves are summed without the ``mod 2 pi`` wrap, so beats may
  overlap at high rates and a pause shows a flat baseline instead of a stretched beat.
* The wave angles and widths are scaled with the local heart rate as in the reference
  C implementation (``b_i *= sqrt(HR/60)``, ``theta_i *= (sqrt(sqrt(HR/60)),
  sqrt(HR/60), 1, sqrt(HR/60), 1)``), using the RR interval preceding each beat. This
  keeps wave amplitudes independent of heart rate (``a b**2 / omega`` is constant),
  which replaces ECGSYN's post-hoc rescaling of the whole record to
  ``[-0.4, 1.2] mV``: a whole-record normalisation is impossible on a stream.
* The RR tachogram has the bimodal power spectrum of the paper (Mayer waves at
  0.1 Hz, respiratory sinus arrhythmia at 0.25 Hz, standard deviations 0.01 Hz,
  LF/HF = 0.5), synthesised by inverse FFT with random phases on 256 s segments that
  are overlap-added with power-complementary sine windows, so the process is
  stationary, unbounded in time and reproducible from the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Seed-sequence stream tags: each random quantity has its own stream.
STREAM_TACHOGRAM = 1
STREAM_PHASES = 2
STREAM_WHITE_NOISE = 3
STREAM_EVENT_NOISE = 4

_LF_HZ, _HF_HZ, _SPREAD_HZ, _LF_HF_RATIO = 0.1, 0.25, 0.01, 0.5
_SEGMENT_S = 256.0
_TACHO_FS_HZ = 4.0
_N_SIGMA = 6.0  # a Gaussian wave is evaluated within +-6 b_i of its centre


@dataclass(frozen=True, slots=True)
class Morphology:
    """P, Q, R, S, T Gaussian-event parameters of one lead, at 60 bpm.

    Parameters
    ----------
    theta_deg
        Wave angles relative to the R peak, degrees.
    a
        Wave amplitudes (ECGSYN units).
    b_rad
        Wave widths, radians.
    """

    theta_deg: tuple[float, float, float, float, float]
    a: tuple[float, float, float, float, float]
    b_rad: tuple[float, float, float, float, float]


#: Normal sinus beats: lead MLII (the paper's parameters), a V1-like and a V5-like lead.
NORMAL_LEADS: tuple[Morphology, ...] = (
    Morphology((-70.0, -15.0, 0.0, 15.0, 100.0), (1.2, -5.0, 30.0, -7.5, 0.75),
               (0.25, 0.1, 0.1, 0.1, 0.4)),
    Morphology((-70.0, -12.0, 0.0, 18.0, 105.0), (0.7, -2.0, 15.0, -20.0, -0.6),
               (0.25, 0.1, 0.1, 0.12, 0.4)),
    Morphology((-70.0, -15.0, 0.0, 15.0, 100.0), (1.0, -4.0, 25.0, -10.0, 1.2),
               (0.25, 0.1, 0.1, 0.1, 0.4)),
)  # fmt: skip

#: Ventricular beats: no P wave, QRS four times wider, T wave opposite to the QRS.
VT_LEADS: tuple[Morphology, ...] = (
    Morphology((-70.0, -50.0, 0.0, 50.0, 140.0), (0.0, -1.1, 2.8, -1.4, -0.6),
               (0.25, 0.4, 0.4, 0.4, 0.4)),
    Morphology((-70.0, -50.0, 0.0, 50.0, 140.0), (0.0, -0.6, 1.7, -2.2, 0.5),
               (0.25, 0.4, 0.4, 0.4, 0.4)),
    Morphology((-70.0, -50.0, 0.0, 50.0, 140.0), (0.0, -1.4, 2.5, -1.1, -0.7),
               (0.25, 0.4, 0.4, 0.4, 0.4)),
)  # fmt: skip

MAX_LEADS = len(NORMAL_LEADS)


def _scaled_waves(m: Morphology, shape_rr_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Angles, amplitudes, widths of ``m`` for a beat whose preceding RR is ``shape_rr_s``."""
    hrfact = math.sqrt(1.0 / shape_rr_s)  # sqrt(HR / 60)
    hrfact2 = math.sqrt(hrfact)
    theta = np.deg2rad(np.asarray(m.theta_deg)) * np.array([hrfact2, hrfact, 1.0, hrfact, 1.0])
    return theta, np.asarray(m.a, dtype=np.float64), np.asarray(m.b_rad) * hrfact


def add_beat(
    out: FloatArray,
    first_sample: int,
    fs_hz: float,
    r_time_s: float,
    shape_rr_s: float,
    morphology: Morphology,
) -> None:
    """Add the analytic ``G`` of one beat to ``out`` (samples ``first_sample ...``), in place.

    Each sample receives the waves in a fixed order, so the result does not depend on
    how the sample range is cut into chunks.
    """
    omega = 2.0 * math.pi / shape_rr_s
    theta, a, b = _scaled_waves(morphology, shape_rr_s)
    n_out = out.shape[0]
    for i in range(5):
        if a[i] == 0.0:
            continue
        lo_s = r_time_s + (theta[i] - _N_SIGMA * b[i]) / omega
        hi_s = r_time_s + (theta[i] + _N_SIGMA * b[i]) / omega
        lo = max(math.ceil(lo_s * fs_hz), first_sample)
        hi = min(math.floor(hi_s * fs_hz) + 1, first_sample + n_out)
        if hi <= lo:
            continue
        t = np.arange(lo, hi) / fs_hz
        dtheta = omega * (t - r_time_s) - theta[i]
        out[lo - first_sample : hi - first_sample] += (a[i] * b[i] ** 2 / omega) * np.exp(
            -(dtheta**2) / (2.0 * b[i] ** 2)
        )


def beat_peak(morphology: Morphology) -> float:
    """Maximum of ``G`` over one isolated beat at 60 bpm (used to calibrate millivolts)."""
    fs_hz = 2000.0
    g = np.zeros(2 * int(fs_hz))
    add_beat(g, -int(fs_hz), fs_hz, 0.0, 1.0, morphology)
    return float(g.max())


class Tachogram:
    """Unit-variance heart-rate modulation with the ECGSYN bimodal spectrum.

    ``value(t_s)`` is a deterministic function of the seed and of ``t_s`` (seconds);
    segments of 256 s are drawn from their own random stream and overlap-added with
    sine windows (``sin**2 + cos**2 = 1`` keeps the variance at one).

    Parameters
    ----------
    seed
        Patient seed.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._segments: dict[int, FloatArray] = {}
        n = int(_SEGMENT_S * _TACHO_FS_HZ)
        f_hz = np.fft.rfftfreq(n, d=1.0 / _TACHO_FS_HZ)
        power = _LF_HF_RATIO * np.exp(-((f_hz - _LF_HZ) ** 2) / (2 * _SPREAD_HZ**2)) + np.exp(
            -((f_hz - _HF_HZ) ** 2) / (2 * _SPREAD_HZ**2)
        )
        power[0] = 0.0
        self._amplitude = np.sqrt(power)

    def _segment(self, j: int) -> FloatArray:
        seg = self._segments.get(j)
        if seg is None:
            rng = np.random.default_rng([self._seed, STREAM_TACHOGRAM, j])
            phase = rng.uniform(0.0, 2.0 * math.pi, self._amplitude.shape[0])
            n = int(_SEGMENT_S * _TACHO_FS_HZ)
            seg = np.fft.irfft(self._amplitude * np.exp(1j * phase), n=n)
            seg = seg / math.sqrt(float(np.mean(seg**2)))
            self._segments[j] = seg
            for old in [k for k in self._segments if k < j - 2]:
                del self._segments[old]
        return seg

    def value(self, t_s: float) -> float:
        """The modulation at time ``t_s`` (seconds, ``>= 0``); mean 0, variance 1."""
        hop_s = _SEGMENT_S / 2.0
        k = math.floor(t_s / hop_s)
        total = 0.0
        for j, tau_s in ((k + 1, t_s - k * hop_s), (k, t_s - (k - 1) * hop_s)):
            seg = self._segment(j)
            pos = tau_s * _TACHO_FS_HZ
            i = math.floor(pos)
            frac = pos - i
            n = seg.shape[0]
            x = (1.0 - frac) * seg[i % n] + frac * seg[(i + 1) % n]
            total += math.sin(math.pi * tau_s / _SEGMENT_S) * float(x)
        return total
