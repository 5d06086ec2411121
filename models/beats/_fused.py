"""Inference-only fusion of a :class:`~models.beats.BeatEnsemble` into one network.

The members' convolutions become grouped convolutions (one group per member) and their
linear layers batched matrix products, so an ensemble of ``k`` members costs about as many
torch calls as one member. That matters in the worker, where each chunk classifies only one
or two beats and the per-call overhead dominates. The result equals the ensemble's forward
pass up to float rounding (checked in ``tests/unit/test_beats.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from ._model import BeatEnsemble, BeatNet

__all__ = ["FusedEnsemble"]


def _linear(layer: nn.Module) -> nn.Linear:
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"expected a Linear layer, got {type(layer).__name__}")
    return layer


def _conv(layer: nn.Module) -> nn.Conv1d:
    if not isinstance(layer, nn.Conv1d):
        raise TypeError(f"expected a Conv1d layer, got {type(layer).__name__}")
    return layer


class FusedEnsemble(nn.Module):
    """The ensemble's forward pass with its members stacked (frozen copy; eval only).

    Parameters
    ----------
    ensemble
        Members with one input channel (``n_channels=1``) and the :class:`BeatNet` layout.
    """

    def __init__(self, ensemble: BeatEnsemble) -> None:
        super().__init__()
        members = [m for m in ensemble.members if isinstance(m, BeatNet)]
        if len(members) != len(ensemble.members) or members[0].arch["n_channels"] != 1:
            raise ValueError("only ensembles of single-channel BeatNets can be fused")
        self.k = len(members)
        with torch.no_grad():
            self.convs: list[tuple[torch.Tensor, torch.Tensor, int]] = []
            for i in (0, 3, 6):
                convs = [_conv(m.conv[i]) for m in members]
                biases = [c.bias for c in convs if c.bias is not None]
                if len(biases) != len(convs) or not isinstance(convs[0].padding, tuple):
                    raise ValueError("only convolutions with a bias and numeric padding")
                weight = torch.cat([c.weight for c in convs]).clone()
                self.convs.append((weight, torch.cat(biases).clone(), int(convs[0].padding[0])))

            def stack(get: str) -> tuple[torch.Tensor, torch.Tensor]:
                layers = [_linear(m.get_submodule(get)) for m in members]
                w = torch.stack([la.weight.t() for la in layers]).clone()  # (k, in, out)
                b = torch.stack([la.bias for la in layers]).clone()  # (k, out)
                return w, b

            self.morph_fc = stack("morph_fc.1")
            self.rr_fc = stack("rr_fc.0")
            self.head1 = stack("head.1")
            self.head2 = stack("head.3")
            self.rr_skip = stack("rr_skip") if members[0].rr_skip is not None else None
            self.rr_mean = torch.stack([m.rr_mean for m in members]).clone()
            self.rr_std = torch.stack([m.rr_std for m in members]).clone()
            self.logit_bias = ensemble.logit_bias.detach().clone()

    @staticmethod
    def _per_member(x: torch.Tensor, wb: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Per-member linear layer: ``x`` (k, n, in) -> (k, n, out)."""
        return torch.baddbmm(wb[1].unsqueeze(1), x, wb[0])

    def forward(self, morph: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """Mean member logits plus the logit offsets, ``(n, n_classes)``."""
        n = morph.shape[0]
        x = morph.unsqueeze(1).expand(n, self.k, morph.shape[1])
        for weight, bias, padding in self.convs:
            x = functional.max_pool1d(
                functional.relu(functional.conv1d(x, weight, bias, padding=padding, groups=self.k)),
                2,
            )
        m = x.reshape(n, self.k, -1).transpose(0, 1)  # (k, n, c3 * length)
        m = functional.relu(self._per_member(m, self.morph_fc))
        z = (rr.unsqueeze(0) - self.rr_mean.unsqueeze(1)) / self.rr_std.unsqueeze(1)
        r = functional.relu(self._per_member(z, self.rr_fc))
        h = functional.relu(self._per_member(torch.cat([m, r], dim=2), self.head1))
        logits = self._per_member(h, self.head2)  # (k, n, n_classes)
        if self.rr_skip is not None:
            logits = logits + self._per_member(z, self.rr_skip)
        out: torch.Tensor = logits.mean(dim=0) + self.logit_bias
        return out
