"""Every Redis key the API reads or writes, in one place.

The worker's keys (``{prefix}patients``, ``{prefix}vitals:{patient}``, the alert stream) are
described in :mod:`streams.redis_sink`; the API adds:

* ``{prefix}api:token:{sha256}``: hash of one token (name, permissions, scope, created);
  only the SHA-256 of the token is stored, never the token.
* ``{prefix}api:tokens``: set of the token hashes (for ``cardiowatch tokens list``).
* ``{prefix}ward:{ward}``: set of the patient ids of a ward; ``{prefix}wards``: set of wards.
* ``{prefix}api:ack:{alert_id}``: JSON of the acknowledgement of an alert episode.
* ``{prefix}api:acks``: stream of acknowledgements (one entry per alert, the first ack).
* ``{prefix}api:webhooks``: hash webhook id -> JSON (url, secret, owner token hash).
* ``{prefix}api:webhook-dead``: list of webhook calls that failed every attempt (newest first).
"""

from __future__ import annotations

from dataclasses import dataclass

from cardiowatch.settings import Settings
from streams.redis_sink import ack_key, shown_key


@dataclass(frozen=True)
class Keys:
    """Key names for one key prefix."""

    prefix: str
    alerts_stream: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        """Keys of ``settings.redis_key_prefix`` and ``settings.redis_alerts_stream``."""
        return cls(settings.redis_key_prefix, settings.redis_alerts_stream)

    @property
    def patients(self) -> str:
        """Set of every patient id the worker has seen."""
        return f"{self.prefix}patients"

    def vitals(self, patient_id: str) -> str:
        """Hash of a patient's latest vitals."""
        return f"{self.prefix}vitals:{patient_id}"

    def token(self, token_hash: str) -> str:
        """Hash of one API token, by the SHA-256 hex digest of the token."""
        return f"{self.prefix}api:token:{token_hash}"

    @property
    def tokens(self) -> str:
        """Set of the hashes of every token."""
        return f"{self.prefix}api:tokens"

    def ward(self, ward: str) -> str:
        """Set of the patient ids of ``ward``."""
        return f"{self.prefix}ward:{ward}"

    @property
    def wards(self) -> str:
        """Set of the ward names."""
        return f"{self.prefix}wards"

    def ack(self, alert_id: str) -> str:
        """The acknowledgement of an alert episode (JSON string)."""
        return ack_key(self.prefix, alert_id)

    def shown(self, patient_id: str) -> str:
        """Hash of a patient's alarms shown now (written by the worker's sink)."""
        return shown_key(self.prefix, patient_id)

    @property
    def acks(self) -> str:
        """Stream of acknowledgements."""
        return f"{self.prefix}api:acks"

    @property
    def webhooks(self) -> str:
        """Hash webhook id -> registration JSON."""
        return f"{self.prefix}api:webhooks"

    @property
    def webhook_dead(self) -> str:
        """List of webhook deliveries that failed every attempt."""
        return f"{self.prefix}api:webhook-dead"
