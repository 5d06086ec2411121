"""S1/S2 timing on ``set_a_timing.csv``, on all files and on the two halves used for tuning.

The segmenter's constants that were compared on these files were compared on the *tuning*
half only (the files at even positions of the sorted file list); the *check* half (odd
positions) was not looked at while choosing. Both halves and the whole are printed.

Usage::

    python benchmarks/pcg_segmentation.py [--json out/pcg_segmentation.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cardiowatch.evaluate_pcg import score_segmentation, timing_files
from cardiowatch.settings import Settings
from cardiowatch.train_pcg import CANDIDATES, SHIPPED_VARIANT


def main() -> None:
    """Print (and optionally write) the S1/S2 figures of the whole set and of both halves."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data_dir = Path(Settings().data_dir)
    spec = CANDIDATES[SHIPPED_VARIANT][0]
    names = timing_files(data_dir)
    parts = {"all": names, "tuning (even)": names[0::2], "check (odd)": names[1::2]}
    result: dict[str, Any] = {}
    for part, files in parts.items():
        r = score_segmentation(data_dir, spec, files=files)
        result[part] = r
        s1 = f"S1 F1 {r['s1_f1']} (Se {r['s1_se']}, +P {r['s1_ppv']})"
        s2 = f"S2 F1 {r['s2_f1']} (Se {r['s2_se']}, +P {r['s2_ppv']})"
        print(f"{part:14s} files {r['files']:2d}  {s1}  {s2}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
