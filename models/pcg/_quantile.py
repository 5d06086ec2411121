"""Percentiles of a short 1-D array, bit-for-bit those of ``np.percentile`` (linear method).

The S1/S2 segmenter takes two percentiles of its threshold context at every candidate peak and
the cycle features three of each window's frame energy; on arrays of a few hundred values
``np.percentile``'s general machinery (axis handling, ``np.unique`` of the indices, array
interpolation) costs several times the selection itself. :func:`percentiles` does the same
selection (``np.partition`` at the neighbouring order statistics) and the same interpolation
(NumPy's ``_lerp``, including its ``t >= 0.5`` branch), with the same float64 operations in
the same order, so the values are identical (``tests/unit/test_pcg_stages.py`` checks it).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["percentiles"]


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
