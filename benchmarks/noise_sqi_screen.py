"""Screen signal-quality measures on the samples: do they tell noise from clean ECG and from VT?

Reads two caches of ``alarm_design.py cache`` made with the same records and model, one
without noise and one with ``--noise-snr`` (NST pattern: 2 minutes on, 2 off, from minute 5).
Both hold each record's filtered primary lead (0.5-40 Hz band-pass, 60 Hz notch), which is
what a measure inside the ECG pipeline would see. Every 5 s window (1 s step) gets five
classic measures:

* ``kurtosis``: of the samples (a clean ECG is peaky; noise makes it Gaussian); low = noisy.
* ``low_band_share``: power 0.5-5 Hz / total power; high = noisy (electrode motion is
  low-frequency).
* ``qrs_band_share``: power 5-15 Hz / power 5-40 Hz (the classic pSQI); low = noisy.
* ``periodicity``: the largest normalised autocorrelation at lags 0.2-2 s (a rhythm repeats,
  noise does not); low = noisy.
* ``detector_agreement``: bSQI (Li, Clifford & Tarassenko 2008), the beats two different
  detectors agree on (paired one-to-one within 150 ms) over the beats either found: the
  stream's own detections (from the cache) against a second detector on the raw primary
  lead (the record, with the cache's noise added again when it has any); low = noisy.
  ``--second lt`` (the default) is the project's streaming curve-length-transform detector
  (:class:`models.ecg.LengthTransformDetector`, fed 1 s chunks as the stream would);
  ``--second gqrs`` is ``wfdb.processing.gqrs_detect``, which takes a whole record at once
  (the first screen's choice).

Then two measures together: a window is flagged when its detector agreement is below ``b``
and its periodicity below ``p``, for a small grid of ``(b, p)``.

For each measure, thresholds that flag 0.5, 1, 2 and 5 % of the clean windows (fewer where
values tie; the table prints the share flagged), and at each threshold the share flagged of
the windows entirely inside the noise, and of the clean windows
that overlap a reference VT/VFL episode or lie inside an AFIB/AFL episode. A usable noise
measure flags much noise and no VT: a VT window flagged as noise would hold back its alarm.

``--flag B,P --flag-out DIR`` also writes copies of both caches (``DIR/clean``,
``DIR/noisy``) in which every beat whose trailing window (the latest 5 s window that ends at
or before it) is flagged by the combined measure gets QRS quality 0, so that ``alarm_design.py
replay`` shows what the flag would do through the existing noise alarm (mean quality below
0.3 over 8 beats).

Usage::

    python benchmarks/noise_sqi_screen.py --clean /tmp/oof --noisy /tmp/oof_em6
    python benchmarks/noise_sqi_screen.py --clean /tmp/oof --noisy /tmp/oof_em6 \
        --flag 0.8,0.4 --flag-out /tmp/flagged
    python benchmarks/alarm_design.py replay --records DS1 --cache /tmp/flagged/noisy
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import signal, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.beats_data import DS1
from cardiowatch.evaluate_alarms import rhythm_episodes
from cardiowatch.evaluate_qrs import detect_length_transform
from models.ecg import match_beats
from simulators.noise import nst_mask

F64 = npt.NDArray[np.float64]
#: Measure name -> +1 when a high value means noise, -1 when a low value does.
MEASURES = {
    "kurtosis": -1,
    "low_band_share": 1,
    "qrs_band_share": -1,
    "periodicity": -1,
    "detector_agreement": -1,
}
FLAG_PCT = (0.5, 1.0, 2.0, 5.0)
#: (detector agreement below, periodicity below) pairs of the combined flag.
COMBINED = ((0.6, 0.3), (0.7, 0.3), (0.7, 0.4), (0.8, 0.3), (0.8, 0.4))
MATCH_S = 0.15
SECOND_DETECTORS = ("lt", "gqrs")


def window_measures(
    x: F64,
    fs_hz: float,
    window_s: float,
    step_s: float,
    beats: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None,
) -> F64:
    """The :data:`MEASURES` of each window of ``x``, shape ``(n_windows, 5)``.

    ``beats`` are the sorted beat samples of two detectors (for ``detector_agreement``;
    without them that column is NaN).
    """

    def band(lo_hz: float, hi_hz: float) -> F64:
        sos = signal.butter(2, (lo_hz, hi_hz), "bandpass", fs=fs_hz, output="sos")
        return np.asarray(signal.sosfilt(sos, x), np.float64)

    low, qrs, wide = band(0.5, 5.0), band(5.0, 15.0), band(5.0, 40.0)
    win, step = round(window_s * fs_hz), round(step_s * fs_hz)
    lag0, lag1 = round(0.2 * fs_hz), round(2.0 * fs_hz)
    tol = round(MATCH_S * fs_hz)
    out = []
    for a in range(0, len(x) - win + 1, step):
        seg = x[a : a + win]
        power = float(np.sum(seg**2))
        agreement = math.nan
        if beats is not None:
            ours, other = (b[(b >= a) & (b < a + win)] for b in beats)
            agreement = bsqi(ours, other, tol)
        out.append(
            (
                float(stats.kurtosis(seg, fisher=False)),
                float(np.sum(low[a : a + win] ** 2)) / max(power, 1e-12),
                float(np.sum(qrs[a : a + win] ** 2))
                / max(float(np.sum(wide[a : a + win] ** 2)), 1e-12),
                _periodicity(seg, lag0, min(lag1, win - 1)),
                agreement,
            )
        )
    return np.asarray(out, np.float64).reshape(-1, len(MEASURES))


def bsqi(ours: npt.NDArray[np.int64], other: npt.NDArray[np.int64], tol: int) -> float:
    """Beats paired one-to-one within ``tol`` samples / beats either detector found.

    The pairing is EC57's (:func:`models.ecg.match_beats`, nearest first), so two of our
    beats near one of the other detector's count once, as bSQI is defined.

    >>> bsqi(np.array([100, 400, 700]), np.array([105, 398, 900]), 10)
    0.5
    >>> bsqi(np.array([100, 104]), np.array([102]), 10)  # one pair, three beats
    0.5
    """
    if len(ours) + len(other) == 0:
        return 1.0
    # fs_hz = 1, so the window is in samples
    score = match_beats(other, ours, 1.0, window_s=float(tol), exclude_first_s=0.0)
    return score.tp / (score.tp + score.fn + score.fp)


def combined_flag(
    m: F64, agreement_below: float, periodicity_below: float
) -> npt.NDArray[np.bool_]:
    """Windows of ``m`` (rows of :data:`MEASURES`) with low agreement and low periodicity."""
    agree = list(MEASURES).index("detector_agreement")
    period = list(MEASURES).index("periodicity")
    return (m[:, agree] < agreement_below) & (m[:, period] < periodicity_below)


def _periodicity(seg: F64, lag0: int, lag1: int) -> float:
    """Largest autocorrelation (normalised, overlap-corrected) at lags ``lag0..lag1``."""
    seg = seg - seg.mean()
    n = len(seg)
    spec = np.fft.rfft(seg, 2 * n)
    r = np.fft.irfft(spec * np.conj(spec))[:n]
    if r[0] <= 0:
        return 0.0
    r = r / r[0] * n / (n - np.arange(n))
    return float(r[lag0:lag1].max())


def main(argv: list[str] | None = None) -> int:
    """Print, per measure, what it flags at fixed shares of flagged clean windows."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clean", type=Path, required=True, help="cache without noise")
    p.add_argument("--noisy", type=Path, required=True, help="cache with --noise-snr")
    p.add_argument("--records", default=",".join(DS1))
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--window-s", type=float, default=5.0)
    p.add_argument("--second", choices=SECOND_DETECTORS, default="lt", help="second detector")
    p.add_argument("--flag", default=None, help="B,P: agreement below B and periodicity below P")
    p.add_argument("--flag-out", type=Path, default=None, help="write flagged cache copies here")
    args = p.parse_args(argv)
    flag = tuple(float(v) for v in args.flag.split(",")) if args.flag else None
    if (flag is None) != (args.flag_out is None) or (flag is not None and len(flag) != 2):
        p.error("--flag B,P and --flag-out DIR go together")
    from cardiowatch.settings import Settings

    data_dir = args.data or Path(Settings.from_env().data_dir) / "mitdb"
    clean, noise, vt, af = [], [], [], []
    for name in args.records.split(","):
        episodes, n, fs_hz = rhythm_episodes(data_dir / name)
        win, step = round(args.window_s * fs_hz), round(fs_hz)
        starts = np.arange(0, n - win + 1, step)
        in_vt, in_af = np.zeros(n, bool), np.zeros(n, bool)
        for e in episodes:
            if e.rhythm in ("VT", "VFL"):
                in_vt[e.onset : e.end] = True
            if e.rhythm in ("AFIB", "AFL"):
                in_af[e.onset : e.end] = True
        mask = nst_mask(n, fs_hz)
        m_clean, m_noisy = (
            _record_measures(
                data_dir / name, cache / f"{name}.npz", fs_hz, args.window_s, args.second
            )
            for cache in (args.clean, args.noisy)
        )
        if flag is not None and args.flag_out is not None:
            for sub, cache, m in (("clean", args.clean, m_clean), ("noisy", args.noisy, m_noisy)):
                write_flagged(cache / f"{name}.npz", args.flag_out / sub, m, flag, win, step)
        inside = np.asarray([mask[a : a + win].all() for a in starts])
        clean.append(m_clean)
        noise.append(m_noisy[inside])
        vt.append(m_clean[[in_vt[a : a + win].any() for a in starts]])
        af.append(m_clean[[in_af[a : a + win].all() for a in starts]])
    c, nz, v, f = (np.concatenate(part) for part in (clean, noise, vt, af))
    _print_table(c, nz, v, f)
    return 0


