"""`cardiowatch simulate` end to end: records, patients, chunk length, duration, annotations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cardiowatch.schemas import AnnotationBatch, SampleChunk
from cardiowatch.settings import Settings
from tests.integration.harness import fresh_settings, read_topic, settings_env

pytestmark = pytest.mark.integration


def test_simulate_sends_the_requested_chunks(
    services: Settings, tmp_path: Path, mitdb: Path
) -> None:
    settings = fresh_settings(services, tmp_path, data_dir=str(mitdb.parent))
    argv = ["simulate", "--records", "100", "--patients", "2", "--synthetic", "1",
            "--duration", "5", "--speed", "0", "--chunk-s", "0.5", "--no-loop"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "cardiowatch", *argv],
        env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    messages = read_topic(settings, settings.topic_ecg, until=lambda m: len(m) >= 30, timeout_s=30)
    chunks = [SampleChunk.decode(v) for _, v in messages]
    by_patient: dict[str, list[SampleChunk]] = {}
    for c in chunks:
        by_patient.setdefault(c.patient_id, []).append(c)
    assert sorted(by_patient) == ["p00000", "p00001", "p00002"]
    for cs in by_patient.values():
        assert [c.seq for c in cs] == list(range(10))  # 5 s in 0.5 s chunks, in order
        assert all(c.n_samples == 180 for c in cs)
        assert [c.start_sample for c in cs] == [180 * i for i in range(10)]
    assert by_patient["p00000"][0].source == "mitdb/100"
    assert by_patient["p00002"][0].source == "synthetic"
    # The second patient replays the same record 97 s later (reuse with a time offset).
    first, second = by_patient["p00000"][0], by_patient["p00001"][0]
    assert not (first.samples == second.samples).all()
    notes = read_topic(
        settings, settings.topic_annotations, until=lambda m: len(m) >= 20, timeout_s=10
    )
    beats = [a for _, v in notes for a in AnnotationBatch.decode(v).annotations if a.symbol == "N"]
    assert len(beats) >= 10  # record 100 beats about 75 times a minute


def test_simulate_pcg_replays_audio_at_each_files_rate(
    services: Settings, tmp_path: Path, mitdb: Path
) -> None:
    settings = fresh_settings(services, tmp_path, data_dir=str(mitdb.parent))
    files = [  # 2 kHz WAV; a PASCAL name ending in .wav that is stored as 44.1 kHz FLAC
        mitdb.parent / "physionet2016/training-b/b0001.wav",
        mitdb.parent / "pascal/set_a/normal__201102081321.wav",
    ]
    argv = ["simulate", "--kind", "pcg", "--files", ",".join(map(str, files)),
            "--duration", "3", "--speed", "0", "--no-loop"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "cardiowatch", *argv],
        env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    messages = read_topic(settings, settings.topic_pcg, until=lambda m: len(m) >= 6, timeout_s=30)
    chunks = {(c.patient_id, c.seq): c for c in (SampleChunk.decode(v) for _, v in messages)}
    assert sorted(chunks) == [(p, s) for p in ("h00000", "h00001") for s in range(3)]
    assert {c.kind for c in chunks.values()} == {"pcg"}
    assert chunks["h00000", 1].fs_hz == 2000.0
    assert chunks["h00000", 1].n_samples == 2000
    assert chunks["h00001", 1].fs_hz == 44100.0
    assert chunks["h00001", 1].start_sample == 44100
