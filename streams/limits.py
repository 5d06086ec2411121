"""Per-patient alarm limits kept in Redis, changeable while the worker runs.

A clinician (or the API) writes the hash ``{prefix}limits:{patient}`` with any of the fields of
:data:`LIMIT_FIELDS`, e.g. ``HSET cw:limits:bed-1 tachy_bpm 130 brady_bpm 45``. The worker
reads a patient's hash at most every ``refresh_s`` seconds (:class:`LimitsCache`) and applies
it to the patient's monitor before the next chunk (:meth:`models.monitor.EcgMonitor.set_limits`),
so a change takes effect within ``refresh_s`` without a restart. Fields not in the hash keep
their defaults; a hash that does not parse, or limits out of order, are ignored (logged and
counted by the caller as a warning), never applied half-way.
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: Fields of the limits hash, each in the unit its name says.
LIMIT_FIELDS = (
    "brady_bpm",
    "tachy_bpm",
    "extreme_brady_bpm",
    "extreme_tachy_bpm",
    "asystole_s",
    "vt_bpm",
)


#: The limits of a patient whose hash is empty or missing (the engines' defaults).
DEFAULT_LIMITS: dict[str, float] = {
    "brady_bpm": 40.0,
    "tachy_bpm": 150.0,
    "extreme_brady_bpm": 30.0,
    "extreme_tachy_bpm": 180.0,
    "asystole_s": 4.0,
    "vt_bpm": 100.0,
}


def limits_key(prefix: str, patient_id: str) -> str:
    """Redis key of a patient's alarm limits."""
    return f"{prefix}limits:{patient_id}"


def parse_limits(raw: dict[bytes, bytes]) -> dict[str, float]:
    """Every limit: the hash's fields over :data:`DEFAULT_LIMITS`.

    Raises
    ------
    ValueError
        A field is not a positive finite number, the hash names an unknown field, or the
        rate limits are out of order.
    """
    out = dict(DEFAULT_LIMITS)
    for k, v in raw.items():
        name = k.decode(errors="replace")
        if name not in LIMIT_FIELDS:
            raise ValueError(f"unknown limit {name!r}")
        value = float(v)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"limit {name} must be a positive number")
        out[name] = value
    order = [out[k] for k in ("extreme_brady_bpm", "brady_bpm", "tachy_bpm", "extreme_tachy_bpm")]
    if not order[0] <= order[1] < order[2] <= order[3]:
        raise ValueError("need extreme_brady_bpm <= brady_bpm < tachy_bpm <= extreme_tachy_bpm")
    return out


class LimitsCache:
    """Each patient's limits, read from Redis at most every ``refresh_s`` seconds.

    Parameters
    ----------
    client
        Redis connection.
    prefix
        Key prefix of the service.
    refresh_s
        Longest time a read stays in use.
    """

    def __init__(self, client: Redis[bytes], *, prefix: str, refresh_s: float = 2.0) -> None:
        self.client = client
        self.prefix = prefix
        self.refresh_s = refresh_s
        self._cache: dict[str, tuple[float, dict[str, float]]] = {}

    async def get(self, patient_id: str) -> dict[str, float]:
        """The patient's limits; the last good value on a Redis error or a bad hash."""
        now = time.monotonic()
        cached = self._cache.get(patient_id)
        if cached is not None and now - cached[0] < self.refresh_s:
            return cached[1]
        previous = dict(DEFAULT_LIMITS) if cached is None else cached[1]
        try:
            limits = parse_limits(await self.client.hgetall(limits_key(self.prefix, patient_id)))
        except (RedisError, OSError) as exc:
            log.warning("alarm limits unavailable (%s)", type(exc).__name__)
            limits = previous
        except ValueError as exc:
            log.warning("alarm limits ignored: %s", exc)
            limits = previous
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[patient_id] = (now, limits)
        return limits
