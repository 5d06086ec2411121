"""The beat-classification dataset: MIT-BIH beats at the detector's R peaks, AAMI labels.

Each record is run through :class:`~models.ecg.EcgBeatPipeline` in 1 s chunks, exactly as the
stream worker runs it, and its filtered samples and beats through
:class:`~models.beats.BeatFeaturizer`, the serving feature code. A detected beat takes the
AAMI class of the reference beat annotation nearest to it within 150 ms (each reference beat
labels at most one detection, the nearest); detections without one (false detections) and
reference beats outside the five AAMI classes are kept with label ``-1``.

Inter-patient split of de Chazal et al. (2004): DS1 trains, DS2 tests; the paced records
102, 104, 107 and 217 are in neither. Built records are cached as ``.npz`` under
``<cache_dir>/beats/<key>/`` where the key hashes the feature parameters and the detector
version, so a change of either rebuilds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.beats import AAMI_CLASSES, BeatFeatures, BeatFeaturizer, FeatureSpec
from models.ecg import EcgBeatPipeline
from models.monitor import DETECTOR_VERSION
from simulators.sources import BEAT_SYMBOLS

#: de Chazal et al. 2004, training set.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
       "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")  # fmt: skip
#: de Chazal et al. 2004, test set (never used for training, selection or thresholds).
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212",
       "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")  # fmt: skip
#: Patient folds of DS1 for model selection (cross-validation: each fold's network is
#: early-stopped and scored on the patients it did not train on). Fixed by hand from the DS1
#: reference counts only, to spread the S (SVEB) and V (VEB) carriers: S mostly in 209, 201,
#: 207, 118, 220, 223; V mostly in 208, 106, 223, 119, 203; F almost only in 208.
DS1_FOLDS = (
    ("101", "106", "114", "115", "122", "209"),
    ("108", "112", "119", "201", "207", "230"),
    ("109", "116", "118", "208", "220"),
    ("124", "203", "205", "215", "223"),
)

#: MIT-BIH beat symbols -> AAMI class (EC57).
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
MATCH_WINDOW_S = 0.15
CHUNK_S = 1.0
DATASET_VERSION = 1


@dataclass(frozen=True)
class RecordBeats:
    """One record's detected beats, features and labels."""

    name: str
    features: BeatFeatures
    y: npt.NDArray[np.int64]  # AAMI class index, -1 = no AAMI reference beat within 150 ms
    missed: npt.NDArray[np.int64]  # reference beats per AAMI class with no detection


