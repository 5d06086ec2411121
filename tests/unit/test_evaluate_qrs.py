"""`cardiowatch evaluate qrs`: the JSON layout and the scores on a real record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from cardiowatch.evaluate_qrs import (
    detect_cardiowatch,
    load_reference,
    markdown,
    run_evaluation,
    score_records,
)


def test_json_layout_and_accuracy_on_record_100(mitdb: Path, tmp_path: Path) -> None:
    out = tmp_path / "qrs.json"
    done = subprocess.run(
        [sys.executable, "-m", "cardiowatch", "evaluate", "qrs", "--records", "100,117",
         "--json", str(out), "--noise", "--noise-records", "100"],
        capture_output=True, text=True, timeout=120, check=False,
        env={"CARDIOWATCH_DATA": str(mitdb.parent), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result) >= {"gross", "gross_nonpaced", "records", "seconds_per_record"}
    assert set(result["records"]) == {"100", "117"}
    assert set(result["records"]["100"]) == {"tp", "fn", "fp", "se", "ppv"}
    assert result["gross"]["se"] >= 99.5
    assert result["gross"]["ppv"] >= 99.5
    assert result["gross"] == result["gross_nonpaced"]  # neither record is paced
    assert "| 100 |" in done.stdout
    noise = result["noise"]
    assert noise["records"] == ["100"]
    assert list(noise["snr_db"]) == ["24", "18", "12", "6", "0", "-6"]
    f1 = [noise["snr_db"][s]["f1"] for s in noise["snr_db"]]
    assert f1[0] >= 99.5  # 24 dB barely disturbs a clean record
    assert f1[-1] < f1[0]  # and -6 dB does


def test_flutter_episodes_are_excluded_from_scoring(mitdb: Path) -> None:
    ref = load_reference(mitdb, "207")
    assert ref.flutter, "record 207 has ventricular flutter episodes"
    scored = score_records([ref], detect_cardiowatch)
    # A detector that fires every 200 ms inside the flutter episodes and nowhere else loses
    # nothing when those episodes are excluded.
    fs = ref.fs_hz
    spam = np.concatenate([np.arange(a, b, int(0.2 * fs)) for a, b in ref.flutter])
    spammed = score_records(
        [ref], lambda x, f: np.sort(np.concatenate([detect_cardiowatch(x, f), spam]))
    )
    assert spammed["gross"]["fp"] == scored["gross"]["fp"]


def test_chosen_peers_are_scored_beside_ours(mitdb: Path) -> None:
    result = run_evaluation(mitdb, ["100"], peers=["length_transform"])
    peer = result["peers"]["length_transform"]
    assert set(result["peers"]) == {"length_transform"}
    assert peer["gross"]["se"] >= 99.5
    assert peer["gross"]["ppv"] >= 99.5
    assert "| length_transform | all |" in markdown(result)
