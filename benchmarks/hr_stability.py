"""How steady the displayed heart rate is on real rhythms, and how often its average restarts.

Feeds the reference beat times (every beat annotation) of the 44 non-paced MIT-BIH records
through :class:`~models.rhythm.HeartRateMonitor` with the given settings and prints the
median per-beat change of the shown rate (mean over records, AF records 201, 202, 203, 210,
219, 221, 222 apart), the number of per-beat changes over 10 bpm, and how many times a
sustained slowing restarted the average. It is the other side of the IEC step response
(``benchmarks/bench_iec.py``): a faster display must not be a jumpier one.

Usage::

    python benchmarks/hr_stability.py                            # the defaults
    python benchmarks/hr_stability.py '{"step_intervals": 0}'    # without the restart
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.beats_data import DS1, DS2
from cardiowatch.settings import Settings
from models.ecg._types import Beat
from models.rhythm import HeartRateMonitor

#: The 44 non-paced records (DS1 and DS2).
RECORDS = tuple(sorted(DS1 + DS2))
AF_RECORDS = {"201", "202", "203", "210", "219", "221", "222"}
BEAT_SYMBOLS = "NLRBAaJSVrFejnE/fQ?"


def main(argv: list[str] | None = None) -> int:
    """Print the figures for the settings given as JSON (default: none, the defaults)."""
    import wfdb

    args = sys.argv[1:] if argv is None else argv
    kw = json.loads(args[0]) if args else {}
    data = Path(Settings.from_env().data_dir) / "mitdb"
    steady: list[float] = []
    af: list[float] = []
    big = restarts = 0
    for name in RECORDS:
        ann = wfdb.rdann(str(data / name), "atr")
        hr = HeartRateMonitor(360.0, **kw)
        shown = []
        for s, sym in zip(ann.sample, ann.symbol, strict=True):
            if sym not in BEAT_SYMBOLS:
                continue
            was = hr._restarted, len(hr._rr_samples)
            shown += [u.heart_rate_bpm for u in hr.process([Beat(int(s))])]
            restarts += int(hr._restarted and len(hr._rr_samples) < was[1])
        d = np.abs(np.diff(np.asarray(shown)))
        (af if name in AF_RECORDS else steady).append(float(np.median(d)))
        big += int((d > 10).sum())
    print(
        f"settings {kw or 'default'}: median |change| per beat {np.mean(steady):.2f} bpm "
        f"(non-AF records), {np.mean(af):.2f} bpm (AF records); changes > 10 bpm: {big}; "
        f"restarts: {restarts}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
