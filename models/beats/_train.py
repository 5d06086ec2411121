"""Training of :class:`~models.beats.BeatNet`: deterministic, class-weighted, early-stopped.

Pure computation on arrays; loading records and choosing the splits is the caller's job
(``cardiowatch train beats``, :mod:`cardiowatch.beats_data`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ._features import FeatureSpec
from ._model import AAMI_CLASSES, BeatNet

__all__ = [
    "PREMATURE_EXPONENTS",
    "TrainConfig",
    "TrainResult",
    "class_scores",
    "premature_copies",
    "selection_score",
    "train_beat_net",
]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_beat_net`.

    Parameters
    ----------
    epochs
        Maximum number of epochs; the cosine learning-rate schedule always spans this many,
        also when a run stops earlier (``run_epochs``), so epoch ``e`` of any run is the
        same network.
    batch_size
        Beats per optimisation step.
    lr
        Adam learning rate.
    weight_decay
        Adam weight decay.
    class_weight_power
        Class weights are ``(n_total / n_class) ** power`` (0 = unweighted, 1 = inverse
        frequency), normalised to mean 1 over the classes present.
    patience
        Stop after this many epochs without a better validation score.
    seed
        Seed of the weight initialisation, shuffling and dropout.
    threads
        torch CPU threads.
    morph_noise
        Standard deviation of Gaussian noise added to the morphology while training.
    amplitude_jitter
        Each training beat's morphology is scaled by ``1 + u``, ``u`` uniform in
        ``[-amplitude_jitter, amplitude_jitter]`` (0 = off).
    baseline_jitter
        Each training beat gets a random baseline offset and linear drift across its window,
        each uniform in ``[-baseline_jitter, baseline_jitter]`` (0 = off; baseline wander).
    cv_epochs
        Epochs each cross-validation member runs (:func:`~models.beats.cross_validate`); the
        shipped epoch count is chosen from their mean validation curve.
    min_epochs
        Smallest epoch count the cross-validation may choose.
    rr_skip
        Give the network a linear path from the RR features to the logits
        (:class:`~models.beats.BeatNet` ``rr_skip``).
    average_epochs
        In cross-validation, each member's network at epoch ``e`` is the mean of its weights
        after epochs ``e - average_epochs + 1 .. e`` (1 = the weights of epoch ``e``); the
        validation curve, the epoch choice and the shipped weights all use that mean.
    premature_s
        In every batch, each N beat becomes a synthetic S beat with this probability (0 =
        off): its morphology is kept and its RR columns become a premature beat's
        (:func:`premature_copies`), so that prematurity, not the few S patients' shapes,
        is what the network learns S from.
    premature_max_irregularity
        Only N beats whose ``rr_irregularity`` column is below this become synthetic S beats
        (``None``: any N beat); a beat is premature against a regular rhythm, not in AF.
    distill_weight
        Weight of the distillation term (0 = off): the loss is ``(1 - w)`` x the labels'
        cross-entropy + ``w`` x ``T**2`` x KL(teacher || student) at temperature
        ``distill_temperature``; training then needs a teacher (:func:`train_beat_net`).
    distill_temperature
        Temperature ``T`` of both softmaxes in the distillation term.
    channels
        Channels of the network's three convolution blocks (:class:`BeatNet`).
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    class_weight_power: float = 0.5
    patience: int = 6
    seed: int = 0
    threads: int = 2
    morph_noise: float = 0.02
    amplitude_jitter: float = 0.0
    baseline_jitter: float = 0.0
    cv_epochs: int = 12
    min_epochs: int = 3
    rr_skip: bool = False
    average_epochs: int = 1
    premature_s: float = 0.0
    premature_max_irregularity: float | None = None
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    channels: tuple[int, int, int] = (8, 16, 16)


#: RR column -> exponents ``(a, b)``: a synthetic premature beat's column is the N beat's
#: times ``f**a * g**b``, with ``f`` its previous RR and ``g`` its next RR relative to the N
#: beat's. Columns not listed (running, local and long-term averages, shape) are kept.
PREMATURE_EXPONENTS: dict[str, tuple[int, int]] = {
    "prev_rr_rel": (1, 0),
    "next_rr_rel": (0, 1),
    "prev_over_local": (1, 0),
    "next_over_prev": (-1, 1),
    "prev_rr_s": (1, 0),
    "next_over_local": (0, 1),
    "prev_over_median_local": (1, 0),
    "prev_over_sinus": (1, 0),
    "next_over_sinus": (0, 1),
}
#: Ranges of ``f`` (prematurity) and ``g`` (the pause after) of a synthetic premature beat.
PREMATURE_F = (0.55, 0.85)
PREMATURE_G = (1.0, 1.3)


def premature_copies(
    rr: torch.Tensor,
    y: torch.Tensor,
    rng: np.random.Generator,
    probability: float,
    exponents: npt.NDArray[np.float64],
    eligible: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn each N beat of a batch into a synthetic S beat with ``probability``.

    Parameters
    ----------
    rr, y
        The batch's RR columns ``(n, n_rr)`` and labels (not modified).
    rng
        Draws which beats and their ``f`` and ``g``.
    probability
        Chance of each N beat.
    exponents
        ``(n_rr, 2)``: each column's :data:`PREMATURE_EXPONENTS` (zeros for kept columns).
    eligible
        Boolean mask of the beats that may be chosen (``None``: every N beat). The random
        draws do not depend on it.

    Returns
    -------
    rr, y
        Copies with the chosen beats changed.

    Examples
    --------
    >>> rr = torch.ones((4, 2)); y = torch.tensor([0, 0, 1, 2])
    >>> e = np.array([[1.0, 0.0], [0.0, 0.0]])  # column 0 scales with f, column 1 is kept
    >>> rr2, y2 = premature_copies(rr, y, np.random.default_rng(0), 1.0, e)
    >>> y2.tolist(), bool((rr2[:2, 0] < 0.86).all()), rr2[:, 1].tolist()
    ([1, 1, 1, 2], True, [1.0, 1.0, 1.0, 1.0])
    """
    n_label, s_label = AAMI_CLASSES.index("N"), AAMI_CLASSES.index("S")
    chosen = (y.numpy() == n_label) & (rng.random(len(y)) < probability)
    if eligible is not None:
        chosen &= eligible.numpy()
    pick = np.flatnonzero(chosen)
    if not pick.size:
        return rr, y
    f = rng.uniform(*PREMATURE_F, size=(pick.size, 1))
    g = rng.uniform(*PREMATURE_G, size=(pick.size, 1))
    factor = f ** exponents[:, 0] * g ** exponents[:, 1]
    rr, y = rr.clone(), y.clone()
    idx = torch.from_numpy(pick)
    rr[idx] = rr[idx] * torch.from_numpy(factor.astype(np.float32))
    y[idx] = s_label
    return rr, y


