"""The alarm design loop: out-of-fold labels (each record gets the network that never saw it)
and the noise-stressed records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal

from benchmarks.alarm_design import cache, noisy_record, out_of_fold_classifier, relabel
from models.beats import (
    AAMI_CLASSES,
    BeatClassifier,
    BeatEnsemble,
    BeatNet,
    FeatureSpec,
    encode_artifact,
)
from simulators.noise import nst_mask, qrs_signal_power
from simulators.sources import WfdbRecord

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


def test_a_seed_ensemble_labels_each_record_with_its_folds_members_of_every_seed() -> None:
    spec = FeatureSpec()
    members = []
    for k in range(2 * len(FOLDS)):  # two seeds, seed-major
        torch.manual_seed(k)
        members.append(BeatNet(spec.n_morph, spec.n_rr, len(AAMI_CLASSES)))
    bias = torch.tensor([0.0, -0.5, 0.25, 0.0, 0.0])
    data = encode_artifact(
        BeatEnsemble(members, bias), spec, metadata={"trained_on": {"folds": FOLDS}}
    )
    rng = np.random.default_rng(1)
    morph = rng.normal(size=(6, spec.n_morph)).astype(np.float32)
    rr = rng.normal(size=(6, spec.n_rr)).astype(np.float32)
    for k, names in enumerate(FOLDS):
        pair = BeatEnsemble([members[k], members[k + len(FOLDS)]], bias).eval()
        with torch.inference_mode():
            expected = pair(torch.from_numpy(morph), torch.from_numpy(rr)).numpy()
        clf = out_of_fold_classifier(data, names[1])
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


def test_noisy_record_adds_nst_noise_at_the_requested_snr_only_in_its_segments(
    mitdb: Path,
) -> None:
    clean = WfdbRecord.load(mitdb / "100")
    noisy = noisy_record(mitdb / "100", 0.0)
    mask = nst_mask(len(clean.samples), clean.fs_hz)
    assert mask.any()
    assert not mask.all()
    np.testing.assert_array_equal(noisy.samples[~mask], clean.samples[~mask])
    gain = np.asarray(clean.gain)
    noise_mv = (noisy.samples[mask].astype(np.float64) - clean.samples[mask]) / gain
    # NST scaling: 0 dB means noise power equal to (QRS peak-to-peak) ** 2 / 8, per lead.
    x_mv = (clean.samples.astype(np.float64) - np.asarray(clean.baseline)) / gain
    for lead in range(x_mv.shape[1]):
        hp = signal.butter(2, 0.5, btype="highpass", output="sos", fs=clean.fs_hz)
        centred = signal.sosfiltfilt(hp, x_mv[:, lead])
        s = qrs_signal_power(centred, clean.beat_samples(), clean.fs_hz)
        snr_db = 10.0 * np.log10(s / np.mean(noise_mv[:, lead] ** 2))
        assert abs(snr_db) < 0.5  # within the 16-bit rounding of the stored samples
    assert noisy_record(mitdb / "100", 0.0).samples.tobytes() == noisy.samples.tobytes()


def test_relabel_adds_the_offsets_to_the_cached_logits() -> None:
    logits = np.array([[0.0, 1.0, 0.5], [2.0, 0.0, 1.9], [np.nan] * 3], np.float32)
    classes = np.asarray(["N", "V", "Q"], "U1")
    cached = np.asarray(["V", "N", "S"], "U1")
    assert relabel(cached, logits, classes, {}) == ["V", "N", "S"]
    assert relabel(cached, logits, classes, {"V": -0.75}) == ["Q", "N", "S"]
    assert relabel(cached, logits, classes, {"Q": 0.2, "V": -2.0}) == ["Q", "Q", "S"]
    with pytest.raises(ValueError, match="no class"):
        relabel(cached, logits, classes, {"F": 1.0})


def test_the_cache_keeps_each_beats_logits_and_replays_other_offsets(
    mitdb: Path, tmp_path: Path
) -> None:
    import wfdb

    rec = wfdb.rdrecord(str(mitdb / "119"), sampto=90 * 360)
    wfdb.wrsamp(
        "119", fs=rec.fs, units=rec.units, sig_name=rec.sig_name, p_signal=rec.p_signal,
        fmt=["16"] * rec.n_sig, adc_gain=rec.adc_gain, baseline=rec.baseline,
        write_dir=str(tmp_path),
    )  # fmt: skip
    model = Path(__file__).resolve().parents[2] / "models" / "artifacts" / "beats.cwm"
    predict = BeatClassifier.predict
    cache(["119"], tmp_path, model, tmp_path / "cache")
    assert BeatClassifier.predict is predict  # its recording hooks are gone again
    z = np.load(tmp_path / "cache" / "119.npz")
    assert len(z["label"]) > 80  # 90 s of sinus rhythm with ventricular ectopy
    assert not np.isnan(z["logits"]).any()
    assert list(z["classes"]) == list(AAMI_CLASSES)
    assert [AAMI_CLASSES[i] for i in z["logits"].argmax(axis=1)] == list(z["label"])
    assert relabel(z["label"], z["logits"], z["classes"], {"V": -50.0}).count("V") == 0
    assert "V" in set(z["label"])
