"""Every message the service puts on Kafka, in one versioned module.

Simulators, stream workers and the API all import this module; nothing else encodes or
decodes messages.

* :class:`SampleChunk` is binary: a small JSON header followed by the samples as a
  little-endian ``int16`` or ``float32`` array of shape ``(n_samples, n_leads)``. One second of
  two-lead 360 Hz ECG is 1,440 bytes of samples plus about 300 bytes of header.
* :class:`BeatBatch`, :class:`Vitals`, :class:`Alert` and :class:`DeadLetter` are JSON objects
  with a ``"v"`` (schema version) and a ``"type"`` field, read by people and dashboards too.

Decoding validates and raises :class:`SchemaError` with a short, bounded ``reason`` (used as a
metric label and in dead letters) instead of failing deep inside a stage.

Examples
--------
>>> import numpy as np
>>> chunk = SampleChunk(patient_id="p1", kind="ecg", fs_hz=360.0, leads=("MLII", "V5"),
...     gain=(200.0, 200.0), baseline=(0, 0), units=("mV", "mV"), start_sample=0, seq=0,
...     source="mitdb/100", samples=np.zeros((360, 2), dtype=np.int16))
>>> SampleChunk.decode(chunk.encode()).physical().shape
(360, 2)
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, Self, cast

import numpy as np
import numpy.typing as npt

SCHEMA_VERSION = 1
_MAGIC = b"CW"
_PREFIX = struct.Struct("<2sBBI")  # magic, version, dtype code, header length
_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("<i2"), 2: np.dtype("<f4")}
_DTYPE_CODES = {str(dt): code for code, dt in _DTYPES.items()}
_PATIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
SIGNAL_KINDS = ("ecg", "pcg")
MAX_FS_HZ = 50_000.0
MAX_LEADS = 16
MAX_DEAD_LETTER_PAYLOAD_BYTES = 4096

Priority = Literal["high", "medium", "low"]
AlertState = Literal["raise", "update", "end"]

#: Every reason a message can be rejected for; bounded, so it can label a metric.
REJECT_REASONS = (
    "malformed",
    "truncated",
    "unsupported_version",
    "invalid_field",
    "non_finite",
    "oversized",
    "empty",
    "duplicate",
    "processing_error",
)


class SchemaError(ValueError):
    """A message that cannot be used, with a bounded ``reason`` and a human ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REJECT_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _check(cond: bool, reason: str, detail: str) -> None:
    if not cond:
        raise SchemaError(reason, detail)


def validate_patient_id(patient_id: object) -> str:
    """Return ``patient_id`` if it is 1-64 characters of ``[A-Za-z0-9_.:-]``."""
    _check(
        isinstance(patient_id, str) and bool(_PATIENT_ID.match(patient_id)),
        "invalid_field",
        "patient_id must be 1-64 characters of [A-Za-z0-9_.:-]",
    )
    return str(patient_id)


