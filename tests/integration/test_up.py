"""`cardiowatch up` (what `make demo` runs): patients, heart rates and alerts within 60 s."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mitdb_path

pytestmark = pytest.mark.integration


def test_up_shows_patients_heart_rates_and_alerts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOWATCH_")}
    env.update(
        CARDIOWATCH_DATA=str(mitdb_path().parent),
        CARDIOWATCH_METRICS_PORT="0",
        CARDIOWATCH_WORKER_DATA_DIR=str(tmp_path / "worker"),
        COLUMNS="160",
    )
    argv = ["up", "--for", "40", "--records", "100", "--synthetic", "1",
            "--event", "asystole@8:8", "--log-dir", str(tmp_path / "logs")]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "cardiowatch", *argv],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mitdb/100" in out
    assert "synthetic" in out
    row = next(line for line in out.splitlines() if "mitdb/100" in line and "p00000" in line)
    heart_rate = int(re.findall(r"\b(\d{2,3})\b", row.split("mitdb/100", 1)[1])[0])
    assert 60 <= heart_rate <= 90, row  # record 100 beats at about 75 bpm
    assert "asystole" in out
    # Everything it started is stopped: nothing listens on the broker's and Redis' ports.
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out.split("logs in")[0])]
    assert len(ports) >= 2, out[:500]
    for port in ports[:2]:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
