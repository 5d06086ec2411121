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

``--noise-snr DB`` first adds NST-style noise to each record (:func:`noisy_record`;
electrode motion unless ``--noise-kind`` says otherwise; 2 minutes on, 2 off, from minute 5),
so the replay shows what noise does to the alarms: a noise stress test for the rhythm stage::

    python benchmarks/alarm_design.py cache --records DS1 --out-of-fold --noise-snr 6 --cache /tmp/e
    python benchmarks/alarm_design.py replay --records DS1 --cache /tmp/e

``replay --detector JSON`` replays with other :class:`~models.rhythm.ArrhythmiaDetector`
settings, e.g. ``--detector '{"noise_fraction": 0.375}'``. The cache also keeps each beat's
class logits, so ``replay --logit-offsets JSON`` (e.g. ``'{"Q": -2}'``) relabels the beats with
other per-class offsets (:func:`relabel`) without running the classifier again.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np


def _names(spec: str) -> list[str]:
    from cardiowatch.beats_data import DS1, DS2

    return list({"DS1": DS1, "DS2": DS2}.get(spec) or spec.split(","))


def out_of_fold_classifier(data: bytes, record: str) -> Any:
    """The members of the shipped ensemble whose training folds leave ``record`` out.

    Parameters
    ----------
    data
        An ensemble artifact of ``cardiowatch train beats`` (its metadata names the folds).
    record
        A DS1 record name.

    Returns
    -------
    BeatClassifier
        Those members alone (one per seed of a seed ensemble, whose members are stored
        seed-major), with the ensemble's logit offsets (chosen on the out-of-fold logits,
        so they fit the held-out members as well as the whole ensemble).
    """
    from models.beats import BeatClassifier
    from models.beats._features import FeatureSpec
    from models.beats._model import BeatEnsemble, artifact_version, decode_artifact

    header, net = decode_artifact(data)
    folds = header["metadata"]["trained_on"]["folds"]
    if not isinstance(net, BeatEnsemble) or len(net.members) % len(folds):
        raise ValueError("out-of-fold labels need an ensemble with one member per fold and seed")
    k = next((i for i, names in enumerate(folds) if record in names), None)
    if k is None:
        raise ValueError(f"record {record} is in no training fold of this model")
    held_out = [m for i, m in enumerate(net.members) if i % len(folds) == k]
    member = BeatEnsemble(held_out, net.logit_bias)  # type: ignore[arg-type]
    member.eval()
    return BeatClassifier(
        net=member,
        spec=FeatureSpec.from_dict(header["spec"]),
        classes=tuple(header["classes"]),
        version=f"{artifact_version(data)}-fold{k}",
    )


def noisy_record(path: Path, snr_db: float, *, kind: str = "em", seed: int = 0) -> Any:
    """The WFDB record at ``path`` with NST-style noise added to every lead.

    Noise from :mod:`simulators.noise` (2 minutes on, 2 off, from minute 5, scaled to each
    lead's QRS amplitude as the MIT-BIH NST was made), added in physical units and stored
    back as the record's digital samples, so the twin reads it like any recording.
    """
    from dataclasses import replace

    from simulators.noise import NOISE_KINDS, add_noise
    from simulators.sources import WfdbRecord

    rec = WfdbRecord.load(path)
    gain = np.asarray(rec.gain, dtype=np.float64)
    baseline = np.asarray(rec.baseline, dtype=np.float64)
    x_mv = rec.physical()
    record_seed = (int(path.name) if path.name.isdigit() else 0) * 100 + seed
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}")
    noisy = add_noise(
        x_mv, rec.beat_samples(), rec.fs_hz, snr_db=snr_db, kind=kind,
        seed=record_seed,
    )  # fmt: skip
    digital = np.clip(np.round(noisy * gain + baseline), -32768, 32767).astype(np.int16)
    return replace(rec, samples=digital)