def _record_measures(
    record: Path, cache: Path, fs_hz: float, window_s: float, second: str = "lt"
) -> F64:
    """The window measures of one cached record (its noise, if any, added again)."""
    from benchmarks.alarm_design import noisy_record
    from simulators.sources import WfdbRecord

    with np.load(cache) as z:
        filtered = z["filtered"].astype(np.float64)
        ours = np.sort(z["sample"].astype(np.int64))
        snr_db = float(z["noise_snr_db"]) if "noise_snr_db" in z.files else math.nan
        kind = str(z["noise_kind"]) if "noise_kind" in z.files else "em"
    rec = WfdbRecord.load(record) if math.isnan(snr_db) else noisy_record(record, snr_db, kind=kind)
    other = second_detector_beats(rec.physical()[:, 0], fs_hz, second)
    return window_measures(filtered, fs_hz, window_s, 1.0, (ours, other))


def second_detector_beats(lead_mv: F64, fs_hz: float, second: str) -> npt.NDArray[np.int64]:
    """Sorted beat samples of the ``second`` detector on one raw lead (mV)."""
    if second == "gqrs":
        from wfdb import processing

        found = processing.gqrs_detect(sig=lead_mv, fs=fs_hz)
        return np.sort(np.asarray(found, np.int64))
    return detect_length_transform(lead_mv[:, np.newaxis], fs_hz)


