"""The alarm design loop's out-of-fold labels: each record gets the network that never saw it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.alarm_design import out_of_fold_classifier
from models.beats import AAMI_CLASSES, BeatEnsemble, BeatNet, FeatureSpec, encode_artifact

FOLDS = [["101", "106"], ["108", "112"], ["109", "116"]]


def _fold_ensemble(spec: FeatureSpec) -> bytes:
    members = []
    for k in range(len(FOLDS)):
        torch.manual_seed(k)
        members.append(BeatNet(spec.n_morph, spec.n_rr, len(AAMI_CLASSES)))
    bias = torch.tensor([0.0, -0.5, 0.25, 0.0, 0.0])
    ensemble = BeatEnsemble(members, bias)
    return encode_artifact(ensemble, spec, metadata={"trained_on": {"folds": FOLDS}})


def test_each_record_is_labelled_by_the_member_of_its_own_fold() -> None:
    spec = FeatureSpec()
    data = _fold_ensemble(spec)
    rng = np.random.default_rng(0)
    morph = rng.standard_normal((16, spec.n_morph)).astype(np.float32)
    rr = rng.standard_normal((16, spec.n_rr)).astype(np.float32)
    for k, names in enumerate(FOLDS):
        torch.manual_seed(k)
        alone = BeatNet(spec.n_morph, spec.n_rr, len(AAMI_CLASSES)).eval()
        with torch.inference_mode():
            expected = alone(torch.from_numpy(morph), torch.from_numpy(rr)).numpy()
        expected = expected + np.array([0.0, -0.5, 0.25, 0.0, 0.0], np.float32)
        for name in names:
            clf = out_of_fold_classifier(data, name)
            assert clf.version.endswith(f"-fold{k}")
            np.testing.assert_allclose(clf.logits(morph, rr), expected, rtol=1e-5, atol=1e-5)


def test_a_record_outside_the_folds_or_a_single_network_is_refused() -> None:
    spec = FeatureSpec()
    with pytest.raises(ValueError, match="no training fold"):
        out_of_fold_classifier(_fold_ensemble(spec), "232")
    torch.manual_seed(0)
    single = encode_artifact(
        BeatNet(spec.n_morph, spec.n_rr, len(AAMI_CLASSES)),
        spec,
        metadata={"trained_on": {"folds": FOLDS}},
    )
    with pytest.raises(ValueError, match="one member per fold"):
        out_of_fold_classifier(single, "101")
