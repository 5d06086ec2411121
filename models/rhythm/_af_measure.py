"""The RR irregularity measure of the atrial fibrillation alarm."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rr_irregular(
    rr_samples: Sequence[int], fs_hz: float, *, min_irregularity: float, min_entropy: float
) -> bool:
    """Whether RR intervals are irregularly irregular, as in atrial fibrillation.

    Irregularity is the RMS difference between intervals ``k`` apart (``k`` = 1, 2, 3),
    the top 1/16 dropped, over the mean interval, and its *smallest* value over ``k``:
    bigeminy and trigeminy repeat every 2 and 3 intervals and come out regular at that lag,
    whatever the classifier labelled their beats; AF is irregular at every lag. The entropy
    is that of a 16-bin histogram of the intervals (20 ms bins from the shortest kept one)
    after dropping the extremes, normalised to ``[0, 1]``.

    Parameters
    ----------
    rr_samples
        RR intervals in samples, oldest first (at least 8).
    fs_hz
        Sampling rate of the intervals, Hz.
    min_irregularity, min_entropy
        Both must be reached.

    Returns
    -------
    bool
        True when both the irregularity and the entropy reach their limits.
    """
    rr = np.asarray(rr_samples, dtype=np.float64)
    if len(rr) < 8:
        return False
    trim = max(1, len(rr) // 16)
    kept = np.sort(rr)[trim:-trim]
    mean_rr = float(kept.mean())
    irregularity = math.inf
    for lag in (1, 2, 3):
        d = np.abs(rr[lag:] - rr[:-lag])
        d = np.sort(d)[: len(d) - max(1, len(d) // 16)]
        irregularity = min(irregularity, math.sqrt(float(np.mean(d * d))) / mean_rr)
    hist, _ = np.histogram(kept, bins=16, range=(kept.min(), kept.min() + 16 * 0.02 * fs_hz))
    p = hist[hist > 0] / hist.sum()
    entropy = float(-(p * np.log(p)).sum() / math.log(16))
    return irregularity >= min_irregularity and entropy >= min_entropy
