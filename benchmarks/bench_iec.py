"""IEC 60601-2-27 disclosures measured on synthetic patients through the worker's own code.

Every patient runs through :func:`streams.processor.process_chunk` in 1 s chunks (as the
simulator sends them), with the beat classifier of ``CARDIOWATCH_BEATS_MODEL``. A value is
"shown" at the end of the chunk whose processing produced it.

* Heart-rate response time (201.7.9.2.9.101 b) 5)): an ECGSYN patient at 80 bpm steps at
  once (``hr_step`` event) to 120 bpm or to 40 bpm at 30 s. Response time = from the step to
  the first shown heart rate within 5 % of the new rate, every later one staying within it.
* Time to alarm for ventricular tachycardia (201.7.9.2.9.101 b) 6)): a patient at 80 bpm with
  a ``vt`` event (206 bpm, the rate of the standard's waveform B1, and 195 bpm) at 30 s for
  20 s, the whole ECG at 0.5, 1 and 2 mV. Time = from the VT onset to the chunk that raised
  the ``ventricular_tachycardia`` alarm; the rate alarm (``tachycardia``) is shown too.

Each figure is the median and the maximum over ``--seeds`` patients (different seeds: other
heart-rate variability, noise and respiration phases).

    python benchmarks/bench_iec.py --seeds 5 [--json out/iec.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardiowatch.settings import Settings  # noqa: E402
from models.beats import BeatClassifier  # noqa: E402
from simulators.replay import VirtualPatient, make_chunk  # noqa: E402
from simulators.synthetic import SyntheticEvent, SyntheticPatient  # noqa: E402
from simulators.synthetic_source import SyntheticSource  # noqa: E402
from streams.processor import PatientState, process_chunk  # noqa: E402

FS_HZ = 360.0
ONSET_S = 30.0


def run_patient(
    patient: SyntheticPatient, seconds: float, classifier: BeatClassifier | None
) -> tuple[list[tuple[float, float | None]], list[tuple[str, str, float]]]:
    """Shown heart rate per chunk end, and (kind, state, shown at) of every alert, seconds."""
    vp = VirtualPatient("iec", SyntheticSource(patient))
    state: PatientState | None = None
    rates: list[tuple[float, float | None]] = []
    alerts: list[tuple[str, str, float]] = []
    for _ in range(int(seconds)):
        made = make_chunk(vp, int(FS_HZ))
        assert made is not None
        chunk, _ = made
        result = process_chunk(state, chunk, now_unix_s=0.0, classifier=classifier)
        state = result.state
        assert result.outputs is not None
        t = chunk.end_sample / FS_HZ
        rates.append((t, result.outputs.vitals.heart_rate_bpm))
        alerts += [(a.alarm_type, a.state, t) for a in result.outputs.alerts]
    return rates, alerts


def response_time_s(rates: list[tuple[float, float | None]], target_bpm: float) -> float | None:
    """From the step to the first shown rate within 5 % of the target that stays there."""
    ok = [r is not None and abs(r - target_bpm) <= 0.05 * target_bpm for _, r in rates]
    for i, (t, _) in enumerate(rates):
        if t > ONSET_S and all(ok[i : i + 10]):
            return round(t - ONSET_S, 2)
    return None


def first_alarm_s(alerts: list[tuple[str, str, float]], kind: str) -> float | None:
    """From the VT onset to the first raise of ``kind`` after it."""
    times = [t for k, s, t in alerts if k == kind and s == "raise" and t > ONSET_S]
    return round(min(times) - ONSET_S, 2) if times else None


def _stats(values: list[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    return {
        "median": round(float(np.median(got)), 2) if got else None,
        "max": round(max(got), 2) if got else None,
        "missed": len(values) - len(got),
    }


def main() -> None:
    """Run the disclosures and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    classifier = BeatClassifier.from_bytes(Path(Settings().beats_model).read_bytes())
    seeds = range(args.seeds)
    result: dict[str, Any] = {"hr_response_s": {}, "vt_time_to_alarm_s": {}}
    for target in (120.0, 40.0):
        times = []
        for seed in seeds:
            event = SyntheticEvent("hr_step", ONSET_S, 40.0, target)
            p = SyntheticPatient(FS_HZ, heart_rate_bpm=80.0, seed=seed, events=(event,))
            rates, _ = run_patient(p, ONSET_S + 40.0, None)
            times.append(response_time_s(rates, target))
        result["hr_response_s"][f"80->{target:.0f}"] = _stats(times)
    for rate in (206.0, 195.0):
        for amp in (0.5, 1.0, 2.0):
            vt, tachy = [], []
            for seed in seeds:
                event = SyntheticEvent("vt", ONSET_S, 20.0, rate)
                p = SyntheticPatient(
                    FS_HZ, heart_rate_bpm=80.0, seed=seed, events=(event,), amplitude_mv=amp
                )
                _, alerts = run_patient(p, ONSET_S + 25.0, classifier)
                vt.append(first_alarm_s(alerts, "ventricular_tachycardia"))
                tachy.append(first_alarm_s(alerts, "tachycardia"))
            key = f"{rate:.0f} bpm, {amp:g} mV"
            result["vt_time_to_alarm_s"][key] = {
                "ventricular_tachycardia": _stats(vt),
                "tachycardia": _stats(tachy),
            }
    result["seeds"] = args.seeds
    result["model_version"] = classifier.version
    print("| test | median s | max s | missed |")
    print("|---|---|---|---|")
    for name, s in result["hr_response_s"].items():
        print(f"| HR response {name} bpm | {s['median']} | {s['max']} | {s['missed']} |")
    for name, kinds in result["vt_time_to_alarm_s"].items():
        for kind, s in kinds.items():
            print(f"| {kind} alarm, VT {name} | {s['median']} | {s['max']} | {s['missed']} |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