@dataclass(frozen=True)
class SampleChunk:
    """About one second of one patient's signal.

    ``samples`` holds ADC units (``int16``) or physical units (``float32``); the physical
    value is ``(samples - baseline) / gain`` in ``units``. ``stream_id`` names one unbroken
    stream of a patient (a producer session): ``seq`` counts chunks within it, so a chunk of a
    new stream starts the patient afresh while an old ``seq`` of the same stream is a
    redelivery.
    """

    patient_id: str
    kind: str
    fs_hz: float
    leads: tuple[str, ...]
    gain: tuple[float, ...]
    baseline: tuple[int, ...]
    units: tuple[str, ...]
    start_sample: int
    seq: int
    source: str
    samples: npt.NDArray[Any] = field(repr=False)
    sent_unix_s: float = 0.0
    stream_id: str = ""
    version: int = SCHEMA_VERSION

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.samples.shape[0])

    @property
    def end_sample(self) -> int:
        """Absolute index one past the last sample."""
        return self.start_sample + self.n_samples

    def physical(self) -> npt.NDArray[np.float64]:
        """Samples in physical units, shape ``(n_samples, n_leads)``."""
        x = self.samples.astype(np.float64)
        if self.samples.dtype.kind == "i":
            x -= np.asarray(self.baseline, dtype=np.float64)
            x /= np.asarray(self.gain, dtype=np.float64)
        return x

    def encode(self) -> bytes:
        """Serialise: prefix, JSON header, raw little-endian samples."""
        arr = np.ascontiguousarray(self.samples)
        code = _DTYPE_CODES.get(str(arr.dtype.newbyteorder("<")))
        if code is None:
            raise SchemaError("invalid_field", f"samples dtype {arr.dtype} is not int16/float32")
        header = {
            "patient_id": self.patient_id,
            "kind": self.kind,
            "fs_hz": self.fs_hz,
            "leads": list(self.leads),
            "gain": list(self.gain),
            "baseline": list(self.baseline),
            "units": list(self.units),
            "start_sample": self.start_sample,
            "seq": self.seq,
            "source": self.source,
            "sent_unix_s": self.sent_unix_s,
            "stream_id": self.stream_id,
            "n_samples": int(arr.shape[0]),
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        prefix = _PREFIX.pack(_MAGIC, self.version, code, len(head))
        return prefix + head + arr.astype(_DTYPES[code], copy=False).tobytes()

    @classmethod
    def decode(cls, data: bytes, *, max_bytes: int = 1_048_576) -> SampleChunk:
        """Parse and validate one encoded chunk; raise :class:`SchemaError` if it is unusable."""
        _check(isinstance(data, bytes | bytearray | memoryview), "malformed", "not bytes")
        _check(len(data) <= max_bytes, "oversized", f"{len(data)} bytes > {max_bytes}")
        _check(len(data) >= _PREFIX.size, "truncated", "shorter than the message prefix")
        magic, version, code, head_len = _PREFIX.unpack_from(data)
        _check(magic == _MAGIC, "malformed", "bad magic bytes")
        _check(version == SCHEMA_VERSION, "unsupported_version", f"schema version {version}")
        _check(code in _DTYPES, "malformed", f"unknown sample dtype code {code}")
        body_at = _PREFIX.size + head_len
        _check(len(data) >= body_at, "truncated", "header cut short")
        try:
            header = json.loads(bytes(data[_PREFIX.size : body_at]))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SchemaError("malformed", "header is not JSON") from None
        _check(isinstance(header, dict), "malformed", "header is not an object")
        try:
            return cls._from_header(header, bytes(data[body_at:]), _DTYPES[code], version)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError("invalid_field", f"bad header field ({exc!r:.80})") from None

    @classmethod
    def _from_header(
        cls, h: dict[str, Any], body: bytes, dtype: np.dtype[Any], version: int
    ) -> SampleChunk:
        patient_id = validate_patient_id(h["patient_id"])
        kind = h["kind"]
        _check(kind in SIGNAL_KINDS, "invalid_field", f"kind must be one of {SIGNAL_KINDS}")
        fs_hz = float(h["fs_hz"])
        _check(0.0 < fs_hz <= MAX_FS_HZ, "invalid_field", "fs_hz out of range")
        leads = tuple(str(x) for x in h["leads"])
        gain = tuple(float(x) for x in h["gain"])
        baseline = tuple(int(x) for x in h["baseline"])
        units = tuple(str(x) for x in h["units"])
        n_leads = len(leads)
        _check(1 <= n_leads <= MAX_LEADS, "invalid_field", "number of leads out of range")
        _check(
            len(gain) == len(baseline) == len(units) == n_leads,
            "invalid_field",
            "gain, baseline and units need one entry per lead",
        )
        _check(all(math.isfinite(g) and g > 0 for g in gain), "invalid_field", "gain must be > 0")
        start, seq, n = int(h["start_sample"]), int(h["seq"]), int(h["n_samples"])
        _check(start >= 0 and seq >= 0, "invalid_field", "start_sample and seq must be >= 0")
        _check(n > 0, "empty", "chunk holds no samples")
        expected = n * n_leads * dtype.itemsize
        _check(len(body) >= expected, "truncated", f"{len(body)} sample bytes < {expected}")
        _check(len(body) == expected, "malformed", f"{len(body)} sample bytes > {expected}")
        samples = np.frombuffer(body, dtype=dtype).reshape(n, n_leads)
        if dtype.kind == "f":
            _check(bool(np.isfinite(samples).all()), "non_finite", "NaN or infinite sample")
        return cls(
            patient_id=patient_id,
            kind=kind,
            fs_hz=fs_hz,
            leads=leads,
            gain=gain,
            baseline=baseline,
            units=units,
            start_sample=start,
            seq=seq,
            source=str(h.get("source", "")),
            samples=samples,
            sent_unix_s=float(h.get("sent_unix_s", 0.0)),
            stream_id=str(h.get("stream_id", ""))[:64],
            version=version,
        )


class _JsonMessage:
    """Shared JSON encoding of the small messages (``"v"`` and ``"type"`` fields)."""

    TYPE: ClassVar[str]
    #: Fields holding lists of records, decoded into this record class.
    NESTED: ClassVar[dict[str, type]] = {}

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse and validate; raise :class:`SchemaError` for anything unusable."""
        obj = cls._load(data)
        try:
            for key, record in cls.NESTED.items():
                obj[key] = [record(**item) for item in obj[key]]
            message: Self = cast(Any, cls)(**obj)
        except (TypeError, KeyError) as exc:
            raise SchemaError("invalid_field", str(exc)) from None
        message._validate()
        return message

    def _validate(self) -> None:
        """Checks beyond the fields' presence (none by default)."""

    def encode(self) -> bytes:
        """Serialise to compact UTF-8 JSON."""
        body = {"v": SCHEMA_VERSION, "type": self.TYPE, **asdict(self)}  # type: ignore[call-overload]
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def _load(cls, data: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError("malformed", f"not JSON ({exc})") from None
        _check(isinstance(obj, dict), "malformed", "not a JSON object")
        _check(obj.get("v") == SCHEMA_VERSION, "unsupported_version", f"v={obj.get('v')!r}")
        _check(obj.get("type") == cls.TYPE, "invalid_field", f"type is not {cls.TYPE!r}")
        obj.pop("v")
        obj.pop("type")
        return dict(obj)


@dataclass(frozen=True)
class BeatRecord:
    """One beat inside a :class:`BeatBatch`."""

    sample: int
    quality: float
    label: str | None = None


@dataclass(frozen=True)
class BeatBatch(_JsonMessage):
    """The beats that became final while processing one chunk."""

    TYPE: ClassVar[str] = "beats"
    NESTED: ClassVar[dict[str, type]] = {"beats": BeatRecord}
    patient_id: str
    source: str
    fs_hz: float
    chunk_seq: int
    beats: list[BeatRecord]
    detector_version: str
    model_version: str | None = None


@dataclass(frozen=True)
class Vitals(_JsonMessage):
    """A patient's latest vital signs, published once per processed chunk."""

    TYPE: ClassVar[str] = "vitals"
    patient_id: str
    source: str
    fs_hz: float
    sample_index: int
    heart_rate_bpm: float | None
    signal_ok: bool
    beats_total: int
    active_alarms: list[str]
    time_unix_s: float


def alert_id(patient_id: str, alarm_type: str, onset_sample: int) -> str:
    """Stable alert id: the same episode gets the same id after restarts and rebalances.

    >>> alert_id("p1", "asystole", 1000) == alert_id("p1", "asystole", 1000)
    True
    """
    digest = hashlib.sha256(f"{patient_id}|{alarm_type}|{onset_sample}".encode()).hexdigest()
    return digest[:20]


@dataclass(frozen=True)
class Alert(_JsonMessage):
    """One event of an alarm's lifecycle. Consumers de-duplicate by ``(id, state, sample_index)``.

    ``evidence`` carries the heart rate and a short strip of lead 1 in physical units
    (``{"start_sample": int, "fs_hz": float, "mv": [float, ...]}``).
    """

    TYPE: ClassVar[str] = "alert"
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

    def _validate(self) -> None:
        _check(self.state in ("raise", "update", "end"), "invalid_field", "bad state")
        _check(self.priority in ("high", "medium", "low"), "invalid_field", "bad priority")


@dataclass(frozen=True)
class DeadLetter(_JsonMessage):
    """A message the worker could not use, kept (truncated, base64) for inspection and replay."""

    TYPE: ClassVar[str] = "dead_letter"
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    payload_b64: str
    payload_bytes: int
    time_unix_s: float

    @classmethod
    def for_payload(
        cls,
        error: SchemaError,
        payload: bytes,
        *,
        topic: str,
        partition: int,
        offset: int,
        time_unix_s: float,
    ) -> DeadLetter:
        """Build a dead letter, keeping at most the first 4 KiB of ``payload``."""
        kept = bytes(payload[:MAX_DEAD_LETTER_PAYLOAD_BYTES])
        return cls(
            reason=error.reason,
            detail=error.detail[:500],
            topic=topic,
            partition=partition,
            offset=offset,
            payload_b64=base64.b64encode(kept).decode(),
            payload_bytes=len(payload),
            time_unix_s=time_unix_s,
        )


@dataclass(frozen=True)
class AnnotationRecord:
    """One reference annotation (WFDB symbol) at an absolute sample index."""

    sample: int
    symbol: str


@dataclass(frozen=True)
class AnnotationBatch(_JsonMessage):
    """Reference annotations of a replayed record that fall inside one chunk (live scoring)."""

    TYPE: ClassVar[str] = "annotations"
    NESTED: ClassVar[dict[str, type]] = {"annotations": AnnotationRecord}
    patient_id: str
    source: str
    fs_hz: float
    chunk_seq: int
    annotations: list[AnnotationRecord]