@dataclass(frozen=True)
class TrainResult:
    """A trained network and how it got there."""

    net: BeatNet
    best_epoch: int  # 1-based; the epoch whose weights ``net`` holds
    history: list[dict[str, float]]
    config: TrainConfig
    states: list[dict[str, torch.Tensor]] = field(default_factory=list)  # after each epoch

    def config_dict(self) -> dict[str, float | int]:
        """The configuration as a JSON-able dict."""
        return asdict(self.config)


def class_scores(y_true: I64, y_pred: I64, n_classes: int) -> dict[str, npt.NDArray[np.float64]]:
    """Confusion matrix (rows = reference) and per-class Se, +P, F1 in percent.

    >>> s = class_scores(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
    >>> s["confusion"].tolist(), s["se"].tolist()
    ([[1, 1], [0, 1]], [50.0, 100.0])
    """
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = 100.0 * tp / cm.sum(axis=1)
        ppv = 100.0 * tp / cm.sum(axis=0)
        f1 = 2.0 * se * ppv / (se + ppv)
    return {"confusion": cm, "se": se, "ppv": ppv, "f1": f1}


def selection_score(y_true: I64, y_pred: I64) -> float:
    """Model-selection score: mean F1 of S and V plus a tenth of the accuracy (percent)."""
    s = class_scores(y_true, y_pred, len(AAMI_CLASSES))
    f1 = np.nan_to_num(s["f1"])
    accuracy = 100.0 * float(np.mean(y_true == y_pred)) if len(y_true) else 0.0
    return float(0.5 * (f1[1] + f1[2]) + 0.1 * accuracy)