def cache(
    records: list[str],
    data_dir: Path,
    model: Path,
    out: Path,
    *,
    out_of_fold: bool = False,
    noise_snr_db: float | None = None,
    noise_kind: str = "em",
) -> None:
    """Run each record through the offline twin once, recording the rhythm stage's input.

    With ``noise_snr_db``, each record first gets NST-style noise (:func:`noisy_record`).
    """
    from models.beats import BeatClassifier
    from models.beats._features import BeatFeaturizer
    from models.rhythm import ArrhythmiaDetector
    from simulators.sources import WfdbRecord, WfdbSource
    from streams.offline import analyze_source

    rec: dict[str, list[Any]] = {}
    orig_arr, orig_fp, orig_ff, orig_predict, orig_logits = (
        ArrhythmiaDetector.process,
        BeatFeaturizer.process,
        BeatFeaturizer.flush,
        BeatClassifier.predict,
        BeatClassifier.logits,
    )
    last_logits: list[Any] = []

    def logits(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig_logits(self, *args, **kwargs)
        last_logits[:] = [out]
        return out

    def predict(self: Any, features: Any) -> list[str]:
        labels = orig_predict(self, features)  # its logits pass through ``logits`` above
        if labels:
            rows = zip(features.sample_index.tolist(), last_logits[0], strict=True)
            rec["logits"].extend(rows)
        return labels

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

    hooks = [
        (ArrhythmiaDetector, "process", arr_process),
        (BeatFeaturizer, "process", fp),
        (BeatFeaturizer, "flush", ff),
        (BeatClassifier, "predict", predict),
        (BeatClassifier, "logits", logits),
    ]
    with ExitStack() as undo:  # the hooks only live while the cache is made
        for owner, attribute, hook in hooks:
            undo.enter_context(patch.object(owner, attribute, hook))
        classifier = BeatClassifier.from_bytes(model.read_bytes())
        out.mkdir(parents=True, exist_ok=True)
        for name in records:
            rec.clear()
            rec.update(beats=[], filtered=[], morph=[], logits=[])
            if out_of_fold:
                classifier = out_of_fold_classifier(model.read_bytes(), name)
            path = data_dir / name
            record = (
                WfdbRecord.load(path)
                if noise_snr_db is None
                else noisy_record(path, noise_snr_db, kind=noise_kind)
            )
            result = analyze_source(WfdbSource(record), classifier=classifier)
            morph = dict(rec["morph"])
            beats = rec["beats"]
            beat_logits = dict(rec["logits"])
            missing = np.full(len(classifier.classes), np.nan, np.float32)
            np.savez_compressed(
                out / f"{name}.npz",
                sample=np.asarray([b[0] for b in beats], np.int64),
                label=np.asarray([b[1] for b in beats], "U1"),
                quality=np.asarray([b[2] for b in beats], np.float64),
                final=np.asarray([b[3] for b in beats], np.int64),
                morph=np.stack([morph[b[0]] for b in beats]).astype(np.float32),
                logits=np.stack([beat_logits.get(b[0], missing) for b in beats]).astype(np.float32),
                classes=np.asarray(classifier.classes, "U1"),
                filtered=np.concatenate(rec["filtered"]),
                alarms=np.asarray(json.dumps(result["alarms"])),
                noise_snr_db=np.asarray(np.nan if noise_snr_db is None else noise_snr_db),
                noise_kind=np.asarray(noise_kind),
            )
            print(name, len(beats), "beats", len(result["alarms"]), "alarms", flush=True)


def replay(
    records: list[str],
    cache_dir: Path,
    data_dir: Path,
    build: Any = None,
    logit_offsets: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Score the replayed alarms of ``records`` (the JSON of ``cardiowatch evaluate alarms``)."""
    from cardiowatch.evaluate_alarms import rhythm_episodes, score_record, summarise

    per_record, samples, stress, noise_alarms = {}, 0, _NoiseStress(), 0
    for name in records:
        episodes, n, _ = rhythm_episodes(data_dir / name)
        path = cache_dir / f"{name}.npz"
        alarms, _ = replay_record(path, data_dir, build, logit_offsets)
        noise_alarms += sum(a["type"] == "noise" for a in alarms)
        per_record[name] = score_record(alarms, episodes, n)
        stress.add(path, alarms, per_record[name]["false_alarms"], n)
        samples += n
    result = summarise(per_record, 360.0, samples / 360.0 / 3600.0)
    result["noise_alarms"] = noise_alarms
    if stress.snr_db is not None:
        result["noise_stress"] = stress.report()
    return result


class _NoiseStress:
    """Where the alarms of noise-stressed records fall: inside the noise segments or not."""

    #: a false alarm raised this soon after a noise segment ends is counted with the noise
    AFTER_S = 10.0

    def __init__(self) -> None:
        self.snr_db: float | None = None
        self.kind = ""
        self.noisy = self.samples = 0  # samples inside noise segments, samples in all
        self.noise_alarm_in = self.noise_alarm_out = 0  # noise-alarm samples, in / out
        self.false_in = self.false_out = 0  # false alarms raised in (or just after) / out

    def add(
        self, path: Path, alarms: list[dict[str, Any]], false: list[dict[str, Any]], n: int
    ) -> None:
        """Take one replayed record (skipped unless its cache was made with noise)."""
        from simulators.noise import nst_mask

        with np.load(path) as z:
            snr = float(z["noise_snr_db"]) if "noise_snr_db" in z.files else math.nan
            kind = str(z["noise_kind"]) if "noise_kind" in z.files else ""
        if math.isnan(snr):
            return
        self.snr_db, self.kind = snr, kind
        mask = nst_mask(n, 360.0)
        active = np.zeros(n, dtype=bool)
        for a in alarms:
            if a["type"] == "noise":
                active[a["onset_sample"] : a["end_sample"] or n] = True
        self.noisy += int(mask.sum())
        self.samples += n
        self.noise_alarm_in += int((active & mask).sum())
        self.noise_alarm_out += int((active & ~mask).sum())
        after = round(self.AFTER_S * 360.0)
        for a in false:
            s = min(int(a["onset_sample"]), n - 1)
            if mask[max(0, s - after) : s + 1].any():
                self.false_in += 1
            else:
                self.false_out += 1

    def report(self) -> dict[str, Any]:
        """The figures ``table`` prints."""
        clean = max(self.samples - self.noisy, 1)
        return {
            "snr_db": self.snr_db,
            "kind": self.kind,
            "noise_time_pct": round(100.0 * self.noisy / max(self.samples, 1), 1),
            "false_alarms_in_noise": self.false_in,
            "false_alarms_elsewhere": self.false_out,
            "noise_alarm_in_noise_pct": round(100.0 * self.noise_alarm_in / max(self.noisy, 1), 1),
            "noise_alarm_elsewhere_pct": round(100.0 * self.noise_alarm_out / clean, 2),
        }


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
            f"noise (technical) alarms {result.get('noise_alarms', 'n/a')}",
            *_stress_lines(result.get("noise_stress")),
        ]
    )


def _stress_lines(stress: dict[str, Any] | None) -> list[str]:
    if stress is None:
        return []
    return [
        f"noise {stress['kind']} at {stress['snr_db']:g} dB, {stress['noise_time_pct']} % of "
        f"the time: false alarms raised in a noise segment or within {_NoiseStress.AFTER_S:g} s "
        f"of its end {stress['false_alarms_in_noise']}, elsewhere "
        f"{stress['false_alarms_elsewhere']}; noise alarm active in "
        f"{stress['noise_alarm_in_noise_pct']} % of the noise time, "
        f"{stress['noise_alarm_elsewhere_pct']} % of the rest"
    ]


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
    p.add_argument(
        "--noise-snr",
        type=float,
        default=None,
        help="cache: add NST-style noise at this SNR (dB) first (2 min on/off from minute 5)",
    )
    p.add_argument("--noise-kind", default="em", choices=["bw", "em", "ma", "mixed"])
    p.add_argument(
        "--detector",
        default="{}",
        help="replay: ArrhythmiaDetector settings as JSON, e.g. '{\"noise_fraction\": 0.375}'",
    )
    p.add_argument(
        "--logit-offsets",
        default="{}",
        help="replay: extra logit offset per class as JSON, e.g. '{\"Q\": -2}' (relabels)",
    )
    args = p.parse_args(argv)
    from cardiowatch.settings import Settings

    settings = Settings.from_env()
    data_dir = args.data or Path(settings.data_dir) / "mitdb"
    if args.mode == "cache":
        model = args.model or Path(settings.beats_model)
        cache(
            _names(args.records),
            data_dir,
            model,
            args.cache,
            out_of_fold=args.out_of_fold,
            noise_snr_db=args.noise_snr,
            noise_kind=args.noise_kind,
        )
    else:
        from models.rhythm import ArrhythmiaDetector

        settings_kw = json.loads(args.detector)
        build = None if not settings_kw else lambda fs: ArrhythmiaDetector(fs, **settings_kw)
        offsets = {str(k): float(v) for k, v in json.loads(args.logit_offsets).items()}
        print(table(replay(_names(args.records), args.cache, data_dir, build, offsets)))
    return 0


def relabel(labels: Any, logits: Any, classes: Any, offsets: dict[str, float]) -> list[str | None]:
    """Beat labels with ``offsets`` added to the cached class logits.

    Parameters
    ----------
    labels
        The cached labels (``""``: unlabelled).
    logits
        The cached logits, shape ``(n_beats, n_classes)``; a row of NaN (a beat the
        classifier did not see) keeps its cached label.
    classes
        Class names, in logit order.
    offsets
        Extra offset per class name, added to that class's logit.

    Returns
    -------
    list of str or None
        The new labels (``None``: unlabelled).

    Examples
    --------
    >>> import numpy as np
    >>> relabel(["V", "N", ""], np.array([[0.0, 1.0], [2.0, 0.0], [np.nan, np.nan]]),
    ...         ["N", "V"], {"V": -1.5})
    ['N', 'N', None]
    """
    names = [str(c) for c in classes]
    unknown = sorted(set(offsets) - set(names))
    if unknown:
        raise ValueError(f"no class {unknown} among {names}")
    shifted = np.asarray(logits, np.float64) + np.array([offsets.get(c, 0.0) for c in names])
    seen = ~np.isnan(shifted).any(axis=1)
    best = np.where(seen, np.nan_to_num(shifted).argmax(axis=1), -1)
    return [
        names[int(i)] if i >= 0 else (str(lab) or None) for i, lab in zip(best, labels, strict=True)
    ]


def replay_record(
    path: Path, data_dir: Path, build: Any = None, logit_offsets: dict[str, float] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Alarms of one cached record through the current arrhythmia stage (``build`` makes it).

    With ``logit_offsets``, the beats are relabelled from the cached logits (:func:`relabel`).
    """
    from models.rhythm import ArrhythmiaDetector, BeatShape, LabelledBeat

    z = np.load(path)
    fs_hz = 360.0
    n = len(z["filtered"])
    det = ArrhythmiaDetector(fs_hz) if build is None else build(fs_hz)
    labels = [str(lab) or None for lab in z["label"]]
    if logit_offsets:
        if "logits" not in z.files:
            raise ValueError(f"{path} has no logits: cache it again to replay other offsets")
        labels = relabel(z["label"], z["logits"], z["classes"], logit_offsets)
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
