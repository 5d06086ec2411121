"""``cardiowatch evaluate alarms``: rhythm alarms scored by episode against MIT-BIH.

Any WFDB database with MIT-BIH-style rhythm annotations scores the same way (``--database
afdb``: the MIT-BIH Atrial Fibrillation Database). Each record runs through the offline twin
(:func:`streams.offline.analyze_source`: the worker's own ``process_chunk`` in 1 s chunks,
with the beat classifier), and its alarms are compared with the reference rhythm episodes
(``+`` annotations whose ``aux_note`` names the rhythm; an episode lasts until the next rhythm
annotation or the record's end).

* An episode is **detected** when an alarm of a kind that reports its rhythm overlaps it
  (``RHYTHM_ALARMS``); episode Se = detected / episodes.
* An alarm is **true** when it overlaps an episode of a rhythm its kind reports; episode +P =
  true alarms / alarms of those kinds. AFIB and AFL share the atrial fibrillation/flutter
  alarm, VT and VFL the VT alarm, so their +P is that of the shared alarm.
* **Duration-weighted** Se = time covered by both alarm and episode / episode time, +P = the
  same / alarm time.
* **False alarms per patient-hour**: alarms of the scored kinds that overlap no episode of
  their rhythms, over the hours of all records scored.
* **Time to alarm** of a detected episode: from the episode onset to the end of the chunk in
  which the first overlapping alarm was raised (what a live viewer sees with 1 s chunks),
  0 when the alarm was already active.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.beats import BeatClassifier
from simulators.sources import WfdbRecord, WfdbSource
from streams.offline import analyze_source

#: Reference rhythm (MIT-BIH ``aux_note`` without the parenthesis) -> alarm kinds reporting it.
RHYTHM_ALARMS: dict[str, tuple[str, ...]] = {
    "VT": ("ventricular_tachycardia",),
    "VFL": ("ventricular_tachycardia",),
    "AFIB": ("atrial_fibrillation",),
    "AFL": ("atrial_fibrillation",),
    "B": ("bigeminy",),
    "T": ("trigeminy",),
    "SVTA": ("svt",),
}
SCORED_KINDS = sorted({k for kinds in RHYTHM_ALARMS.values() for k in kinds})


@dataclass(frozen=True)
class Episode:
    """A reference rhythm episode, samples ``[onset, end)``."""

    rhythm: str
    onset: int
    end: int


def rhythm_episodes(path: Path) -> tuple[list[Episode], int, float]:
    """Rhythm episodes of a WFDB record, its length in samples and its rate."""
    import wfdb

    ann = wfdb.rdann(str(path), "atr")
    header = wfdb.rdheader(str(path))
    n = int(header.sig_len)
    marks = [
        (int(s), str(a).strip("(\x00 ").rstrip("\x00"))
        for s, sym, a in zip(ann.sample, ann.symbol, ann.aux_note, strict=True)
        if sym == "+" and a
    ]
    episodes = []
    for i, (s, rhythm) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else n
        if end > s:
            episodes.append(Episode(rhythm, s, end))
    return episodes, n, float(header.fs)


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < max(a1, a0 + 1)


def _covered(intervals: Sequence[tuple[int, int]], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for a, b in intervals:
        mask[max(a, 0) : min(max(b, a + 1), n)] = True
    return mask


def score_record(alarms: list[dict[str, Any]], episodes: list[Episode], n: int) -> dict[str, Any]:
    """Per-record counts and sample totals, summed over records by :func:`summarise`."""
    out: dict[str, Any] = {"rhythms": {}, "kinds": {}, "false_alarms": []}
    for rhythm, kinds in RHYTHM_ALARMS.items():
        eps = [e for e in episodes if e.rhythm == rhythm]
        mine = [a for a in alarms if a["type"] in kinds]
        detected, tta = 0, []
        for e in eps:
            hits = [
                a for a in mine if _overlaps(a["onset_sample"], a["end_sample"], e.onset, e.end)
            ]
            if hits:
                detected += 1
                first = min(hits, key=lambda a: a["raised_sample"])
                tta.append(max(0, first["raised_sample"] - e.onset))
        ep_mask = _covered([(e.onset, e.end) for e in eps], n)
        al_mask = _covered([(a["onset_sample"], a["end_sample"]) for a in mine], n)
        out["rhythms"][rhythm] = {
            "n": len(eps), "detected": detected, "tta_samples": tta,
            "episode_samples": int(ep_mask.sum()), "both_samples": int((ep_mask & al_mask).sum()),
        }  # fmt: skip
    for kind in SCORED_KINDS:
        rhythms = [r for r, kinds in RHYTHM_ALARMS.items() if kind in kinds]
        eps = [e for e in episodes if e.rhythm in rhythms]
        mine = [a for a in alarms if a["type"] == kind]
        true = [
            a
            for a in mine
            if any(_overlaps(a["onset_sample"], a["end_sample"], e.onset, e.end) for e in eps)
        ]
        ep_mask = _covered([(e.onset, e.end) for e in eps], n)
        al_mask = _covered([(a["onset_sample"], a["end_sample"]) for a in mine], n)
        out["kinds"][kind] = {
            "alarms": len(mine), "true": len(true), "alarm_samples": int(al_mask.sum()),
            "both_samples": int((ep_mask & al_mask).sum()),
        }  # fmt: skip
        out["false_alarms"] += [
            {"type": kind, "onset_sample": a["onset_sample"], "end_sample": a["end_sample"]}
            for a in mine
            if a not in true
        ]
    return out


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def summarise(per_record: dict[str, dict[str, Any]], fs_hz: float, hours: float) -> dict[str, Any]:
    """The JSON document: episodes, duration-weighted figures, false alarms, time to alarm."""
    episodes: dict[str, Any] = {}
    duration: dict[str, Any] = {}
    tta: dict[str, Any] = {}
    kinds: dict[str, dict[str, int]] = {}
    for rec in per_record.values():
        for kind, k in rec["kinds"].items():
            acc = kinds.setdefault(kind, {"alarms": 0, "true": 0, "alarm_samples": 0, "both": 0})
            acc["alarms"] += k["alarms"]
            acc["true"] += k["true"]
            acc["alarm_samples"] += k["alarm_samples"]
            acc["both"] += k["both_samples"]
    for rhythm, alarm_kinds in RHYTHM_ALARMS.items():
        rows = [rec["rhythms"][rhythm] for rec in per_record.values()]
        n = sum(r["n"] for r in rows)
        kind = kinds.get(alarm_kinds[0], {"alarms": 0, "true": 0, "alarm_samples": 0, "both": 0})
        episodes[rhythm] = {
            "se": _pct(sum(r["detected"] for r in rows), n),
            "ppv": _pct(kind["true"], kind["alarms"]),
            "n": n,
            "alarms": kind["alarms"],
        }
        ep_samples = sum(r["episode_samples"] for r in rows)
        duration[rhythm] = {
            "se": _pct(sum(r["both_samples"] for r in rows), ep_samples),
            "ppv": _pct(kind["both"], kind["alarm_samples"]),
            "episode_s": round(ep_samples / fs_hz, 1),
        }
        times = [t / fs_hz for r in rows for t in r["tta_samples"]]
        tta[rhythm] = {
            "median": round(float(np.median(times)), 2) if times else None,
            "p95": round(float(np.percentile(times, 95)), 2) if times else None,
            "n": len(times),
        }
    false_total = sum(len(rec["false_alarms"]) for rec in per_record.values())
    return {
        "episodes": episodes,
        "false_alarms_per_hour": round(false_total / hours, 3) if hours else None,
        "time_to_alarm_s": tta,
        "duration_weighted": duration,
        "false_alarms": {
            r: rec["false_alarms"] for r, rec in per_record.items() if rec["false_alarms"]
        },
        "hours": round(hours, 3),
        "records": sorted(per_record),
    }


def analyze_with_raise_times(
    path: Path, classifier: BeatClassifier | None, chunk_s: float = 1.0
) -> dict[str, Any]:
    """The offline twin's result for a record (alarms carry ``raised_sample``)."""
    return analyze_source(WfdbSource(WfdbRecord.load(path)), chunk_s=chunk_s, classifier=classifier)


