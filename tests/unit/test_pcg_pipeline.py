"""Heart-sound files, the recording decision, alarms, artifacts and the per-chunk processor."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from cardiowatch.schemas import SampleChunk
from models.pcg import (
    ALARM_ABNORMAL,
    ALARM_POOR_QUALITY,
    PcgAlarms,
    PcgClassifier,
    PcgNet,
    TrainConfig,
    WindowScore,
    WindowSpec,
    decode_pcg_artifact,
    encode_pcg_artifact,
    recording_decision,
    train_pcg_net,
)
from simulators.audio import AudioSource, load_audio, resolve_audio
from simulators.replay import VirtualPatient, make_chunk
from streams.pcg_offline import analyze_audio
from streams.pcg_processor import PCG_STATE_VERSION, process_pcg_chunk
from tests.pcg_helpers import random_classifier, synthetic_pcg


@pytest.fixture
def flac_44k(tmp_path: Path) -> Path:
    """A 44.1 kHz FLAC heart sound (as PASCAL set A stores its recordings)."""
    x, _, _ = synthetic_pcg(44100.0, 8.0)
    path = tmp_path / "normal__1.flac"
    sf.write(str(path), x, 44100, subtype="PCM_16")
    return path


def test_a_wav_name_resolves_to_the_flac_of_the_same_stem(flac_44k: Path) -> None:
    assert resolve_audio(flac_44k.with_suffix(".wav")) == flac_44k
    samples, fs_hz = load_audio(flac_44k.with_suffix(".wav"))
    assert fs_hz == 44100.0
    assert samples.dtype == np.int16
    assert len(samples) == 8 * 44100
    with pytest.raises(FileNotFoundError):
        resolve_audio(flac_44k.with_name("missing.wav"))


def test_unreadable_audio_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="not a readable audio file"):
        load_audio(bad)


def test_audio_source_sends_pcg_chunks_of_one_second(flac_44k: Path) -> None:
    patient = VirtualPatient("p1", AudioSource(flac_44k))
    made = make_chunk(patient, 44100)
    assert made is not None
    chunk = SampleChunk.decode(made[0].encode())
    assert (chunk.kind, chunk.fs_hz, chunk.leads, chunk.n_samples) == (
        "pcg",
        44100.0,
        ("PCG",),
        44100,
    )
    assert np.abs(chunk.physical()).max() <= 1.0


def test_analyze_writes_the_documented_keys(flac_44k: Path) -> None:
    result = analyze_audio(flac_44k, random_classifier())
    keys = {"file", "abnormal_probability", "decision", "murmur_probability", "quality",
            "heart_rate_bpm", "s1", "s2", "fs_hz"}  # fmt: skip
    assert keys <= set(result)
    assert result["fs_hz"] == 1000.0
    assert result["decision"] in ("normal", "abnormal", "unsure")
    assert result["heart_rate_bpm"] == pytest.approx(60.0, abs=3)
    assert len(result["s1"]) >= 5
    json.dumps(result)


def test_recording_decision_rule() -> None:
    good = [[0.9, 0.3, 0.1], [0.8, 0.2, 0.2], [0.1, 0.1, 0.9]]  # the unusable window is ignored
    assert recording_decision(np.array(good))["decision"] == "abnormal"
    assert recording_decision(np.array([[0.2, 0.1, 0.1]]))["decision"] == "normal"
    assert recording_decision(np.array([[0.5, 0.1, 0.1]]))["decision"] == "unsure"
    poor = recording_decision(np.array([[0.9, 0.1, 0.9], [0.9, 0.1, 0.8]]))
    assert poor["decision"] == "unsure"
    assert poor["quality"] == pytest.approx(0.15)
    assert recording_decision(np.zeros((0, 3)))["decision"] == "unsure"


def _scores(probs: list[tuple[float, float]]) -> list[WindowScore]:
    return [WindowScore(k * 1000, a, 0.0, q) for k, (a, q) in enumerate(probs)]


def test_alarms_raise_and_end_with_stable_onsets() -> None:
    alarms = PcgAlarms()
    events = alarms.update(_scores([(0.1, 0.9)] * 3 + [(0.9, 0.1)] * 4 + [(0.1, 0.1)] * 4), 3000)
    kinds = [(e.kind, e.state, e.onset_sample) for e in events]
    assert kinds == [
        (ALARM_POOR_QUALITY, "raise", 0),
        (ALARM_POOR_QUALITY, "end", 0),
        (ALARM_ABNORMAL, "raise", 3000),
        (ALARM_ABNORMAL, "end", 3000),
    ]
    assert [e.priority for e in events[:1]] == ["low"]
    assert events[2].priority == "medium"


def test_artifact_round_trip_and_rejection() -> None:
    data = encode_pcg_artifact(PcgNet(), WindowSpec(), metadata={"x": 1})
    header, _ = decode_pcg_artifact(data)
    assert header["name"] == "pcg"
    model = PcgClassifier.from_bytes(data)
    assert model.version.startswith("sha256:")
    assert model.spec == WindowSpec()
    for bad in (b"junk", data[:-4], data + b"\0\0\0\0"):
        with pytest.raises(ValueError, match="artifact"):
            PcgClassifier.from_bytes(bad)


def _chunks(n_chunks: int, *, leads: int = 1) -> list[SampleChunk]:
    x, _, _ = synthetic_pcg(2000.0, float(n_chunks))
    samples = np.round(np.tile(x[:, None], (1, leads)) * 32767).astype(np.int16)
    return [
        SampleChunk(patient_id="p1", kind="pcg", fs_hz=2000.0, leads=("PCG",) * leads,
                    gain=(32768.0,) * leads, baseline=(0,) * leads, units=("fs",) * leads,
                    start_sample=k * 2000, seq=k, source="test/x",
                    samples=samples[k * 2000 : (k + 1) * 2000], stream_id="s1")
        for k in range(n_chunks)
    ]  # fmt: skip


def test_processor_redelivery_stale_and_bad_chunks() -> None:
    classifier = random_classifier()
    chunks = _chunks(24)
    state = None
    outputs = []
    for c in chunks:
        result, state = process_pcg_chunk(state, c, classifier, now_unix_s=1.0)
        assert result.outcome == "processed"
        outputs.append(result.outputs)
    assert state is not None
    again, state2 = process_pcg_chunk(state, chunks[-2], classifier, now_unix_s=2.0)
    assert again.outcome == "redelivered"
    assert again.outputs == outputs[-2]
    stale, _ = process_pcg_chunk(state2, chunks[0], classifier)
    assert stale.outcome == "rejected"
    assert stale.error is not None
    assert stale.error.reason == "duplicate"
    [two_leads] = _chunks(1, leads=2)
    bad, _ = process_pcg_chunk(None, two_leads, classifier)
    assert bad.error is not None
    assert bad.error.reason == "invalid_field"
    assert outputs[-1] is not None
    assert outputs[-1].vitals.heart_rate_bpm == pytest.approx(60.0, abs=3)
    assert outputs[-1].vitals.fs_hz == 1000.0


def test_a_stored_state_of_another_layout_or_spec_restarts_the_patient() -> None:
    classifier = random_classifier()
    chunks = _chunks(6)
    state = None
    for c in chunks[:5]:
        _, state = process_pcg_chunk(state, c, classifier, now_unix_s=1.0)
    assert state is not None
    old = pickle.loads(pickle.dumps(state))
    del old.__dict__["state_version"]  # as pickled before the field existed (version 1)
    result, fresh = process_pcg_chunk(old, chunks[5], classifier, now_unix_s=2.0)
    assert result.outcome == "processed"
    assert result.restarted
    assert fresh is not None
    assert fresh.state_version == PCG_STATE_VERSION
    assert fresh.monitor.origin == chunks[5].start_sample * 1000 // 2000
    other_spec = pickle.loads(pickle.dumps(state))
    result, fresh = process_pcg_chunk(
        other_spec, chunks[5], classifier, spec=WindowSpec(norm="running"), now_unix_s=2.0
    )
    assert result.restarted
    assert fresh is not None
    assert fresh.monitor.spec.norm == "running"
    result, _ = process_pcg_chunk(state, chunks[5], classifier, now_unix_s=2.0)
    assert not result.restarted


def test_database_index_labels(mitdb: Path) -> None:
    from cardiowatch.pcg_data import all_recordings

    recs = all_recordings(mitdb.parent)
    by_db: dict[str, int] = {}
    for r in recs:
        by_db[r.db] = by_db.get(r.db, 0) + 1
        assert r.path.suffix == ".wav"  # as the CSVs name them; resolve_audio finds the FLAC
    assert by_db == {"training-b": 490, "training-c": 31, "training-d": 55, "pascal": 585}
    pascal = [r for r in recs if r.db == "pascal"]
    assert sum(r.poor_quality for r in pascal) == 40
    assert sum(r.murmur == 1 for r in pascal) == 34 + 66 + 29
    assert all(r.abnormal == -1 for r in pascal if r.poor_quality)
    assert all(resolve_audio(r.path).suffix == ".flac" for r in pascal[:5])
    # Set B recordings are grouped by subject for cross-validation.
    assert any(r.group.startswith("b") for r in pascal)


def test_analyze_pcg_command_writes_json(flac_44k: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cardiowatch.cli import main

    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        main, ["analyze", "pcg", str(flac_44k.with_suffix(".wav")), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(out.read_text())
    assert row["decision"] in ("normal", "abnormal", "unsure")
    assert row["model_version"].startswith("sha256:")
    bad = CliRunner().invoke(
        main, ["analyze", "pcg", str(tmp_path / "nope.wav"), "--json", str(out)]
    )
    assert bad.exit_code == 2
    assert "no audio file" in bad.output


@pytest.mark.parametrize(
    ("suffix", "fs_hz", "subtype", "channels"),
    [(".wav", 8000, "FLOAT", 1), (".ogg", 22050, "VORBIS", 2), (".wav", 500, "PCM_24", 1)],
)
def test_analyze_accepts_other_formats_rates_and_channels(
    tmp_path: Path, suffix: str, fs_hz: int, subtype: str, channels: int
) -> None:
    x, _, _ = synthetic_pcg(float(fs_hz), 6.0)
    data = np.tile(x[:, None], (1, channels))
    path = tmp_path / f"rec{suffix}"
    sf.write(str(path), data, fs_hz, subtype=subtype)
    result = analyze_audio(path, random_classifier())
    assert result["input_fs_hz"] == fs_hz
    # 3 s windows every 1 s in 6 s: the last one needs the 6000th internal sample, which the
    # resampler's one-sample look-ahead may hold back.
    assert result["windows"] in (3, 4)
    assert result["heart_rate_bpm"] == pytest.approx(60.0, abs=3)


def test_analyze_handles_silence_and_very_short_files(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(4000), 2000, subtype="PCM_16")
    quiet = analyze_audio(silent, random_classifier())
    assert quiet["s1"] == []
    assert quiet["heart_rate_bpm"] is None
    assert quiet["windows"] == 1
    short = tmp_path / "short.wav"
    sf.write(str(short), np.zeros(500), 2000, subtype="PCM_16")  # 0.25 s: too short to score
    brief = analyze_audio(short, random_classifier())
    assert brief["windows"] == 0
    assert brief["decision"] == "unsure"


def test_a_missing_or_broken_pcg_model_leaves_the_worker_without_it(tmp_path: Path) -> None:
    import socket

    from redis.asyncio import Redis

    from streams.model_registry import ModelCache, pcg_kind

    closed = socket.socket()  # bound, never listening: connections to it are refused
    closed.bind(("127.0.0.1", 0))

    async def default_model(path: str) -> PcgClassifier | None:
        client: Redis[bytes] = Redis.from_url(f"redis://127.0.0.1:{closed.getsockname()[1]}")
        try:  # the registry is unreachable, so the worker falls back to its default artifact
            return await ModelCache(client, pcg_kind(), prefix="cw:", default_path=path).ensure()
        finally:
            await client.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag

    broken = tmp_path / "broken.cwm"
    broken.write_bytes(b"not a model")
    try:
        assert asyncio.run(default_model("")) is None
        assert asyncio.run(default_model(str(tmp_path / "missing.cwm"))) is None
        assert asyncio.run(default_model(str(broken))) is None
        committed = asyncio.run(
            default_model(str(Path(__file__).parents[2] / "models/artifacts/pcg.cwm"))
        )
    finally:
        closed.close()
    assert committed is not None
    assert committed.version == "sha256:5116e7280df9637d"
    assert committed.spec.norm == "running"
    assert committed.spec.cycle


def test_training_is_seeded_and_database_balancing_changes_the_fit() -> None:
    """Same seed, same bytes; ``balance_db`` weights a minority database up (another fit)."""
    rng = np.random.default_rng(1)
    spec = WindowSpec()
    x = rng.normal(size=(96, spec.n_mels, spec.n_frames)).astype(np.float32)
    y = np.stack([rng.integers(0, 2, 96), -np.ones(96), np.zeros(96)], axis=1).astype(np.float32)
    x[y[:, 0] == 1, :4] += 1.0  # something to learn
    c = -np.ones(96, dtype=np.int64)
    groups = np.where(np.arange(96) < 80, 0, 1).astype(np.int64)

    def weights(config: TrainConfig) -> bytes:
        net = train_pcg_net(x, y, c, config, groups=groups)
        return encode_pcg_artifact(net, spec)

    plain = TrainConfig(epochs=2, batch_size=32)
    balanced = TrainConfig(epochs=2, batch_size=32, balance_db=True)
    assert weights(plain) == weights(plain)
    assert weights(balanced) != weights(plain)
