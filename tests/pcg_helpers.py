"""A synthetic heart sound for the PCG tests: S1 and S2 bursts on a regular rhythm."""

from __future__ import annotations

import numpy as np

from models.pcg import PcgClassifier, PcgNet, WindowSpec, encode_pcg_artifact


def synthetic_pcg(
    fs_hz: float, duration_s: float, *, heart_rate_bpm: float = 60.0, systole_s: float = 0.3,
    noise: float = 0.01, seed: int = 0, s2_amplitude: float = 0.7,
) -> tuple[np.ndarray, list[float], list[float]]:  # fmt: skip
    """Samples and the S1 and S2 times (s): 60/90 Hz Gaussian-windowed bursts plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration_s * fs_hz)) / fs_hz
    x = rng.normal(0.0, noise, t.size)
    period = 60.0 / heart_rate_bpm
    s1 = list(np.arange(0.25, duration_s - 0.5, period))
    s2 = [s + systole_s for s in s1]
    for times, freq, amp in ((s1, 60.0, 1.0), (s2, 90.0, s2_amplitude)):
        for c in times:
            x += amp * np.exp(-0.5 * ((t - c) / 0.015) ** 2) * np.sin(2 * np.pi * freq * (t - c))
    return x * 0.3, s1, s2


def random_pcg_artifact(seed: int = 0, spec: WindowSpec | None = None) -> bytes:
    """An untrained heart-sound artifact (random weights, seeded): a valid model of its own."""
    import torch

    spec = spec or WindowSpec()
    torch.manual_seed(seed)
    return encode_pcg_artifact(PcgNet(n_cycle=spec.n_cycle), spec)


def random_classifier(seed: int = 0) -> PcgClassifier:
    """An untrained classifier (random weights) with the default window spec."""
    return PcgClassifier.from_bytes(random_pcg_artifact(seed))
