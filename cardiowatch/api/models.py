"""Request and response bodies of the API (they make the OpenAPI description)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cardiowatch.schemas import Alert, Vitals


class VitalsOut(BaseModel):
    """A patient's latest vitals, as the worker wrote them."""

    patient_id: str
    source: str
    fs_hz: float
    sample_index: int
    heart_rate_bpm: float | None
    signal_ok: bool
    beats_total: int
    active_alarms: list[str]
    time_unix_s: float

    @classmethod
    def of(cls, vitals: Vitals) -> VitalsOut:
        """From the message."""
        return cls(**{k: getattr(vitals, k) for k in cls.model_fields})


class PatientOut(BaseModel):
    """One patient in scope, with the latest vitals (null before the first)."""

    patient_id: str
    vitals: VitalsOut | None


class PatientList(BaseModel):
    """Every patient in the token's scope."""

    patients: list[PatientOut]


class AlertOut(BaseModel):
    """One alert lifecycle event (see :class:`cardiowatch.schemas.Alert`)."""

    id: str
    patient_id: str
    alarm_type: str
    state: str
    priority: str
    onset_sample: int
    end_sample: int | None
    sample_index: int
    fs_hz: float
    source: str
    heart_rate_bpm: float | None
    evidence: dict[str, Any]
    detector_version: str
    time_unix_s: float

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        """From the message."""
        return cls(**{k: getattr(alert, k) for k in cls.model_fields})


class AckOut(BaseModel):
    """The acknowledgement of an alert episode (all its events share it)."""

    alert_id: str
    patient_id: str
    event_id: str = Field(description="Stream id of the event that was acknowledged.")
    by: str = Field(description="Name of the token that acknowledged.")
    time_unix_s: float


class AlertEvent(BaseModel):
    """An alert event with its stream id (the pagination cursor and SSE id)."""

    event_id: str
    alert: AlertOut
    ack: AckOut | None = None


class ShownAlarm(AlertEvent):
    """An alarm shown now: an open episode or a latched one (ended, not yet acknowledged)."""

    latched: bool = Field(
        description="The episode has ended but is latching and stays until acknowledged."
    )


class ShownAlarms(BaseModel):
    """The alarms a monitor shows now for one patient, highest priority first."""

    items: list[ShownAlarm]


class AlertPage(BaseModel):
    """A page of alert history, newest first."""

    items: list[AlertEvent]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null at the end."
    )


class AckPage(BaseModel):
    """A page of acknowledgements, newest first."""

    items: list[AckOut]
    next_cursor: str | None


class WebhookIn(BaseModel):
    """A webhook to register for the calling token."""

    url: str = Field(pattern=r"^https?://[^\s/?#]+(/[^\s]*)?$", max_length=2000)
    secret: str = Field(min_length=16, max_length=256, description="HMAC-SHA256 key.")


class WebhookOut(BaseModel):
    """A registered webhook (the secret is never returned)."""

    id: str
    url: str
    created_unix_s: float


class WebhookList(BaseModel):
    """The calling token's webhooks."""

    webhooks: list[WebhookOut]


class DeadLetterOut(BaseModel):
    """A webhook call that failed every attempt."""

    webhook_id: str
    event_id: str
    alert_id: str
    attempts: int
    last_error: str
    time_unix_s: float


class DeadLetterList(BaseModel):
    """The calling token's dead-lettered webhook calls, newest first."""

    items: list[DeadLetterOut]
