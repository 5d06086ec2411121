"""Events produced by the ECG stages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected heartbeat.

    Parameters
    ----------
    sample_index
        Absolute index of the R peak in the record's sample clock.
    quality
        Signal-quality index of the beat in ``[0, 1]`` (1 = clean).
    label
        Beat class (AAMI ``N``, ``S``, ``V``, ``F``, ``Q``) when a classifier ran, else ``None``.
    """

    sample_index: int
    quality: float = 1.0
    label: str | None = None
