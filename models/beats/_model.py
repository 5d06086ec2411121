"""The beat classifier: a small 1-D CNN on morphology with an MLP on RR features.

A model travels as one *artifact*: a self-describing byte string (no pickle, safe to load from
Redis) holding the weights, the :class:`~models.beats.FeatureSpec` they were trained with, the
class list, the architecture and the training metrics. Its version is the SHA-256 of those
bytes, so the same bytes always have the same version and any change gives a new one.

Layout: ``b"CWMODEL1"``, a little-endian uint32 header length, the header as UTF-8 JSON
(``name``, ``arch``, ``spec``, ``classes``, ``tensors`` = ``[name, shape]`` in order,
``metadata``), then every tensor as little-endian float32, in header order.

Format versions: a header without ``format_version`` (version 1) holds one :class:`BeatNet`.
Version 2 (``"format_version": 2``) holds a :class:`BeatEnsemble`: ``arch`` is
``{"kind": "ensemble", "members": k, "member": <BeatNet arch>}`` and the tensors are the
members' (``members.<i>.<name>``) plus ``logit_bias``. A single network is still written as
version 1, so older artifacts and their versions are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ._features import BeatFeatures, FeatureSpec

__all__ = [
    "AAMI_CLASSES",
    "BeatClassifier",
    "BeatEnsemble",
    "BeatNet",
    "artifact_version",
    "decode_artifact",
    "encode_artifact",
]

#: AAMI beat classes, in the order of the model's outputs.
AAMI_CLASSES = ("N", "S", "V", "F", "Q")
MAGIC = b"CWMODEL1"
#: Artifact format written for ensembles (single networks keep format 1).
FORMAT_ENSEMBLE = 2
#: Batches up to this size run an ensemble fused (fewer torch calls); larger ones member by
#: member (grouped convolutions were slower there on this CPU).
FUSED_MAX_BEATS = 64


class BeatNet(nn.Module):
    """Morphology CNN + RR MLP, fused by a small head.

    Parameters
    ----------
    n_morph
        Morphology samples per beat.
    n_rr
        RR features per beat.
    n_classes
        Output classes.
    channels
        Channels of the three convolution blocks.
    hidden
        Width of the fused head.
    n_channels
        Morphology input channels (1: the beat of the primary lead).
    rr_skip
        Add a linear path from the standardised RR features straight to the logits (a "wide"
        part beside the deep one; ``arch["rr_skip"]`` only when set, so older artifacts keep
        their bytes).

    Notes
    -----
    The RR features are standardised inside the model with the training set's mean and
    standard deviation (buffers ``rr_mean``, ``rr_std``), so they are saved with the weights.
    """

    rr_mean: torch.Tensor
    rr_std: torch.Tensor

    def __init__(
        self,
        n_morph: int,
        n_rr: int,
        n_classes: int,
        *,
        channels: tuple[int, int, int] = (8, 16, 16),
        hidden: int = 32,
        n_channels: int = 1,
        rr_skip: bool = False,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.n_classes = n_classes
        self.arch = {
            "n_morph": n_morph,
            "n_rr": n_rr,
            "n_classes": n_classes,
            "channels": list(channels),
            "hidden": hidden,
            "n_channels": n_channels,
        }
        if rr_skip:
            self.arch["rr_skip"] = True
        self.conv = nn.Sequential(
            nn.Conv1d(n_channels, c1, 7, padding=3),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(c1, c2, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(c2, c3, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        n_flat = c3 * (((n_morph // 2) // 2) // 2)
        self.morph_fc = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, hidden), nn.ReLU())
        self.rr_fc = nn.Sequential(nn.Linear(n_rr, 16), nn.ReLU())
        self.head = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(hidden + 16, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )
        self.rr_skip = nn.Linear(n_rr, n_classes) if rr_skip else None
        self.register_buffer("rr_mean", torch.zeros(n_rr))
        self.register_buffer("rr_std", torch.ones(n_rr))

    def forward(self, morph: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, n_classes)`` of morphology ``(n, n_morph)`` and RR ``(n, n_rr)``."""
        m = self.morph_fc(self.conv(morph.unsqueeze(1)))
        z = (rr - self.rr_mean) / self.rr_std
        out: torch.Tensor = self.head(torch.cat([m, self.rr_fc(z)], dim=1))
        if self.rr_skip is not None:
            out = out + self.rr_skip(z)
        return out