def _augment(m: torch.Tensor, rng: np.random.Generator, config: TrainConfig) -> torch.Tensor:
    """Training-time morphology augmentation: noise, amplitude scale, baseline wander."""
    n, width = m.shape
    if config.amplitude_jitter > 0:
        scale = 1.0 + rng.uniform(-config.amplitude_jitter, config.amplitude_jitter, (n, 1))
        m = m * torch.from_numpy(scale.astype(np.float32))
    if config.baseline_jitter > 0:
        offset = rng.uniform(-config.baseline_jitter, config.baseline_jitter, (n, 1))
        drift = rng.uniform(-config.baseline_jitter, config.baseline_jitter, (n, 1))
        ramp = np.linspace(-0.5, 0.5, width)[np.newaxis, :]
        m = m + torch.from_numpy((offset + drift * ramp).astype(np.float32))
    if config.morph_noise > 0:
        noise = rng.normal(0.0, config.morph_noise, size=(n, width))
        m = m + torch.from_numpy(noise.astype(np.float32))
    return m


def _predict(net: BeatNet, morph: F32, rr: F32) -> I64:
    net.eval()
    out = []
    with torch.inference_mode():
        for a in range(0, len(morph), 8192):
            logits = net(torch.from_numpy(morph[a : a + 8192]), torch.from_numpy(rr[a : a + 8192]))
            out.append(logits.argmax(dim=1).numpy())
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _distilled(
    hard: torch.Tensor,
    logits: torch.Tensor,
    teacher: nn.Module,
    morph: torch.Tensor,
    rr: torch.Tensor,
    config: TrainConfig,
) -> torch.Tensor:
    """``hard`` (the labels' loss) mixed with the KL term of the teacher's softened logits."""
    temp, w = config.distill_temperature, config.distill_weight
    with torch.no_grad():
        soft = torch.softmax(teacher(morph, rr) / temp, dim=1)
    kl = nn.functional.kl_div(torch.log_softmax(logits / temp, dim=1), soft, reduction="batchmean")
    return (1.0 - w) * hard + w * temp * temp * kl