def write_flagged(
    cache: Path, out_dir: Path, m: F64, flag: tuple[float, ...], win: int, step: int
) -> int:
    """Copy one cached record with QRS quality 0 for beats in flagged windows; count them.

    A beat at sample ``s`` is judged by window ``(s - win) // step``, the latest window that
    ends at or before it (none before the first window ends).
    """
    noisy = combined_flag(m, flag[0], flag[1])
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    k = (arrays["sample"] - win) // step
    flagged = np.zeros(len(k), bool)
    seen = (k >= 0) & (k < len(noisy))
    flagged[seen] = noisy[k[seen]]
    arrays["quality"] = np.where(flagged, 0.0, arrays["quality"])
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / cache.name, **arrays)
    return int(flagged.sum())


def _print_table(c: F64, nz: F64, v: F64, f: F64) -> None:
    """Flag rates per measure at fixed clean rates, then of the combined flag."""
    print(f"5 s windows: clean {len(c)}, inside the noise {len(nz)}, clean with VT/VFL {len(v)}, "
          f"clean inside AFIB/AFL {len(f)}")  # fmt: skip
    print("| measure | clean flagged % | noise flagged % | VT/VFL flagged % | AF flagged % |")
    print("|---|---|---|---|---|")
    for j, (name, sign) in enumerate(MEASURES.items()):
        score = [sign * part[:, j] for part in (c, nz, v, f)]
        for pct in FLAG_PCT:
            thr = np.percentile(score[0], 100.0 - pct)
            flagged = [100.0 * float(np.mean(s > thr)) if len(s) else float("nan") for s in score]
            print(f"| {name} | {flagged[0]:.2f} | {flagged[1]:.1f} | {flagged[2]:.1f} | "
                  f"{flagged[3]:.1f} |")  # fmt: skip
    for b, p in COMBINED:
        rates = [100.0 * float(np.mean(combined_flag(m, b, p))) for m in (c, nz, v, f)]
        print(f"| agreement < {b:g} and periodicity < {p:g} | {rates[0]:.2f} | {rates[1]:.1f} | "
              f"{rates[2]:.1f} | {rates[3]:.1f} |")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
