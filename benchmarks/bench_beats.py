"""Benchmark beat-classifier inference: beats per second on one core, batched.

Classifies the DS2 beats (built by ``cardiowatch evaluate beats`` into the cache, or built
here) with the committed artifact in batches, on one torch thread, and prints beats/s per
batch size, plus the per-chunk cost the worker pays (a batch of 2 beats).

Usage::

    python benchmarks/bench_beats.py [--model PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.beats_data import DS2, load_beats
from cardiowatch.settings import Settings
from models.beats import BeatClassifier


def main() -> None:
    """Print inference throughput."""
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path(settings.beats_model))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = BeatClassifier.from_bytes(args.model.read_bytes())
    beats = load_beats(Path(settings.data_dir) / "mitdb", DS2, model.spec, Path(settings.cache_dir))
    n = len(beats.y)
    print(f"model {model.version}, {n} DS2 beats, torch {torch.__version__}, 1 thread")
    for batch in (256, 1024, 4096):
        model.batch_size = batch
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model.logits(beats.morph, beats.rr)
            best = min(best, time.perf_counter() - t0)
        print(f"batch {batch:5d}: {n / best:9.0f} beats/s")
    model.batch_size = 4096
    t0 = time.perf_counter()
    calls = 2000
    for i in range(calls):
        model.logits(beats.morph[2 * i : 2 * i + 2], beats.rr[2 * i : 2 * i + 2])
    per_call = (time.perf_counter() - t0) / calls
    print(f"per chunk (2 beats): {1e6 * per_call:.0f} us")


if __name__ == "__main__":
    main()
