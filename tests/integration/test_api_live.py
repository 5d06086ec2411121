"""The WebSocket of the live page: vitals in scope, waveforms from the real broker."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import KafkaProducer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cardiowatch.schemas import SampleChunk
from cardiowatch.settings import Settings
from tests.integration.api_harness import (
    api_settings,
    create_token,
    make_vitals,
    start_api,
    write,
)

pytestmark = pytest.mark.integration


def _chunk(patient_id: str, seq: int) -> SampleChunk:
    t = np.arange(seq * 360, (seq + 1) * 360)
    samples = (200 * np.sin(2 * np.pi * t / 360.0)).astype(np.int16).reshape(-1, 1)
    return SampleChunk(
        patient_id=patient_id, kind="ecg", fs_hz=360.0, leads=("MLII",), gain=(200.0,),
        baseline=(0,), units=("mV",), start_sample=seq * 360, seq=seq, source="test",
        samples=samples,
    )  # fmt: skip


def _produce(settings: Settings, stop: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_url)
    seq = 0
    try:
        while not stop.wait(0.2):
            for pid in ("p1", "p3"):
                producer.send(settings.topic_ecg, key=pid.encode(), value=_chunk(pid, seq).encode())
            producer.flush()
            seq += 1
    finally:
        producer.close()


def test_websocket_sends_vitals_and_waveforms_in_scope_only(
    services: Settings, tmp_path: Path
) -> None:
    settings = api_settings(services, tmp_path, api_waveform_hz=120.0)
    write(settings, vitals=[make_vitals(p) for p in ("p1", "p3")])
    token, _ = create_token(settings, patients=["p1"])
    api = start_api(settings, tmp_path / "logs")
    url = api.base_url.replace("http://", "ws://") + "/api/v1/live"
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(settings, stop), daemon=True)
    frames: list[dict[str, Any]] = []
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(url + "?access_token=cwt_wrong", open_timeout=10)
        assert refused.value.response.status_code == 403
        with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            first = json.loads(ws.recv(timeout=10))
            assert first["type"] == "vitals"
            assert [p["patient_id"] for p in first["patients"]] == ["p1"]
            ws.send(json.dumps({"watch": ["p1", "p3"]}))  # p3 is outside the scope: ignored
            producer.start()
            for _ in range(500):
                frames.append(json.loads(ws.recv(timeout=30)))
                if sum(f["type"] == "waveform" for f in frames) >= 3:
                    break
    finally:
        stop.set()
        if producer.is_alive():
            producer.join(10)
        api.stop()
    assert "Traceback" not in api.log()
    waves = [f for f in frames if f["type"] == "waveform"]
    assert len(waves) >= 3, "no waveform arrived"
    assert {w["patient_id"] for w in waves} == {"p1"}
    for w in waves:
        assert w["fs_hz"] == 120.0
        assert w["step"] == 3
        assert len(w["mv"]) == 120
        assert max(abs(v) for v in w["mv"]) <= 1.0
    starts = [w["start_sample"] for w in waves]
    assert all(b - a == 360 for a, b in itertools.pairwise(starts))
