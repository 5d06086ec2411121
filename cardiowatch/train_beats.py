"""``cardiowatch train beats``: train the beat classifier on DS1 only.

1. Build (or read from the cache) the DS1 beats: detector R peaks, serving features, AAMI labels.
2. Train on DS1 minus :data:`~cardiowatch.beats_data.DS1_VALIDATION` with early stopping on
   those held-out patients; their scores pick the number of epochs.
3. Refit on all of DS1 for that many epochs (same seed) and write the artifact: weights,
   feature parameters, class list, training facts and the validation figures.

DS2 is not read here at all; ``cardiowatch evaluate beats`` scores the artifact on it.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from cardiowatch.beats_data import DS1, DS1_VALIDATION, load_beats
from models.beats import (
    AAMI_CLASSES,
    FeatureSpec,
    TrainConfig,
    artifact_version,
    class_scores,
    encode_artifact,
    train_beat_net,
)


def _subset(
    morph: np.ndarray, rr: np.ndarray, y: np.ndarray, mask: np.ndarray
) -> tuple[Any, Any, Any]:
    return (
        np.ascontiguousarray(morph[mask]),
        np.ascontiguousarray(rr[mask]),
        np.ascontiguousarray(y[mask]),
    )


def run_training(
    data_dir: Path,
    cache_dir: Path,
    out: Path,
    *,
    config: TrainConfig | None = None,
    refit: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train and write the artifact to ``out``; return its version and the training facts."""
    config = config or TrainConfig()
    spec = FeatureSpec()
    t0 = time.perf_counter()
    task = progress.add_task("DS1 beats", total=len(DS1)) if progress is not None else None

    def tick(_: str) -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    data = load_beats(data_dir, DS1, spec, cache_dir, on_record=tick)
    t_data = time.perf_counter() - t0
    val_idx = [data.names.index(n) for n in DS1_VALIDATION]
    is_val = np.isin(data.record, val_idx)
    train = _subset(data.morph, data.rr, data.y, ~is_val)
    val = _subset(data.morph, data.rr, data.y, is_val)

    def epochs_bar(label: str, total: int) -> Callable[[int, dict[str, float]], None]:
        if progress is None:
            return lambda _e, _f: None
        bar = progress.add_task(label, total=total)

        def on_epoch(epoch: int, figures: dict[str, float]) -> None:
            extra = ""
            if "val_f1_s" in figures:
                extra = f" (val F1 S {figures['val_f1_s']:.1f} V {figures['val_f1_v']:.1f})"
            progress.update(bar, advance=1, description=f"{label}{extra}")

        return on_epoch

    t1 = time.perf_counter()
    selected = train_beat_net(
        spec, train, val, config, on_epoch=epochs_bar("train (DS1 - val)", config.epochs)
    )
    with torch.inference_mode():
        val_pred = selected.net(torch.from_numpy(val[0]), torch.from_numpy(val[1]))
    val_scores = class_scores(val[2], val_pred.argmax(dim=1).numpy(), len(AAMI_CLASSES))
    net = selected.net
    if refit:
        full = (data.morph, data.rr, data.y)
        epochs = selected.best_epoch
        net = train_beat_net(
            spec, full, None, config, epochs=epochs, on_epoch=epochs_bar("refit (DS1)", epochs)
        ).net
    t_train = time.perf_counter() - t1

    def pct(a: np.ndarray) -> dict[str, float]:
        return {c: round(float(np.nan_to_num(v)), 2) for c, v in zip(AAMI_CLASSES, a, strict=True)}

    metadata = {
        "trained_on": {"records": list(DS1), "validation_records": list(DS1_VALIDATION),
                       "beats": len(data.y),
                       "class_counts": np.bincount(data.y, minlength=5).tolist()},
        "config": asdict(config),
        "refit": refit,
        "best_epoch": selected.best_epoch,
        "validation": {"f1": pct(val_scores["f1"]), "se": pct(val_scores["se"]),
                       "ppv": pct(val_scores["ppv"])},
        "torch": torch.__version__,
        "python": platform.python_version(),
    }  # fmt: skip
    blob = encode_artifact(net, spec, metadata=metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return {
        "artifact": str(out),
        "version": artifact_version(blob),
        "bytes": len(blob),
        "best_epoch": selected.best_epoch,
        "validation": metadata["validation"],
        "history": selected.history,
        "seconds": {"data": round(t_data, 1), "train": round(t_train, 1)},
    }
