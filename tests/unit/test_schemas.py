"""Message schemas: round trips, and every rejection with its reason."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardiowatch.schemas import (
    Alert,
    AnnotationBatch,
    AnnotationRecord,
    BeatBatch,
    BeatRecord,
    DeadLetter,
    SampleChunk,
    SchemaError,
    Vitals,
    alert_id,
)


def chunk(**changes: object) -> SampleChunk:
    base: dict[str, object] = {
        "patient_id": "p00001",
        "kind": "ecg",
        "fs_hz": 360.0,
        "leads": ("MLII", "V1"),
        "gain": (200.0, 200.0),
        "baseline": (1024, 1024),
        "units": ("mV", "mV"),
        "start_sample": 3600,
        "seq": 10,
        "source": "mitdb/100",
        "samples": np.arange(720, dtype=np.int16).reshape(360, 2),
        "sent_unix_s": 1.5,
    }
    base.update(changes)
    return SampleChunk(**base)  # type: ignore[arg-type]


def test_sample_chunk_round_trip_int16() -> None:
    original = chunk()
    data = original.encode()
    decoded = SampleChunk.decode(data)
    assert decoded.patient_id == original.patient_id
    assert decoded.leads == original.leads
    assert decoded.start_sample == 3600
    assert decoded.end_sample == 3960
    assert decoded.seq == 10
    np.testing.assert_array_equal(decoded.samples, original.samples)
    # Compact: 2 bytes a sample plus a small header.
    assert len(data) < 360 * 2 * 2 + 400


def test_physical_units_use_gain_and_baseline() -> None:
    samples = np.array([[1024 + 200, 1024 - 100]], dtype=np.int16)
    c = SampleChunk.decode(chunk(samples=samples).encode())
    np.testing.assert_allclose(c.physical(), [[1.0, -0.5]])


@given(
    n=st.integers(1, 50),
    leads=st.integers(1, 3),
    values=st.floats(-100, 100, allow_nan=False, width=32),
)
def test_sample_chunk_round_trip_float32(n: int, leads: int, values: float) -> None:
    samples = np.full((n, leads), values, dtype=np.float32)
    c = chunk(
        samples=samples,
        leads=("a",) * leads,
        gain=(1.0,) * leads,
        baseline=(0,) * leads,
        units=("mV",) * leads,
    )
    decoded = SampleChunk.decode(c.encode())
    np.testing.assert_array_equal(decoded.samples, samples)
    np.testing.assert_array_equal(decoded.physical(), samples.astype(np.float64))


def _tamper_header(data: bytes, **changes: object) -> bytes:
    magic, version, code, head_len = struct.unpack_from("<2sBBI", data)
    header = json.loads(data[8 : 8 + head_len])
    header.update(changes)
    head = json.dumps(header).encode()
    return struct.pack("<2sBBI", magic, version, code, len(head)) + head + data[8 + head_len :]


@pytest.mark.parametrize(
    ("data_fn", "reason"),
    [
        (lambda d: d[:5], "truncated"),
        (lambda d: d[:-10], "truncated"),
        (lambda d: d + b"xx", "malformed"),
        (lambda d: b"XX" + d[2:], "malformed"),
        (lambda d: d[:2] + bytes([9]) + d[3:], "unsupported_version"),
        (lambda d: d[:3] + bytes([7]) + d[4:], "malformed"),
        (lambda d: d[:8] + b"[" + d[9:], "malformed"),
        (lambda d: _tamper_header(d, kind="eeg"), "invalid_field"),
        (lambda d: _tamper_header(d, fs_hz=-1), "invalid_field"),
        (lambda d: _tamper_header(d, patient_id="a b/c"), "invalid_field"),
        (lambda d: _tamper_header(d, gain=[200.0]), "invalid_field"),
        (lambda d: _tamper_header(d, gain=[0.0, 200.0]), "invalid_field"),
        (lambda d: _tamper_header(d, seq=-1), "invalid_field"),
        (lambda d: _tamper_header(d, n_samples=0), "empty"),
        (lambda d: _tamper_header(d, fs_hz="fast"), "invalid_field"),
        (lambda d: _tamper_header(d, leads=None), "invalid_field"),
    ],
)
def test_sample_chunk_rejections(data_fn: object, reason: str) -> None:
    data = data_fn(chunk().encode())  # type: ignore[operator]
    with pytest.raises(SchemaError) as info:
        SampleChunk.decode(data)
    assert info.value.reason == reason


def test_non_finite_float_samples_are_rejected() -> None:
    samples = np.zeros((10, 1), dtype=np.float32)
    samples[3] = np.nan
    c = chunk(samples=samples, leads=("a",), gain=(1.0,), baseline=(0,), units=("mV",))
    with pytest.raises(SchemaError) as info:
        SampleChunk.decode(c.encode())
    assert info.value.reason == "non_finite"


def test_oversized_chunk_is_rejected_before_parsing() -> None:
    with pytest.raises(SchemaError) as info:
        SampleChunk.decode(chunk().encode(), max_bytes=100)
    assert info.value.reason == "oversized"


def test_json_messages_round_trip() -> None:
    beats = BeatBatch(
        "p1", "mitdb/100", 360.0, 3, [BeatRecord(100, 0.9, None), BeatRecord(400, 1.0, "V")], "v1"
    )
    assert BeatBatch.decode(beats.encode()) == beats
    vitals = Vitals("p1", "mitdb/100", 360.0, 720, 71.5, True, 12, ["tachycardia"], 2.0)
    assert Vitals.decode(vitals.encode()) == vitals
    alert = Alert(
        alert_id("p1", "asystole", 7000), "p1", "asystole", "raise", "high", 7000, None, 8500,
        360.0, "synthetic", None, {"strip": {"mv": [0.1]}}, "v1", 3.0,
    )  # fmt: skip
    assert Alert.decode(alert.encode()) == alert
    notes = AnnotationBatch("p1", "mitdb/100", 360.0, 3, [AnnotationRecord(77, "N")])
    assert AnnotationBatch.decode(notes.encode()) == notes


def test_json_messages_reject_wrong_type_version_and_fields() -> None:
    vitals = Vitals("p1", "s", 360.0, 720, None, False, 0, [], 2.0)
    with pytest.raises(SchemaError) as info:
        BeatBatch.decode(vitals.encode())
    assert info.value.reason == "invalid_field"
    body = json.loads(vitals.encode())
    body["v"] = 99
    with pytest.raises(SchemaError) as info:
        Vitals.decode(json.dumps(body).encode())
    assert info.value.reason == "unsupported_version"
    body["v"] = 1
    body["surprise"] = 1
    with pytest.raises(SchemaError) as info:
        Vitals.decode(json.dumps(body).encode())
    assert info.value.reason == "invalid_field"
    with pytest.raises(SchemaError) as info:
        Vitals.decode(b"\xff\xfe")
    assert info.value.reason == "malformed"


def test_alert_rejects_unknown_priority() -> None:
    alert = Alert(
        "x", "p1", "asystole", "raise", "urgent", 1, None, 2, 360.0, "s", None, {}, "v1", 0.0
    )
    with pytest.raises(SchemaError):
        Alert.decode(alert.encode())


def test_alert_id_is_stable_and_distinguishes_episodes() -> None:
    assert alert_id("p1", "asystole", 100) == alert_id("p1", "asystole", 100)
    assert alert_id("p1", "asystole", 100) != alert_id("p1", "asystole", 101)
    assert alert_id("p1", "asystole", 100) != alert_id("p2", "asystole", 100)


def test_dead_letter_keeps_bounded_payload() -> None:
    payload = b"x" * 10_000
    letter = DeadLetter.for_payload(
        SchemaError("malformed", "bad magic"),
        payload,
        topic="t",
        partition=1,
        offset=5,
        time_unix_s=1.0,
    )
    decoded = DeadLetter.decode(letter.encode())
    assert decoded.reason == "malformed"
    assert decoded.payload_bytes == 10_000
    assert len(decoded.payload_b64) < 6000
