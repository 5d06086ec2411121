"""Model selection inside the training set: patient-grouped cross-validation, logit offsets.

Pure computation on arrays. The caller passes one fold number per beat (all beats of a
patient in one fold); each fold's network is trained on the other folds for the one epoch count
chosen from the mean validation curve of all folds, and scores its own beats (*out-of-fold*),
so every training beat gets a prediction from a network that never saw its patient. The
networks together are the shipped ensemble; the out-of-fold logits choose the per-class
logit offsets (:func:`fit_logit_bias`) and compare training variants. Nothing here ever
sees a test patient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import torch

from ._features import FeatureSpec
from ._model import AAMI_CLASSES, BeatEnsemble, BeatNet
from ._train import TrainConfig, class_scores, selection_score, train_beat_net

__all__ = [
    "CrossValResult",
    "cross_validate",
    "fit_logit_bias",
    "net_logits",
    "scores_table",
    "seed_ensemble",
]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CrossValResult:
    """Networks of a patient-grouped cross-validation and their out-of-fold logits."""

    members: list[BeatNet]  # member k was trained without fold k, for ``epoch`` epochs
    oof_logits: F32  # (n_beats, n_classes): beat i scored by the member that did not see it
    best_epochs: list[int]  # epochs of each member's weights (all equal to ``epoch``)
    history: list[list[dict[str, float]]]
    epoch: int = 0  # the one epoch count chosen from the mean curve (1-based)
    curve: list[dict[str, float]] = field(default_factory=list)  # per epoch, mean over folds
    fold_best_epochs: list[int] = field(default_factory=list)  # per-fold argmax, report only


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


def _fold_figures(y: I64, logits: F32) -> dict[str, float]:
    s = class_scores(y, logits.argmax(axis=1), len(AAMI_CLASSES))
    f1 = np.nan_to_num(s["f1"])
    return {
        "score": selection_score(y, logits.argmax(axis=1)),
        "f1_s": float(f1[1]),
        "f1_v": float(f1[2]),
        "accuracy": 100.0 * float(np.mean(y == logits.argmax(axis=1))),
    }


def cross_validate(
    spec: FeatureSpec,
    data: tuple[F32, F32, I64],
    fold: I64,
    config: TrainConfig,
    *,
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
    teachers: Sequence[torch.nn.Module] | None = None,
) -> CrossValResult:
    """Train one network per fold on the other folds; choose ONE epoch count for all.

    Every member runs ``config.cv_epochs`` epochs (no early stopping) and its own fold is
    scored after each one. The epoch count with the best *mean* validation score over the
    folds (:func:`~models.beats._train.selection_score`, at least ``config.min_epochs``; ties
    take the earlier) is chosen, and every member keeps its weights of that epoch, so no
    member's stopping point depends on its own held-out patients alone. With
    ``config.average_epochs`` above 1, "the weights of epoch ``e``" are the mean of the
    weights after that epoch and the ones before it, for the curve as for the members.

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
    teachers
        One teacher per fold, for ``config.distill_weight`` > 0: teacher ``k`` must have been
        trained without fold ``k`` (e.g. the fold-``k`` networks of other runs), so member
        ``k``'s out-of-fold logits stay out of fold.

    Returns
    -------
    CrossValResult
    """
    morph, rr, y = data
    n_folds = int(fold.max()) + 1
    if teachers is not None and len(teachers) != n_folds:
        raise ValueError(f"one teacher per fold: {n_folds} folds, {len(teachers)} teachers")
    n_run = max(1, min(config.cv_epochs, config.epochs))
    run_config = replace(config, patience=n_run + 1)  # the curve is recorded, never cut short
    nets, history, per_epoch_logits, figures = [], [], [], []
    for k in range(n_folds):
        held = fold == k
        train = (morph[~held], rr[~held], y[~held])
        val = (morph[held], rr[held], y[held])

        def hook(epoch: int, fig: dict[str, float], k: int = k) -> None:
            if on_epoch is not None:
                on_epoch(k, epoch, fig)

        result = train_beat_net(
            spec, train, val, replace(run_config, seed=config.seed + k),
            run_epochs=n_run, keep_states=True, on_epoch=hook,
            teacher=None if teachers is None else teachers[k],
        )  # fmt: skip
        states = _averaged(result.states, config.average_epochs)
        logits = []
        for state in states:
            result.net.load_state_dict(state)
            logits.append(net_logits(result.net, val[0], val[1]))
        per_epoch_logits.append(logits)
        figures.append([_fold_figures(val[2], lg) for lg in logits])
        nets.append((result.net, states))
        history.append(result.history)
    curve = []
    for e in range(n_run):
        point = {"epoch": float(e + 1)}
        for key in ("score", "f1_s", "f1_v", "accuracy"):
            point[key] = float(np.mean([figures[k][e][key] for k in range(n_folds)]))
        oof_e = np.zeros((len(y), len(AAMI_CLASSES)), np.float32)
        for k in range(n_folds):
            oof_e[fold == k] = per_epoch_logits[k][e]
        point["pooled_score"] = selection_score(y, oof_e.argmax(axis=1))
        curve.append(point)
    lowest = min(max(1, config.min_epochs), n_run)
    epoch = max(range(lowest, n_run + 1), key=lambda e: (curve[e - 1]["score"], -e))
    oof = np.zeros((len(y), len(AAMI_CLASSES)), np.float32)
    members = []
    for k, (net, states) in enumerate(nets):
        net.load_state_dict(states[epoch - 1])
        net.eval()
        members.append(net)
        oof[fold == k] = per_epoch_logits[k][epoch - 1]
    fold_best = [1 + int(np.argmax([f["score"] for f in figures[k]])) for k in range(n_folds)]
    return CrossValResult(
        members=members, oof_logits=oof, best_epochs=[epoch] * n_folds, history=history,
        epoch=epoch, curve=curve, fold_best_epochs=fold_best,
    )  # fmt: skip


def seed_ensemble(runs: Sequence[CrossValResult], y: I64) -> tuple[BeatEnsemble, F32]:
    """The fold networks of several seeds' cross-validations as one ensemble.

    Parameters
    ----------
    runs
        :func:`cross_validate` results of one recipe with different seeds, on the same folds.
    y
        Labels of the beats the runs were scored on.

    Returns
    -------
    ensemble
        Every run's members, seed-major (member ``i`` was trained without fold
        ``i % n_folds``), with logit offsets (:func:`fit_logit_bias`) fitted on the pooled
        out-of-fold logits.
    oof_logits
        The mean over runs of their out-of-fold logits (without the offsets): beat ``j``
        scored by the members, one per seed, that did not see its patient.
    """
    if not runs:
        raise ValueError("a seed ensemble needs at least one cross-validation run")
    if len({len(r.members) for r in runs}) != 1:
        raise ValueError("every run must have one member per fold, on the same folds")
    oof = np.mean([r.oof_logits for r in runs], axis=0).astype(np.float32)
    bias = fit_logit_bias(oof, y)
    members = [m for r in runs for m in r.members]
    return BeatEnsemble(members, torch.from_numpy(bias)), oof


def _averaged(states: list[dict[str, torch.Tensor]], n: int) -> list[dict[str, torch.Tensor]]:
    """Each epoch's weights averaged with those of the ``n - 1`` epochs before it."""
    if n <= 1:
        return states
    out = []
    for e in range(len(states)):
        window = states[max(0, e - n + 1) : e + 1]
        out.append({k: torch.stack([s[k] for s in window]).mean(dim=0) for k in states[e]})
    return out


def fit_logit_bias(
    logits: F32,
    y: I64,
    *,
    classes: tuple[int, ...] = (1, 2),
    grid: tuple[float, ...] = tuple(np.round(np.arange(-2.0, 2.01, 0.25), 2)),
    rounds: int = 2,
) -> F32:
    """Per-class logit offsets that maximise the selection score on (out-of-fold) logits.

    Coordinate ascent: each class of ``classes`` in turn takes the offset of ``grid`` with the
    best :func:`~models.beats._train.selection_score` (ties keep the smaller magnitude), for
    ``rounds`` rounds. Class 0 (N) stays at 0 (only differences matter). The default fits S
    and V only: F is nearly all one DS1 patient (208), so its out-of-fold logits come from the
    one member that saw almost no F and say little about the ensemble.

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
