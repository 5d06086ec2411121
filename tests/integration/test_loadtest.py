"""``cardiowatch loadtest`` against a running stack: two workers, one killed in the middle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cardiowatch.settings import Settings
from tests.integration.harness import fresh_settings, settings_env

pytestmark = pytest.mark.integration


def test_loadtest_with_a_worker_killed_loses_nothing(services: Settings, tmp_path: Path) -> None:
    settings = fresh_settings(services, tmp_path)
    out = tmp_path / "load.json"
    png = tmp_path / "load.png"
    argv = [
        sys.executable, "-m", "cardiowatch", "loadtest", "--patients", "8", "--duration", "40",
        "--workers", "2", "--warmup", "8", "--kill-worker-at", "20", "--alarm-patients", "2",
        "--json", str(out), "--png", str(png), "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    done = subprocess.run(
        argv, env=settings_env(settings), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["stack"] == "running"
    assert r["produced"]["chunks"] == 8 * 40
    assert r["lost_chunks"] == 0
    # Redelivered chunks after the kill are published again: at least one vitals per chunk.
    assert r["consumed"]["vitals"] >= 8 * 40
    lat = r["latency_s"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert {"worker-0", "worker-1", "loadtest"} <= set(r["processes"])
    assert all(p["rss_mb_max"] > 10 for p in r["processes"].values())
    # Both synthetic patients raise an asystole (and later a tachycardia).
    assert r["alerts"]["raised_by_type"].get("asystole") == 2, r["alerts"]
    kill = r["kill"]
    assert 19 <= kill["at_s"] <= 23
    assert 0 < kill["recovery_s"] < 30, kill
    verify = r["verify"]
    assert verify["patients_checked"] == 8
    assert verify["alert_events_expected"] >= 4
    assert verify["ok"], verify
    assert len(r["timeline"]) >= 40
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
