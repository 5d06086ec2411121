"""Heart-sound stages: the stage contract, resampling accuracy, S1/S2 on a synthetic rhythm."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from cardiowatch.settings import Settings
from models.pcg import (
    HomomorphicEnvelope,
    PcgClassifier,
    PcgMonitor,
    PcgNet,
    Resampler,
    S1S2Segmenter,
    Windower,
    WindowSpec,
    _iir,
    heart_rate_bpm,
    net_logits,
    recording_windows,
)
from models.pcg._model import FrozenPcgForward
from models.pcg._stats import mean, percentiles, sliding_max, std
from tests.pcg_helpers import random_classifier, synthetic_pcg
from tests.pcg_reference import REAL_PCG, ReferenceSegmenter, band_passed, real_pcg
from tests.stage_contract import check_stage_contract, split_points

X_4K, _, _ = synthetic_pcg(4000.0, 1.5)
X_1K, S1_TIMES, S2_TIMES = synthetic_pcg(1000.0, 12.0)


@settings(max_examples=30)
@given(splits=split_points(len(X_4K)))
def test_resampler_down_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: Resampler(4000.0, 1000.0), X_4K, splits)


@settings(max_examples=30)
@given(splits=split_points(len(X_4K)))
def test_resampler_odd_ratio_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: Resampler(4410.0, 1000.0), X_4K, splits)


@settings(max_examples=30)
@given(splits=split_points(400))
def test_resampler_up_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: Resampler(500.0, 1000.0), X_4K[:400], splits)


@pytest.mark.parametrize("fs_in_hz", [2000.0, 4000.0, 44100.0, 1000.0, 800.0])
def test_resampler_keeps_a_tone_and_the_sample_count(fs_in_hz: float) -> None:
    n = round(3 * fs_in_hz)
    tone = np.sin(2 * np.pi * 50.0 * np.arange(n) / fs_in_hz)
    out = Resampler(fs_in_hz, 1000.0).process(tone)
    assert abs(len(out) - 3000) <= 1
    # After the anti-alias filter's start-up the tone keeps its amplitude and frequency.
    steady = out[1000:3000]
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(np.sqrt(0.5), rel=0.02)
    spectrum = np.abs(np.fft.rfft(steady))
    assert np.argmax(spectrum) * 1000.0 / len(steady) == pytest.approx(50.0, abs=0.5)


def _envelope_of(x: np.ndarray) -> np.ndarray:
    return HomomorphicEnvelope(1000.0).process(x)


ENV = _envelope_of(X_1K)


@settings(max_examples=30)
@given(splits=split_points(len(X_1K) // 4))
def test_envelope_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: HomomorphicEnvelope(1000.0), X_1K[: len(X_1K) // 4], splits)


@settings(max_examples=30)
@given(splits=split_points(len(ENV)))
def test_segmenter_meets_the_stage_contract(splits: list[int]) -> None:
    check_stage_contract(lambda: S1S2Segmenter(50.0), ENV, splits)


def test_segmenter_finds_s1_and_s2_of_a_regular_rhythm() -> None:
    seg = S1S2Segmenter(50.0)
    events = seg.process(ENV) + seg.flush()
    # The first second holds the envelope filter's start-up.
    s1 = np.array([e.sample_index for e in events if e.sound == "S1" and e.sample_index > 1000])
    s2 = np.array([e.sample_index for e in events if e.sound == "S2" and e.sample_index > 1000])
    s1, s2 = s1 / 1000.0, s2 / 1000.0
    assert len(s1) >= len(S1_TIMES) - 2
    assert len(s2) >= len(S2_TIMES) - 2
    # Within 60 ms of a reference sound of the same kind.
    assert all(np.min(np.abs(np.asarray(S1_TIMES) - t)) < 0.06 for t in s1)
    assert all(np.min(np.abs(np.asarray(S2_TIMES) - t)) < 0.06 for t in s2)
    assert heart_rate_bpm(list((s1 * 1000).astype(int)), 1000.0) == pytest.approx(60.0, abs=2)


def _labelled(events: list[Any], start_s: float) -> tuple[np.ndarray, np.ndarray]:
    s1 = [e.sample_index / 1000.0 for e in events if e.sound == "S1"]
    s2 = [e.sample_index / 1000.0 for e in events if e.sound == "S2"]
    return np.array([t for t in s1 if t > start_s]), np.array([t for t in s2 if t > start_s])


def _hits(found: np.ndarray, ref: list[float]) -> int:
    return int(sum(np.min(np.abs(np.asarray(ref) - t)) < 0.06 for t in found))


def test_segmenter_labels_by_intervals_not_by_loudness() -> None:
    # S2 twice as loud as S1, 80 bpm: only the short systole tells S1 from S2.
    x, s1_ref, s2_ref = synthetic_pcg(1000.0, 15.0, heart_rate_bpm=80.0, systole_s=0.28,
                                      s2_amplitude=2.0)  # fmt: skip
    seg = S1S2Segmenter(50.0)
    s1, s2 = _labelled(seg.process(_envelope_of(x)) + seg.flush(), 1.0)
    assert _hits(s1, s1_ref) >= len(s1_ref) - 3
    assert _hits(s1, s1_ref) == len(s1)  # no sound mislabelled
    assert _hits(s2, s2_ref) >= len(s2_ref) - 3
    assert _hits(s2, s2_ref) == len(s2)  # no sound mislabelled


def test_segmenter_finds_a_faint_s2() -> None:
    # S2 at 15 % of S1's amplitude in noise: its envelope peak stays low, yet it is an S2.
    x, s1_ref, s2_ref = synthetic_pcg(1000.0, 20.0, s2_amplitude=0.15, noise=0.03)
    seg = S1S2Segmenter(50.0)
    s1, s2 = _labelled(seg.process(_envelope_of(x)) + seg.flush(), 1.0)
    s1_late = [t for t in s1_ref if t > 1.0]
    s2_late = [t for t in s2_ref if t > 1.0]
    assert _hits(s1, s1_late) == len(s1_late) == len(s1)
    assert _hits(s2, s2_late) == len(s2_late) == len(s2)


@pytest.mark.parametrize(("rate_bpm", "systole_s"), [(120.0, 0.22), (140.0, 0.2), (150.0, 0.19)])
def test_segmenter_follows_a_fast_heart(rate_bpm: float, systole_s: float) -> None:
    # At 140 bpm the period is 21.4 envelope samples: the autocorrelation peak at twice the
    # period can top the one at the period, which must not double the period estimate.
    x, s1_ref, s2_ref = synthetic_pcg(1000.0, 20.0, heart_rate_bpm=rate_bpm,
                                      systole_s=systole_s)  # fmt: skip
    seg = S1S2Segmenter(50.0)
    s1, s2 = _labelled(seg.process(_envelope_of(x)) + seg.flush(), 1.0)
    s1_late = [t for t in s1_ref if t > 1.0]
    s2_late = [t for t in s2_ref if t > 1.0]
    assert _hits(s1, s1_late) >= len(s1_late) - 1
    assert _hits(s1, s1_late) == len(s1)  # no sound mislabelled
    assert _hits(s2, s2_late) >= len(s2_late) - 1
    assert _hits(s2, s2_late) == len(s2)


def test_segmenter_labels_the_last_sounds_at_flush() -> None:
    seg = S1S2Segmenter(50.0)
    during = seg.process(ENV)
    at_end = seg.flush()
    assert at_end, "the sounds inside the look-ahead are labelled when the record ends"
    assert min(e.sample_index for e in at_end) > max(e.sample_index for e in during)
    assert seg.latency_samples == round((0.1 + 1.5) * 1000)


@pytest.mark.parametrize("norm", ["window", "running"])
def test_windower_cuts_an_absolute_grid_for_any_chunking(norm: str) -> None:
    spec = WindowSpec(norm=norm)
    whole = Windower(spec)
    a = whole.process(X_1K) + whole.flush()
    chunked = Windower(spec)
    b: list[Any] = []
    for lo in range(0, len(X_1K), 733):
        b += chunked.process(X_1K[lo : lo + 733])
        chunked = pickle.loads(pickle.dumps(chunked))
    b += chunked.flush()
    assert [w.start_sample for w in a] == [w.start_sample for w in b]
    assert [w.start_sample for w in a] == list(range(0, len(X_1K) - 3000 + 1, 1000))
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa.features, wb.features)
        assert wa.features.shape == (spec.n_mels, spec.n_frames)


def test_running_norm_removes_a_fixed_spectral_colouring() -> None:
    """A fixed filter (a device's colouring) shifts every band's log power by a constant; the
    running per-band mean removes it, the per-window standardisation does not."""
    from scipy.signal import lfilter

    coloured = lfilter([1.0, -0.9], [1.0], X_1K)  # a first-difference-like tilt
    for norm, removed in (("running", True), ("window", False)):
        spec = WindowSpec(norm=norm)
        a = Windower(spec).process(X_1K)
        b = Windower(spec).process(coloured)
        diff = max(
            float(np.abs(wa.features - wb.features).mean()) for wa, wb in zip(a, b, strict=True)
        )
        assert (diff < 0.15) is removed, (norm, diff)


def test_window_spec_rejects_an_unknown_norm() -> None:
    with pytest.raises(ValueError, match="normalisation"):
        WindowSpec(norm="global")
    assert "norm" not in WindowSpec().to_dict()
    assert WindowSpec.from_dict(WindowSpec(norm="running").to_dict()).norm == "running"


def test_short_record_gets_one_padded_window_at_flush() -> None:
    w = Windower(WindowSpec())
    assert w.process(X_1K[:1500]) == []
    [window] = w.flush()
    assert window.start_sample == 1500 - 3000
    assert Windower(WindowSpec()).process(X_1K[:0]) == []


def test_monitor_output_is_chunk_and_pickle_invariant() -> None:
    classifier = random_classifier()
    x, _, _ = synthetic_pcg(4000.0, 9.0)

    def run(step: int) -> tuple[list[Any], list[Any], list[Any]]:
        m = PcgMonitor(4000.0, classifier.spec, start_index=8000)
        sounds, windows, alarms = [], [], []
        for lo in range(0, len(x), step):
            u = m.process(x[lo : lo + step], classifier)
            m = pickle.loads(pickle.dumps(m))
            sounds += u.sounds
            windows += u.windows
            alarms += u.alarms
        end = m.flush(classifier)
        return sounds, windows + end.windows, alarms + end.alarms

    whole = run(len(x))
    assert run(4000) == whole
    assert run(977) == whole
    # Indices are absolute at the internal rate: the monitor started at input sample 8000.
    assert whole[1][0].start_sample == 2000
    assert whole[0][0].sample_index >= 2000


# --- The optimised per-chunk path equals its straightforward reference --------------------


@pytest.mark.parametrize("q", [(20.0, 95.0), (10.0, 20.0, 90.0), (0.0, 50.0, 100.0, 33.3)])
def test_percentiles_equal_numpy_bit_for_bit(q: tuple[float, ...]) -> None:
    rng = np.random.default_rng(5)
    cases = [np.array([3.0]), np.array([2.0, 2.0, 2.0]), np.array([1.0, np.nan, 0.5])]
    for n in [*range(1, 40), 149, 150, 301]:
        x = rng.standard_normal(n) * 10 ** rng.uniform(-6, 6)
        cases += [x, np.round(x, 1), np.exp(x / (np.abs(x).max() + 1e-300))]
    cases += [ENV, ENV[:151], _envelope_of(X_4K)]
    for x in cases:
        before = x.copy()
        got = percentiles(x, q)
        np.testing.assert_array_equal(got, np.percentile(x, q))
        np.testing.assert_array_equal(x, before)  # the input is not reordered


def test_mean_std_and_sliding_max_equal_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(6)
    for n in [*range(1, 20), 64, 90, 301]:
        x = rng.standard_normal(n) * 10 ** rng.uniform(-3, 3) + rng.uniform(-50, 50)
        assert mean(x) == np.mean(x)
        assert std(x) == np.std(x)
        m = rng.standard_normal((n, 4)) + 3.0
        np.testing.assert_array_equal(mean(m, axis=0), m.mean(axis=0))
        np.testing.assert_array_equal(std(m, axis=0), m.std(axis=0))
        np.testing.assert_array_equal(mean(m.T, axis=1), m.T.mean(axis=1))
        g = rng.standard_normal((4, n, 5))
        np.testing.assert_array_equal(mean(g, axis=2), g.mean(axis=2))
        np.testing.assert_array_equal(mean(g, axis=1), g.mean(axis=1))
        for width in (1, 3, 9, 11):
            if width <= n:
                windows = np.lib.stride_tricks.sliding_window_view(x, width)
                np.testing.assert_array_equal(sliding_max(x, width), windows.max(axis=1))
    x = np.array([1.0, np.nan, 0.0, 2.0, -np.inf, 3.0])
    expected = np.lib.stride_tricks.sliding_window_view(x, 3).max(axis=1)
    np.testing.assert_array_equal(sliding_max(x, 3), expected)


@pytest.mark.parametrize("kernel", [True, False])
def test_sosfilt_1d_equals_scipy(monkeypatch: pytest.MonkeyPatch, kernel: bool) -> None:
    from scipy import signal

    assert _iir._KERNEL is not None  # the fast path is in use with this SciPy
    if not kernel:
        monkeypatch.setattr(_iir, "_KERNEL", None)
    rng = np.random.default_rng(7)
    for sos in (signal.butter(8, 450.0, output="sos", fs=44100.0),
                signal.butter(2, 8.0, output="sos", fs=1000.0)):  # fmt: skip
        for n in (1, 2, 999, 44100):
            x = rng.standard_normal(n)
            zi = signal.sosfilt_zi(sos) * x[0]
            zi_before = zi.copy()
            want = signal.sosfilt(sos, x, zi=zi)
            got = _iir.sosfilt_1d(sos, x, zi)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(zi, zi_before)
    y, _ = _iir.sosfilt_1d(sos, rng.standard_normal(5).astype(np.float32), zi)
    assert y.dtype == np.float64


def _segment(make: type[S1S2Segmenter], env: np.ndarray, step: int) -> tuple[Any, ...]:
    seg = make(50.0)
    sounds = []
    for lo in range(0, len(env), step):
        sounds += seg.process(env[lo : lo + step])
    state = (seg._peaks, seg._noise, seg._cost, seg._back, seg._n_pending, seg._next_t)
    return sounds + seg.flush(), state


@pytest.mark.parametrize("rel", REAL_PCG)
def test_segmenter_equals_the_sample_by_sample_reference(mitdb: Path, rel: str) -> None:
    x, fs_hz = real_pcg(mitdb.parent, rel)
    env = HomomorphicEnvelope(1000.0).process(band_passed(x, fs_hz, WindowSpec()))
    for step in (len(env), 50, 7, 1):
        ref = _segment(ReferenceSegmenter, env, step)
        assert len(ref[0]) > 20
        assert _segment(S1S2Segmenter, env, step) == ref
    # Plateaus and a start in the middle of a peak's neighbourhood.
    flat = np.repeat(ENV[::3], 3)
    for step in (len(flat), 13):
        assert _segment(S1S2Segmenter, flat, step) == _segment(ReferenceSegmenter, flat, step)


@pytest.mark.parametrize("cycle_norm", [False, True])
def test_frozen_forward_equals_the_module_forward(cycle_norm: bool) -> None:
    torch.manual_seed(1)
    net = PcgNet(n_cycle=22, cycle_norm=cycle_norm)
    if cycle_norm:
        net.cycle[0].fit(torch.randn(64, 22) * 3 + 1)  # type: ignore[index, operator]
    net.eval()
    frozen = FrozenPcgForward(net)
    rng = np.random.default_rng(2)
    for n, n_mels, n_frames in ((1, 24, 90), (3, 24, 90), (2, 25, 91), (1, 8, 9)):
        x = torch.from_numpy(rng.standard_normal((n, n_mels, n_frames)).astype(np.float32))
        c = torch.from_numpy(rng.standard_normal((n, 22)).astype(np.float32))
        with torch.inference_mode():
            np.testing.assert_allclose(frozen(x, c).numpy(), net(x, c).numpy(), rtol=1e-6,
                                       atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="cycle features"):
        frozen(x)


def test_classifier_scores_equal_the_module_on_real_audio(mitdb: Path) -> None:
    classifier = PcgClassifier.from_bytes(Path(Settings.from_env({}).pcg_model).read_bytes())
    for rel in REAL_PCG:
        x, fs_hz = real_pcg(mitdb.parent, rel)
        windows = recording_windows(x, fs_hz, classifier.spec)
        feats = np.stack([w.features for w in windows])
        cycle = np.stack([w.cycle for w in windows])
        expected = net_logits(classifier.net, feats, cycle)  # the module's forward
        np.testing.assert_allclose(classifier.logits(feats, cycle), expected, rtol=1e-6,
                                   atol=1e-6)  # fmt: skip
        np.testing.assert_allclose(classifier.logits(feats[:1], cycle[:1]), expected[:1],
                                   rtol=1e-6, atol=1e-6)  # fmt: skip