def records_with_signals(data_dir: Path) -> list[str]:
    """The records of a WFDB database's ``RECORDS`` list whose signal files are there.

    Some databases list records that have annotations only (MIT-BIH AF: 00735 and 03665).
    """
    import wfdb

    def has_signals(name: str) -> bool:
        header = wfdb.rdheader(str(data_dir / name))
        files = header.file_name or []
        return header.n_sig > 0 and all((data_dir / f).exists() for f in files)

    return [n for n in (data_dir / "RECORDS").read_text().split() if has_signals(n)]


def run_evaluation(
    data_dir: Path,
    records: Sequence[str],
    model_path: Path | None,
    *,
    on_record: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score the alarms of ``records``; the JSON document of ``cardiowatch evaluate alarms``.

    The records may have any sampling rate, but one rate for all (the figures in seconds are
    converted from samples once); ``ValueError`` otherwise.
    """
    classifier = None if model_path is None else BeatClassifier.from_bytes(model_path.read_bytes())
    per_record: dict[str, dict[str, Any]] = {}
    rates: set[float] = set()
    samples = 0
    for name in records:
        path = data_dir / name
        episodes, n, fs_hz = rhythm_episodes(path)
        rates.add(fs_hz)
        if len(rates) > 1:
            raise ValueError(f"records of different sampling rates ({sorted(rates)} Hz)")
        result = analyze_with_raise_times(path, classifier)
        per_record[name] = score_record(result["alarms"], episodes, n)
        samples += n
        if on_record is not None:
            on_record(name)
    fs_hz = rates.pop() if rates else 360.0
    out = summarise(per_record, fs_hz, samples / fs_hz / 3600.0)
    out["fs_hz"] = fs_hz
    out["model_version"] = None if classifier is None else classifier.version
    return out


def markdown(result: dict[str, Any]) -> str:
    """Episode and duration tables as markdown."""

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [
        f"{len(result['records'])} records, {result['hours']} h, false alarms "
        f"{result['false_alarms_per_hour']} per patient-hour (scored kinds)",
        "",
        "| rhythm | episodes | Se % | +P % | alarms | dur. Se % | dur. +P % "
        "| TTA median s | TTA p95 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rhythm, e in result["episodes"].items():
        d = result["duration_weighted"][rhythm]
        t = result["time_to_alarm_s"][rhythm]
        lines.append(
            f"| {rhythm} | {e['n']} | {f(e['se'])} | {f(e['ppv'])} | {e['alarms']} | "
            f"{f(d['se'])} | {f(d['ppv'])} | {f(t['median'])} | {f(t['p95'])} |"
        )
    return "\n".join(lines)