def train_beat_net(
    spec: FeatureSpec,
    train: tuple[F32, F32, I64],
    val: tuple[F32, F32, I64] | None,
    config: TrainConfig,
    *,
    epochs: int | None = None,
    run_epochs: int | None = None,
    keep_states: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    teacher: nn.Module | None = None,
) -> TrainResult:
    """Train a :class:`BeatNet` on ``(morph, rr, y)`` arrays.

    Parameters
    ----------
    spec
        Feature parameters of the arrays.
    train
        Training morphology ``(n, n_morph)``, RR features ``(n, n_rr)``, labels ``(n,)``
        (indices into :data:`AAMI_CLASSES`).
    val
        Validation arrays (other patients) for early stopping, or ``None`` to train for
        exactly ``epochs`` epochs and keep the last weights.
    config
        Hyper-parameters.
    epochs
        Overrides ``config.epochs`` (the schedule length).
    run_epochs
        Stop after this many epochs (default: the schedule length); the schedule is not
        shortened.
    keep_states
        Keep a copy of the weights after every epoch in :attr:`TrainResult.states`.
    on_epoch
        Called after every epoch with its number and its figures.
    teacher
        Network whose logits the student also learns from when ``config.distill_weight`` is
        above 0 (run in eval mode on each training batch as the student sees it, synthetic
        beats included); it should have been trained on the same patients as the student.

    Returns
    -------
    TrainResult
        With the weights of the best validation epoch (or of the last epoch without ``val``).

    Raises
    ------
    ValueError
        When distillation is asked for without a teacher.
    """
    if config.distill_weight > 0 and teacher is None:
        raise ValueError("distill_weight > 0 needs a teacher")
    if teacher is not None:
        teacher.eval()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(config.seed)
    n_classes = len(AAMI_CLASSES)
    morph, rr, y = train
    net = BeatNet(
        spec.n_morph, spec.n_rr, n_classes, channels=config.channels, rr_skip=config.rr_skip
    )
    rr_mean = rr.mean(axis=0)
    rr_std = np.maximum(rr.std(axis=0), 1e-3)
    net.rr_mean.copy_(torch.from_numpy(rr_mean.astype(np.float32)))
    net.rr_std.copy_(torch.from_numpy(rr_std.astype(np.float32)))

    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = (counts.sum() / counts[present]) ** config.class_weight_power
    weights[present] /= weights[present].mean()
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(weights.astype(np.float32)))
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_epochs = config.epochs if epochs is None else epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_epochs))

    m_all = torch.from_numpy(np.ascontiguousarray(morph))
    r_all = torch.from_numpy(np.ascontiguousarray(rr))
    y_all = torch.from_numpy(y)
    exponents = np.array(
        [PREMATURE_EXPONENTS.get(name, (0, 0)) for name in spec.rr_features], np.float64
    ).reshape(-1, 2)
    irregularity = -1  # column of rr_irregularity, when premature beats need it
    if config.premature_max_irregularity is not None:
        if "rr_irregularity" not in spec.rr_features:
            raise ValueError("premature_max_irregularity needs the rr_irregularity column")
        irregularity = list(spec.rr_features).index("rr_irregularity")
    best_score, best_epoch, best_state, stale = -np.inf, 0, None, 0
    history: list[dict[str, float]] = []
    states: list[dict[str, torch.Tensor]] = []
    last = n_epochs if run_epochs is None else min(n_epochs, run_epochs)
    for epoch in range(1, last + 1):
        net.train()
        order = torch.from_numpy(rng.permutation(len(y)))
        total = 0.0
        for a in range(0, len(y), config.batch_size):
            idx = order[a : a + config.batch_size]
            m = _augment(m_all[idx], rng, config)
            r, target = r_all[idx], y_all[idx]
            if config.premature_s > 0:
                eligible = None
                if config.premature_max_irregularity is not None:
                    eligible = r[:, irregularity] < config.premature_max_irregularity
                r, target = premature_copies(
                    r, target, rng, config.premature_s, exponents, eligible
                )
            opt.zero_grad()
            logits = net(m, r)
            loss = loss_fn(logits, target)
            if teacher is not None and config.distill_weight > 0:
                loss = _distilled(loss, logits, teacher, m, r, config)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if keep_states:
            states.append({k: v.clone() for k, v in net.state_dict().items()})
        figures = {"epoch": float(epoch), "loss": total / max(1, len(y))}
        if val is not None:
            pred = _predict(net, val[0], val[1])
            figures["val_score"] = selection_score(val[2], pred)
            s = class_scores(val[2], pred, n_classes)
            figures["val_f1_s"] = float(np.nan_to_num(s["f1"][1]))
            figures["val_f1_v"] = float(np.nan_to_num(s["f1"][2]))
            if figures["val_score"] > best_score:
                best_score, best_epoch, stale = figures["val_score"], epoch, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        history.append(figures)
        if on_epoch is not None:
            on_epoch(epoch, figures)
        if val is not None and stale >= config.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    net.eval()
    return TrainResult(
        net=net, best_epoch=best_epoch, history=history, config=config, states=states
    )
