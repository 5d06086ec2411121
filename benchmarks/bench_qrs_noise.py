"""Noise stress test of the streaming QRS detector, the way the MIT-BIH NST was made.

Adds synthesised noise (:func:`simulators.noise.add_noise`, ``pattern="nst"``: 2 minutes on,
2 minutes off from minute 5, each lead its own realisation scaled to that lead's QRS
amplitude) to MIT-BIH records at each SNR, runs :class:`models.ecg.EcgBeatPipeline` over them
in 1 s chunks (as the stream does) and scores the beats as EC57 does (150 ms window, first 5
minutes excluded, ventricular flutter excluded). Prints the gross Se / +P / F1 per SNR.

Usage::

    python benchmarks/bench_qrs_noise.py [--records 118 119 ...] [--kinds em mixed]
        [--snrs 24 18 12 6 0 -6] [--data-dir DIR] [--leads 1|2] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import wfdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_qrs import default_data_dir, detect, reference
from models.ecg import BeatScore, match_beats
from simulators.noise import NoiseKind, add_noise

DEFAULT_RECORDS = ("118", "119", "100", "105", "108", "203", "208", "210", "228")
DEFAULT_SNRS_DB = (24.0, 18.0, 12.0, 6.0, 0.0, -6.0)


def noise_sweep(
    records: Sequence[str],
    snrs: Sequence[float],
    kind: NoiseKind,
    data_dir: Path,
    *,
    n_leads: int = 2,
    seed: int = 0,
) -> dict[float, dict[str, BeatScore]]:
    """Score the pipeline on every record with NST-style noise at every SNR.

    Parameters
    ----------
    records
        MIT-BIH record names.
    snrs
        Signal-to-noise ratios in dB.
    kind
        Noise kind (``"em"``, ``"ma"``, ``"bw"`` or ``"mixed"``).
    data_dir
        Directory holding the MIT-BIH records.
    n_leads
        Leads given to the pipeline (1 or 2).
    seed
        Noise seed (the same realisation for every SNR, only its gain changes).

    Returns
    -------
    dict
        ``{snr_db: {record: BeatScore, ..., "gross": BeatScore}}``.
    """
    out: dict[float, dict[str, BeatScore]] = {float(s): {} for s in snrs}
    for name in records:
        rec = wfdb.rdrecord(str(data_dir / name), physical=True)
        fs_hz = float(rec.fs)
        ref, flutter = reference(data_dir / name)
        x = np.asarray(rec.p_signal[:, :n_leads], dtype=np.float64)
        for snr_db in snrs:
            noisy = add_noise(x, ref, fs_hz, snr_db=snr_db, kind=kind, pattern="nst", seed=seed)
            beats, _ = detect(noisy, fs_hz, n_leads)
            score = match_beats(
                ref, [b.sample_index for b in beats], fs_hz, exclude_intervals=flutter
            )
            out[float(snr_db)][name] = score
    for per_record in out.values():
        gross = BeatScore(0, 0, 0)
        for score in list(per_record.values()):
            gross = gross + score
        per_record["gross"] = gross
    return out


def main() -> int:
    """Run the sweep and print one table per noise kind."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", nargs="*", default=list(DEFAULT_RECORDS))
    parser.add_argument("--kinds", nargs="*", default=["em", "mixed"])
    parser.add_argument("--snrs", nargs="*", type=float, default=list(DEFAULT_SNRS_DB))
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--leads", type=int, default=2, choices=(1, 2))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-record", action="store_true", help="print every record's F1")
    args = parser.parse_args()
    for kind in args.kinds:
        result = noise_sweep(
            args.records, args.snrs, kind, args.data_dir, n_leads=args.leads, seed=args.seed
        )
        print(f"noise {kind}, records {' '.join(args.records)}, leads {args.leads}")
        print(
            "{:>7} {:>6} {:>5} {:>5} {:>7} {:>7} {:>7}".format(
                "SNR dB", "TP", "FN", "FP", "Se%", "+P%", "F1%"
            )
        )
        for snr_db, per_record in result.items():
            g = per_record["gross"]
            line = (
                f"{snr_db:>7.0f} {g.tp:>6} {g.fn:>5} {g.fp:>5} "
                f"{g.se:>7.2f} {g.ppv:>7.2f} {g.f1:>7.2f}"
            )
            if args.per_record:
                line += "  " + " ".join(
                    f"{r}:{s.f1:.1f}" for r, s in per_record.items() if r != "gross"
                )
            print(line)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
