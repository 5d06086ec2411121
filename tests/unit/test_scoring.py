"""EC57-style beat-by-beat scoring, checked by hand and against wfdb's comparator."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import wfdb
import wfdb.processing
from hypothesis import given, settings
from hypothesis import strategies as st

from models.ecg import BeatScore, EcgBeatPipeline, match_beats

FS_HZ = 360.0
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def test_exact_and_shifted_detections_match() -> None:
    ref = [1000, 2000, 3000]
    assert match_beats(ref, ref, FS_HZ, exclude_first_s=0.0) == BeatScore(3, 0, 0)
    shifted = [1054, 1946, 3000]  # 150 ms = 54 samples either way still matches
    assert match_beats(ref, shifted, FS_HZ, exclude_first_s=0.0) == BeatScore(3, 0, 0)
    late = [1055, 2000, 3000]  # one sample further does not
    assert match_beats(ref, late, FS_HZ, exclude_first_s=0.0) == BeatScore(2, 1, 1)


def test_matching_is_one_to_one_and_nearest_first() -> None:
    # Two detections around one beat: one TP, one FP.
    assert match_beats([1000], [990, 1010], FS_HZ, exclude_first_s=0.0) == BeatScore(1, 0, 1)
    # One detection between two beats goes to the nearer beat, the other beat is missed.
    assert match_beats([1000, 1080], [1050], FS_HZ, exclude_first_s=0.0) == BeatScore(1, 1, 0)
    # Nearest pairs first: 1040 takes 1050, so 1000 can still take 990.
    score = match_beats([1000, 1050], [990, 1040], FS_HZ, exclude_first_s=0.0)
    assert score == BeatScore(2, 0, 0)


def test_learning_period_and_excluded_intervals_are_not_scored() -> None:
    start = round(300 * FS_HZ)
    ref = [start - 100, start + 10, start + 1000]
    det = [start - 5, start + 2000, start + 5000]
    # start - 5 matches start + 10 across the edge; unmatched start - 100 is not an FN.
    assert match_beats(ref, det, FS_HZ) == BeatScore(tp=1, fn=1, fp=2)
    flutter = [(start + 900, start + 5100)]
    assert match_beats(ref, det, FS_HZ, exclude_intervals=flutter) == BeatScore(1, 0, 0)


def test_scores_in_percent_and_gross_totals() -> None:
    s = BeatScore(tp=990, fn=10, fp=5)
    assert s.se == pytest.approx(99.0)
    assert s.ppv == pytest.approx(100 * 990 / 995)
    assert s.f1 == pytest.approx(100 * 1980 / 1995)
    assert s + BeatScore(10, 0, 5) == BeatScore(1000, 10, 10)
    empty = BeatScore(0, 0, 0)
    assert math.isnan(empty.se)
    assert math.isnan(empty.ppv)
    assert math.isnan(empty.f1)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    ref=st.lists(st.integers(0, 20_000), max_size=60, unique=True),
    det=st.lists(st.integers(0, 20_000), max_size=60, unique=True),
)
def test_counts_partition_both_sets(ref: list[int], det: list[int]) -> None:
    s = match_beats(ref, det, FS_HZ, exclude_first_s=0.0)
    assert s.tp + s.fn == len(ref)
    assert s.tp + s.fp == len(det)
    assert match_beats(ref, ref, FS_HZ, exclude_first_s=0.0) == BeatScore(len(ref), 0, 0)


@pytest.mark.parametrize("record", ["105", "207"])
def test_agrees_with_wfdb_compare_annotations(record: str, mitdb: Path) -> None:
    path = mitdb / record
    rec = wfdb.rdrecord(str(path), physical=True)
    ann = wfdb.rdann(str(path), "atr")
    ref = np.array([s for s, y in zip(ann.sample, ann.symbol, strict=True) if y in BEAT_SYMBOLS])
    pipe = EcgBeatPipeline(float(rec.fs), 2)
    beats = pipe.process(rec.p_signal) + pipe.flush()
    det = np.array([b.sample_index for b in beats])
    ours = match_beats(ref, det, float(rec.fs), exclude_first_s=0.0)
    theirs = wfdb.processing.compare_annotations(ref, det, round(0.15 * rec.fs))
    assert ours.fn + ours.fp > 0  # a comparison with something to disagree about
    assert ours.tp == theirs.tp
    assert ours.fn == theirs.fn
    assert ours.fp == theirs.fp
