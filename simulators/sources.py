"""Where a virtual patient's samples come from: a WFDB record or the synthetic generator.

A source hands out consecutive blocks of digital samples (``int16``, shape
``(n_samples, n_leads)``) with the reference annotations that fall inside each block. Absolute
sample indices keep growing when a record loops, so the stream never goes back in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

#: WFDB beat annotation symbols (the ones EC57 scores as beats).
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


@dataclass(frozen=True)
class SignalInfo:
    """What a chunk header says about a source's signal."""

    source: str
    fs_hz: float
    leads: tuple[str, ...]
    gain: tuple[float, ...]
    baseline: tuple[int, ...]
    units: tuple[str, ...]
    kind: str = "ecg"  # signal kind of the chunks: "ecg" or "pcg"


@dataclass(frozen=True)
class Block:
    """``samples[i]`` is absolute sample ``start_sample + i``."""

    start_sample: int
    samples: npt.NDArray[np.int16]
    annotations: list[tuple[int, str]]


class ChunkSource(Protocol):
    """A virtual patient's signal."""

    info: SignalInfo

    def read(self, n_samples: int) -> Block | None:
        """The next ``n_samples`` samples (fewer at the very end), or ``None`` when exhausted."""
        ...


@dataclass(frozen=True)
class WfdbRecord:
    """A WFDB record loaded into memory (digital samples and reference annotations)."""

    name: str
    fs_hz: float
    leads: tuple[str, ...]
    gain: tuple[float, ...]
    baseline: tuple[int, ...]
    units: tuple[str, ...]
    samples: npt.NDArray[np.int16]
    ann_samples: npt.NDArray[np.int64]
    ann_symbols: tuple[str, ...]

    @classmethod
    def load(cls, path: Path, *, annotator: str = "atr") -> WfdbRecord:
        """Read ``path`` (without extension); annotations are optional."""
        import wfdb

        rec = wfdb.rdrecord(str(path), physical=False)
        digital = np.asarray(rec.d_signal)
        ann_samples = np.zeros(0, dtype=np.int64)
        ann_symbols: tuple[str, ...] = ()
        if path.with_suffix(f".{annotator}").exists():
            ann = wfdb.rdann(str(path), annotator)
            ann_samples = np.asarray(ann.sample, dtype=np.int64)
            ann_symbols = tuple(ann.symbol)
        return cls(
            name=f"{path.parent.name}/{path.name}",
            fs_hz=float(rec.fs),
            leads=tuple(rec.sig_name),
            gain=tuple(float(g) for g in rec.adc_gain),
            baseline=tuple(int(b) for b in rec.baseline),
            units=tuple(rec.units),
            samples=np.clip(digital, -32768, 32767).astype(np.int16),
            ann_samples=ann_samples,
            ann_symbols=ann_symbols,
        )

    def physical(self) -> npt.NDArray[np.float64]:
        """The samples in physical units (``(digital - baseline) / gain``), ``(n, n_leads)``."""
        baseline = np.asarray(self.baseline, dtype=np.float64)
        return (self.samples.astype(np.float64) - baseline) / np.asarray(self.gain, np.float64)

    def beat_samples(self) -> npt.NDArray[np.int64]:
        """Sample indices of the reference beat annotations."""
        keep = np.fromiter((s in BEAT_SYMBOLS for s in self.ann_symbols), dtype=bool)
        return self.ann_samples[keep] if len(keep) else self.ann_samples


class WfdbSource:
    """Replays a :class:`WfdbRecord`, starting at ``offset_samples``, optionally looping."""

    def __init__(self, record: WfdbRecord, *, offset_samples: int = 0, loop: bool = False) -> None:
        self.record = record
        self.info = SignalInfo(
            source=record.name,
            fs_hz=record.fs_hz,
            leads=record.leads,
            gain=record.gain,
            baseline=record.baseline,
            units=record.units,
        )
        self.loop = loop
        self._pos = offset_samples % len(record.samples)  # position inside the record
        self._abs = 0  # absolute index of the next sample handed out

    def read(self, n_samples: int) -> Block | None:
        """See :meth:`ChunkSource.read`."""
        n_total = len(self.record.samples)
        if self._pos >= n_total:
            if not self.loop:
                return None
            self._pos = 0
        stop = min(self._pos + n_samples, n_total)
        samples = self.record.samples[self._pos : stop]
        lo, hi = np.searchsorted(self.record.ann_samples, [self._pos, stop])
        shift = self._abs - self._pos
        annotations = [
            (int(self.record.ann_samples[i]) + shift, self.record.ann_symbols[i])
            for i in range(int(lo), int(hi))
        ]
        block = Block(self._abs, samples, annotations)
        self._abs += stop - self._pos
        self._pos = stop
        return block
