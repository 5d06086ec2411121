"""``cardiowatch evaluate qrs``: beat detection scored as ANSI/AAMI EC57 does it.

Each MIT-BIH record is run through :class:`~models.ecg.EcgBeatPipeline` in 1 s chunks, exactly as
the stream worker runs it, and scored beat by beat against the reference annotations: 150 ms
match window, the first 5 minutes excluded, ventricular flutter episodes (``[`` ... ``]``)
excluded. Gross figures are reported on all 48 records and on the 44 non-paced ones. Peers
(wfdb's XQRS, NeuroKit2's default detector) run on the same records with the same scorer, on
the whole record at once (they are offline detectors).

With ``--noise`` the same scoring is repeated with noise added as the MIT-BIH Noise Stress Test
was made (``simulators/noise.py``), at 24, 18, 12, 6, 0 and -6 dB.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from rich.progress import Progress

from models.ecg import BeatScore, EcgBeatPipeline, LengthTransformDetector, match_beats
from simulators.noise import NoiseKind, add_noise
from simulators.sources import BEAT_SYMBOLS

PACED_RECORDS = frozenset({"102", "104", "107", "217"})
CHUNK_S = 1.0
NOISE_SNRS_DB = (24.0, 18.0, 12.0, 6.0, 0.0, -6.0)
NOISE_SEEDS = 3

FloatArray = npt.NDArray[np.float64]
Detector = Callable[[FloatArray, float], npt.NDArray[np.int64]]


def detect_cardiowatch(x_mv: FloatArray, fs_hz: float) -> npt.NDArray[np.int64]:
    """Our pipeline, fed in 1 s chunks as the worker feeds it (all leads)."""
    pipe = EcgBeatPipeline(fs_hz, x_mv.shape[1])
    step = round(CHUNK_S * fs_hz)
    beats = [b for a in range(0, len(x_mv), step) for b in pipe.process(x_mv[a : a + step])]
    beats += pipe.flush()
    return np.asarray([b.sample_index for b in beats], dtype=np.int64)


def detect_length_transform(x_mv: FloatArray, fs_hz: float) -> npt.NDArray[np.int64]:
    """Our second detector (curve length transform) on lead 1, fed in 1 s chunks."""
    det = LengthTransformDetector(fs_hz)
    step = round(CHUNK_S * fs_hz)
    lead = x_mv[:, 0]
    beats = [b for a in range(0, len(lead), step) for b in det.process(lead[a : a + step])]
    beats += det.flush()
    return np.asarray([b.sample_index for b in beats], dtype=np.int64)


def detect_xqrs(x_mv: FloatArray, fs_hz: float) -> npt.NDArray[np.int64]:
    """wfdb's XQRS on lead 1, whole record (offline)."""
    from wfdb import processing

    return np.asarray(processing.xqrs_detect(x_mv[:, 0], fs=fs_hz, verbose=False), dtype=np.int64)


def detect_neurokit2(x_mv: FloatArray, fs_hz: float) -> npt.NDArray[np.int64]:
    """NeuroKit2's default cleaning and R-peak detector on lead 1 (offline; bench-only extra)."""
    import neurokit2 as nk

    cleaned = nk.ecg_clean(x_mv[:, 0], sampling_rate=int(fs_hz))
    _, info = nk.ecg_peaks(cleaned, sampling_rate=int(fs_hz))
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


DETECTORS: dict[str, Detector] = {
    "cardiowatch": detect_cardiowatch,
    "length_transform": detect_length_transform,
    "xqrs": detect_xqrs,
    "neurokit2": detect_neurokit2,
}


@dataclass(frozen=True)
class Reference:
    """A record's signal and its reference beats."""

    name: str
    fs_hz: float
    x_mv: FloatArray
    beats: npt.NDArray[np.int64]
    flutter: list[tuple[int, int]]


def load_reference(data_dir: Path, name: str) -> Reference:
    """Signal (physical units), reference beats and ventricular flutter episodes of a record."""
    import wfdb

    rec = wfdb.rdrecord(str(data_dir / name), physical=True)
    ann = wfdb.rdann(str(data_dir / name), "atr")
    symbols = list(ann.symbol)
    samples = np.asarray(ann.sample, dtype=np.int64)
    beats = samples[np.fromiter((s in BEAT_SYMBOLS for s in symbols), dtype=bool)]
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
    x = np.ascontiguousarray(rec.p_signal, dtype=np.float64)
    return Reference(name, float(rec.fs), x, beats, flutter)


def _pct(v: float) -> float:
    return round(v, 3) if np.isfinite(v) else float("nan")


def _gross(score: BeatScore) -> dict[str, float | int]:
    return {
        "se": _pct(score.se), "ppv": _pct(score.ppv), "f1": _pct(score.f1),
        "tp": score.tp, "fn": score.fn, "fp": score.fp,
    }  # fmt: skip


