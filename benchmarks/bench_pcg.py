"""Benchmark the heart-sound path: real-time streams per core (stage code + classifier).

Each recording is cut into the 1 s ``SampleChunk``s the simulator sends and run through the
worker's per-chunk code (:func:`streams.pcg_processor.process_pcg_chunk`: resampling,
band-pass, envelope, S1/S2, windows, one classifier call per scored window, alarms) plus the
pickling of the patient's state the worker writes to its table after every chunk. One torch
thread. Real-time streams per core = seconds of audio processed / CPU seconds spent.

Usage::

    python benchmarks/bench_pcg.py [--model PATH] [--seconds 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.settings import Settings
from models.pcg import PcgClassifier
from simulators.audio import AudioSource
from simulators.replay import VirtualPatient, make_chunk
from streams.pcg_processor import PcgState, process_pcg_chunk

#: One recording per sampling rate met in the data (PhysioNet 2 kHz, PASCAL B 4 kHz, A 44.1 kHz).
FILES = {
    "2000 Hz (PhysioNet training-c)": "physionet2016/training-c/c0001.wav",
    "4000 Hz (PASCAL set B)": "pascal/set_b/normal__103_1305031931979_B.wav",
    "44100 Hz (PASCAL set A)": "pascal/set_a/normal__201102081321.wav",
}


def run(path: Path, classifier: PcgClassifier | None, seconds: float) -> tuple[float, float, int]:
    """Audio seconds processed, CPU seconds spent, mean pickled state size in bytes."""
    patient = VirtualPatient("bench", AudioSource(path, loop=True))
    n = round(patient.source.info.fs_hz)
    chunks = []
    for _ in range(int(seconds)):
        made = make_chunk(patient, n)
        assert made is not None
        chunks.append(made[0])
    state: PcgState | None = None
    sizes = 0
    t0 = time.process_time()
    for chunk in chunks:
        _, state = process_pcg_chunk(state, chunk, classifier)
        sizes += len(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    cpu_s = time.process_time() - t0
    return float(len(chunks)), cpu_s, sizes // max(1, len(chunks))


def main() -> None:
    """Print streams per core for each input rate, with and without the classifier."""
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path(settings.pcg_model))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="passes per input; the least CPU time is reported (steadier on a shared box)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    classifier = PcgClassifier.from_bytes(args.model.read_bytes())
    data = Path(settings.data_dir)
    print(
        f"model {classifier.version}, torch {torch.__version__}, 1 thread, 1 s chunks, "
        f"least of {args.repeats} pass(es)"
    )
    print("| input | with classifier: ms CPU per 1 s chunk | streams per core | "
          "stages only: ms per chunk | streams per core | state bytes |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    run(data / FILES["2000 Hz (PhysioNet training-c)"], classifier, 5.0)  # warm-up
    for label, rel in FILES.items():
        with_model = [run(data / rel, classifier, args.seconds) for _ in range(args.repeats)]
        stages = [run(data / rel, None, args.seconds) for _ in range(args.repeats)]
        audio_s, cpu_s, size = min(with_model, key=lambda r: r[1])
        audio0_s, cpu0_s, _ = min(stages, key=lambda r: r[1])
        print(f"| {label} | {1000 * cpu_s / audio_s:.2f} | {audio_s / cpu_s:.0f} | "
              f"{1000 * cpu0_s / audio0_s:.2f} | {audio0_s / cpu0_s:.0f} | {size} |")  # fmt: skip


if __name__ == "__main__":
    main()
