"""Heart sounds end to end: replayed recordings -> signals.pcg -> worker -> alerts, vitals.

The recordings were chosen because the committed model (``models/artifacts/pcg.cwm``) classifies
them with a margin, window by window in 1 s chunks: ABNORMAL (10.8 s) has all 8 windows usable
and every mean of 4 consecutive windows >= 0.99 abnormal (the alarm needs 0.6); ARTIFACT (9.0 s)
has all 7 windows unusable; NORMAL (11.1 s) has all 9 windows usable and every mean of 4 at
most 0.18 (``sha256:0d01d15265c5c264``); re-checked for ``sha256:5116e7280df9637d`` (with the
heart-cycle features): the same, NORMAL's means of 4 at most 0.17. NORMAL was
``training-c/c0006`` until ``0d01d152``, which gives it a mean of 4 up to 0.66. They are
training recordings of the model, so this test checks the streaming path, not the model's
accuracy (``BENCHMARKS.md`` does that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardiowatch.schemas import Alert, DeadLetter, Vitals
from cardiowatch.settings import Settings
from models.pcg import ALARM_ABNORMAL, ALARM_POOR_QUALITY
from simulators.audio import load_audio, pcg_patients
from simulators.patients import run_replay
from streams.pcg_offline import analyze_audio
from tests.integration.harness import (
    WorkerProcess,
    fresh_settings,
    read_topic,
    send_raw,
    start_worker,
)

pytestmark = pytest.mark.integration

ABNORMAL = "physionet2016/training-d/d0002.wav"
ARTIFACT = "pascal/set_a/artifact__201105051017.wav"
NORMAL = "physionet2016/training-d/d0020.wav"


@pytest.fixture(scope="module")
def pcg_worker(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, WorkerProcess]]:
    """One worker (with the committed PCG model) on fresh topics."""
    tmp = tmp_path_factory.mktemp("pcg")
    settings = fresh_settings(services, tmp)
    worker = start_worker(settings, tmp)
    yield settings, worker
    worker.stop()


def test_abnormal_and_artifact_alert_normal_does_not(
    pcg_worker: tuple[Settings, WorkerProcess], mitdb: Path
) -> None:
    settings, worker = pcg_worker
    data = mitdb.parent
    files = [data / ABNORMAL, data / ARTIFACT, data / NORMAL]
    patients = pcg_patients(files, None, loop=False)
    ends = {p.patient_id: len(load_audio(f)[0]) for p, f in zip(patients, files, strict=True)}
    asyncio.run(run_replay(settings, patients, speed=0.0, duration_s=None, kind="pcg"))

    def last_index(msgs: list[tuple[bytes, bytes]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, v in msgs:
            vit = Vitals.decode(v)
            out[vit.patient_id] = max(out.get(vit.patient_id, 0), vit.sample_index)
        return out

    def all_done(msgs: list[tuple[bytes, bytes]]) -> bool:
        seen = last_index(msgs)
        # Vitals count internal-rate (1000 Hz) samples; the last chunk is shorter than 1 s.
        return all(
            seen.get(p.patient_id, 0) >= ends[p.patient_id] * 1000 // p.source.info.fs_hz - 1000
            for p in patients
        )

    vitals = read_topic(settings, settings.topic_vitals, until=all_done, timeout_s=180)
    assert all_done(vitals), worker.log()
    messages = read_topic(settings, settings.topic_alerts, until=lambda m: False, timeout_s=3)
    alerts = [Alert.decode(v) for _, v in messages]
    raised = {(a.patient_id, a.alarm_type) for a in alerts if a.state == "raise"}
    abnormal, artifact, normal = (p.patient_id for p in patients)
    assert (abnormal, ALARM_ABNORMAL) in raised, raised
    assert (artifact, ALARM_POOR_QUALITY) in raised, raised
    assert not any(pid == normal for pid, _ in raised), raised
    assert all(a.priority == "medium" for a in alerts if a.alarm_type == ALARM_ABNORMAL)
    assert all(a.priority == "low" for a in alerts if a.alarm_type == ALARM_POOR_QUALITY)
    # The offline twin runs the same stage code: the stream's last heart rate is its heart rate.
    for patient, path in zip(patients, files, strict=True):
        last = max((Vitals.decode(v) for k, v in vitals if k == patient.patient_id.encode()),
                   key=lambda vit: vit.sample_index)  # fmt: skip
        assert last.heart_rate_bpm == analyze_audio(path, None)["heart_rate_bpm"]
    hr = [Vitals.decode(v).heart_rate_bpm for k, v in vitals if k == normal.encode()]
    assert any(h is not None and 40 <= h <= 180 for h in hr)


def test_bad_heart_sound_input_is_dead_lettered(
    pcg_worker: tuple[Settings, WorkerProcess],
) -> None:
    settings, worker = pcg_worker
    send_raw(settings, settings.topic_pcg, b"p-bad", b"CW\x01\x01garbage")
    letters = read_topic(
        settings, settings.topic_dead_letters,
        until=lambda m: any(DeadLetter.decode(v).topic == settings.topic_pcg for _, v in m),
    )  # fmt: skip
    [letter] = [DeadLetter.decode(v) for _, v in letters]
    assert letter.topic == settings.topic_pcg
    assert letter.reason in ("truncated", "malformed")
    assert 'cardiowatch_dead_letters_total{reason="' + letter.reason + '"} 1.0' in worker.metrics()