class BeatEnsemble(nn.Module):
    """Mean of the logits of several :class:`BeatNet` plus a per-class logit offset.

    Parameters
    ----------
    members
        Networks of one architecture (e.g. the models of a patient-grouped cross-validation).
    logit_bias
        Offset added to the mean logits, one per class (a decision-threshold / prior
        correction chosen on training patients); zeros when ``None``.
    """

    logit_bias: torch.Tensor

    def __init__(self, members: list[BeatNet], logit_bias: torch.Tensor | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        n_classes = members[0].n_classes
        bias = torch.zeros(n_classes) if logit_bias is None else logit_bias.float().clone()
        self.register_buffer("logit_bias", bias)
        self.arch = {"kind": "ensemble", "members": len(members), "member": members[0].arch}

    def forward(self, morph: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """Mean member logits plus :attr:`logit_bias`, shape ``(n, n_classes)``."""
        total = self.members[0](morph, rr)
        for member in list(self.members)[1:]:
            total = total + member(morph, rr)
        out: torch.Tensor = total / len(self.members) + self.logit_bias
        return out


def _beat_net(arch: dict[str, Any]) -> BeatNet:
    return BeatNet(
        arch["n_morph"],
        arch["n_rr"],
        arch["n_classes"],
        channels=tuple(arch["channels"]),
        hidden=arch["hidden"],
        n_channels=arch["n_channels"],
        rr_skip=bool(arch.get("rr_skip", False)),
    )


def artifact_version(data: bytes) -> str:
    """Version of an artifact: ``sha256:`` and the first 16 hex digits of its SHA-256.

    >>> artifact_version(b"x")
    'sha256:2d711642b726b044'
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def encode_artifact(
    net: BeatNet | BeatEnsemble,
    spec: FeatureSpec,
    *,
    classes: tuple[str, ...] = AAMI_CLASSES,
    metadata: dict[str, Any] | None = None,
) -> bytes:
    """Serialise a trained model with its preprocessing parameters and metrics.

    Parameters
    ----------
    net
        Trained network (format 1) or ensemble (format 2).
    spec
        Feature parameters it was trained with.
    classes
        Class names, in output order.
    metadata
        JSON-able training facts and metrics.

    Returns
    -------
    bytes
        The artifact; the same inputs always give the same bytes.
    """
    state = net.state_dict()
    tensors = [[name, list(t.shape)] for name, t in state.items()]
    header: dict[str, Any] = {
        "name": "beats",
        "arch": net.arch,
        "spec": spec.to_dict(),
        "classes": list(classes),
        "tensors": tensors,
        "metadata": metadata or {},
    }
    if isinstance(net, BeatEnsemble):
        header["format_version"] = FORMAT_ENSEMBLE
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    body = b"".join(
        t.detach().cpu().numpy().astype("<f4", copy=False).tobytes() for t in state.values()
    )
    return MAGIC + struct.pack("<I", len(head)) + head + body


def decode_artifact(data: bytes) -> tuple[dict[str, Any], BeatNet | BeatEnsemble]:
    """Header and network of an artifact (validated; no pickle involved).

    Raises
    ------
    ValueError
        When the bytes are not a complete artifact of this format.
    """
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise ValueError("not a cardiowatch model artifact")
    (n_head,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if start + n_head > len(data):
        raise ValueError("truncated model artifact header")
    net: BeatNet | BeatEnsemble
    try:
        header: dict[str, Any] = json.loads(data[start : start + n_head])
        arch = header["arch"]
        fmt = header.get("format_version", 1)
        if fmt == 1:
            net = _beat_net(arch)
        elif fmt == FORMAT_ENSEMBLE:
            net = BeatEnsemble([_beat_net(arch["member"]) for _ in range(int(arch["members"]))])
        else:
            raise ValueError(f"unknown format_version {fmt}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid model artifact header ({exc})") from None
    offset = start + n_head
    state: dict[str, torch.Tensor] = {}
    for name, shape in header["tensors"]:
        n = int(np.prod(shape)) if shape else 1
        end = offset + 4 * n
        if end > len(data):
            raise ValueError("truncated model artifact")
        values = np.frombuffer(data, dtype="<f4", count=n, offset=offset).reshape(shape)
        state[name] = torch.from_numpy(values.astype(np.float32))
        offset = end
    if offset != len(data):
        raise ValueError("trailing bytes in model artifact")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"model artifact tensors do not match its arch ({exc})") from None
    net.eval()
    return header, net


@dataclass
class BeatClassifier:
    """A loaded model: batched inference from :class:`BeatFeatures` to AAMI labels.

    Build it with :meth:`from_bytes`. It is shared by every patient of a worker (it holds no
    per-patient state) and is never part of a pickled patient state. An ensemble runs as one
    :class:`~models.beats._fused.FusedEnsemble` (its members stacked) for batches of up to
    :data:`FUSED_MAX_BEATS` beats, so a chunk of two beats costs about one network's worth of
    torch calls; larger batches run member by member.
    """

    net: BeatNet | BeatEnsemble
    spec: FeatureSpec
    classes: tuple[str, ...]
    version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1024
    _forward: nn.Module = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ._fused import FusedEnsemble  # imports this module

        self._forward = self.net
        if isinstance(self.net, BeatEnsemble):
            with contextlib.suppress(ValueError):  # not fusable: the plain member loop
                self._forward = FusedEnsemble(self.net)

    @classmethod
    def from_bytes(cls, data: bytes) -> BeatClassifier:
        """Load an artifact; its version is its content hash."""
        header, net = decode_artifact(data)
        return cls(
            net=net,
            spec=FeatureSpec.from_dict(header["spec"]),
            classes=tuple(header["classes"]),
            version=artifact_version(data),
            metadata=header.get("metadata", {}),
        )

    def logits(
        self, morph: npt.NDArray[np.float32], rr: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Class logits, shape ``(n_beats, n_classes)``, computed in batches."""
        out = []
        with torch.inference_mode():
            for a in range(0, len(morph), self.batch_size):
                m = torch.from_numpy(np.ascontiguousarray(morph[a : a + self.batch_size]))
                r = torch.from_numpy(np.ascontiguousarray(rr[a : a + self.batch_size]))
                net = self._forward if len(m) <= FUSED_MAX_BEATS else self.net
                out.append(net(m, r).numpy())
        if not out:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.concatenate(out).astype(np.float32)

    def predict(self, features: BeatFeatures) -> list[str]:
        """AAMI label of every beat.

        Raises
        ------
        ValueError
            When the features were not made with this model's :class:`FeatureSpec`.
        """
        if len(features) == 0:
            return []
        if features.morph.shape[1] != self.spec.n_morph or features.rr.shape[1] != self.spec.n_rr:
            raise ValueError("features do not match the model's FeatureSpec")
        index = self.logits(features.morph, features.rr).argmax(axis=1)
        return [self.classes[int(i)] for i in index]
