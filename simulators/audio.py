"""Heart-sound recordings as virtual patients: WAV/FLAC at any rate, PASCAL and PhysioNet 2016.

PASCAL's CSVs name ``.wav`` files that are stored as ``.flac``: :func:`resolve_audio` finds a
recording by its stem whatever the extension. PhysioNet 2016 WAVs come with WFDB headers;
the header's label comment (``# Normal`` / ``# Abnormal``) is not needed to replay them.
Samples travel as ``int16`` with ``gain = 32768`` (physical = full-scale fraction, unit
``"fs"``); a recording in float or 24-bit PCM is rounded to 16 bits for transport.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simulators.replay import VirtualPatient
from simulators.sources import WfdbRecord, WfdbSource

__all__ = [
    "AUDIO_SUFFIXES",
    "DEMO_PCG_FILES",
    "AudioSource",
    "load_audio",
    "pcg_patients",
    "resolve_audio",
]

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".aiff", ".aif")
FULL_SCALE = 32768.0


def resolve_audio(path: Path) -> Path:
    """The audio file for ``path``, matched by stem when the named file does not exist.

    Raises
    ------
    FileNotFoundError
        When no file with that stem and an audio suffix exists.
    """
    if path.is_file():
        return path
    for suffix in AUDIO_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no audio file for {path} (tried {', '.join(AUDIO_SUFFIXES)})")


def load_audio(path: Path) -> tuple[npt.NDArray[np.int16], float]:
    """Read a mono recording (the first channel of a multi-channel one) as int16 and its rate.

    Raises
    ------
    ValueError
        When the file is not audio libsndfile can read, or holds no samples.
    """
    import soundfile as sf  # type: ignore[import-untyped]

    real = resolve_audio(path)
    try:
        # As float (full scale = 1.0): libsndfile's own float-to-int16 conversion does not
        # scale, so a float WAV would read as zeros.
        data, fs_hz = sf.read(str(real), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ValueError(f"{real.name}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise ValueError(f"{real.name}: no samples")
    first = np.nan_to_num(data[:, 0], nan=0.0, posinf=1.0, neginf=-1.0)
    samples = np.clip(np.round(first * FULL_SCALE), -32768, 32767).astype(np.int16)
    return samples, float(fs_hz)


class AudioSource(WfdbSource):
    """Replays a heart-sound recording (optionally looping) as one-lead ``int16`` blocks."""

    def __init__(self, path: Path, *, loop: bool = False, name: str | None = None) -> None:
        samples, fs_hz = load_audio(path)
        record = WfdbRecord(
            name=name or f"{path.parent.name}/{path.stem}", fs_hz=fs_hz, leads=("PCG",),
            gain=(FULL_SCALE,), baseline=(0,), units=("fs",), samples=samples[:, np.newaxis],
            ann_samples=np.zeros(0, dtype=np.int64), ann_symbols=(),
        )  # fmt: skip
        super().__init__(record, loop=loop)
        self.info = dataclasses.replace(self.info, kind="pcg")


#: Replayed by ``cardiowatch simulate --kind pcg`` when no files are named (relative to the
#: data directory): a normal and an abnormal PhysioNet recording, a PASCAL artifact.
DEMO_PCG_FILES = (
    "physionet2016/training-b/b0001.wav",
    "physionet2016/training-c/c0001.wav",
    "pascal/set_a/artifact__201012172012.wav",
)


def pcg_patients(
    paths: Sequence[Path], n_patients: int | None, *, loop: bool, first_index: int = 0
) -> list[VirtualPatient]:
    """Virtual patients cycling over heart-sound recordings (one per file by default).

    Their ids are ``h00000``, ``h00001``, ... so that they never share an id (a vitals hash in
    Redis, an entry of the vitals topic) with the ECG simulator's ``p00000``, ...
    """
    if not paths:
        raise ValueError("no heart-sound recordings to replay")
    count = len(paths) if n_patients is None else n_patients
    return [
        VirtualPatient(f"h{first_index + i:05d}", AudioSource(paths[i % len(paths)], loop=loop))
        for i in range(count)
    ]
