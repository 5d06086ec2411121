"""The offline twin of the heart-sound stream: ``cardiowatch analyze pcg``.

It cuts a recording into the very ``SampleChunk``s the simulator sends and feeds each chunk's
samples to a :class:`~models.pcg.PcgMonitor` exactly as the worker does, then flushes it. The
recording-level decision follows :func:`models.pcg.recording_decision`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.pcg import PcgClassifier, PcgMonitor, WindowScore, WindowSpec, recording_decision
from simulators.audio import AudioSource
from simulators.replay import VirtualPatient, make_chunk

__all__ = ["analyze_audio"]


def analyze_audio(
    path: Path, classifier: PcgClassifier | None, *, chunk_s: float = 1.0
) -> dict[str, Any]:
    """Segment and classify one audio file (WAV, FLAC, ... at any rate).

    Returns
    -------
    dict
        ``file``, ``abnormal_probability``, ``decision``, ``murmur_probability``, ``quality``,
        ``heart_rate_bpm``, ``s1``, ``s2`` (sample indices at ``fs_hz``), ``fs_hz`` (the
        internal rate), ``input_fs_hz``, ``windows`` and ``model_version``.

    Raises
    ------
    ValueError
        When the file cannot be read as audio.
    """
    source = AudioSource(path, name=path.name)
    spec = classifier.spec if classifier is not None else WindowSpec()
    patient = VirtualPatient("offline", source)
    monitor = PcgMonitor(source.info.fs_hz, spec)
    n = max(1, round(chunk_s * source.info.fs_hz))
    s1: list[int] = []
    s2: list[int] = []
    scores: list[WindowScore] = []
    while (made := make_chunk(patient, n)) is not None:
        update = monitor.process(made[0].physical()[:, 0], classifier)
        s1 += [s.sample_index for s in update.sounds if s.sound == "S1"]
        s2 += [s.sample_index for s in update.sounds if s.sound == "S2"]
        scores += update.windows
    heart_rate = monitor.heart_rate  # the stream's last value (a stream is never flushed)
    final = monitor.flush(classifier)
    s1 += [s.sample_index for s in final.sounds if s.sound == "S1"]
    s2 += [s.sample_index for s in final.sounds if s.sound == "S2"]
    scores += final.windows
    probs = np.array([[w.abnormal, w.murmur, w.poor_quality] for w in scores])
    decision = recording_decision(probs)
    return {
        "file": str(path),
        "abnormal_probability": decision["abnormal_probability"],
        "decision": decision["decision"],
        "murmur_probability": decision["murmur_probability"],
        "quality": decision["quality"],
        "heart_rate_bpm": None if heart_rate is None else round(heart_rate, 1),
        "s1": s1,
        "s2": s2,
        "fs_hz": spec.fs_hz,
        "input_fs_hz": source.info.fs_hz,
        "windows": len(scores),
        "model_version": None if classifier is None else classifier.version,
    }
