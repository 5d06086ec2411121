"""A real Prometheus scrapes a running worker: the pipeline's series arrive and a rule fires."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cardiowatch.services import free_port, wait_for_port
from cardiowatch.settings import Settings
from simulators.build import synthetic_patients
from tests.integration.harness import fresh_settings, replay, send_raw, start_worker

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus" / "rules.yml"


def query(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def wait_ready(base: str, *, timeout_s: float) -> None:
    """Block until Prometheus answers ``/-/ready`` with 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "prometheus never became ready"
        time.sleep(0.2)


def test_prometheus_scrapes_the_worker_and_a_rule_fires(services: Settings, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is required: 'make test' installs it (scripts/ensure-system-deps)")
    settings = fresh_settings(services, tmp_path)
    worker = start_worker(settings, tmp_path)
    metrics_port = int(re.findall(r":(\d+)/metrics", worker.metrics_url)[0])
    # The production rules, with every `for:` shortened so that the test need not wait minutes.
    rules = re.sub(r"for: \d+m", "for: 0s", RULES.read_text())
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        "  - job_name: cardiowatch-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        prom = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port("127.0.0.1", port, 30.0, prom)
        wait_ready(base, timeout_s=30.0)  # it listens before its storage is open (503 until then)
        # Counters must be scraped at 0 before they move, or rate() sees no increase.
        deadline = time.monotonic() + 30
        while not query(base, "/api/v1/query", query='up{job="cardiowatch-worker"} == 1')["result"]:
            assert time.monotonic() < deadline, "prometheus never scraped the worker"
            time.sleep(0.5)
        [patient] = synthetic_patients(1, events=[], seed=9, first_index=300)
        replay(settings, [patient], duration_s=20.0)
        for _ in range(30):
            send_raw(settings, settings.topic_ecg, b"p00300", b"not a chunk")

        deadline = time.monotonic() + 90
        firing: list[str] = []
        samples = 0.0
        while time.monotonic() < deadline:
            result = query(base, "/api/v1/query", query="sum(cardiowatch_samples_total)")["result"]
            samples = float(result[0]["value"][1]) if result else 0.0
            alerts = query(base, "/api/v1/alerts")["alerts"]
            firing = [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"]
            wanted = {"CardiowatchDeadLetters", "CardiowatchPatientNoData"}
            if samples >= 20 * 360 and wanted <= set(firing):
                break
            time.sleep(1.0)
        assert samples >= 20 * 360, samples
        assert "CardiowatchDeadLetters" in firing, firing
        # The patient's chunks stopped when the replay ended: its no-data rule fires (> 30 s).
        nodata = [a for a in query(base, "/api/v1/alerts")["alerts"]
                  if a["labels"]["alertname"] == "CardiowatchPatientNoData"]  # fmt: skip
        assert [a["labels"]["patient"] for a in nodata] == ["p00300"], nodata
        assert "CardiowatchWorkerDown" not in firing
        up = query(base, "/api/v1/query", query='up{job="cardiowatch-worker"}')["result"]
        assert up[0]["value"][1] == "1"
        for series in ("cardiowatch_chunks_total", "cardiowatch_beats_total",
                       "cardiowatch_end_to_end_latency_seconds_bucket",
                       "cardiowatch_stage_duration_seconds_bucket",
                       "cardiowatch_consumer_lag_messages", "cardiowatch_broker_errors_total",
                       "cardiowatch_redis_errors_total", "cardiowatch_rebalances_total",
                       "cardiowatch_patient_heart_rate_bpm"):  # fmt: skip
            assert query(base, "/api/v1/series", **{"match[]": series}), series
        lag = query(base, "/api/v1/query", query="max(cardiowatch_consumer_lag_messages)")
        assert float(lag["result"][0]["value"][1]) == 0.0  # everything sent was processed
        [model] = query(base, "/api/v1/query", query="cardiowatch_model_info == 1")["result"]
        assert model["metric"]["model"] == "beats"
        assert model["metric"]["version"].startswith("sha256:")
    finally:
        prom.terminate()
        prom.wait(timeout=20)
        worker.stop()
