"""The one settings object of the service.

Every field has a default, an environment variable (``CARDIOWATCH_<FIELD>``) and a line of
documentation; nothing else in the code base hard-codes a host, a port or a topic name.
``cardiowatch settings`` prints the table below with the values in force.

Examples
--------
>>> s = Settings.from_env({"CARDIOWATCH_CHUNK_S": "0.5", "CARDIOWATCH_DATA": "/data"})
>>> s.chunk_s, s.data_dir
(0.5, '/data')
>>> s.topic_ecg
'signals.ecg'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "CARDIOWATCH_"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _setting(default: Any, doc: str, *, env: str | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "env": env})


def default_data_dir() -> str:
    """``../shared/data`` beside the checkout when it exists, else ``~/.cache/cardiowatch/data``."""
    shared = _REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return str(shared)
    return str(Path.home() / ".cache" / "cardiowatch" / "data")


@dataclass(frozen=True)
class Settings:
    """Typed settings; build with :meth:`from_env`."""

    kafka_url: str = _setting(
        "", "Kafka bootstrap servers (host:port[,host:port]); empty = start the embedded broker."
    )
    redis_url: str = _setting("", "Redis URL (redis://host:port/db); empty = start redis-server.")
    broker_compat: str = _setting(
        "auto",
        "Broker quirks to design around: 'tansu' (one-record producer batches so table "
        "recovery stays exact), 'kafka' (none), 'auto' = 'tansu' for the embedded broker.",
    )
    data_dir: str = _setting(
        default_data_dir(), "Directory holding mitdb/, pascal/, ...", env="CARDIOWATCH_DATA"
    )
    app_id: str = _setting("cardiowatch", "Faust application id (consumer group, table prefix).")
    partitions: int = _setting(4, "Partitions of every patient-keyed topic.")
    topic_ecg: str = _setting("signals.ecg", "ECG sample chunks, keyed by patient id.")
    topic_annotations: str = _setting(
        "signals.ecg.annotations", "Reference beat annotations of replayed records."
    )
    topic_beats: str = _setting("beats.ecg", "Detected beats, one batch per processed chunk.")
    topic_vitals: str = _setting("vitals", "Per-patient vitals (heart rate, signal state).")
    topic_alerts: str = _setting("alerts", "Alarm lifecycle events (raise, update, end).")
    topic_dead_letters: str = _setting("deadletters", "Messages the worker could not process.")
    topic_pcg: str = _setting("signals.pcg", "Heart-sound sample chunks, keyed by patient id.")
    chunk_s: float = _setting(1.0, "Length of one sample chunk in seconds.")
    max_chunk_bytes: int = _setting(1_048_576, "Chunks larger than this are dead-lettered.")
    mains_hz: float = _setting(60.0, "Power-line frequency removed by the notch filter (50 or 60).")
    metrics_port: int = _setting(9464, "Port of the worker's Prometheus /metrics; 0 = any free.")
    metrics_host: str = _setting("127.0.0.1", "Address /metrics listens on.")
    metrics_max_patients: int = _setting(
        200, "Patients per worker that get per-patient gauges (the patient dashboard); a cap."
    )
    simulator_metrics_port: int = _setting(
        -1, "Port of the simulator's Prometheus /metrics; 0 = any free, -1 = not served."
    )
    session_timeout_s: float = _setting(6.0, "Consumer-group session timeout in seconds.")
    worker_data_dir: str = _setting(
        str(Path.home() / ".cache" / "cardiowatch" / "worker"), "Faust's local data directory."
    )
    redis_alerts_stream: str = _setting("cw:alerts", "Redis stream that every alert is added to.")
    redis_alerts_maxlen: int = _setting(100_000, "Approximate length cap of the alert stream.")
    redis_key_prefix: str = _setting("cw:", "Prefix of every Redis key the service writes.")
    log_level: str = _setting("WARNING", "Log level of the worker and simulator.")
    cache_dir: str = _setting(
        str(Path.home() / ".cache" / "cardiowatch"),
        "Cache of derived data (built beat datasets); never inside the repository.",
    )
    beats_model: str = _setting(
        str(_REPO_ROOT / "models" / "artifacts" / "beats.cwm"),
        "Beat-classifier artifact used when Redis names none (empty = no beat labels).",
    )
    pcg_model: str = _setting(
        str(_REPO_ROOT / "models" / "artifacts" / "pcg.cwm"),
        "Heart-sound window classifier artifact (empty = no PCG classification or PCG alerts).",
    )
    model_poll_s: float = _setting(
        5.0, "Seconds between checks of the Redis model pointer (besides pub/sub announcements)."
    )
    api_host: str = _setting("127.0.0.1", "Address the API (`cardiowatch api`) listens on.")
    api_port: int = _setting(8080, "Port of the API and live page; 0 = any free.")
    api_redis_max_connections: int = _setting(
        64, "Redis connections one API process opens at most (requests queue for a free one)."
    )
    api_sse_max_s: float = _setting(
        300.0,
        "An SSE connection is closed after this many seconds (the token and scope are checked "
        "again when the client resumes with Last-Event-ID).",
    )
    api_heartbeat_s: float = _setting(15.0, "Seconds between SSE/WebSocket keep-alives.")
    api_scope_refresh_s: float = _setting(
        5.0, "Long-lived connections re-read their token and ward scope this often (seconds)."
    )
    api_history_scan_max: int = _setting(
        5000, "Alert stream entries one history request scans at most (then returns a cursor)."
    )
    api_subscriber_queue: int = _setting(
        1000, "Alerts buffered per SSE subscriber before it catches up from Redis instead."
    )
    api_vitals_interval_s: float = _setting(1.0, "Seconds between vitals frames on the WebSocket.")
    api_waveform_hz: float = _setting(
        125.0, "Sampling rate the WebSocket waveform is downsampled to (at most)."
    )
    api_webhook_group: str = _setting(
        "cw-api-webhooks", "Redis consumer group of the webhook delivery task."
    )
    api_webhook_max_attempts: int = _setting(
        5, "Delivery attempts of one webhook call before it goes to the dead-letter list."
    )
    api_webhook_backoff_s: float = _setting(
        0.5, "Delay before the first webhook retry; doubled on every further retry."
    )
    api_webhook_backoff_max_s: float = _setting(30.0, "Longest delay between webhook retries.")
    api_webhook_timeout_s: float = _setting(5.0, "Timeout of one webhook HTTP request.")
    api_webhook_concurrency: int = _setting(32, "Webhook HTTP requests in flight at most.")
    api_webhook_claim_idle_s: float = _setting(
        60.0, "Alerts pending this long at another (dead) API process are claimed and delivered."
    )
    api_dead_letters_max: int = _setting(10_000, "Length cap of the webhook dead-letter list.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``CARDIOWATCH_*`` variables, then apply ``overrides`` (keyword = field name)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(cls.env_name(f.name))
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    @property
    def tansu_compat(self) -> bool:
        """Whether the Tansu broker quirks apply (see ``broker_compat``)."""
        if self.broker_compat == "auto":
            return not self.kafka_url
        return self.broker_compat == "tansu"

    @property
    def chunk_topics(self) -> tuple[str, ...]:
        """Every patient-keyed topic the service reads or writes."""
        return (
            self.topic_ecg,
            self.topic_annotations,
            self.topic_beats,
            self.topic_vitals,
            self.topic_alerts,
            self.topic_dead_letters,
            self.topic_pcg,
        )

    @staticmethod
    def env_name(field_name: str) -> str:
        """The environment variable of a field (``CARDIOWATCH_<FIELD>`` unless renamed)."""
        f = Settings.__dataclass_fields__[field_name]
        return str(f.metadata["env"] or ENV_PREFIX + field_name.upper())

    @staticmethod
    def documentation() -> list[tuple[str, str, str]]:
        """``(environment variable, default, doc)`` for every field."""
        return [
            (Settings.env_name(f.name), repr(f.default), f.metadata["doc"])
            for f in dataclasses.fields(Settings)
        ]


def _coerce(type_name: Any, raw: str, name: str) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "str")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