def score_records(
    refs: Sequence[Reference],
    detector: Detector,
    *,
    transform: Callable[[Reference], FloatArray] | None = None,
    on_record: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``detector`` on every record and score it (the JSON layout of ``evaluate qrs``)."""
    total, non_paced = BeatScore(0, 0, 0), BeatScore(0, 0, 0)
    records: dict[str, dict[str, float | int]] = {}
    seconds: list[float] = []
    for ref in refs:
        x = ref.x_mv if transform is None else transform(ref)
        # CPU time of this process: the figure is "one core", whatever else the machine runs.
        t0 = time.process_time()
        detected = detector(x, ref.fs_hz)
        seconds.append(time.process_time() - t0)
        score = match_beats(ref.beats, detected, ref.fs_hz, exclude_intervals=ref.flutter)
        total = total + score
        if ref.name not in PACED_RECORDS:
            non_paced = non_paced + score
        records[ref.name] = {
            "tp": score.tp, "fn": score.fn, "fp": score.fp,
            "se": _pct(score.se), "ppv": _pct(score.ppv),
        }  # fmt: skip
        if on_record is not None:
            on_record(ref.name)
    return {
        "gross": _gross(total),
        "gross_nonpaced": _gross(non_paced),
        "records": records,
        "seconds_per_record": round(float(np.mean(seconds)), 4) if seconds else float("nan"),
    }


def noise_sweep(
    refs: Sequence[Reference],
    detector: Detector,
    *,
    snrs_db: Sequence[float] = NOISE_SNRS_DB,
    kind: NoiseKind = "em",
    n_seeds: int = NOISE_SEEDS,
    on_record: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Gross scores with NST-style noise at each SNR (``simulators.noise``, 2 min on/off).

    Each record is scored with ``n_seeds`` noise realisations (seeded by record and index; the
    same realisations at every SNR, only their gain changes) and the gross figures pool them:
    one realisation moves F1 at 0 dB by a few points.
    """
    copies = [replace(r, name=f"{r.name}#{k}") for k in range(n_seeds) for r in refs]
    by_snr: dict[str, dict[str, float | int]] = {}
    for snr_db in snrs_db:

        def noisy(ref: Reference, snr: float = snr_db) -> FloatArray:
            base, k = ref.name.split("#")
            seed = (int(base) if base.isdigit() else 0) * 100 + int(k)
            return add_noise(ref.x_mv, ref.beats, ref.fs_hz, snr_db=snr, kind=kind, seed=seed)

        scored = score_records(copies, detector, transform=noisy, on_record=on_record)
        by_snr[f"{snr_db:g}"] = scored["gross"]
    return {
        "kind": kind, "pattern": "nst", "records": [r.name for r in refs], "seeds": n_seeds,
        "snr_db": by_snr,
    }  # fmt: skip


def run_evaluation(
    data_dir: Path,
    names: Sequence[str],
    *,
    peers: bool | Sequence[str] = False,
    noise_records: Sequence[str] = (),
    noise_kind: str = "em",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Everything ``cardiowatch evaluate qrs`` reports, as its JSON document."""
    if isinstance(peers, bool):
        detectors = list(DETECTORS) if peers else ["cardiowatch"]
    else:
        detectors = ["cardiowatch", *peers]
    refs = {n: load_reference(data_dir, n) for n in dict.fromkeys([*names, *noise_records])}

    def tick(label: str, total: int) -> Callable[[str], None] | None:
        if progress is None:
            return None
        task = progress.add_task(label, total=total)
        return lambda _: progress.advance(task)

    results: dict[str, dict[str, Any]] = {}
    for det in detectors:
        chosen = [refs[n] for n in names]
        results[det] = score_records(chosen, DETECTORS[det], on_record=tick(det, len(chosen)))
        if noise_records:
            noisy = [refs[n] for n in noise_records]
            results[det]["noise"] = noise_sweep(
                noisy, DETECTORS[det], kind=cast(NoiseKind, noise_kind),
                on_record=tick(f"{det} + noise", len(noisy) * len(NOISE_SNRS_DB) * NOISE_SEEDS),
            )  # fmt: skip
    result = results.pop("cardiowatch")
    if results:
        keys = ("gross", "gross_nonpaced", "seconds_per_record", "noise")
        result["peers"] = {k: {key: v[key] for key in keys if key in v} for k, v in results.items()}
    return result


def markdown(result: dict[str, Any]) -> str:
    """Per-record table, gross figures and peers as markdown."""
    lines = ["| record | TP | FN | FP | Se % | +P % |", "|---|---|---|---|---|---|"]
    for name, r in result["records"].items():
        lines.append(
            f"| {name} | {r['tp']} | {r['fn']} | {r['fp']} | {r['se']:.2f} | {r['ppv']:.2f} |"
        )
    lines += ["", "| detector | scope | TP | FN | FP | Se % | +P % | F1 % | CPU s / record |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = [("cardiowatch", result), *result.get("peers", {}).items()]
    for name, r in rows:
        for scope in ("gross", "gross_nonpaced"):
            g = r[scope]
            label = "all" if scope == "gross" else "non-paced"
            lines.append(
                f"| {name} | {label} | {g['tp']} | {g['fn']} | {g['fp']} | {g['se']:.3f} "
                f"| {g['ppv']:.3f} | {g['f1']:.3f} | {r['seconds_per_record']:.3f} |"
            )
    sweeps = _noise_rows(result)
    if sweeps:
        lines += ["", "| noise | records | SNR dB | detector | Se % | +P % | F1 % |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, sweep in sweeps:
        records = ",".join(sweep["records"]) + f" x{sweep['seeds']} seeds"
        for snr, g in sweep["snr_db"].items():
            lines.append(
                f"| {sweep['kind']} ({sweep['pattern']}) | {records} | {snr} | {name} "
                f"| {g['se']:.2f} | {g['ppv']:.2f} | {g['f1']:.2f} |"
            )
    return "\n".join(lines)


def _noise_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    if "noise" in result:
        rows.append(("cardiowatch", result["noise"]))
    for name, peer in result.get("peers", {}).items():
        if "noise" in peer:
            rows.append((name, peer["noise"]))
    return rows
