"""``scipy.signal.sosfilt`` on one 1-D float64 signal, without the wrapper's per-call cost.

The resampler and the envelope filter every chunk once each. For one 1-D signal most of
``sosfilt``'s time on a 1 s chunk at the internal rate goes to its generic argument handling
(array-namespace lookup, axis moves, validation and copies), not to the filter loop.
:func:`sosfilt_1d` prepares the arrays as ``sosfilt`` does and calls the same compiled loop,
so the output and final state are identical. The loop is SciPy's private
``scipy.signal._sosfilt._sosfilt``: when it is missing, or gives anything other than the
public function on a check at import, the public function is used instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import signal

FloatArray = NDArray[np.float64]

__all__ = ["sosfilt_1d"]


def _load_kernel() -> Callable[[FloatArray, FloatArray, FloatArray], None] | None:
    """SciPy's in-place SOS loop, if present and equal to ``sosfilt`` on a test signal."""
    try:
        from scipy.signal._sosfilt import _sosfilt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # pragma: no cover - depends on the SciPy version
        return None
    sos = signal.butter(4, 0.2, output="sos")
    x = np.random.default_rng(0).standard_normal(64)
    zi = signal.sosfilt_zi(sos) * 0.5
    want_y, want_zf = signal.sosfilt(sos, x, zi=zi)
    y, zf = x.reshape(1, -1).copy(), zi.reshape(1, *zi.shape).copy()
    try:
        _sosfilt(sos, y, zf)
    except Exception:  # pragma: no cover - a changed private signature
        return None
    if not (np.array_equal(y[0], want_y) and np.array_equal(zf[0], want_zf)):
        return None  # pragma: no cover
    kernel: Callable[[FloatArray, FloatArray, FloatArray], None] = _sosfilt
    return kernel


_KERNEL = _load_kernel()


def sosfilt_1d(
    sos: FloatArray, x: NDArray[np.floating], zi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``signal.sosfilt(sos, x, zi=zi)`` for a 1-D ``x`` and ``zi`` ``(n_sections, 2)``:
    the filtered float64 samples and the final state (new arrays; the inputs are kept)."""
    if (
        _KERNEL is None
        or x.ndim != 1
        or sos.dtype != np.float64
        or zi.dtype != np.float64
        or zi.shape != (sos.shape[0], 2)
    ):
        y, zf = signal.sosfilt(sos, x, zi=zi)
        return np.asarray(y, dtype=np.float64), np.asarray(zf, dtype=np.float64)
    y = np.array(x, dtype=np.float64, order="C").reshape(1, -1)  # filtered in place
    zf = np.array(zi, dtype=np.float64, order="C").reshape(1, sos.shape[0], 2)
    _KERNEL(np.ascontiguousarray(sos), y, zf)
    return y.reshape(-1), zf.reshape(sos.shape[0], 2)
