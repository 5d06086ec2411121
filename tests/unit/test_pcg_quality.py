"""The quality rule: high-band share of band-passed windows, its threshold and its effect."""

from __future__ import annotations

import numpy as np

from models.pcg import (
    HF_SHARE_MAX,
    PcgMonitor,
    Windower,
    WindowSpec,
    choose_hf_threshold,
    high_band_share,
    recording_decision,
    with_quality_rule,
)
from tests.pcg_helpers import random_classifier, synthetic_pcg


def _band_passed(x: np.ndarray) -> np.ndarray:
    return PcgMonitor(1000.0, WindowSpec()).filtered(x)


def _noise(duration_s: float, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.3, round(duration_s * 1000.0))


def test_heart_sounds_are_low_band_and_broadband_noise_is_not() -> None:
    x, _, _ = synthetic_pcg(1000.0, 6.0)  # 60 / 90 Hz bursts
    heart = high_band_share(_band_passed(x)[1000:4000], 1000.0)
    noise = high_band_share(_band_passed(_noise(6.0))[1000:4000], 1000.0)
    assert heart < 0.05
    # White noise band-passed to 25-400 Hz has about (400 - 150) / (400 - 25) of its power up high.
    assert noise > HF_SHARE_MAX
    assert high_band_share(np.zeros(100), 1000.0) == 0.0
    assert high_band_share(np.zeros(0), 1000.0) == 0.0


def test_windows_carry_their_high_band_share_for_any_chunking() -> None:
    x = np.concatenate([synthetic_pcg(1000.0, 6.0)[0], _noise(6.0)])
    y = _band_passed(x)
    whole = Windower(WindowSpec())
    a = whole.process(y) + whole.flush()
    chunked = Windower(WindowSpec())
    b = [w for lo in range(0, len(y), 777) for w in chunked.process(y[lo : lo + 777])]
    b += chunked.flush()
    assert [w.hf_share for w in a] == [w.hf_share for w in b]
    assert a[0].hf_share < 0.05  # heart sounds only
    assert a[-1].hf_share > HF_SHARE_MAX  # noise only


def test_the_rule_raises_poor_quality_only_where_it_fires() -> None:
    probs = np.array([[0.9, 0.1, 0.2], [0.8, 0.3, 0.1], [0.7, 0.2, 0.05]], dtype=np.float32)
    out = with_quality_rule(probs, np.array([0.1, 0.7, 0.6]), 0.6)
    np.testing.assert_array_equal(out[:, 2], np.array([0.2, 1.0, 1.0], dtype=np.float32))
    np.testing.assert_array_equal(out[:, :2], probs[:, :2])
    np.testing.assert_array_equal(with_quality_rule(probs, np.array([0.9] * 3), None), probs)
    assert probs[1, 2] == np.float32(0.1)  # the input is not changed
    # Two of three windows unusable: the recording's quality falls below 0.5.
    assert recording_decision(out)["quality"] < 0.5
    assert recording_decision(probs)["quality"] > 0.5


def test_threshold_choice_separates_labelled_recordings_or_declines() -> None:
    poor = [np.array([0.7, 0.8, 0.9]), np.array([0.65, 0.2, 0.7])]
    good = [np.array([0.05, 0.1]), np.array([0.3, 0.1, 0.2]), np.array([0.5, 0.0])]
    t = choose_hf_threshold(poor + good, [1, 1, 0, 0, 0])
    assert t is not None
    assert 0.3 < t <= 0.65
    assert choose_hf_threshold(good, [0, 0, 0]) is None  # no artifact label: no rule
    assert choose_hf_threshold(poor, [1, 1]) is None


def test_the_monitor_flags_a_noise_recording_whatever_the_classifier_says() -> None:
    classifier = random_classifier()
    monitor = PcgMonitor(1000.0, classifier.spec)
    scores = monitor.process(_noise(10.0), classifier).windows
    scores += monitor.flush(classifier).windows
    assert scores
    assert all(w.poor_quality == 1.0 for w in scores)
    heart = PcgMonitor(1000.0, classifier.spec)
    x, _, _ = synthetic_pcg(1000.0, 10.0)
    clean = heart.process(x, classifier).windows + heart.flush(classifier).windows
    assert clean
    assert all(w.poor_quality < 1.0 for w in clean)
