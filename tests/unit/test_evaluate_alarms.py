"""``cardiowatch evaluate alarms``: episode scoring, and any WFDB database at any one rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from click.testing import CliRunner

from cardiowatch.cli import main
from cardiowatch.evaluate_alarms import (
    Episode,
    records_with_signals,
    run_evaluation,
    score_record,
    summarise,
)
from simulators.synthetic import SyntheticEvent, SyntheticPatient

MODEL = Path(__file__).parents[2] / "models" / "artifacts" / "beats.cwm"


def _alarm(kind: str, onset: int, end: int, raised: int) -> dict[str, object]:
    return {"type": kind, "onset_sample": onset, "end_sample": end, "raised_sample": raised}


def test_scoring_by_episode_by_duration_false_alarms_and_time_to_alarm() -> None:
    fs_hz, n = 100.0, 10_000  # 100 s
    episodes = [
        Episode("VT", 1000, 1500),
        Episode("AFIB", 2000, 4000),
        Episode("VT", 5000, 5200),  # missed
    ]
    alarms = [
        _alarm("ventricular_tachycardia", 1100, 1600, 1200),  # true, 2 s after onset
        _alarm("atrial_fibrillation", 2500, 10_000, 3000),  # true, 10 s; runs on past AF
        _alarm("ventricular_tachycardia", 8000, 8100, 8100),  # false
        _alarm("tachycardia", 1100, 1600, 1200),  # not a scored kind
    ]
    result = summarise({"r": score_record(alarms, episodes, n)}, fs_hz, n / fs_hz / 3600.0)
    vt, af = result["episodes"]["VT"], result["episodes"]["AFIB"]
    assert (vt["n"], vt["se"], vt["alarms"], vt["ppv"]) == (2, 50.0, 2, 50.0)
    assert (af["n"], af["se"], af["alarms"], af["ppv"]) == (1, 100.0, 1, 100.0)
    assert result["episodes"]["AFL"]["se"] is None  # no episode: no figure, not 0
    vt_time, af_time = result["duration_weighted"]["VT"], result["duration_weighted"]["AFIB"]
    assert vt_time["se"] == pytest.approx(100 * 400 / 700, abs=0.01)  # 1100-1500 of 700
    assert vt_time["ppv"] == pytest.approx(100 * 400 / 600, abs=0.01)
    assert (af_time["se"], af_time["ppv"]) == (75.0, 20.0)  # 1500 of 2000; of 7500 alarmed
    assert result["time_to_alarm_s"]["VT"] == {"median": 2.0, "p95": 2.0, "n": 1}
    assert result["time_to_alarm_s"]["AFIB"]["median"] == 10.0
    assert result["false_alarms"] == {
        "r": [{"type": "ventricular_tachycardia", "onset_sample": 8000, "end_sample": 8100}]
    }
    assert result["false_alarms_per_hour"] == pytest.approx(36.0)  # 1 in 100 s


def _write(directory: Path, name: str, fs_hz: float, duration_s: float, vt_s: float) -> None:
    """A two-lead synthetic record with a VT of 12 s at ``vt_s`` and its rhythm annotations."""
    patient = SyntheticPatient(
        fs_hz, n_leads=2, heart_rate_bpm=70.0, seed=4, events=(SyntheticEvent("vt", vt_s, 12.0),)
    )
    x = patient.generate(round(duration_s * fs_hz))
    wfdb.wrsamp(name, fs=fs_hz, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=x,
                fmt=["16", "16"], write_dir=str(directory))  # fmt: skip
    marks = np.array([0, round(vt_s * fs_hz), round((vt_s + 12.0) * fs_hz)])
    wfdb.wrann(name, "atr", marks, symbol=["+"] * 3, aux_note=["(N", "(VT", "(N"],
               write_dir=str(directory))  # fmt: skip


def test_a_250_hz_database_is_scored_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "synthdb"
    db.mkdir()
    _write(db, "s1", 250.0, 120.0, 50.0)
    _write(db, "s2", 250.0, 60.0, 20.0)
    (db / "s2.dat").unlink()  # listed, annotations only (as AFDB's 00735 and 03665)
    (db / "RECORDS").write_text("s1\ns2\n")
    assert records_with_signals(db) == ["s1"]
    out = tmp_path / "alarms.json"
    env = {"CARDIOWATCH_DATA": str(tmp_path), "CARDIOWATCH_BEATS_MODEL": str(MODEL)}
    args = ["evaluate", "alarms", "--database", "synthdb", "--json", str(out)]
    run = CliRunner().invoke(main, args, env=env)
    assert run.exit_code == 0, run.output
    result = json.loads(out.read_text())
    assert result["records"] == ["s1"]
    assert result["fs_hz"] == 250.0
    assert result["hours"] == round(120.0 / 3600.0, 3)
    assert result["episodes"]["VT"]["n"] == 1
    assert result["episodes"]["VT"]["se"] == 100.0
    assert 0 < result["time_to_alarm_s"]["VT"]["median"] <= 5.0  # seconds at 250 Hz
    missing = CliRunner().invoke(main, [*args[:3], "nodb"], env=env)
    assert missing.exit_code != 0
    assert "no nodb in" in missing.output


def test_records_of_different_rates_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a", 250.0, 30.0, 10.0)
    _write(tmp_path, "b", 360.0, 30.0, 10.0)
    with pytest.raises(ValueError, match="different sampling rates"):
        run_evaluation(tmp_path, ["a", "b"], None)
