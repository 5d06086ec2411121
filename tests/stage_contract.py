"""The contract every streaming stage must meet (STYLE.md, "The shape of a streaming detector").

Use :func:`check_stage_contract` from a hypothesis test that draws the split points::

    @given(splits=split_points(len(x)))
    def test_contract(splits):
        check_stage_contract(lambda: MyStage(360.0), x, splits)
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st


def split_points(n: int, max_splits: int = 12) -> st.SearchStrategy[list[int]]:
    """Sorted split points in ``[0, n]`` (duplicates allowed, so empty chunks occur)."""
    return st.lists(st.integers(min_value=0, max_value=n), max_size=max_splits).map(sorted)


def _run(stage: Any, x: np.ndarray, splits: Sequence[int], *, pickle_at: int | None) -> list[Any]:
    bounds = [0, *splits, len(x)]
    out: list[Any] = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        if pickle_at is not None and i == pickle_at:
            stage = pickle.loads(pickle.dumps(stage))
        out.append(stage.process(x[a:b]))
    out.append(stage.flush())
    return out


def _concat(parts: list[Any]) -> Any:
    if parts and isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=0)
    return [item for part in parts for item in part]


def _assert_equal(a: Any, b: Any) -> None:
    if isinstance(a, np.ndarray):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    else:
        assert a == b


def check_stage_contract(
    make_stage: Callable[[], Any], x: np.ndarray, splits: Sequence[int]
) -> None:
    """Assert chunk invariance, pickle continuity, ``reset()`` == fresh, empty chunk is a no-op.

    ``process`` must return either an ``ndarray`` (filters: concatenated along axis 0) or a
    list of events (detectors: concatenated).
    """
    whole = _concat(_run(make_stage(), x, [], pickle_at=None))
    chunked = _concat(_run(make_stage(), x, splits, pickle_at=None))
    _assert_equal(chunked, whole)

    # A pickle round-trip in the middle of the stream continues exactly.
    resumed = _concat(_run(make_stage(), x, splits, pickle_at=len(splits) // 2 + 1))
    _assert_equal(resumed, whole)

    # reset() equals a fresh object: run once, reset, run again.
    stage = make_stage()
    _run(stage, x, splits, pickle_at=None)
    stage.reset()
    _assert_equal(_concat(_run(stage, x, [], pickle_at=None)), whole)

    # An empty chunk changes nothing.
    stage = make_stage()
    empty = stage.process(x[:0])
    assert len(empty) == 0
