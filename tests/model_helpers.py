"""Small beat-classifier artifacts for tests (untrained or trained on tiny synthetic data)."""

from __future__ import annotations

import torch

from models.beats import AAMI_CLASSES, BeatClassifier, BeatNet, FeatureSpec, encode_artifact


def untrained_artifact(seed: int, *, spec: FeatureSpec | None = None) -> bytes:
    """An artifact with random weights (seeded): a valid model with its own version."""
    spec = spec or FeatureSpec()
    torch.manual_seed(seed)
    net = BeatNet(spec.n_morph, spec.n_rr, len(AAMI_CLASSES))
    # Spread the outputs so that different beats get different labels.
    last = net.head[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.mul_(50.0)
    return encode_artifact(net, spec, metadata={"test": True, "seed": seed})


def untrained_classifier(seed: int) -> BeatClassifier:
    """:func:`untrained_artifact`, loaded."""
    return BeatClassifier.from_bytes(untrained_artifact(seed))
