"""The terminal view of ``cardiowatch up``: patients, heart rates and alerts, read from Redis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cardiowatch.settings import Settings

_PRIORITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}


@dataclass(frozen=True)
class Snapshot:
    """What the view shows at one moment."""

    patients: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def read_snapshot(
    client: redis.Redis[bytes], settings: Settings, *, max_patients: int = 20, max_alerts: int = 8
) -> Snapshot:
    """Latest vitals of up to ``max_patients`` patients and the newest alerts."""
    prefix = settings.redis_key_prefix
    ids = sorted(m.decode() for m in client.smembers(f"{prefix}patients"))[:max_patients]
    pipe = client.pipeline(transaction=False)
    for pid in ids:
        pipe.hget(f"{prefix}vitals:{pid}", "json")
    patients = [json.loads(raw) for raw in pipe.execute() if raw]
    entries = client.xrevrange(settings.redis_alerts_stream, count=max_alerts)
    alerts = [json.loads(fields[b"json"]) for _, fields in entries]
    return Snapshot(patients, alerts)


def render(snapshot: Snapshot, *, header: str) -> Group:
    """A rich renderable of ``snapshot``."""
    patients = Table(title="Patients", expand=True)
    for col in ("patient", "source", "heart rate (bpm)", "signal", "beats", "active alarms"):
        patients.add_column(col)
    for v in snapshot.patients:
        hr = "-" if v["heart_rate_bpm"] is None else f"{v['heart_rate_bpm']:.0f}"
        signal = Text("ok", style="green") if v["signal_ok"] else Text("LOST", style="bold red")
        alarms = Text(
            ", ".join(v["active_alarms"]) or "-", style="bold red" if v["active_alarms"] else ""
        )
        patients.add_row(v["patient_id"], v["source"], hr, signal, str(v["beats_total"]), alarms)
    alerts = Table(title="Latest alerts", expand=True)
    for col in ("patient", "alarm", "state", "priority", "onset (s)", "heart rate"):
        alerts.add_column(col)
    for a in snapshot.alerts:
        style = _PRIORITY_STYLE.get(a["priority"], "")
        hr = "-" if a["heart_rate_bpm"] is None else f"{a['heart_rate_bpm']:.0f}"
        onset_s = f"{a['onset_sample'] / a['fs_hz']:.1f}"
        alerts.add_row(a["patient_id"], Text(a["alarm_type"], style=style), a["state"],
                       Text(a["priority"], style=style), onset_s, hr)  # fmt: skip
    return Group(Text(header, style="bold"), patients, alerts)
