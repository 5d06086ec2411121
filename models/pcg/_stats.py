"""Small-array statistics for the per-chunk path, bit-for-bit those of NumPy's own functions.

On the arrays of a few to a few hundred values the heart-sound stages reduce per chunk, the
Python-level machinery of ``np.percentile``, ``np.mean``, ``np.std`` and
``sliding_window_view`` (argument checks, dtype and axis handling) costs several times the
arithmetic. These helpers make the same ufunc calls in the same order on the same values, so
their results are identical (``tests/unit/test_pcg_stages.py`` checks each against NumPy).

Percentiles: the S1/S2 segmenter takes two of its threshold context at every candidate peak,
the cycle features three of each window's frame energy. :func:`percentiles` does NumPy's
selection (``np.partition`` at the neighbouring order statistics) and interpolation (its
``_lerp``, including the ``t >= 0.5`` branch) with the same float64 operations in the same
order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["mean", "percentiles", "sliding_max", "std"]


def percentiles(x: NDArray[np.floating], q: tuple[float, ...]) -> list[float]:
    """``np.percentile(x, q).tolist()`` for a non-empty 1-D float array ``x``.

    Parameters
    ----------
    x
        The values (not modified; NaN anywhere makes every percentile NaN, as in NumPy).
    q
        Percentiles in ``[0, 100]``.
    """
    arr = np.asarray(x, dtype=np.float64)
    n = arr.size
    if n == 0 or arr.ndim != 1:
        return [float(v) for v in np.percentile(arr, q)]  # NumPy's errors and warnings
    bounds: list[tuple[int, int, float]] = []
    kth = {0, n - 1}
    for p in q:
        virtual = (n - 1) * (p / 100.0)
        lo = math.floor(virtual)
        gamma = virtual - lo
        if virtual >= n - 1:
            lo = hi = n - 1
        elif virtual < 0:
            lo = hi = 0
        else:
            hi = lo + 1
        kth.update((lo, hi))
        bounds.append((lo, hi, gamma))
    part = np.partition(arr, sorted(kth))
    if math.isnan(part[n - 1]):
        return [math.nan] * len(q)
    out = []
    for lo, hi, gamma in bounds:
        a, b = float(part[lo]), float(part[hi])
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


def mean(x: NDArray[np.floating], axis: int | None = None) -> Any:
    """``np.mean(x, axis)`` of a float64 array (the sum by ``np.add.reduce``, then divided)."""
    n = x.size if axis is None else x.shape[axis]
    return np.add.reduce(x, axis=axis) / n


def std(x: NDArray[np.floating], axis: int | None = None) -> Any:
    """``np.std(x, axis)`` of a float64 array (population standard deviation, as NumPy)."""
    n = x.size if axis is None else x.shape[axis]
    dev = x - np.add.reduce(x, axis=axis, keepdims=True) / n
    return np.sqrt(np.add.reduce(dev * dev, axis=axis) / n)


def sliding_max(x: NDArray[np.floating], width: int) -> NDArray[np.float64]:
    """``sliding_window_view(x, width).max(axis=1)`` of a 1-D float64 array (NaN propagates
    alike: the maximum of values is the same in any order)."""
    n = x.size - width + 1
    out = np.array(x[:n], dtype=np.float64)
    for k in range(1, width):
        np.maximum(out, x[k : k + n], out=out)
    return out
