"""Beat-by-beat scoring of a QRS detector against reference annotations (ANSI/AAMI EC57 style).

A detection matches a reference beat when they are at most ``window_s`` apart (150 ms in
EC57); matching is one-to-one, nearest pairs first. As in EC57, the first ``exclude_first_s``
seconds (5 minutes) are a learning period that is not scored, and segments of ventricular
flutter or fibrillation (between ``[`` and ``]`` annotations in MIT-BIH) can be excluded.
Annotations just outside a scored interval may still be matched, so a beat on the edge is
neither a false negative nor a false positive merely because of where the edge fell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["BeatScore", "match_beats", "nearest_distance"]


@dataclass(frozen=True, slots=True)
class BeatScore:
    """Counts of a beat-by-beat comparison; scores in percent.

    Parameters
    ----------
    tp
        Reference beats matched by a detection.
    fn
        Reference beats with no detection.
    fp
        Detections that match no reference beat.

    Examples
    --------
    >>> s = BeatScore(tp=97, fn=2, fp=1) + BeatScore(tp=1, fn=0, fp=0)
    >>> s
    BeatScore(tp=98, fn=2, fp=1)
    >>> s.se, round(s.ppv, 2)
    (98.0, 98.99)
    """

    tp: int
    fn: int
    fp: int

    def __add__(self, other: BeatScore) -> BeatScore:
        """Gross (pooled) counts of two comparisons."""
        return BeatScore(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp)

    @property
    def se(self) -> float:
        """Sensitivity ``tp / (tp + fn)`` in percent (NaN without reference beats)."""
        n = self.tp + self.fn
        return 100.0 * self.tp / n if n else float("nan")

    @property
    def ppv(self) -> float:
        """Positive predictivity ``tp / (tp + fp)`` in percent (NaN without detections)."""
        n = self.tp + self.fp
        return 100.0 * self.tp / n if n else float("nan")

    @property
    def f1(self) -> float:
        """F1 score ``2 tp / (2 tp + fn + fp)`` in percent (NaN when both sets are empty)."""
        n = 2 * self.tp + self.fn + self.fp
        return 100.0 * 2 * self.tp / n if n else float("nan")


def _in_intervals(x: NDArray[np.int64], intervals: Sequence[tuple[int, int]]) -> NDArray[np.bool_]:
    out = np.zeros(x.shape, dtype=bool)
    for lo, hi in intervals:
        out |= (x >= lo) & (x <= hi)
    return out


def nearest_distance(samples: ArrayLike, sorted_ref: ArrayLike) -> NDArray[np.int64]:
    """Samples from each of ``samples`` to the nearest of ``sorted_ref`` (sorted ascending).

    With no reference at all, every distance is the largest int64.

    >>> nearest_distance([0, 5, 9, 20], [3, 10]).tolist()
    [3, 2, 1, 10]
    """
    x = np.asarray(samples, dtype=np.int64)
    ref = np.asarray(sorted_ref, dtype=np.int64)
    if ref.size == 0:
        return np.full(x.shape, np.iinfo(np.int64).max, dtype=np.int64)
    i = np.searchsorted(ref, x)
    before = ref[np.clip(i - 1, 0, ref.size - 1)]
    after = ref[np.clip(i, 0, ref.size - 1)]
    return np.asarray(np.minimum(np.abs(x - before), np.abs(x - after)), dtype=np.int64)


def match_beats(
    reference_samples: ArrayLike,
    detected_samples: ArrayLike,
    fs_hz: float,
    *,
    window_s: float = 0.15,
    exclude_first_s: float = 300.0,
    exclude_intervals: Sequence[tuple[int, int]] = (),
) -> BeatScore:
    """Match detections to reference beats one-to-one and count TP, FN and FP.

    Parameters
    ----------
    reference_samples
        Sample indices of the reference beats (beat annotations only).
    detected_samples
        Sample indices of the detected beats.
    fs_hz
        Sampling rate.
    window_s
        Largest distance between a matched detection and reference beat.
    exclude_first_s
        Beats and detections before this time are not scored (EC57: 5 minutes).
    exclude_intervals
        Inclusive ``(first, last)`` sample ranges not scored, e.g. ventricular flutter.

    Returns
    -------
    BeatScore
        Counts over the scored part of the record.

    Examples
    --------
    >>> match_beats([100, 500, 900], [102, 520, 700], 360.0, exclude_first_s=0.0)
    BeatScore(tp=2, fn=1, fp=1)
    """
    ref = np.unique(np.asarray(reference_samples, dtype=np.int64))
    det = np.unique(np.asarray(detected_samples, dtype=np.int64))
    window = round(window_s * fs_hz)

    # All pairs within the window (each reference sees only a few detections).
    lo = np.searchsorted(det, ref - window, side="left")
    hi = np.searchsorted(det, ref + window, side="right")
    counts = hi - lo
    ref_idx = np.repeat(np.arange(ref.size), counts)
    # Detection index of each pair: lo of its reference plus its rank among that reference's.
    first = np.repeat(np.cumsum(counts) - counts, counts)
    det_idx = np.repeat(lo, counts) + np.arange(ref_idx.size) - first
    dist = np.abs(det[det_idx] - ref[ref_idx])
    order = np.lexsort((det_idx, ref_idx, dist))  # nearest first, ties in time order

    ref_matched = np.zeros(ref.size, dtype=bool)
    det_matched = np.zeros(det.size, dtype=bool)
    for k in order:
        r, d = ref_idx[k], det_idx[k]
        if not ref_matched[r] and not det_matched[d]:
            ref_matched[r] = True
            det_matched[d] = True

    start = round(exclude_first_s * fs_hz)
    ref_scored = (ref >= start) & ~_in_intervals(ref, exclude_intervals)
    det_scored = (det >= start) & ~_in_intervals(det, exclude_intervals)
    tp = int(np.count_nonzero(ref_matched & ref_scored))
    fn = int(np.count_nonzero(~ref_matched & ref_scored))
    fp = int(np.count_nonzero(~det_matched & det_scored))
    return BeatScore(tp=tp, fn=fn, fp=fp)
