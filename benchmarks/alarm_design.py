"""Fast design loop for the rhythm alarms: cache what the rhythm stage consumes, replay it.

``cache`` runs each record once through the offline twin (the worker's ``process_chunk``, 1 s
chunks, the shipped beat classifier) and saves, per beat, what the arrhythmia stage is fed
(sample, label, QRS quality, final sample), the beat's morphology window from the beat
featurizer and the filtered primary lead, to ``CACHE/<record>.npz``. ``replay`` feeds the
cached beats through the current :class:`~models.rhythm.BeatShape` and
:class:`~models.rhythm.ArrhythmiaDetector` and scores them with
:mod:`cardiowatch.evaluate_alarms`, in seconds.

The replay reproduces the full evaluation as long as only the arrhythmia stage (and the shape
stage) change: beat detection and labels come from the cache. Alarms are taken as published
at their deciding ``sample_index`` rounded up to the 1 s chunk end, as the twin does.

Usage::

    python benchmarks/alarm_design.py cache --records 101,106 --cache /tmp/alarms
    python benchmarks/alarm_design.py replay --records DS1 --cache /tmp/alarms

``--out-of-fold`` labels each DS1 record with the one member of the shipped ensemble that did
not see it in training (its cross-validation fold, with the ensemble's logit offsets), so the
design loop sees the label errors of a patient the classifier never saw, as DS2 and the
ward do, instead of the in-sample labels of the full ensemble::

    python benchmarks/alarm_design.py cache --records DS1 --out-of-fold --cache /tmp/alarms_oof
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _names(spec: str) -> list[str]:
    from cardiowatch.beats_data import DS1, DS2

    return list({"DS1": DS1, "DS2": DS2}.get(spec) or spec.split(","))


def out_of_fold_classifier(data: bytes, record: str) -> Any:
    """The member of the shipped ensemble whose training folds leave ``record`` out.

    Parameters
    ----------
    data
        An ensemble artifact of ``cardiowatch train beats`` (its metadata names the folds).
    record
        A DS1 record name.

    Returns
    -------
    BeatClassifier
        That member alone, with the ensemble's logit offsets (chosen on the members'
        out-of-fold logits, so they fit one member as well as the mean).
    """
    from models.beats import BeatClassifier
    from models.beats._features import FeatureSpec
    from models.beats._model import BeatEnsemble, artifact_version, decode_artifact

    header, net = decode_artifact(data)
    folds = header["metadata"]["trained_on"]["folds"]
    if not isinstance(net, BeatEnsemble) or len(folds) != len(net.members):
        raise ValueError("out-of-fold labels need an ensemble with one member per fold")
    k = next((i for i, names in enumerate(folds) if record in names), None)
    if k is None:
        raise ValueError(f"record {record} is in no training fold of this model")
    member = BeatEnsemble([net.members[k]], net.logit_bias)  # type: ignore[list-item]
    member.eval()
    return BeatClassifier(
        net=member,
        spec=FeatureSpec.from_dict(header["spec"]),
        classes=tuple(header["classes"]),
        version=f"{artifact_version(data)}-fold{k}",
    )


def cache(
    records: list[str], data_dir: Path, model: Path, out: Path, *, out_of_fold: bool = False
) -> None:
    """Run each record through the offline twin once, recording the rhythm stage's input."""
    from models.beats import BeatClassifier
    from models.beats._features import BeatFeaturizer
    from models.rhythm import ArrhythmiaDetector
    from streams.offline import analyze_record

    rec: dict[str, list[Any]] = {}
    orig_arr, orig_fp, orig_ff = (
        ArrhythmiaDetector.process,
        BeatFeaturizer.process,
        BeatFeaturizer.flush,
    )

    def arr_process(self: Any, chunk: Any) -> Any:
        rec["beats"].extend(
            (b.sample_index, b.label or "", b.quality, b.final_sample) for b in chunk
        )
        return orig_arr(self, chunk)

    def fp(self: Any, filtered: Any, beats: Any) -> Any:
        x = np.asarray(filtered)
        if x.ndim == 1:
            x = x[:, None]
        rec["filtered"].append(x[:, 0].astype(np.float32))
        f = orig_fp(self, filtered, beats)
        rec["morph"].extend(zip(f.sample_index.tolist(), f.morph, strict=True))
        return f

    def ff(self: Any) -> Any:
        f = orig_ff(self)
        rec["morph"].extend(zip(f.sample_index.tolist(), f.morph, strict=True))
        return f

    ArrhythmiaDetector.process = arr_process  # type: ignore[method-assign]
    BeatFeaturizer.process = fp  # type: ignore[method-assign]
    BeatFeaturizer.flush = ff  # type: ignore[method-assign]
    classifier = BeatClassifier.from_bytes(model.read_bytes())
    out.mkdir(parents=True, exist_ok=True)
    for name in records:
        rec.clear()
        rec.update(beats=[], filtered=[], morph=[])
        if out_of_fold:
            classifier = out_of_fold_classifier(model.read_bytes(), name)
        result = analyze_record(data_dir / name, classifier=classifier)
        morph = dict(rec["morph"])
        beats = rec["beats"]
        np.savez_compressed(
            out / f"{name}.npz",
            sample=np.asarray([b[0] for b in beats], np.int64),
            label=np.asarray([b[1] for b in beats], "U1"),
            quality=np.asarray([b[2] for b in beats], np.float64),
            final=np.asarray([b[3] for b in beats], np.int64),
            morph=np.stack([morph[b[0]] for b in beats]).astype(np.float32),
            filtered=np.concatenate(rec["filtered"]),
            alarms=np.asarray(json.dumps(result["alarms"])),
        )
        print(name, len(beats), "beats", len(result["alarms"]), "alarms", flush=True)


