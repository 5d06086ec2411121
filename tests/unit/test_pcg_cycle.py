"""Heart-cycle features per window: rhythm and systolic/diastolic energy on a synthetic PCG, the
windower's contract with them, and the network's cycle branch."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.pcg import (
    CYCLE_FEATURES,
    PcgClassifier,
    PcgNet,
    TrainConfig,
    Windower,
    WindowSpec,
    encode_pcg_artifact,
    train_pcg_net,
)
from models.pcg._cycle import cycle_features
from models.pcg._features import raw_log_mel
from models.pcg._model import Standardise
from tests.pcg_helpers import synthetic_pcg
from tests.pcg_reference import REAL_PCG, band_passed, real_pcg, reference_cycle_features

SPEC = WindowSpec(norm="running", cycle=True)
NAMES = list(CYCLE_FEATURES)


def _mean_cycle(x: np.ndarray, spec: WindowSpec = SPEC) -> dict[str, float]:
    windows = Windower(spec).process(x)
    mean = np.mean([w.cycle for w in windows], axis=0)
    return dict(zip(NAMES, mean.tolist(), strict=True))


@pytest.mark.parametrize(("rate_bpm", "systole_s"), [(60.0, 0.3), (100.0, 0.24)])
def test_rhythm_features_follow_the_heart(rate_bpm: float, systole_s: float) -> None:
    x, _, _ = synthetic_pcg(1000.0, 12.0, heart_rate_bpm=rate_bpm, systole_s=systole_s)
    f = _mean_cycle(x)
    period_s = 60.0 / rate_bpm
    assert f["period_s"] == pytest.approx(period_s, abs=0.07)
    assert f["systole_ratio"] == pytest.approx(systole_s / period_s, abs=0.07)
    assert f["has_cycles"] == 1.0
    assert f["sys_over_period"] == pytest.approx(systole_s / period_s, abs=0.07)
    assert f["dia_over_period"] == pytest.approx(1.0 - systole_s / period_s, abs=0.07)
    assert f["peaks_per_s"] == pytest.approx(2.0 / period_s, rel=0.25)
    assert f["acf_period"] > 0.5


def test_a_systolic_murmur_raises_systolic_energy_only() -> None:
    """Noise between S1 and S2 (a systolic murmur) lifts the systolic energy relative to the
    sounds, and not the diastolic one (which falls a little: the murmur's edges fall inside the
    sounds' frames and make them louder)."""
    fs_hz = 1000.0
    clean, s1, _ = synthetic_pcg(fs_hz, 12.0)
    rng = np.random.default_rng(3)
    murmur = np.zeros_like(clean)
    for t in s1:
        lo, hi = round((t + 0.06) * fs_hz), round((t + 0.24) * fs_hz)
        murmur[lo:hi] = rng.normal(0.0, 0.03, hi - lo)
    a, b = _mean_cycle(clean), _mean_cycle(clean + murmur)
    sys_gain = np.mean([b[f"sys_energy_{g}"] - a[f"sys_energy_{g}"] for g in range(4)])
    dia_gain = np.mean([b[f"dia_energy_{g}"] - a[f"dia_energy_{g}"] for g in range(4)])
    assert sys_gain > 0.3
    assert dia_gain <= 0.0


def test_noise_has_no_cycles() -> None:
    x = np.random.default_rng(0).normal(0.0, 0.1, 12_000)
    f = _mean_cycle(x)
    assert f["acf_period"] < 0.3
    assert all(abs(v) <= 5.0 for v in f.values())


def test_cycle_windows_are_chunk_and_pickle_invariant_and_keep_the_log_mel() -> None:
    x, _, _ = synthetic_pcg(1000.0, 9.0)
    whole = Windower(SPEC)
    a = whole.process(x) + whole.flush()
    chunked = Windower(SPEC)
    b: list[Any] = []
    for lo in range(0, len(x), 611):
        b += chunked.process(x[lo : lo + 611])
        chunked = pickle.loads(pickle.dumps(chunked))
    b += chunked.flush()
    plain = Windower(WindowSpec(norm="running")).process(x)
    assert len(a) == len(b) == len(plain) == 7
    for wa, wb, wp in zip(a, b, plain, strict=True):
        np.testing.assert_array_equal(wa.cycle, wb.cycle)
        np.testing.assert_array_equal(wa.features, wp.features)
        assert wa.cycle.shape == (SPEC.n_cycle,) == (len(CYCLE_FEATURES),)
        assert wp.cycle.shape == (0,)


def test_spec_keeps_old_keys_without_cycle() -> None:
    assert "cycle" not in WindowSpec(norm="running").to_dict()
    assert WindowSpec.from_dict(SPEC.to_dict()) == SPEC
    assert WindowSpec().n_cycle == 0


@pytest.mark.parametrize("cycle_norm", [False, True])
def test_cycle_branch_round_trips_and_is_required(cycle_norm: bool) -> None:
    torch.manual_seed(0)
    net = PcgNet(channels=(4, 4, 4), hidden=8, n_cycle=SPEC.n_cycle, cycle_norm=cycle_norm)
    x, _, _ = synthetic_pcg(1000.0, 6.0)
    windows = Windower(SPEC).process(x)
    if cycle_norm:
        assert net.cycle is not None
        norm = net.cycle[0]
        assert isinstance(norm, Standardise)
        norm.fit(torch.from_numpy(np.stack([w.cycle for w in windows])))
        assert float(norm.std.min()) > 0.0
    model = PcgClassifier.from_bytes(encode_pcg_artifact(net, SPEC))
    assert model.net.n_cycle == SPEC.n_cycle
    assert model.net.arch == net.arch
    assert model.spec.cycle
    probs = model.score(windows)
    assert probs.shape == (len(windows), 3)
    feats = np.stack([w.features for w in windows])
    cyc = np.stack([w.cycle for w in windows])
    net.eval()
    with torch.inference_mode():
        direct = torch.sigmoid(net(torch.from_numpy(feats), torch.from_numpy(cyc))[:, :3])
    np.testing.assert_allclose(probs, direct.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cycle features"):
        model.net(torch.from_numpy(feats))


def test_training_learns_a_label_carried_by_the_cycle_features_only() -> None:
    rng = np.random.default_rng(2)
    n, spec = 256, WindowSpec()
    x = rng.normal(size=(n, spec.n_mels, spec.n_frames)).astype(np.float32)
    cyc = rng.normal(size=(n, 6)).astype(np.float32)
    label = (cyc[:, 0] > 0).astype(np.float32)
    y = np.stack([label, -np.ones(n), np.zeros(n)], axis=1).astype(np.float32)
    c = -np.ones(n, dtype=np.int64)
    config = TrainConfig(epochs=30, batch_size=32, lr=1e-2, channels=(4, 4, 4), hidden=8)
    net = train_pcg_net(x, y, c, config, cycle=cyc)
    again = train_pcg_net(x, y, c, config, cycle=cyc)
    assert encode_pcg_artifact(net, spec) == encode_pcg_artifact(again, spec)
    with torch.inference_mode():
        p = torch.sigmoid(net(torch.from_numpy(x), torch.from_numpy(cyc))[:, 0]).numpy()
    assert float(((p >= 0.5) == (label == 1)).mean()) > 0.85
    normed = train_pcg_net(x, y, c, replace(config, cycle_norm=True), cycle=cyc * 50.0 + 7.0)
    assert normed.cycle is not None
    stats = normed.cycle[0]
    assert isinstance(stats, Standardise)
    np.testing.assert_allclose(stats.mean.numpy(), (cyc * 50.0 + 7.0).mean(axis=0), rtol=1e-4)


@pytest.mark.parametrize("n_mels", [24, 26])
def test_cycle_features_equal_the_reference(mitdb: Path, n_mels: int) -> None:
    """The vectorised per-peak means give exactly the per-peak loop's features, on real heart
    sounds and a synthetic one (26 bands: unequal band groups)."""
    spec = replace(SPEC, n_mels=n_mels)
    frame_rate_hz = spec.fs_hz / spec.stft_hop
    signals = [band_passed(*real_pcg(mitdb.parent, rel), spec) for rel in REAL_PCG]
    signals.append(synthetic_pcg(1000.0, 12.0, heart_rate_bpm=100.0)[0])
    n_cycles = 0
    for y in signals:
        for lo in range(0, len(y) - spec.window_samples + 1, 500):
            logm = raw_log_mel(y[lo : lo + spec.window_samples], spec)
            expected = reference_cycle_features(logm, frame_rate_hz)
            np.testing.assert_array_equal(cycle_features(logm, frame_rate_hz), expected)
            n_cycles += int(expected[NAMES.index("has_cycles")])
    assert n_cycles > 20
