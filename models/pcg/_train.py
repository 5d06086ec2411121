"""Training of the PCG window classifier (multi-task, masked targets, fixed epochs).

No early stopping and no threshold tuning: nothing is selected on held-out data. Targets of
``-1`` are masked. Each head's positive class is re-weighted to the negative count of the
training set, so a probability of 0.5 is the balanced operating point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ._model import HEADS, PASCAL_CLASSES, PcgNet, Standardise

__all__ = ["TrainConfig", "train_pcg_net"]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (fixed in advance; saved with the model).

    ``balance_db``: weight each window by ``1 / windows of its database`` (normalised to mean 1),
    so that every database carries the same total weight in the loss. ``cycle_norm``: the
    network's cycle-feature branch standardises its input (``PcgNet(cycle_norm=True)``).
    """

    seed: int = 0
    epochs: int = 25
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    threads: int = 1
    channels: tuple[int, ...] = (8, 16, 32)
    hidden: int = 32
    balance_db: bool = False
    cycle_norm: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``cycle_norm`` only when true, so older models' metadata and bytes
        are reproduced)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        if not d["cycle_norm"]:
            del d["cycle_norm"]
        return d


def _pos_weight(y: npt.NDArray[np.float32]) -> torch.Tensor:
    w = []
    for j in range(y.shape[1]):
        col = y[:, j]
        pos, neg = float((col == 1).sum()), float((col == 0).sum())
        w.append(neg / pos if pos > 0 and neg > 0 else 1.0)
    return torch.tensor(w, dtype=torch.float32)


def train_pcg_net(
    features: npt.NDArray[np.float32],
    targets: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64],
    config: TrainConfig,
    *,
    groups: npt.NDArray[np.int64] | None = None,
    cycle: npt.NDArray[np.float32] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> PcgNet:
    """Train a :class:`PcgNet`.

    Parameters
    ----------
    features
        Log-mel windows ``(n, n_mels, n_frames)``.
    targets
        ``(n, 3)`` targets of ``HEADS`` in {0, 1}, -1 where unknown.
    classes
        ``(n,)`` index into ``PASCAL_CLASSES``, -1 outside PASCAL.
    config
        Hyper-parameters.
    groups
        ``(n,)`` database of each window; used when ``config.balance_db``.
    cycle
        ``(n, n_cycle)`` heart-cycle features of each window; with ``n_cycle > 0`` the network
        gets a cycle branch (:class:`PcgNet`), else (or ``None``) it takes log-mel windows only.
    on_epoch
        Called with (epoch, mean loss) after each epoch.
    """
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    c = torch.from_numpy(np.ascontiguousarray(classes, dtype=np.int64))
    n_cycle = 0 if cycle is None or cycle.ndim != 2 else cycle.shape[1]
    cyc = torch.from_numpy(
        np.ascontiguousarray(cycle if n_cycle else np.zeros((len(x), 0)), dtype=np.float32)
    )
    pos_weight = _pos_weight(targets)
    weight = np.ones(len(features), dtype=np.float32)
    if config.balance_db and groups is not None and len(groups):
        _, inv, counts_db = np.unique(groups, return_inverse=True, return_counts=True)
        weight = (1.0 / counts_db[inv]).astype(np.float32)
        weight /= weight.mean()
    w = torch.from_numpy(weight)
    counts = np.bincount(classes[classes >= 0], minlength=len(PASCAL_CLASSES)).astype(np.float64)
    class_w = torch.tensor(
        np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(PASCAL_CLASSES), 0.0),
        dtype=torch.float32,
    )
    net = PcgNet(
        channels=config.channels, hidden=config.hidden, n_cycle=n_cycle,
        cycle_norm=config.cycle_norm,
    )  # fmt: skip
    if net.cycle is not None and isinstance(net.cycle[0], Standardise):
        net.cycle[0].fit(cyc)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
    ce_mean = nn.CrossEntropyLoss(weight=class_w, ignore_index=-1)
    ce = nn.CrossEntropyLoss(weight=class_w, ignore_index=-1, reduction="none")
    n = len(x)
    n_heads = len(HEADS)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * max(1, -(-n // config.batch_size))
    )
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(n)
        total, batches = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = torch.from_numpy(order[start : start + config.batch_size])
            xb = x[idx]
            # Time shift (circular, up to a quarter window) and one masked mel band.
            shift = int(rng.integers(0, xb.shape[2] // 4 + 1))
            xb = torch.roll(xb, shifts=shift, dims=2)
            band = int(rng.integers(0, xb.shape[1]))
            xb[:, band, :] = 0.0
            out = net(xb, cyc[idx] if n_cycle else None)
            yb, cb, wb = y[idx], c[idx], w[idx]
            mask = (yb >= 0).float() * wb[:, None]
            loss_heads = (bce(out[:, :n_heads], yb.clamp(min=0)) * mask).sum() / mask.sum().clamp(
                min=1.0
            )
            loss = loss_heads
            labelled = cb >= 0
            if bool(labelled.any()) and not config.balance_db:
                loss = loss + 0.5 * ce_mean(out[:, n_heads:], cb)
            elif bool(labelled.any()):
                per = ce(out[:, n_heads:], cb)
                cw = class_w[cb.clamp(min=0)] * labelled.float()
                loss = loss + 0.5 * (per * wb).sum() / cw.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            batches += 1
        if on_epoch is not None:
            on_epoch(epoch, total / max(batches, 1))
    net.eval()
    return net
