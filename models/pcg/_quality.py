"""A recording-quality cue that the classifier's normalisation cannot remove: the high-band share.

Heart sounds put most of their band-passed (25-400 Hz) power below about 150 Hz; the PASCAL
artifacts (speech, rubbing, handling noise, ambient sound) put most of it above. The share of a
window's power above :data:`HF_SPLIT_HZ` is computed on the band-passed samples themselves,
before any normalisation, so the running per-band normalisation of the classifier's log-mel
input (which removed part of the level cue the classifier used to flag artifacts) does not
touch it.

The rule: a window whose share reaches the threshold is unusable (its ``poor_quality`` is set to
1; otherwise the classifier's probability stands). The shipped threshold
:data:`HF_SHARE_MAX` was chosen by :func:`choose_hf_threshold` on every labelled recording
(PASCAL artifacts against every other PASCAL and PhysioNet recording); ``cardiowatch evaluate
pcg`` chooses it again inside each training fold, so no held-out recording shapes the
threshold it is scored with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

F32Array = NDArray[np.float32]

__all__ = [
    "HF_SHARE_MAX",
    "HF_SPLIT_HZ",
    "choose_hf_threshold",
    "high_band_share",
    "with_quality_rule",
]

#: Frequency above which window power counts as "high band".
HF_SPLIT_HZ = 150.0
#: A window with at least this share of its power above :data:`HF_SPLIT_HZ` is unusable
#: (:func:`choose_hf_threshold` on all labelled recordings; see the module docstring).
HF_SHARE_MAX = 0.6
#: Candidate thresholds of :func:`choose_hf_threshold`.
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))


def high_band_share(x: NDArray[np.floating], fs_hz: float, split_hz: float = HF_SPLIT_HZ) -> float:
    """Share of the power of ``x`` above ``split_hz`` (0 for a silent window).

    >>> t = np.arange(1000) / 1000.0
    >>> round(high_band_share(np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 300 * t), 1000.0), 2)
    0.5
    """
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        return 0.0
    power = np.abs(np.fft.rfft(arr)) ** 2
    total = float(power.sum())
    if total <= 0.0:
        return 0.0
    freqs = np.fft.rfftfreq(arr.size, 1.0 / fs_hz)
    return float(power[freqs > split_hz].sum() / total)


def with_quality_rule(
    probs: NDArray[np.floating], hf_share: NDArray[np.floating], threshold: float | None
) -> F32Array:
    """Window outputs with ``poor_quality`` (column 2) set to 1 where the rule fires.

    ``threshold`` ``None`` leaves the outputs as they are (no rule).
    """
    out = np.array(probs, dtype=np.float32, copy=True)
    if threshold is not None and len(out):
        flagged = np.asarray(hf_share, dtype=np.float64).reshape(-1) >= threshold
        out[flagged, 2] = 1.0
    return out


def choose_hf_threshold(
    shares: Sequence[NDArray[np.floating]], poor_quality: Sequence[int]
) -> float | None:
    """The grid threshold with the best balanced accuracy at telling poor recordings apart.

    ``shares``: each recording's window shares; a recording counts as flagged when at least
    half its windows reach the threshold (as a mean ``poor_quality`` >= 0.5 flags it).
    ``None`` when the labels hold no poor or no good recording (nothing to choose from).

    >>> choose_hf_threshold([np.array([0.9, 0.8]), np.array([0.1, 0.2])], [1, 0])
    0.25
    """
    labels = np.asarray(poor_quality)
    if not (labels == 1).any() or not (labels == 0).any():
        return None
    best, best_t = -1.0, None
    for t in THRESHOLD_GRID:
        flagged = np.array([bool(np.mean(np.asarray(s) >= t) >= 0.5) if len(s) else False
                            for s in shares])  # fmt: skip
        score = 0.5 * (flagged[labels == 1].mean() + (~flagged[labels == 0]).mean())
        if score > best:
            best, best_t = score, t
    return best_t
