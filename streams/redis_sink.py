"""Write the worker's results to Redis: latest vitals per patient and the alert stream.

Keys (``prefix`` defaults to ``cw:``):

* ``{prefix}patients``: set of patient ids seen.
* ``{prefix}vitals:{patient_id}``: hash of the latest :class:`~cardiowatch.schemas.Vitals`
  (``json`` holds the whole message; ``heart_rate_bpm``, ``sample_index``, ``signal_ok`` are
  there for quick reads). A write never moves ``sample_index`` backwards (redeliveries).
* ``{prefix}alerts``: a stream with one entry per alert lifecycle event, de-duplicated by
  ``(id, state, sample_index)`` through a ``{prefix}alert-seen:...`` key (kept 7 days), so a
  redelivered chunk never adds an alert twice.
* ``{prefix}shown:{patient_id}``: hash alert id -> ``{"event_id", "alert"}`` (the latest event)
  of the alarms a monitor shows now (IEC 60601-1-8): every open episode, and a *latching*
  episode (``evidence.latching``: VT, ventricular run, asystole, pause) after its end until it
  is acknowledged. A non-latching episode leaves the hash when it ends; a latching one when it
  has ended and is acknowledged (here if the acknowledgement came first, or by the API's
  acknowledgement). Written in the same script as the stream entry, so only new events count.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from cardiowatch.schemas import Alert, Vitals

_SEEN_TTL_S = 7 * 24 * 3600


def shown_key(prefix: str, patient_id: str) -> str:
    """Hash of a patient's alarms shown now: open episodes and unacknowledged latched ones."""
    return f"{prefix}shown:{patient_id}"


def ack_key(prefix: str, alert_id: str) -> str:
    """The acknowledgement of an alert episode (written by the API)."""
    return f"{prefix}api:ack:{alert_id}"


# KEYS[1] = seen key, KEYS[2] = stream, KEYS[3] = shown hash, KEYS[4] = ack key;
# ARGV = ttl, maxlen, alert id, state, latching ('1'/'0'), alert JSON, then the stream's
# field/value pairs.
_ADD_ALERT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local event_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 7))
  if ARGV[4] == 'end' and (ARGV[5] == '0' or redis.call('EXISTS', KEYS[4]) == 1) then
    redis.call('HDEL', KEYS[3], ARGV[3])
  else
    local shown = '{"event_id":"' .. event_id .. '","alert":' .. ARGV[6] .. '}'
    redis.call('HSET', KEYS[3], ARGV[3], shown)
  end
  return event_id
end
return false
"""

# KEYS[1] = vitals hash; ARGV[1] = sample_index, then field/value pairs.
_SET_VITALS_IF_NEWER = """
local current = tonumber(redis.call('HGET', KEYS[1], 'sample_index') or '-1')
if tonumber(ARGV[1]) >= current then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  return 1
end
return 0
"""


class RedisSink:
    """Async writer of vitals and alerts.

    Alerts are written at once (:meth:`write_alerts`, awaited by the worker). Vitals are
    latest-value state: :meth:`queue_vitals` keeps only the newest per patient and
    :meth:`flush_vitals`, run on a timer, writes them all in one pipeline, so Redis costs one
    round trip per tick instead of one per chunk.
    """

    def __init__(
        self, redis: Redis[bytes], *, prefix: str = "cw:", alerts_stream: str = "cw:alerts",
        alerts_maxlen: int = 100_000,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.prefix = prefix
        self.alerts_stream = alerts_stream
        self.alerts_maxlen = alerts_maxlen
        self._add_alert = redis.register_script(_ADD_ALERT_ONCE)
        self._set_vitals = redis.register_script(_SET_VITALS_IF_NEWER)
        self._pending_vitals: dict[str, Vitals] = {}

    def vitals_key(self, patient_id: str) -> str:
        """Key of a patient's vitals hash."""
        return f"{self.prefix}vitals:{patient_id}"

    def shown_key(self, patient_id: str) -> str:
        """Key of the hash of a patient's alarms shown now (open or latched)."""
        return shown_key(self.prefix, patient_id)

    def queue_vitals(self, vitals: Vitals) -> None:
        """Remember ``vitals`` for the next :meth:`flush_vitals` (newest per patient wins)."""
        self._pending_vitals[vitals.patient_id] = vitals

    async def flush_vitals(self) -> int:
        """Write every queued vitals message; return how many were written."""
        if not self._pending_vitals:
            return 0
        pending, self._pending_vitals = self._pending_vitals, {}
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(f"{self.prefix}patients", *pending)
        for vitals in pending.values():
            hr = "" if vitals.heart_rate_bpm is None else str(vitals.heart_rate_bpm)
            await self._set_vitals(
                keys=[self.vitals_key(vitals.patient_id)],
                args=[
                    vitals.sample_index,
                    "json", vitals.encode(),
                    "heart_rate_bpm", hr,
                    "sample_index", vitals.sample_index,
                    "signal_ok", int(vitals.signal_ok),
                    "time_unix_s", vitals.time_unix_s,
                ],
                client=pipe,
            )  # fmt: skip
        await pipe.execute()
        return len(pending)

    async def write_alerts(self, alerts: Sequence[Alert]) -> int:
        """Add each alert to the stream unless it is already there; return how many were new."""
        if not alerts:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for alert in alerts:
            seen = f"{self.prefix}alert-seen:{alert.id}:{alert.state}:{alert.sample_index}"
            body = alert.encode()
            latching = "1" if alert.evidence.get("latching") else "0"
            await self._add_alert(
                keys=[
                    seen, self.alerts_stream, self.shown_key(alert.patient_id),
                    ack_key(self.prefix, alert.id),
                ],
                args=[
                    _SEEN_TTL_S, self.alerts_maxlen, alert.id, alert.state, latching, body,
                    "id", alert.id,
                    "patient_id", alert.patient_id,
                    "alarm_type", alert.alarm_type,
                    "state", alert.state,
                    "priority", alert.priority,
                    "json", body,
                ],
                client=pipe,
            )  # fmt: skip
        results = await pipe.execute()
        return sum(1 for r in results if r)