def cache_key(spec: FeatureSpec) -> str:
    """Directory name of a feature configuration in the cache."""
    blob = json.dumps(
        {"spec": spec.to_dict(), "detector": DETECTOR_VERSION, "dataset": DATASET_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def featurize_signal(
    x_mv: npt.NDArray[np.float64], fs_hz: float, spec: FeatureSpec, *, chunk_s: float = CHUNK_S
) -> BeatFeatures:
    """Detect beats and compute their features chunk by chunk, as the worker does."""
    pipe = EcgBeatPipeline(fs_hz, x_mv.shape[1])
    feat = BeatFeaturizer(fs_hz, spec=spec)
    step = max(1, round(chunk_s * fs_hz))
    parts = []
    for a in range(0, len(x_mv), step):
        beats, filtered = pipe.process_filtered(x_mv[a : a + step])
        parts.append(feat.process(filtered, beats))
    parts.append(feat.process(np.zeros((0, x_mv.shape[1])), pipe.flush()))
    parts.append(feat.flush())
    return BeatFeatures.concat(parts, spec)


def match_labels(
    detected: npt.NDArray[np.int64],
    ref_samples: npt.NDArray[np.int64],
    ref_symbols: Sequence[str],
    tolerance: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """AAMI class of each detection, and the count of unmatched reference beats per class.

    >>> y, missed = match_labels(np.array([100, 400, 900]), np.array([102, 395, 600]),
    ...                          ["N", "V", "A"], 54)
    >>> y.tolist(), missed.tolist()
    ([0, 2, -1], [0, 1, 0, 0, 0])
    """
    keep = [i for i, s in enumerate(ref_symbols) if s in BEAT_SYMBOLS]
    refs = np.asarray(ref_samples, np.int64)[keep]
    classes = np.asarray(
        [AAMI_CLASSES.index(AAMI_MAP[ref_symbols[i]]) if ref_symbols[i] in AAMI_MAP else -1
         for i in keep], np.int64,
    )  # fmt: skip
    y = np.full(len(detected), -1, np.int64)
    missed = np.zeros(len(AAMI_CLASSES), np.int64)
    if len(detected) == 0:
        np.add.at(missed, classes[classes >= 0], 1)
        return y, missed
    pos = np.searchsorted(detected, refs)
    for k, (r, c) in enumerate(zip(refs, classes, strict=True)):
        candidates = [j for j in (pos[k] - 1, pos[k]) if 0 <= j < len(detected)]
        j = min(candidates, key=lambda i: abs(int(detected[i]) - int(r)))
        if abs(int(detected[j]) - int(r)) <= tolerance and y[j] == -1:
            y[j] = c
        elif c >= 0:
            missed[c] += 1
    return y, missed


#: A change to a record's signal before its beats are found (a noise stress, say):
#: ``(x_mv (n, n_leads), fs_hz, reference beat samples) -> x_mv``.
SignalTransform = Callable[
    [npt.NDArray[np.float64], float, npt.NDArray[np.int64]], npt.NDArray[np.float64]
]


def build_record(
    data_dir: Path, name: str, spec: FeatureSpec, *, transform: SignalTransform | None = None
) -> RecordBeats:
    """Features and labels of one MIT-BIH record (all leads fed, as the stream does).

    ``transform``, when given, changes the signal (mV) before detection; the labels still
    come from the record's reference annotations.
    """
    import wfdb

    rec = wfdb.rdrecord(str(data_dir / name), physical=True)
    ann = wfdb.rdann(str(data_dir / name), "atr")
    fs_hz = float(rec.fs)
    x = np.ascontiguousarray(rec.p_signal, dtype=np.float64)
    ref = np.asarray(ann.sample, np.int64)
    if transform is not None:
        is_beat = np.fromiter((s in BEAT_SYMBOLS for s in ann.symbol), dtype=bool)
        x = transform(x, fs_hz, ref[is_beat])
    features = featurize_signal(x, fs_hz, spec)
    tolerance = round(MATCH_WINDOW_S * fs_hz)
    y, missed = match_labels(features.sample_index, ref, list(ann.symbol), tolerance)
    return RecordBeats(name, features, y, missed)


def load_record(data_dir: Path, name: str, spec: FeatureSpec, cache_dir: Path) -> RecordBeats:
    """:func:`build_record`, read from the cache when present (written otherwise)."""
    path = cache_dir / "beats" / cache_key(spec) / f"{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            features = BeatFeatures(z["sample_index"], z["quality"], z["morph"], z["rr"])
            return RecordBeats(name, features, z["y"], z["missed"])
    record = build_record(data_dir, name, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    f = record.features
    np.savez(tmp, sample_index=f.sample_index, quality=f.quality, morph=f.morph, rr=f.rr,
             y=record.y, missed=record.missed)  # fmt: skip
    tmp.replace(path)
    return record


@dataclass(frozen=True)
class BeatSet:
    """Beats of several records with AAMI labels (unlabelled detections dropped)."""

    morph: npt.NDArray[np.float32]
    rr: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    record: npt.NDArray[np.int64]  # index into ``names``
    names: tuple[str, ...]
    missed: npt.NDArray[np.int64]  # reference beats per class never detected
    unmatched: int  # detections with no AAMI reference beat


def load_beats(
    data_dir: Path,
    names: Sequence[str],
    spec: FeatureSpec,
    cache_dir: Path,
    *,
    on_record: Callable[[str], None] | None = None,
) -> BeatSet:
    """Labelled beats of ``names`` (built or read from the cache)."""
    morph, rr, y, rec = [], [], [], []
    missed = np.zeros(len(AAMI_CLASSES), np.int64)
    unmatched = 0
    for i, name in enumerate(names):
        r = load_record(data_dir, name, spec, cache_dir)
        keep = r.y >= 0
        morph.append(r.features.morph[keep])
        rr.append(r.features.rr[keep])
        y.append(r.y[keep])
        rec.append(np.full(int(keep.sum()), i, np.int64))
        missed += r.missed
        unmatched += int((~keep).sum())
        if on_record is not None:
            on_record(name)
    return BeatSet(
        np.concatenate(morph), np.concatenate(rr), np.concatenate(y), np.concatenate(rec),
        tuple(names), missed, unmatched,
    )  # fmt: skip