def replay(
    records: list[str], cache_dir: Path, data_dir: Path, build: Any = None
) -> dict[str, Any]:
    """Score the replayed alarms of ``records`` (the JSON of ``cardiowatch evaluate alarms``)."""
    from cardiowatch.evaluate_alarms import rhythm_episodes, score_record, summarise

    per_record, samples = {}, 0
    for name in records:
        episodes, n, _ = rhythm_episodes(data_dir / name)
        alarms, _ = replay_record(cache_dir / f"{name}.npz", data_dir, build)
        per_record[name] = score_record(alarms, episodes, n)
        samples += n
    return summarise(per_record, 360.0, samples / 360.0 / 3600.0)


def table(result: dict[str, Any]) -> str:
    """One line per figure the targets name, and the false alarms by kind and record."""
    ep, dur, tta = result["episodes"], result["duration_weighted"], result["time_to_alarm_s"]
    fas: dict[str, int] = {}
    recs: dict[str, int] = {}
    for rec, items in result["false_alarms"].items():
        recs[rec] = len(items)
        for a in items:
            fas[a["type"]] = fas.get(a["type"], 0) + 1
    return "\n".join(
        [
            f"VT  Se {ep['VT']['se']} ({ep['VT']['n']} ep)  +P {ep['VT']['ppv']} "
            f"({ep['VT']['alarms']} alarms)  dur Se {dur['VT']['se']} +P {dur['VT']['ppv']}  "
            f"TTA median {tta['VT']['median']} s p95 {tta['VT']['p95']} s",
            f"VFL Se {ep['VFL']['se']} ({ep['VFL']['n']} ep)",
            f"AFIB Se {ep['AFIB']['se']} ({ep['AFIB']['n']} ep) AFL Se {ep['AFL']['se']} "
            f"({ep['AFL']['n']} ep)  +P {ep['AFIB']['ppv']} ({ep['AFIB']['alarms']} alarms)  "
            f"dur Se {dur['AFIB']['se']}/{dur['AFL']['se']} dur +P {dur['AFIB']['ppv']}",
            f"B Se {ep['B']['se']} +P {ep['B']['ppv']}  T Se {ep['T']['se']} +P {ep['T']['ppv']}  "
            f"SVTA Se {ep['SVTA']['se']} +P {ep['SVTA']['ppv']}",
            f"FA/h {result['false_alarms_per_hour']} ({sum(fas.values())}: {fas})",
            f"  false alarms by record {recs}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["cache", "replay"])
    p.add_argument("--records", default="DS1")
    p.add_argument("--cache", type=Path, default=Path("/tmp/alarms"))
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--model", type=Path, default=None)
    p.add_argument(
        "--out-of-fold",
        action="store_true",
        help="cache: label each DS1 record with the ensemble member that never saw it",
    )
    args = p.parse_args(argv)
    from cardiowatch.settings import Settings

    settings = Settings.from_env()
    data_dir = args.data or Path(settings.data_dir) / "mitdb"
    if args.mode == "cache":
        model = args.model or Path(settings.beats_model)
        cache(_names(args.records), data_dir, model, args.cache, out_of_fold=args.out_of_fold)
    else:
        print(table(replay(_names(args.records), args.cache, data_dir)))
    return 0


def replay_record(
    path: Path, data_dir: Path, build: Any = None
) -> tuple[list[dict[str, Any]], int]:
    """Alarms of one cached record through the current arrhythmia stage (``build`` makes it)."""
    from models.rhythm import ArrhythmiaDetector, BeatShape, LabelledBeat

    z = np.load(path)
    fs_hz = 360.0
    n = len(z["filtered"])
    det = ArrhythmiaDetector(fs_hz) if build is None else build(fs_hz)
    labels = [str(lab) or None for lab in z["label"]]
    shapes = BeatShape().process(z["morph"], labels)
    beats = [
        LabelledBeat(int(s), lab, float(q), int(f), shape)
        for s, lab, q, f, shape in zip(
            z["sample"], labels, z["quality"], z["final"], shapes, strict=True
        )
    ]
    events = [*det.process(beats), *det.flush(n)]
    chunk = round(fs_hz)
    alarms: dict[tuple[str, int], dict[str, Any]] = {}
    for e in events:
        published = min(n, (e.sample_index // chunk + 1) * chunk)
        entry = alarms.setdefault(
            (e.kind, e.onset_sample),
            {"type": e.kind, "onset_sample": e.onset_sample, "end_sample": None,
             "priority": e.priority, "raised_sample": published},
        )  # fmt: skip
        if e.state == "end":
            entry["end_sample"] = e.end_sample
    return sorted(alarms.values(), key=lambda a: (a["onset_sample"], a["type"])), n


if __name__ == "__main__":
    sys.exit(main())
