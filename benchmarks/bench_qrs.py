"""Benchmark the streaming QRS detector on the MIT-BIH Arrhythmia Database.

Runs :class:`models.ecg.EcgBeatPipeline` over each record in 1 s chunks (as the stream does),
scores the beats against the reference annotations beat by beat (EC57: 150 ms window, first
5 minutes excluded, ventricular flutter segments excluded) and prints a per-record table,
the gross sensitivity / positive predictivity / F1 on all records and on the non-paced ones,
and the processing time per record.

Usage::

    python benchmarks/bench_qrs.py [--records 100 105 ...] [--data-dir DIR] [--leads 1|2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import wfdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.settings import Settings
from models.ecg import Beat, BeatScore, EcgBeatPipeline, match_beats

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
PACED_RECORDS = frozenset({"102", "104", "107", "217"})
CHUNK_S = 1.0


def default_data_dir() -> Path:
    """The MIT-BIH directory of the service's settings (``CARDIOWATCH_DATA``)."""
    return Path(Settings.from_env().data_dir) / "mitdb"


def reference(path: Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Reference beat samples and the ventricular flutter segments ``[`` ... ``]``."""
    ann = wfdb.rdann(str(path), "atr")
    symbols = np.asarray(ann.symbol)
    samples = np.asarray(ann.sample, dtype=np.int64)
    beats = samples[np.isin(symbols, list(BEAT_SYMBOLS))]
    flutter: list[tuple[int, int]] = []
    onset: int | None = None
    for s, sym in zip(samples, symbols, strict=True):
        if sym == "[":
            onset = int(s)
        elif sym == "]" and onset is not None:
            flutter.append((onset, int(s)))
            onset = None
    if onset is not None:
        flutter.append((onset, int(samples[-1])))
    return beats, flutter


def detect(signal: np.ndarray, fs_hz: float, n_leads: int) -> tuple[list[Beat], float]:
    """Run the pipeline in 1 s chunks; return the beats and the seconds it took."""
    x = np.ascontiguousarray(signal[:, :n_leads], dtype=np.float64)
    chunk = round(CHUNK_S * fs_hz)
    t0 = time.perf_counter()
    pipe = EcgBeatPipeline(fs_hz, n_leads)
    beats: list[Beat] = []
    for a in range(0, x.shape[0], chunk):
        beats.extend(pipe.process(x[a : a + chunk]))
    beats.extend(pipe.flush())
    return beats, time.perf_counter() - t0


def main() -> int:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", nargs="*", help="record names (default: all in RECORDS)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--leads", type=int, default=2, choices=(1, 2))
    parser.add_argument("--no-flutter-exclusion", action="store_true")
    args = parser.parse_args()
    data_dir: Path = args.data_dir
    records = args.records or (data_dir / "RECORDS").read_text().split()

    header = ("record", "beats", "TP", "FN", "FP", "Se%", "+P%", "s")
    print("{:>6} {:>6} {:>6} {:>5} {:>5} {:>7} {:>7}  {:>5}".format(*header))
    total = BeatScore(0, 0, 0)
    non_paced = BeatScore(0, 0, 0)
    seconds: list[float] = []
    for name in records:
        rec = wfdb.rdrecord(str(data_dir / name), physical=True)
        fs_hz = float(rec.fs)
        ref, flutter = reference(data_dir / name)
        beats, elapsed = detect(rec.p_signal, fs_hz, args.leads)
        score = match_beats(
            ref,
            [b.sample_index for b in beats],
            fs_hz,
            exclude_intervals=() if args.no_flutter_exclusion else flutter,
        )
        seconds.append(elapsed)
        total = total + score
        if name not in PACED_RECORDS:
            non_paced = non_paced + score
        print(
            f"{name:>6} {score.tp + score.fn:>6} {score.tp:>6} {score.fn:>5} {score.fp:>5} "
            f"{score.se:>7.2f} {score.ppv:>7.2f}  {elapsed:>5.2f}"
        )
    print()
    for label, s in (("all", total), ("non-paced", non_paced)):
        print(
            f"gross {label:>9}: TP {s.tp} FN {s.fn} FP {s.fp}  "
            f"Se {s.se:.3f}%  +P {s.ppv:.3f}%  F1 {s.f1:.3f}%"
        )
    print(
        f"seconds per record: mean {np.mean(seconds):.3f}  max {np.max(seconds):.3f}  "
        f"(leads: {args.leads}, chunk {CHUNK_S} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
