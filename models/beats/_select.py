"""Model selection inside the training set: patient-grouped cross-validation, logit offsets.

Pure computation on arrays. The caller passes one fold number per beat (all beats of a
patient in one fold); each fold's network is trained on the other folds and early-stopped on
its own, and scores its own beats (*out-of-fold*), so every training beat gets a prediction
from a network that never saw its patient. The networks together are the shipped ensemble;
the out-of-fold logits choose the per-class logit offsets (:func:`fit_logit_bias`) and compare
training variants. Nothing here ever sees a test patient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import torch

from ._features import FeatureSpec
from ._model import AAMI_CLASSES, BeatNet
from ._train import TrainConfig, class_scores, selection_score, train_beat_net

__all__ = ["CrossValResult", "cross_validate", "fit_logit_bias", "net_logits", "scores_table"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CrossValResult:
    """Networks of a patient-grouped cross-validation and their out-of-fold logits."""

    members: list[BeatNet]  # member k was trained without fold k
    oof_logits: F32  # (n_beats, n_classes): beat i scored by the member that did not see it
    best_epochs: list[int]
    history: list[list[dict[str, float]]]


def net_logits(net: torch.nn.Module, morph: F32, rr: F32) -> F32:
    """Logits of ``net`` in eval mode, ``(n, n_classes)``."""
    net.eval()
    out = []
    with torch.inference_mode():
        for a in range(0, len(morph), 8192):
            m = torch.from_numpy(np.ascontiguousarray(morph[a : a + 8192]))
            r = torch.from_numpy(np.ascontiguousarray(rr[a : a + 8192]))
            out.append(net(m, r).numpy())
    if not out:
        return np.zeros((0, len(AAMI_CLASSES)), np.float32)
    return np.concatenate(out).astype(np.float32)


def cross_validate(
    spec: FeatureSpec,
    data: tuple[F32, F32, I64],
    fold: I64,
    config: TrainConfig,
    *,
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
) -> CrossValResult:
    """Train one network per fold on the other folds, early-stopped on its own fold.

    Parameters
    ----------
    spec
        Feature parameters of the arrays.
    data
        Morphology, RR features and labels of every training beat.
    fold
        Fold number of every beat (``0 .. k-1``), constant per patient.
    config
        Hyper-parameters; member ``k`` uses seed ``config.seed + k``.
    on_epoch
        Called with (fold, epoch, figures) after every epoch.

    Returns
    -------
    CrossValResult
    """
    morph, rr, y = data
    n_folds = int(fold.max()) + 1
    oof = np.zeros((len(y), len(AAMI_CLASSES)), np.float32)
    members, best_epochs, history = [], [], []
    for k in range(n_folds):
        held = fold == k
        train = (morph[~held], rr[~held], y[~held])
        val = (morph[held], rr[held], y[held])

        def hook(epoch: int, figures: dict[str, float], k: int = k) -> None:
            if on_epoch is not None:
                on_epoch(k, epoch, figures)

        result = train_beat_net(spec, train, val, replace(config, seed=config.seed + k),
                                on_epoch=hook)  # fmt: skip
        oof[held] = net_logits(result.net, val[0], val[1])
        members.append(result.net)
        best_epochs.append(result.best_epoch)
        history.append(result.history)
    return CrossValResult(members, oof, best_epochs, history)


def fit_logit_bias(
    logits: F32,
    y: I64,
    *,
    classes: tuple[int, ...] = (1, 2, 3),
    grid: tuple[float, ...] = tuple(np.round(np.arange(-2.0, 2.01, 0.25), 2)),
    rounds: int = 2,
) -> F32:
    """Per-class logit offsets that maximise the selection score on (out-of-fold) logits.

    Coordinate ascent: each class of ``classes`` in turn takes the offset of ``grid`` with the
    best :func:`~models.beats._train.selection_score` (ties keep the smaller magnitude), for
    ``rounds`` rounds. Class 0 (N) stays at 0 (only differences matter).

    >>> logits = np.array([[1.0, 0.6], [1.0, 0.2], [0.0, 1.0]], np.float32)
    >>> fit_logit_bias(logits, np.array([1, 0, 1]), classes=(1,), grid=(0.0, 0.5)).tolist()
    [0.0, 0.5]
    """
    bias = np.zeros(logits.shape[1], np.float32)
    for _ in range(rounds):
        for c in classes:
            best, best_b = -np.inf, 0.0
            for b in sorted(grid, key=abs):
                trial = bias.copy()
                trial[c] = b
                score = selection_score(y, (logits + trial).argmax(axis=1))
                if score > best + 1e-9:
                    best, best_b = score, b
            bias[c] = best_b
    return bias


def scores_table(y: I64, pred: I64) -> dict[str, dict[str, float]]:
    """Per-class Se, +P, F1 (percent, NaN as 0) and the accuracy, JSON-able."""
    s = class_scores(y, pred, len(AAMI_CLASSES))
    out: dict[str, dict[str, float]] = {}
    for i, c in enumerate(AAMI_CLASSES):
        out[c] = {k: round(float(np.nan_to_num(s[k][i])), 2) for k in ("se", "ppv", "f1")}
    out["all"] = {
        "accuracy": round(100.0 * float(np.mean(y == pred)), 2),
        "score": round(selection_score(y, pred), 2),
    }
    return out
