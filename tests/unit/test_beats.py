"""Beat classification: causal features (streaming contract), artifacts, training, labelling."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings

from models.beats import (
    AAMI_CLASSES,
    ALL_RR_FEATURES,
    PREMATURE_EXPONENTS,
    RR_FEATURES,
    BeatClassifier,
    BeatEnsemble,
    BeatFeatures,
    BeatFeaturizer,
    BeatLabeller,
    BeatNet,
    FeatureSpec,
    TrainConfig,
    artifact_version,
    cross_validate,
    decode_artifact,
    encode_artifact,
    fit_logit_bias,
    net_logits,
    premature_copies,
    seed_ensemble,
    selection_score,
    train_beat_net,
)
from models.ecg import Beat, EcgBeatPipeline
from models.monitor import EcgMonitor
from simulators.synthetic import SyntheticEvent, SyntheticPatient
from tests.model_helpers import untrained_artifact, untrained_classifier
from tests.stage_contract import check_stage_contract, split_points

FS_HZ = 360.0


def ecg(seconds: float = 30.0) -> npt.NDArray[np.float64]:
    events = (SyntheticEvent("tachycardia", 12.0, 8.0, 150.0),)
    patient = SyntheticPatient(FS_HZ, n_leads=2, heart_rate_bpm=70.0, seed=7, events=events)
    return patient.generate(int(seconds * FS_HZ))


X = ecg()
CLASSIFIER = untrained_classifier(1)


class FeatureStage:
    """Pipeline + featurizer as one stage whose events are (sample, rr features, morphology)."""

    def __init__(self) -> None:
        self.pipe = EcgBeatPipeline(FS_HZ, 2)
        self.feat = BeatFeaturizer(FS_HZ)

    latency_samples = 0

    def reset(self) -> None:
        self.pipe.reset()
        self.feat.reset()

    @staticmethod
    def _events(f: Any) -> list[tuple[int, bytes, bytes]]:
        return [
            (int(s), r.tobytes(), m.tobytes())
            for s, r, m in zip(f.sample_index, f.rr, f.morph, strict=True)
        ]

    def process(self, chunk: npt.NDArray[np.float64]) -> list[tuple[int, bytes, bytes]]:
        beats, filtered = self.pipe.process_filtered(chunk)
        return self._events(self.feat.process(filtered, beats))

    def flush(self) -> list[tuple[int, bytes, bytes]]:
        tail = self.feat.process(np.zeros((0, 2)), self.pipe.flush())
        return self._events(tail) + self._events(self.feat.flush())


class LabelStage:
    """Pipeline + labeller with a fixed classifier: labelled beats out."""

    def __init__(self) -> None:
        self.pipe = EcgBeatPipeline(FS_HZ, 2)
        self.labeller = BeatLabeller(FS_HZ)

    latency_samples = 0

    def reset(self) -> None:
        self.pipe.reset()
        self.labeller.reset()

    def process(self, chunk: npt.NDArray[np.float64]) -> list[Beat]:
        beats, filtered = self.pipe.process_filtered(chunk)
        return self.labeller.process(filtered, beats, CLASSIFIER)

    def flush(self) -> list[Beat]:
        tail = self.labeller.process(np.zeros((0, 2)), self.pipe.flush(), CLASSIFIER)
        return tail + self.labeller.flush(CLASSIFIER)


@settings(max_examples=12)
@given(splits=split_points(len(X), max_splits=16))
def test_features_meet_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(FeatureStage, X, splits)


@settings(max_examples=8)
@given(splits=split_points(len(X), max_splits=16))
def test_labels_meet_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(LabelStage, X, splits)


def test_every_detected_beat_is_labelled_once_in_order() -> None:
    stage = LabelStage()
    out = [b for a in range(0, len(X), 360) for b in stage.process(X[a : a + 360])]
    out += stage.flush()
    pipe = EcgBeatPipeline(FS_HZ, 2)
    detected = pipe.process(X) + pipe.flush()
    assert [b.sample_index for b in out] == [b.sample_index for b in detected]
    labels = {b.label for b in out}
    assert labels <= set(AAMI_CLASSES)
    assert len(labels) >= 2, "the spread test model gives more than one class"


def test_rr_features_are_normalised_by_the_running_mean() -> None:
    # Regular beats every 300 samples, then one premature beat 150 samples early.
    r = [100 + 300 * k for k in range(20)]
    r.append(r[-1] + 150)
    r.append(r[-1] + 450)
    feat = BeatFeaturizer(FS_HZ)
    x = np.zeros((r[-1] + 400, 1))
    f = feat.process(x, [Beat(s) for s in r])
    premature = list(f.sample_index).index(r[-2])
    names = feat.spec.rr_features
    assert f.rr[premature, names.index("prev_rr_rel")] == pytest.approx(0.5)
    assert f.rr[premature, names.index("next_rr_rel")] == pytest.approx(1.5)
    assert f.rr[premature - 1, names.index("prev_rr_rel")] == pytest.approx(1.0)
    assert f.rr[premature, names.index("prev_rr_s")] == pytest.approx(150 / FS_HZ)


def test_featurizer_state_stays_small() -> None:
    feat = BeatFeaturizer(FS_HZ)
    pipe = EcgBeatPipeline(FS_HZ, 2)
    for a in range(0, len(X), 360):
        beats, filtered = pipe.process_filtered(X[a : a + 360])
        feat.process(filtered, beats)
        assert len(pickle.dumps(feat)) < 6_000


def test_artifact_round_trip_is_exact_and_versioned_by_content() -> None:
    blob = untrained_artifact(3)
    assert untrained_artifact(3) == blob, "same weights, same bytes"
    assert untrained_artifact(4) != blob
    header, net = decode_artifact(blob)
    assert header["classes"] == list(AAMI_CLASSES)
    assert FeatureSpec.from_dict(header["spec"]) == FeatureSpec()
    again = encode_artifact(net, FeatureSpec(), metadata=header["metadata"])
    assert again == blob
    model = BeatClassifier.from_bytes(blob)
    assert model.version == artifact_version(blob)
    assert model.version.startswith("sha256:")


@pytest.mark.parametrize("cut", [0, 5, 40, -3])
def test_broken_artifact_is_refused(cut: int) -> None:
    blob = untrained_artifact(3)
    with pytest.raises(ValueError, match="artifact"):
        BeatClassifier.from_bytes(blob[:cut] if cut else b"not a model")


def test_labeller_refuses_a_model_of_other_features() -> None:
    other = BeatClassifier.from_bytes(untrained_artifact(2, spec=FeatureSpec(after_s=0.3)))
    labeller = BeatLabeller(FS_HZ)
    with pytest.raises(ValueError, match="other features"):
        labeller.process(np.zeros((1000, 1)), [Beat(100), Beat(400), Beat(700)], other)


def synthetic_beats(n: int, seed: int) -> tuple[Any, Any, Any]:
    """Two separable classes: N (upright spike, regular) and V (wide negative, premature)."""
    spec = FeatureSpec()
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n) * 2  # classes 0 (N) and 2 (V)
    t = spec.offsets_s
    morph = np.where(
        (y == 0)[:, None], np.exp(-((t / 0.02) ** 2)), -0.8 * np.exp(-((t / 0.06) ** 2))
    )
    morph = (morph + 0.05 * rng.normal(size=morph.shape)).astype(np.float32)
    rr = rng.normal(1.0, 0.05, size=(n, spec.n_rr)).astype(np.float32)
    rr[y == 2, 0] -= 0.35
    return morph, rr, y.astype(np.int64)


def test_training_learns_a_separable_problem_deterministically() -> None:
    spec = FeatureSpec()
    train, val = synthetic_beats(600, 0), synthetic_beats(200, 1)
    config = TrainConfig(epochs=4, batch_size=64, seed=5, threads=1, patience=10)
    first = train_beat_net(spec, train, val, config)
    second = train_beat_net(spec, train, val, config)
    assert encode_artifact(first.net, spec) == encode_artifact(second.net, spec)
    model = BeatClassifier.from_bytes(encode_artifact(first.net, spec))
    pred = model.logits(val[0], val[1]).argmax(axis=1)
    assert np.mean(pred == val[2]) > 0.95
    assert first.history[-1]["loss"] < first.history[0]["loss"]


def test_monitor_labels_beats_and_never_pickles_the_model() -> None:
    monitor = EcgMonitor(FS_HZ, n_leads=2)
    updates = [monitor.process(X[a : a + 360], CLASSIFIER) for a in range(0, 20 * 360, 360)]
    beats = [b for u in updates for b in u.beats]
    assert beats
    assert all(b.label in AAMI_CLASSES for b in beats)
    assert {u.model_version for u in updates} == {CLASSIFIER.version}
    state = pickle.dumps(monitor)
    assert b"BeatNet" not in state
    assert b"torch" not in state
    unlabelled = monitor.process(X[20 * 360 : 25 * 360])
    assert unlabelled.model_version is None
    assert all(b.label is None for b in unlabelled.beats)


def test_irregularity_features_use_only_past_intervals() -> None:
    # Regular beats every 300 samples, then one premature beat 150 samples early.
    r = [100 + 300 * k for k in range(20)]
    r.append(r[-1] + 150)
    r.append(r[-1] + 450)
    r.append(r[-1] + 300)
    feat = BeatFeaturizer(FS_HZ)
    f = feat.process(np.zeros((r[-1] + 400, 1)), [Beat(s) for s in r])
    names = feat.spec.rr_features
    irregular, next_local = names.index("rr_irregularity"), names.index("next_over_local")
    premature = list(f.sample_index).index(r[-3])
    assert f.rr[premature, irregular] == pytest.approx(0.0), "past intervals all regular"
    assert f.rr[premature, next_local] == pytest.approx(1.5)
    after = premature + 1  # its past holds the short and the long interval now
    assert f.rr[after, irregular] > 0.0


def test_sinus_reference_is_not_dragged_down_by_an_ectopic_run() -> None:
    # 40 sinus beats every 300 samples, a run of 12 beats every 180 samples, sinus again.
    r = [100 + 300 * k for k in range(40)]
    r += [r[-1] + 180 * k for k in range(1, 13)]
    r += [r[-1] + 300 * k for k in range(1, 6)]
    spec = FeatureSpec(rr_features=ALL_RR_FEATURES)
    feat = BeatFeaturizer(FS_HZ, spec=spec)
    f = feat.process(np.zeros((r[-1] + 400, 1)), [Beat(s) for s in r])
    names = spec.rr_features

    def col(name: str) -> npt.NDArray[np.float32]:
        return f.rr[:, names.index(name)]

    late_in_run = list(f.sample_index).index(r[50])
    assert col("prev_over_median_local")[late_in_run] == pytest.approx(1.0), "local is the run"
    assert col("prev_over_sinus")[late_in_run] == pytest.approx(0.6)
    assert col("local_over_sinus")[late_in_run] == pytest.approx(0.6)
    after_run = list(f.sample_index).index(r[51])
    assert col("next_over_sinus")[after_run] == pytest.approx(1.0)
    assert col("prev_over_sinus")[10] == pytest.approx(1.0)
    # A spec without these columns saves the same form (and cache key) as before they existed.
    assert "sinus_beats" not in FeatureSpec().to_dict()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_ensemble_artifact_is_format_2_and_round_trips() -> None:
    spec = FeatureSpec()
    members = [decode_artifact(untrained_artifact(s))[1] for s in (1, 2)]
    assert all(isinstance(m, BeatNet) for m in members)
    bias = torch.tensor([0.0, 0.5, -0.25, 0.0, 0.0])
    ensemble = BeatEnsemble([m for m in members if isinstance(m, BeatNet)], bias)
    blob = encode_artifact(ensemble, spec, metadata={"test": True})
    header, net = decode_artifact(blob)
    assert header["format_version"] == 2
    assert isinstance(net, BeatEnsemble)
    assert encode_artifact(net, spec, metadata={"test": True}) == blob
    model = BeatClassifier.from_bytes(blob)
    morph, rr, _ = synthetic_beats(50, 3)
    single = [BeatClassifier.from_bytes(untrained_artifact(s)).logits(morph, rr) for s in (1, 2)]
    expected = (single[0] + single[1]) / 2 + bias.numpy()
    assert np.allclose(model.logits(morph, rr), expected, atol=1e-5)
    assert "format_version" not in decode_artifact(untrained_artifact(1))[0], "format 1 kept"


def test_artifact_of_an_unknown_format_is_refused() -> None:
    blob = untrained_artifact(3)
    bad = blob.replace(b'"classes"', b'"format_version":9,"classes"', 1)
    n = len(bad) - len(blob)
    head_len = int.from_bytes(blob[8:12], "little") + n
    bad = bad[:8] + head_len.to_bytes(4, "little") + bad[12:]
    with pytest.raises(ValueError, match="format_version"):
        BeatClassifier.from_bytes(bad)


def test_cross_validation_scores_every_beat_out_of_fold() -> None:
    spec = FeatureSpec()
    morph, rr, y = synthetic_beats(900, 4)
    fold = np.arange(900, dtype=np.int64) % 3
    config = TrainConfig(epochs=4, batch_size=32, seed=2, threads=1, patience=10)
    cv = cross_validate(spec, (morph, rr, y), fold, config)
    assert len(cv.members) == 3
    assert len(cv.best_epochs) == 3
    assert cv.oof_logits.shape == (900, len(AAMI_CLASSES))
    for k in range(3):
        held = fold == k
        expected = net_logits(cv.members[k], morph[held], rr[held])
        assert np.array_equal(cv.oof_logits[held], expected)
    assert np.mean(cv.oof_logits.argmax(axis=1) == y) > 0.9
    again = cross_validate(spec, (morph, rr, y), fold, config)
    assert np.array_equal(again.oof_logits, cv.oof_logits), "seeded: same result"


def test_seed_ensemble_holds_every_seeds_fold_networks_seed_major() -> None:
    spec = FeatureSpec()
    morph, rr, y = synthetic_beats(600, 5)
    fold = np.arange(600, dtype=np.int64) % 3
    config = TrainConfig(epochs=2, batch_size=32, threads=1, patience=10)
    runs = [cross_validate(spec, (morph, rr, y), fold, replace(config, seed=s)) for s in (2, 7)]
    ensemble, oof = seed_ensemble(runs, y)
    assert len(ensemble.members) == 6
    assert ensemble.members[4] is runs[1].members[1], "seed-major: member i left fold i % 3 out"
    np.testing.assert_allclose(oof, (runs[0].oof_logits + runs[1].oof_logits) / 2, rtol=1e-6)
    bias = ensemble.logit_bias.numpy()
    np.testing.assert_array_equal(bias, fit_logit_bias(oof, y, classes=(1, 2)))
    assert bias[0] == bias[3] == bias[4] == 0.0, "offsets for S and V only"
    expected = np.mean([net_logits(m, morph, rr) for m in ensemble.members], axis=0) + bias
    np.testing.assert_allclose(net_logits(ensemble, morph, rr), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        seed_ensemble([], y)


def test_cross_validation_keeps_one_epoch_count_from_the_mean_curve() -> None:
    spec = FeatureSpec()
    morph, rr, y = synthetic_beats(600, 6)
    fold = np.arange(600, dtype=np.int64) % 3
    config = TrainConfig(epochs=8, batch_size=64, seed=1, threads=1, cv_epochs=5, min_epochs=2)
    cv = cross_validate(spec, (morph, rr, y), fold, config)
    assert [len(h) for h in cv.history] == [5, 5, 5], "no member stops on its own fold"
    assert len(cv.curve) == 5
    assert cv.epoch >= 2
    assert cv.best_epochs == [cv.epoch] * 3
    scores = [p["score"] for p in cv.curve]
    assert scores[cv.epoch - 1] == max(scores[1:]), "the best mean score from min_epochs on"
    # Member k's weights are those of epoch `cv.epoch` of a run with the same schedule.
    held = fold == 0
    alone = train_beat_net(
        spec, (morph[~held], rr[~held], y[~held]), None, config, run_epochs=cv.epoch
    )
    assert encode_artifact(alone.net, spec) == encode_artifact(cv.members[0], spec)


def test_cross_validation_can_average_each_members_last_epochs() -> None:
    spec = FeatureSpec()
    morph, rr, y = synthetic_beats(600, 6)
    fold = np.arange(600, dtype=np.int64) % 3
    config = TrainConfig(
        epochs=8, batch_size=64, seed=1, threads=1, cv_epochs=5, min_epochs=3, average_epochs=2
    )
    cv = cross_validate(spec, (morph, rr, y), fold, config)
    # Member 0 is the mean of the weights after epochs e - 1 and e of the same run.
    held = fold == 0
    train = (morph[~held], rr[~held], y[~held])
    runs = [
        train_beat_net(spec, train, None, config, run_epochs=e).net
        for e in (cv.epoch - 1, cv.epoch)
    ]
    for name, value in cv.members[0].state_dict().items():
        mean = (runs[0].state_dict()[name] + runs[1].state_dict()[name]) / 2
        assert torch.allclose(value, mean, atol=1e-6), name
    assert np.allclose(cv.oof_logits[held], net_logits(cv.members[0], morph[held], rr[held]))
    plain = cross_validate(spec, (morph, rr, y), fold, replace(config, average_epochs=1))
    assert not np.array_equal(plain.oof_logits, cv.oof_logits)


def test_logit_bias_recovers_a_shifted_class() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000).astype(np.int64)
    logits = np.zeros((2000, len(AAMI_CLASSES)), np.float32)
    logits[:, 1] = (y == 1) * 2.0 + rng.normal(0, 0.7, 2000) - 2.0  # S under-called by 2
    bias = fit_logit_bias(logits, y, classes=(1,))
    assert bias[0] == 0.0
    assert 0.5 <= bias[1] <= 1.5
    assert selection_score(y, (logits + bias).argmax(axis=1)) > selection_score(
        y, logits.argmax(axis=1)
    )


def test_fused_ensemble_equals_the_member_loop() -> None:
    members = [decode_artifact(untrained_artifact(s))[1] for s in (1, 2, 3)]
    bias = torch.tensor([0.0, 0.5, -0.25, 0.0, 0.0])
    ensemble = BeatEnsemble([m for m in members if isinstance(m, BeatNet)], bias)
    model = BeatClassifier.from_bytes(encode_artifact(ensemble, FeatureSpec()))
    morph, rr, _ = synthetic_beats(100, 5)
    with torch.inference_mode():
        expected = ensemble(torch.from_numpy(morph), torch.from_numpy(rr)).numpy()
    for n in (1, 2, 40, 100):  # fused up to FUSED_MAX_BEATS, member by member above
        assert np.allclose(model.logits(morph[:n], rr[:n]), expected[:n], atol=1e-5)


def spikes_with_p_waves(r: list[int], *, odd: int, no_p: int) -> npt.NDArray[np.float64]:
    """Narrow R spikes with a P wave 160 ms before; beat ``odd`` wide and negative, beat
    ``no_p`` without its P wave."""
    t = np.arange(r[-1] + 400, dtype=np.float64)
    x = np.zeros_like(t)
    for k, s in enumerate(r):
        if k == odd:
            x += -0.8 * np.exp(-(((t - s) / (0.04 * FS_HZ)) ** 2))
        else:
            x += np.exp(-(((t - s) / (0.01 * FS_HZ)) ** 2))
        if k != no_p:
            x += 0.15 * np.exp(-(((t - s + 0.16 * FS_HZ) / (0.02 * FS_HZ)) ** 2))
    return x[:, np.newaxis]


def test_template_features_compare_each_beat_with_the_patients_dominant_beat() -> None:
    r = [100 + 300 * k for k in range(30)]
    x = spikes_with_p_waves(r, odd=20, no_p=25)
    feat = BeatFeaturizer(FS_HZ, spec=FeatureSpec(rr_features=ALL_RR_FEATURES))
    f = BeatFeatures.concat([feat.process(x, [Beat(s) for s in r]), feat.flush()], feat.spec)
    names = feat.spec.rr_features

    def col(name: str) -> npt.NDArray[np.float32]:
        return f.rr[:, names.index(name)]

    normal = [k for k in range(5, 30) if k not in (20, 25)]
    assert np.all(col("qrs_corr")[normal] > 0.99)
    assert np.all(col("p_corr")[normal] > 0.99)
    assert col("qrs_corr")[20] < 0.5, "a wide negative beat is unlike the template"
    assert col("qrs_width_ratio")[20] > 2.0
    assert col("qrs_corr")[21] > 0.99, "the odd beat barely moved the template"
    assert col("p_energy_ratio")[25] < 0.3, "no P wave before beat 25"
    assert col("qrs_corr")[25] > 0.99


def test_a_spec_with_fewer_columns_gets_exactly_those() -> None:
    r = [100 + 300 * k for k in range(12)] + [3550, 4000]
    x = spikes_with_p_waves(r, odd=5, no_p=7)
    full_spec = FeatureSpec(rr_features=ALL_RR_FEATURES)
    full = BeatFeaturizer(FS_HZ, spec=full_spec).process(x, [Beat(s) for s in r])
    old_spec = FeatureSpec(rr_features=RR_FEATURES)
    old = BeatFeaturizer(FS_HZ, spec=old_spec).process(x, [Beat(s) for s in r])
    assert old.rr.shape[1] == len(RR_FEATURES) == old_spec.n_rr
    np.testing.assert_array_equal(old.rr, full.rr[:, : len(RR_FEATURES)])
    assert FeatureSpec.from_dict(old_spec.to_dict()) == old_spec
    with pytest.raises(ValueError, match="unknown RR feature"):
        FeatureSpec(rr_features=("prev_rr_rel", "no_such_column"))


def test_wide_rr_path_round_trips_and_fuses() -> None:
    spec = FeatureSpec(rr_features=ALL_RR_FEATURES)
    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        net = BeatNet(spec.n_morph, spec.n_rr, len(AAMI_CLASSES), rr_skip=True)
        assert net.rr_skip is not None
        with torch.no_grad():
            net.rr_skip.weight.mul_(20.0)  # the wide path must matter below
        members.append(net)
    ensemble = BeatEnsemble(members).eval()
    blob = encode_artifact(ensemble, spec)
    model = BeatClassifier.from_bytes(blob)
    assert decode_artifact(blob)[0]["arch"]["member"]["rr_skip"] is True
    assert encode_artifact(model.net, spec) == blob
    rng = np.random.default_rng(0)
    morph = rng.normal(size=(50, spec.n_morph)).astype(np.float32)
    rr = rng.normal(1.0, 0.3, size=(50, spec.n_rr)).astype(np.float32)
    with torch.inference_mode():
        expected = ensemble(torch.from_numpy(morph), torch.from_numpy(rr)).numpy()
        members[0].rr_skip = None
        members[1].rr_skip = None
        without = ensemble(torch.from_numpy(morph), torch.from_numpy(rr)).numpy()
    assert not np.allclose(expected, without, atol=1e-3)
    for n in (2, 50):  # fused, then member by member
        assert np.allclose(model.logits(morph[:n], rr[:n]), expected[:n], atol=1e-5)


def test_premature_copies_turn_some_n_beats_into_premature_s_beats() -> None:
    spec = FeatureSpec()
    names = list(spec.rr_features)
    exponents = np.array([PREMATURE_EXPONENTS.get(n, (0, 0)) for n in names], np.float64)
    rr = torch.ones((4000, len(names)))
    y = torch.from_numpy(np.repeat(np.arange(4), 1000))  # N, S, V, F
    rr2, y2 = premature_copies(rr, y, np.random.default_rng(0), 0.1, exponents)
    assert torch.equal(rr, torch.ones_like(rr))  # inputs untouched
    changed = (y2 != y).numpy()
    assert 60 < changed.sum() < 140  # about 10 % of the 1,000 N beats
    assert np.all(y.numpy()[changed] == 0)
    assert np.all(y2.numpy()[changed] == 1)
    col = {n: j for j, n in enumerate(names)}
    prev = rr2[changed, col["prev_rr_rel"]].numpy()
    nxt = rr2[changed, col["next_rr_rel"]].numpy()
    assert np.all((prev >= 0.55) & (prev <= 0.85))
    assert np.all((nxt >= 1.0) & (nxt <= 1.3))
    np.testing.assert_allclose(rr2[changed, col["next_over_prev"]].numpy(), nxt / prev, rtol=1e-5)
    assert torch.equal(rr2[changed, col["mean_rr_s"]], torch.ones(int(changed.sum())))
    assert torch.equal(rr2[~changed], rr[~changed])
    same, _ = premature_copies(rr, y, np.random.default_rng(0), 0.0, exponents)
    assert same is rr
    # Only eligible beats (here the first half of the N beats) are ever converted.
    eligible = torch.from_numpy(np.arange(4000) < 500)
    _, y3 = premature_copies(rr, y, np.random.default_rng(0), 0.5, exponents, eligible)
    converted = np.flatnonzero((y3 != y).numpy())
    assert 150 < len(converted) < 350
    assert converted.max() < 500


def test_premature_s_is_recorded_only_when_used() -> None:
    from cardiowatch.train_beats import VARIANTS, config_record

    assert "premature_s" not in config_record(VARIANTS["rhythm_wide"])
    assert "average_epochs" not in config_record(VARIANTS["rhythm_wide"])
    assert config_record(VARIANTS["premature_s"])["premature_s"] == 0.02
    assert "premature_max_irregularity" not in config_record(VARIANTS["premature_s"])
    regular = config_record(VARIANTS["premature_s_regular"])
    assert regular["premature_max_irregularity"] == 0.1
    assert "distill_weight" not in regular
    assert "distill_temperature" not in regular
    distilled = config_record(VARIANTS["premature_s_distilled"])
    assert (distilled["distill_weight"], distilled["distill_temperature"]) == (0.5, 2.0)


def test_channels_set_the_width_of_the_trained_network_and_are_recorded_when_changed() -> None:
    from cardiowatch.train_beats import VARIANTS, config_record

    spec = FeatureSpec()
    config = TrainConfig(epochs=1, batch_size=64, threads=1, channels=(4, 8, 8))
    slim = train_beat_net(spec, synthetic_beats(200, 0), None, config).net
    assert slim.arch["channels"] == [4, 8, 8]
    assert [c.out_channels for c in slim.conv if isinstance(c, torch.nn.Conv1d)] == [4, 8, 8]
    again = BeatClassifier.from_bytes(encode_artifact(slim, spec))
    morph, rr, _ = synthetic_beats(20, 1)
    np.testing.assert_allclose(again.logits(morph, rr), net_logits(slim, morph, rr), atol=1e-5)
    assert "channels" not in config_record(VARIANTS["premature_s_regular"])
    assert config_record(VARIANTS["premature_s_slim"])["channels"] == (4, 8, 8)


class RrTeacher(torch.nn.Module):
    """A fixed "teacher" that calls a beat V when its first RR column is above 1, else N."""

    def forward(self, morph: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        v = 40.0 * (rr[:, :1] - 1.0)
        return torch.cat([-v, torch.full_like(v, -20.0), v, torch.full_like(v, -20.0),
                          torch.full_like(v, -20.0)], dim=1)  # fmt: skip


def test_distillation_teaches_the_teachers_calls_and_is_off_at_weight_zero() -> None:
    spec = FeatureSpec()
    morph, rr, y = synthetic_beats(600, 3)
    rr[:, 0] = np.random.default_rng(4).normal(1.0, 0.3, len(y)).astype(np.float32)
    teacher_calls = np.where(rr[:, 0] > 1.0, 2, 0)  # unrelated to the labels
    config = TrainConfig(epochs=20, batch_size=64, lr=1e-2, seed=1, threads=1, patience=30)
    plain = train_beat_net(spec, (morph, rr, y), None, config)
    ignored = train_beat_net(spec, (morph, rr, y), None, config, teacher=RrTeacher())
    assert encode_artifact(plain.net, spec) == encode_artifact(ignored.net, spec)
    pupil = train_beat_net(
        spec, (morph, rr, y), None, replace(config, distill_weight=1.0), teacher=RrTeacher()
    )
    pupil_calls = net_logits(pupil.net, morph, rr).argmax(axis=1)
    plain_calls = net_logits(plain.net, morph, rr).argmax(axis=1)
    assert np.mean(plain_calls == y) > 0.95
    assert np.mean(plain_calls == teacher_calls) < 0.65
    assert np.mean(pupil_calls == teacher_calls) > 0.9, "pure distillation follows the teacher"
    with pytest.raises(ValueError, match="needs a teacher"):
        train_beat_net(spec, (morph, rr, y), None, replace(config, distill_weight=0.5))


def test_cross_validation_needs_one_teacher_per_fold() -> None:
    spec = FeatureSpec()
    morph, rr, y = synthetic_beats(300, 2)
    fold = np.arange(300, dtype=np.int64) % 3
    config = TrainConfig(epochs=1, batch_size=64, threads=1, distill_weight=0.5)
    with pytest.raises(ValueError, match="one teacher per fold"):
        cross_validate(spec, (morph, rr, y), fold, config, teachers=[RrTeacher()] * 2)


def test_premature_training_needs_the_irregularity_column_only_when_restricted() -> None:
    spec = FeatureSpec(rr_features=RR_FEATURES[:5])  # no rr_irregularity
    morph, rr, y = synthetic_beats(200, 2)
    train = (morph, rr[:, :5].copy(), y)
    config = TrainConfig(epochs=1, batch_size=64, seed=1, threads=1, premature_s=0.1)
    result = train_beat_net(spec, train, None, config)
    assert len(result.history) == 1
    with pytest.raises(ValueError, match="rr_irregularity"):
        train_beat_net(spec, train, None, replace(config, premature_max_irregularity=0.1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "1", "--seeds", "0,5"], "not both"),
        (["--seeds", "0,0"], "each seed once"),
        (["--seeds", "0,x"], "comma-separated integers"),
    ],
)
def test_train_beats_refuses_unclear_seeds_before_training(
    args: list[str], message: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from cardiowatch.cli import main

    result = CliRunner().invoke(main, ["train", "beats", "--out", str(tmp_path / "m.cwm"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "m.cwm").exists()
