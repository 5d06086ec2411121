"""Straightforward reference versions of the optimised heart-sound code paths.

Each is the implementation as it stood before the per-chunk path was made cheaper (the S1/S2
segmenter's sample-by-sample peak loop, the cycle features' per-peak means, the classifier's
module forward is :meth:`models.pcg.PcgNet.forward` itself). The unit tests compare the
optimised code with these on real and synthetic heart sounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.pcg import HeartSound, PcgMonitor, S1S2Segmenter, WindowSpec
from models.pcg._cycle import _GUARD, _SOUND_HALF, CYCLE_FEATURES, N_GROUPS, _acf_peak, _peaks
from models.pcg._segment import _TINY
from simulators.audio import load_audio

#: Real recordings the equivalence tests run on (relative to the data directory).
REAL_PCG = ("physionet2016/training-c/c0001.wav", "pascal/set_a/normal__201102081321.wav")


def real_pcg(data_dir: Path, rel: str, seconds: float = 20.0) -> tuple[NDArray[np.float64], float]:
    """The first ``seconds`` of a recording (full scale 1.0) and its rate."""
    x, fs_hz = load_audio(data_dir / rel)
    return x[: round(seconds * fs_hz)].astype(np.float64) / 32768.0, fs_hz


def band_passed(x: NDArray[np.float64], fs_hz: float, spec: WindowSpec) -> NDArray[np.float64]:
    """``x`` resampled and band-passed by the monitor's own stages."""
    return PcgMonitor(fs_hz, spec).filtered(x)


class ReferenceSegmenter(S1S2Segmenter):
    """:class:`S1S2Segmenter` with its original sample-by-sample ``process``."""

    def process(self, env: NDArray[np.floating]) -> list[HeartSound]:
        """Consume envelope samples; return the S1/S2 events that became final."""
        arr = np.asarray(env, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            return []
        self._buf = np.concatenate((self._buf, arr))
        end = self._buf_start + self._buf.size
        out: list[HeartSound] = []
        buf, start, half = self._buf, self._buf_start, self._half
        for t in range(self._next_t, end - half):
            i = t - start
            v = buf[i]
            lo_i = max(0, i - half)
            is_peak = not (v < buf[lo_i : i + half + 1].max() or (i > 0 and buf[i - 1] == v))
            if is_peak:
                ctx = buf[max(0, i - self._context) : i + 1]
                floor, top = np.percentile(ctx, (20.0, 95.0))
                if v > floor + self.threshold * (top - floor):
                    height = float((v - floor) / max(top - floor, _TINY))
                    self._add_peak(t, height)
            while self._n_pending and self._peaks[-self._n_pending] + self._lag <= t:
                out += self._decide()
        self._next_t = max(self._next_t, end - half)
        keep_from = max(0, self._next_t - self._keep - start)
        self._buf = self._buf[keep_from:]
        self._buf_start = start + keep_from
        return out


def reference_cycle_features(
    logm: NDArray[np.float32], frame_rate_hz: float
) -> NDArray[np.float32]:
    """:func:`models.pcg._cycle.cycle_features` as first written (per-peak loops)."""
    lm = np.asarray(logm, dtype=np.float64)
    n_frames = lm.shape[1]
    e = np.log(np.exp(lm - lm.max()).sum(axis=0)) + lm.max()
    out = np.zeros(len(CYCLE_FEATURES), dtype=np.float64)
    z = e - e.mean()
    r = np.correlate(z, z, mode="full")[n_frames - 1 :]
    r = r / r[0] if r[0] > 0 else np.zeros_like(r)
    k_t, acf_t = _acf_peak(r, round(0.4 * frame_rate_hz), round(2.0 * frame_rate_hz))
    k_s, acf_s = _acf_peak(r, round(0.2 * frame_rate_hz), k_t // 2)
    period = k_t / frame_rate_hz
    out[0:4] = period, acf_t, (k_s / k_t if k_t else 0.0), acf_s
    p10, p20, p90 = np.percentile(e, [10.0, 20.0, 90.0]).tolist()
    peaks = _peaks(e, p20, p90)
    out[9] = len(peaks) * frame_rate_hz / n_frames
    d = np.diff(np.asarray(peaks, dtype=np.float64)) / frame_rate_hz
    groups = np.array_split(np.arange(lm.shape[0]), N_GROUPS)
    band = np.stack([lm[g].mean(axis=0) for g in groups])
    sys_rel, dia_rel, sys_d, dia_d = [], [], [], []
    if len(d) >= 2:
        mean_d = float(d.mean())
        sound = [band[:, max(0, p - _SOUND_HALF) : p + _SOUND_HALF + 1].mean(axis=1)
                 for p in peaks]  # fmt: skip
        for j, (a, b, dur) in enumerate(zip(peaks[:-1], peaks[1:], d, strict=True)):
            inside = band[:, a + _GUARD : b - _GUARD + 1]
            if inside.shape[1] == 0:
                continue
            rel = inside.mean(axis=1) - 0.5 * (sound[j] + sound[j + 1])
            if dur < mean_d:
                sys_rel.append(rel)
                sys_d.append(float(dur))
            else:
                dia_rel.append(rel)
                dia_d.append(float(dur))
    if sys_rel and dia_rel:
        scale = period if period > 0 else float(d.mean())
        out[4] = np.mean(sys_d) / scale
        out[5] = np.mean(dia_d) / scale
        out[6] = float(d.std() / d.mean())
        out[7] = np.std(sys_d) / scale
        out[8] = np.std(dia_d) / scale
        out[10] = 1.0
        s, t = np.stack(sys_rel), np.stack(dia_rel)
        out[11 : 11 + N_GROUPS] = s.mean(axis=0) / 5.0
        out[11 + N_GROUPS : 11 + 2 * N_GROUPS] = t.mean(axis=0) / 5.0
        out[11 + 2 * N_GROUPS] = s.std(axis=0).mean() / 5.0
        out[12 + 2 * N_GROUPS] = t.std(axis=0).mean() / 5.0
    out[-1] = (p90 - p10) / 10.0
    return np.asarray(np.clip(np.nan_to_num(out), -5.0, 5.0), dtype=np.float32)
