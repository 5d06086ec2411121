"""Spine load benchmark: N replayed patients against one worker on the embedded stack.

A thin wrapper of ``cardiowatch loadtest`` (one worker, record patients only) that prints the
figures without the per-second timeline. Latency: from the simulator handing a chunk to the
producer to its vitals message reaching a consumer of the vitals topic.

    python benchmarks/bench_spine.py --patients 200 --speed 1 --duration 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardiowatch.loadtest import LoadtestConfig, run_loadtest  # noqa: E402
from cardiowatch.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds of signal per patient"
    )
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds not counted in latency/lag"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    config = LoadtestConfig(
        patients=args.patients, duration_s=args.duration, speed=args.speed, workers=1,
        warmup_s=args.warmup, alarm_patients=0,
    )  # fmt: skip
    result = run_loadtest(Settings.from_env(), config)
    text = json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
