"""Per-patient alarm limits: parsing the Redis hash and applying it to a running monitor."""

from __future__ import annotations

import pytest

from models.monitor import EcgMonitor
from streams.limits import DEFAULT_LIMITS, parse_limits


def test_parse_fills_defaults_and_rejects_bad_hashes() -> None:
    assert parse_limits({}) == DEFAULT_LIMITS
    assert parse_limits({b"tachy_bpm": b"130"})["tachy_bpm"] == 130.0
    for bad in (
        {b"tachy_bpm": b"nan"},
        {b"brady_bpm": b"-1"},
        {b"heart_bpm": b"60"},
        {b"brady_bpm": b"160"},  # above the tachycardia limit
    ):
        with pytest.raises(ValueError, match=r"limit|need"):
            parse_limits(bad)


def test_monitor_takes_new_limits_and_refuses_disordered_ones() -> None:
    monitor = EcgMonitor(360.0, n_leads=1)
    monitor.set_limits({**DEFAULT_LIMITS, "tachy_bpm": 120.0, "vt_bpm": 110.0})
    with pytest.raises(ValueError, match="need"):
        monitor.set_limits({"brady_bpm": 200.0})
