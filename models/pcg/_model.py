"""The window classifier: a small 2-D CNN on log-mel windows, and its artifact format.

Outputs per window: three independent probabilities (``abnormal``, ``murmur``,
``poor_quality``) and a 5-class softmax over the PASCAL labels (``PASCAL_CLASSES``), used for
PASCAL's confusion matrix. An artifact uses the layout of the beat classifier's
(``models/beats/_model.py``: magic, JSON header, float32 tensors; no pickle) with
``"name": "pcg"`` and the :class:`~models.pcg.WindowSpec` it was trained with.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy import special
from torch import nn
from torch.nn import functional

from models.beats import artifact_version

from ._features import PcgWindow, WindowSpec

__all__ = [
    "HEADS",
    "PASCAL_CLASSES",
    "FrozenPcgForward",
    "PcgClassifier",
    "PcgNet",
    "decode_pcg_artifact",
    "encode_pcg_artifact",
    "net_logits",
]

#: The independent probabilities, in output order.
HEADS = ("abnormal", "murmur", "poor_quality")
#: PASCAL labels (set A and set B together), in the order of the softmax outputs.
PASCAL_CLASSES = ("normal", "murmur", "extrahls", "extrastole", "artifact")
MAGIC = b"CWMODEL1"
_CYCLE_WIDTH = 16  # outputs of the cycle-feature branch


class Standardise(nn.Module):
    """``(x - mean) / std`` with fixed statistics (buffers, set once from the training set)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def fit(self, x: torch.Tensor) -> None:
        """Set the statistics from ``x`` ``(n_samples, n)`` (a constant column keeps std 1)."""
        self.mean.copy_(x.mean(dim=0))
        std = x.std(dim=0) if len(x) > 1 else torch.ones(x.shape[1])
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised ``x``."""
        return (x - self.mean) / self.std


class PcgNet(nn.Module):
    """Three conv blocks (3x3, ReLU, 2x2 max-pool), global average and max pooling, a head;
    optionally a second input, the window's heart-cycle features, through a small dense branch
    whose output joins the pooled conv features (like the beat model's RR branch).

    Parameters
    ----------
    channels
        Channels of the conv blocks.
    hidden
        Width of the head.
    n_cycle
        Length of the cycle-feature input (0: none, the network takes log-mel windows only).
    cycle_norm
        Standardise the cycle features by the training set's mean and standard deviation
        (:class:`Standardise`, saved with the model) before the branch's dense layer, and drop
        out 20 % of the branch's outputs in training.
    """

    def __init__(
        self, *, channels: tuple[int, ...] = (16, 32, 32), hidden: int = 32, n_cycle: int = 0,
        cycle_norm: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.arch: dict[str, Any] = {"channels": list(channels), "hidden": hidden}
        self.n_cycle = n_cycle
        if n_cycle:
            self.arch["n_cycle"] = n_cycle
        if n_cycle and cycle_norm:
            self.arch["cycle_norm"] = True
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.conv = nn.Sequential(*layers)
        # Built only with a cycle input: an unused layer would draw from the seeded RNG and
        # change the initialisation (and bytes) of models without one.
        self.cycle: nn.Sequential | None = None
        if n_cycle:
            branch: list[nn.Module] = [Standardise(n_cycle)] if cycle_norm else []
            branch += [nn.Linear(n_cycle, _CYCLE_WIDTH), nn.ReLU()]
            branch += [nn.Dropout(0.2)] if cycle_norm else []
            self.cycle = nn.Sequential(*branch)
        self.head = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(2 * c_in + (_CYCLE_WIDTH if n_cycle else 0), hidden),
            nn.ReLU(),
            nn.Linear(hidden, len(HEADS) + len(PASCAL_CLASSES)),
        )

    def forward(self, x: torch.Tensor, cycle: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(batch, 3 + 5)`` of log-mel windows ``(batch, n_mels, n_frames)`` and, when
        the network has a cycle branch, their cycle features ``(batch, n_cycle)``."""
        h = self.conv(x.unsqueeze(1))
        pooled = torch.cat((h.mean(dim=(2, 3)), h.amax(dim=(2, 3))), dim=1)
        if self.cycle is not None:
            if cycle is None:
                raise ValueError("this network needs the windows' cycle features")
            pooled = torch.cat((pooled, self.cycle(cycle)), dim=1)
        out: torch.Tensor = self.head(pooled)
        return out


def net_logits(
    net: PcgNet, features: npt.NDArray[np.float32], cycle: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """Raw outputs ``(n, 3 + 5)`` of ``net`` in inference mode (``cycle`` ignored when the
    network has no cycle branch)."""
    c = None
    if net.n_cycle and cycle is not None:
        c = torch.from_numpy(np.ascontiguousarray(cycle, dtype=np.float32))
    with torch.inference_mode():
        out = net(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), c)
    return np.asarray(out.numpy(), dtype=np.float32)


def _linear(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(layer, nn.Linear) or layer.bias is None:
        raise TypeError(f"expected a Linear layer with a bias, got {type(layer).__name__}")
    return layer.weight.detach(), layer.bias.detach()


def _max_pool_2x2(h: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(h, 2)`` of ``(batch, channels, height, width)``: an odd last row or column
    is dropped, as there."""
    height, width = h.shape[2] // 2 * 2, h.shape[3] // 2 * 2
    cols = torch.maximum(h[:, :, :, 0:width:2], h[:, :, :, 1:width:2])
    return torch.maximum(cols[:, :, 0:height:2], cols[:, :, 1:height:2])


class FrozenPcgForward:
    """:meth:`PcgNet.forward` in eval mode as a fixed sequence of functional torch calls.

    In the worker each chunk scores about one window, so the per-call cost of the module tree
    (hooks, ``Sequential`` dispatch, identity dropout) is a sizeable share of the classifier's
    time. This calls the ops directly, on the network's own parameter storage (``detach()``
    shares it, so in-place updates of the weights are seen; replacing layers is not). Each
    block pools before its ReLU, which gives the same values (ReLU is monotone, so it commutes
    with the max) on a quarter of the elements, and pools with two element-wise maxima of
    strided views (:func:`_max_pool_2x2`, several times faster than ``max_pool2d`` on these
    small single-window inputs, same values). Results equal the module's forward pass (bit
    for bit on the shipped model; ``tests/unit/test_pcg_stages.py`` allows float rounding).

    Parameters
    ----------
    net
        The network (its :class:`PcgNet` layout; dropout is skipped, as in eval mode).
    """

    def __init__(self, net: PcgNet) -> None:
        self.convs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in net.conv:
            if isinstance(layer, nn.Conv2d):
                if layer.bias is None or layer.padding != (1, 1) or layer.stride != (1, 1):
                    raise TypeError("expected 3x3 convolutions with a bias, stride 1, padding 1")
                self.convs.append((layer.weight.detach(), layer.bias.detach()))
        self.cycle_stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self.cycle_fc: tuple[torch.Tensor, torch.Tensor] | None = None
        if net.cycle is not None:
            for layer in net.cycle:
                if isinstance(layer, Standardise):
                    self.cycle_stats = (layer.mean, layer.std)
                elif isinstance(layer, nn.Linear):
                    self.cycle_fc = _linear(layer)
        self.head1 = _linear(net.head[1])
        self.head2 = _linear(net.head[3])

    def __call__(self, x: torch.Tensor, cycle: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(batch, 3 + 5)``, as :meth:`PcgNet.forward` (call under inference mode)."""
        h = x.unsqueeze(1)
        for weight, bias in self.convs:
            h = functional.relu(_max_pool_2x2(functional.conv2d(h, weight, bias, padding=1)))
        parts = [h.mean(dim=(2, 3)), h.amax(dim=(2, 3))]
        if self.cycle_fc is not None:
            if cycle is None:
                raise ValueError("this network needs the windows' cycle features")
            if self.cycle_stats is not None:
                cycle = (cycle - self.cycle_stats[0]) / self.cycle_stats[1]
            parts.append(functional.relu(functional.linear(cycle, *self.cycle_fc)))
        hidden = functional.relu(functional.linear(torch.cat(parts, dim=1), *self.head1))
        return functional.linear(hidden, *self.head2)


def encode_pcg_artifact(
    net: PcgNet, spec: WindowSpec, *, metadata: dict[str, Any] | None = None
) -> bytes:
    """Serialise a trained network with its window spec and metadata (deterministic bytes)."""
    state = net.state_dict()
    header = {
        "name": "pcg",
        "arch": net.arch,
        "spec": spec.to_dict(),
        "heads": list(HEADS),
        "classes": list(PASCAL_CLASSES),
        "tensors": [[name, list(t.shape)] for name, t in state.items()],
        "metadata": metadata or {},
    }
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    body = b"".join(
        t.detach().cpu().numpy().astype("<f4", copy=False).tobytes() for t in state.values()
    )
    return MAGIC + struct.pack("<I", len(head)) + head + body


def decode_pcg_artifact(data: bytes) -> tuple[dict[str, Any], PcgNet]:
    """Header and network of a PCG artifact.

    Raises
    ------
    ValueError
        When the bytes are not a complete PCG artifact.
    """
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise ValueError("not a cardiowatch model artifact")
    (n_head,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header: dict[str, Any] = json.loads(data[start : start + n_head])
        arch = header["arch"]
        if header["name"] != "pcg":
            raise ValueError(f"a {header['name']!r} model, not 'pcg'")
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid model artifact header ({exc!r})") from None
    net = PcgNet(
        channels=tuple(arch["channels"]),
        hidden=arch["hidden"],
        n_cycle=arch.get("n_cycle", 0),
        cycle_norm=arch.get("cycle_norm", False),
    )
    offset = start + n_head
    state: dict[str, torch.Tensor] = {}
    for name, shape in header["tensors"]:
        n = int(np.prod(shape)) if shape else 1
        if offset + 4 * n > len(data):
            raise ValueError("truncated model artifact")
        values = np.frombuffer(data, dtype="<f4", count=n, offset=offset).reshape(shape)
        state[name] = torch.from_numpy(values.astype(np.float32))
        offset += 4 * n
    if offset != len(data):
        raise ValueError("trailing bytes in model artifact")
    net.load_state_dict(state)
    net.eval()
    return header, net


@dataclass
class PcgClassifier:
    """A loaded PCG model: the network, its window spec and its version."""

    net: PcgNet
    spec: WindowSpec
    version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    _forward: FrozenPcgForward | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> PcgClassifier:
        """Load an artifact (see :func:`decode_pcg_artifact`)."""
        header, net = decode_pcg_artifact(data)
        spec = WindowSpec.from_dict(header["spec"])
        return cls(net, spec, artifact_version(data), header.get("metadata", {}))

    def logits(
        self, features: npt.NDArray[np.float32], cycle: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float32]:
        """Raw outputs ``(n, 3 + 5)`` for stacked features ``(n, n_mels, n_frames)`` and cycle
        features ``(n, n_cycle)`` (needed when the network has a cycle branch)."""
        if len(features) == 0:
            return np.zeros((0, len(HEADS) + len(PASCAL_CLASSES)), dtype=np.float32)
        if self.net.training:  # dropout active: only the module knows how
            return net_logits(self.net, features, cycle)
        if self._forward is None:
            self._forward = FrozenPcgForward(self.net)
        c = None
        if self.net.n_cycle and cycle is not None:
            c = torch.from_numpy(np.ascontiguousarray(cycle, dtype=np.float32))
        with torch.inference_mode():
            out = self._forward(torch.from_numpy(np.ascontiguousarray(features, np.float32)), c)
        return np.asarray(out.numpy(), dtype=np.float32)

    def score(self, windows: list[PcgWindow]) -> npt.NDArray[np.float32]:
        """Probabilities ``(n, 3)`` of ``HEADS`` for each window."""
        if not windows:
            return np.zeros((0, len(HEADS)), dtype=np.float32)
        cycle = np.stack([w.cycle for w in windows]) if self.net.n_cycle else None
        z = self.logits(np.stack([w.features for w in windows]), cycle)[:, : len(HEADS)]
        return np.asarray(special.expit(z), dtype=np.float32)
