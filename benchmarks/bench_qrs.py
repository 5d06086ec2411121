"""QRS detection benchmark: EC57 scoring on all 48 MIT-BIH records, the peers, the noise test.

Equivalent to ``cardiowatch evaluate qrs --peers --noise --json out/qrs.json`` (the code lives in
``cardiowatch/evaluate_qrs.py``); prints the markdown tables that go into BENCHMARKS.md.

    python benchmarks/bench_qrs.py [--records 100,105] [--no-peers | --peers length_transform]
        [--noise-records 118,119]
        [--noise-kind em|ma|bw|mixed]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.evaluate_qrs import markdown, run_evaluation
from cardiowatch.settings import Settings


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="", help="comma-separated (default: all 48)")
    parser.add_argument("--no-peers", action="store_true", help="skip every peer detector")
    parser.add_argument("--peers", default="", help="only these peers, comma-separated")
    parser.add_argument("--noise-records", default="118,119")
    parser.add_argument("--noise-kind", default="em", choices=["em", "ma", "bw", "mixed"])
    parser.add_argument("--json", type=Path, default=Path("out/qrs.json"))
    args = parser.parse_args()
    data_dir = Path(Settings.from_env().data_dir) / "mitdb"
    names = [r for r in args.records.split(",") if r] or (data_dir / "RECORDS").read_text().split()
    noise = [r for r in args.noise_records.split(",") if r]
    chosen = [p for p in args.peers.split(",") if p]
    peers = chosen if chosen else not args.no_peers
    result = run_evaluation(
        data_dir, names, peers=peers, noise_records=noise, noise_kind=args.noise_kind
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
