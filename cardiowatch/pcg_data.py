"""The heart-sound databases as labelled recordings, and their windows (cached).

Databases: PhysioNet/CinC 2016 ``training-b``, ``training-c``, ``training-d`` (normal /
abnormal) and PASCAL CHSC2011 set A + labelled set B (``pascal``: normal, murmur, extrahls,
extrastole, artifact). Label targets per recording (``-1`` = unknown, masked in training):

* ``abnormal``: PhysioNet's label; PASCAL normal 0, murmur / extrahls / extrastole 1, artifact -1.
* ``murmur``: PASCAL murmur 1, normal 0, else -1 (PhysioNet does not annotate murmurs).
* ``poor_quality``: PASCAL artifact 1, every other recording 0.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.pcg import PASCAL_CLASSES, WindowSpec, recording_windows
from simulators.audio import load_audio

log = logging.getLogger(__name__)

#: Version of the window cache's layout (2: with ``hf_share``); part of the cache key.
_CACHE_LAYOUT = 2
PHYSIONET_DBS = ("training-b", "training-c", "training-d")
DATABASES = (*PHYSIONET_DBS, "pascal")


@dataclass(frozen=True)
class Recording:
    """One labelled recording."""

    db: str
    path: Path
    abnormal: int
    murmur: int
    poor_quality: int
    pascal_class: int  # index into PASCAL_CLASSES, -1 outside PASCAL
    group: str  # subject (PASCAL set B) or recording: the unit of cross-validation folds


def physionet_recordings(data_dir: Path, db: str) -> list[Recording]:
    """The recordings of one PhysioNet 2016 training subset with their labels."""
    folder = data_dir / "physionet2016" / db
    out = []
    for row in csv.reader((folder / "REFERENCE.csv").read_text().splitlines()):
        if len(row) < 2:
            continue
        name, label = row[0].strip(), int(row[1])
        out.append(Recording(db, folder / f"{name}.wav", int(label == 1), -1, 0, -1, name))
    return out


_SUBJECT = re.compile(r"_(\d+)_\d{9,}")


def pascal_recordings(data_dir: Path) -> list[Recording]:
    """Labelled PASCAL recordings (set A and set B; unlabelled test files left out)."""
    root = data_dir / "pascal"
    rows: list[tuple[str, str]] = []
    with (root / "set_a.csv").open(newline="") as f:
        rows += [(r["fname"], r["label"]) for r in csv.DictReader(f)]
    with (root / "set_b_file_map.csv").open(newline="") as f:
        rows += [(r["file"], r["label"]) for r in csv.DictReader(f)]
    out = []
    for fname, label in rows:
        label = label.strip()
        if label not in PASCAL_CLASSES:
            continue
        path = root / fname
        match = _SUBJECT.search(path.stem)
        group = f"b{match.group(1)}" if match else path.stem
        abnormal = {"normal": 0, "artifact": -1}.get(label, 1)
        murmur = {"murmur": 1, "normal": 0}.get(label, -1)
        out.append(Recording("pascal", path, abnormal, murmur, int(label == "artifact"),
                             PASCAL_CLASSES.index(label), group))  # fmt: skip
    return out


def all_recordings(data_dir: Path, dbs: Sequence[str] = DATABASES) -> list[Recording]:
    """Every labelled recording of ``dbs``."""
    missing = [p for p in (data_dir / "physionet2016", data_dir / "pascal") if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"missing heart-sound data: {', '.join(map(str, missing))}")
    out: list[Recording] = []
    for db in dbs:
        out += pascal_recordings(data_dir) if db == "pascal" else physionet_recordings(data_dir, db)
    return out


@dataclass(frozen=True)
class WindowSet:
    """Windows of many recordings: ``features[i]`` belongs to recording ``rec[i]``;
    ``hf_share[i]`` is its high-band share (the quality rule's cue), ``cycle[i]`` its
    heart-cycle features (``(n, 0)`` unless ``WindowSpec.cycle``)."""

    features: npt.NDArray[np.float32]  # (n, n_mels, n_frames)
    rec: npt.NDArray[np.int64]
    hf_share: npt.NDArray[np.float32]
    cycle: npt.NDArray[np.float32]  # (n, n_cycle)


def build_windows(
    recordings: Sequence[Recording], spec: WindowSpec, cache_dir: Path,
    on_recording: Callable[[str], None] | None = None,
) -> WindowSet:  # fmt: skip
    """Windows of every recording, cut by the stream's stages; cached under ``cache_dir``."""
    key = json.dumps([spec.to_dict(), [str(r.path) for r in recordings], _CACHE_LAYOUT],
                     sort_keys=True)  # fmt: skip
    cache = cache_dir / "pcg" / f"windows-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache) as z:
            n = len(z["rec"])
            cyc = z["cycle"] if "cycle" in z else np.zeros((n, 0), np.float32)
            return WindowSet(z["features"], z["rec"], z["hf_share"], cyc)
    feats: list[npt.NDArray[np.float32]] = []
    recs: list[int] = []
    shares: list[float] = []
    cycles: list[npt.NDArray[np.float32]] = []
    for i, r in enumerate(recordings):
        samples, fs_hz = load_audio(r.path)
        windows = recording_windows(samples.astype(np.float64) / 32768.0, fs_hz, spec)
        feats += [w.features for w in windows]
        recs += [i] * len(windows)
        shares += [w.hf_share for w in windows]
        cycles += [w.cycle for w in windows]
        if on_recording is not None:
            on_recording(r.path.name)
    shape = (0, spec.n_mels, spec.n_frames)
    ws = WindowSet(
        np.stack(feats) if feats else np.zeros(shape, np.float32),
        np.asarray(recs, np.int64),
        np.asarray(shares, np.float32),
        np.stack(cycles) if cycles else np.zeros((0, spec.n_cycle), np.float32),
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    if spec.cycle:
        np.savez(cache, features=ws.features, rec=ws.rec, hf_share=ws.hf_share, cycle=ws.cycle)
    else:  # the layout of caches from before the cycle features
        np.savez(cache, features=ws.features, rec=ws.rec, hf_share=ws.hf_share)
    return ws
