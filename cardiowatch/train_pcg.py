"""``cardiowatch train pcg``: train the heart-sound window classifier and write its artifact."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.progress import Progress

from cardiowatch.pcg_data import DATABASES, Recording, WindowSet, all_recordings, build_windows
from models.pcg import PcgNet, TrainConfig, WindowSpec, encode_pcg_artifact, train_pcg_net

#: Candidate configurations, compared on inner splits by ``benchmarks/pcg_inner_select.py``:
#: ``base`` is the configuration shipped before; ``running`` normalises each mel band by its
#: running mean over the recording (``WindowSpec.norm``); ``balanced`` weights every database
#: equally in the loss; ``big`` has 16/32/32 channels and 40 epochs; ``cycle`` adds each window's
#: heart-cycle features (``WindowSpec.cycle``, :mod:`models.pcg._cycle`) as a second input;
#: ``-norm`` batch-normalises them and drops out 20 % of their branch (added after the inner
#: figures of ``running-big-cycle``, whose logits overflowed: unscaled inputs).
CANDIDATES: dict[str, tuple[WindowSpec, TrainConfig]] = {
    "base": (WindowSpec(), TrainConfig()),
    "running": (WindowSpec(norm="running"), TrainConfig()),
    "running-balanced": (WindowSpec(norm="running"), TrainConfig(balance_db=True)),
    "running-big": (WindowSpec(norm="running"), TrainConfig(channels=(16, 32, 32), epochs=40)),
    "running-balanced-big": (
        WindowSpec(norm="running"),
        TrainConfig(balance_db=True, channels=(16, 32, 32), epochs=40),
    ),
    "running-big-cycle": (
        WindowSpec(norm="running", cycle=True),
        TrainConfig(channels=(16, 32, 32), epochs=40),
    ),
    "running-big-cycle-norm": (
        WindowSpec(norm="running", cycle=True),
        TrainConfig(channels=(16, 32, 32), epochs=40, cycle_norm=True),
    ),
}
#: The shipped model's candidate: the best mean of all twelve inner figures
#: (``models/pcg/MODEL_CARD.md``).
SHIPPED_VARIANT = "running-big-cycle"


def candidate(
    name: str = SHIPPED_VARIANT, *, seed: int = 0, threads: int = 1
) -> tuple[WindowSpec, TrainConfig]:
    """Window spec and training configuration of candidate ``name`` (seed, threads replaced)."""
    spec, config = CANDIDATES[name]
    return spec, replace(config, seed=seed, threads=threads)


#: Training uses at most this many windows per recording (evenly spaced), so that a 2-minute
#: recording does not outweigh thirty 8-second ones.
MAX_WINDOWS_PER_RECORDING = 20


def training_arrays(
    recordings: Sequence[Recording], ws: WindowSet, keep: Sequence[int]
) -> tuple[
    npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64],
    npt.NDArray[np.float32],
]:  # fmt: skip
    """Features, head targets, PASCAL classes, database index and cycle features of the windows
    of ``keep``."""
    chosen: list[int] = []
    keep_set = set(keep)
    for i in sorted(keep_set):
        idx = np.flatnonzero(ws.rec == i)
        if len(idx) > MAX_WINDOWS_PER_RECORDING:
            idx = idx[np.linspace(0, len(idx) - 1, MAX_WINDOWS_PER_RECORDING).round().astype(int)]
        chosen += idx.tolist()
    sel = np.asarray(chosen, dtype=np.int64)
    recs = [recordings[int(i)] for i in ws.rec[sel]]
    targets = np.array([[r.abnormal, r.murmur, r.poor_quality] for r in recs], dtype=np.float32)
    classes = np.array([r.pascal_class for r in recs], dtype=np.int64)
    dbs = np.array([DATABASES.index(r.db) for r in recs], dtype=np.int64)
    return ws.features[sel], targets.reshape(-1, 3), classes, dbs, ws.cycle[sel]


def fit(
    recordings: Sequence[Recording], ws: WindowSet, keep: Sequence[int], config: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> PcgNet:  # fmt: skip
    """Train on the windows of the recordings ``keep``."""
    x, y, c, g, cyc = training_arrays(recordings, ws, keep)
    return train_pcg_net(x, y, c, config, groups=g, cycle=cyc, on_epoch=on_epoch)


def load_all(
    data_dir: Path, cache_dir: Path, spec: WindowSpec, progress: Progress | None
) -> tuple[list[Recording], WindowSet]:
    """Every labelled recording and its windows (with a progress bar while building)."""
    recordings = all_recordings(data_dir)
    task = None if progress is None else progress.add_task("windows", total=len(recordings))

    def tick(_: str) -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    ws = build_windows(recordings, spec, cache_dir, on_recording=tick)
    if progress is not None and task is not None:
        progress.update(task, completed=len(recordings))
    return recordings, ws


def run_training(
    data_dir: Path, cache_dir: Path, out: Path, *, config: TrainConfig,
    spec: WindowSpec | None = None, progress: Progress | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train on every database and write the artifact to ``out``; returns its metadata."""
    spec = spec or CANDIDATES[SHIPPED_VARIANT][0]
    t0 = time.monotonic()
    recordings, ws = load_all(data_dir, cache_dir, spec, progress)
    task = None if progress is None else progress.add_task("epochs", total=config.epochs)

    def on_epoch(_: int, __: float) -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    net = fit(recordings, ws, range(len(recordings)), config, on_epoch)
    metadata = {
        "trained_on": list(DATABASES),
        "recordings": len(recordings),
        "windows": len(ws.rec),
        "config": config.to_dict(),
        "variant": SHIPPED_VARIANT
        if (spec, config) == candidate(SHIPPED_VARIANT, seed=config.seed, threads=config.threads)
        else "custom",
        "retrain": "cardiowatch train pcg",
    }
    data = encode_pcg_artifact(net, spec, metadata=metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return {**metadata, "bytes": len(data), "seconds": round(time.monotonic() - t0, 1)}
