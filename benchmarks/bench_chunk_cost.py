"""CPU cost of the worker's per-chunk ECG code on MIT-BIH records, one thread.

Each record's first ``--seconds`` are cut into the simulator's 1 s chunks and run through
:func:`streams.processor.process_chunk` (QRS detection, rate engine, beat featurizer, the
beat classifier of ``CARDIOWATCH_BEATS_MODEL``, beat shape, arrhythmia and noise alarms) in a
tight loop. The chunks are built first, so only ``process_chunk`` is timed, in CPU seconds
(``time.process_time``). Each record is run ``--repeats`` times; the best run is reported.
Only APIs older than the beat-shape stage are used, so the same file measures an older
checkout (``PYTHONPATH=<checkout> python benchmarks/bench_chunk_cost.py``).

With ``--cache DIR`` it also times the beat-shape and arrhythmia stages alone on the beats of
``benchmarks/alarm_design.py cache`` (``DIR/<record>.npz``), per second of signal, which is
steadier than the difference of two whole-chunk timings on a shared machine.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_chunk_cost.py --records 100,208
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from cardiowatch.schemas import SampleChunk
from cardiowatch.settings import Settings
from models.beats import BeatClassifier
from simulators.replay import VirtualPatient, make_chunk
from simulators.sources import WfdbRecord, WfdbSource
from streams.processor import PatientState, process_chunk


def chunk_cost_ms(
    record: Path, seconds: int, classifier: BeatClassifier | None, repeats: int
) -> float:
    """Best-of-``repeats`` CPU milliseconds per 1 s chunk of ``process_chunk`` on ``record``."""
    patient = VirtualPatient("bench", WfdbSource(WfdbRecord.load(record)))
    chunks: list[SampleChunk] = []
    while len(chunks) < seconds and (made := make_chunk(patient, 360)) is not None:
        chunks.append(made[0])
    best = float("inf")
    for _ in range(repeats):
        state: PatientState | None = None
        t0 = time.process_time()
        for chunk in chunks:
            state = process_chunk(state, chunk, now_unix_s=0.0, classifier=classifier).state
        best = min(best, (time.process_time() - t0) / len(chunks) * 1e3)
    return best


def stage_cost_ms(cached: Path, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` CPU ms per second of signal: (beat shape, arrhythmia detector).

    Both stages are called once per beat (a 1 s chunk mostly finalises one beat).
    """
    import numpy as np

    from models import rhythm

    z = np.load(cached)
    fs_hz = 360.0
    seconds = len(z["filtered"]) / fs_hz
    labels = [str(lab) or None for lab in z["label"]]
    morph = z["morph"]
    shape_stage = getattr(rhythm, "BeatShape", None)  # absent before the beat-shape stage
    best_shape = best_arr = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        shapes = []
        if shape_stage is not None:  # one call per beat, as a 1 s chunk mostly holds one
            stage = shape_stage()
            for i in range(len(labels)):
                shapes += stage.process(morph[i : i + 1], labels[i : i + 1])
        t1 = time.process_time()
        rows = zip(
            z["sample"].tolist(), labels, z["quality"].tolist(), z["final"].tolist(), strict=True
        )
        beats = [
            rhythm.LabelledBeat(s, lab, q, f, *shapes[i : i + 1])
            for i, (s, lab, q, f) in enumerate(rows)
        ]
        det = rhythm.ArrhythmiaDetector(fs_hz)
        t2 = time.process_time()
        for beat in beats:
            det.process([beat])
        t3 = time.process_time()
        best_shape = min(best_shape, (t1 - t0) / seconds * 1e3)
        best_arr = min(best_arr, (t3 - t2) / seconds * 1e3)
    return best_shape, best_arr


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: one line per record, ms CPU per chunk."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", default="100,208")
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-classifier", action="store_true")
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--stages-only", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = Settings.from_env()
    classifier = None
    if not args.no_classifier:
        classifier = BeatClassifier.from_bytes(Path(settings.beats_model).read_bytes())
    for name in args.records.split(","):
        if args.cache is not None:
            shape_ms, arr_ms = stage_cost_ms(args.cache / f"{name}.npz", args.repeats)
            print(f"{name} per 1 s: beat shape {shape_ms:.3f} ms, arrhythmia {arr_ms:.3f} ms")
        if args.stages_only:
            continue
        ms = chunk_cost_ms(
            Path(settings.data_dir) / "mitdb" / name, args.seconds, classifier, args.repeats
        )
        print(f"{name} {ms:.3f} ms CPU per 1 s chunk", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
