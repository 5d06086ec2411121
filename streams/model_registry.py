"""The model registry in Redis and the worker's in-process model caches.

Redis holds, per model name (``beats``: the beat classifier; ``pcg``: the heart-sound window
classifier):

* ``<prefix>model:<name>``: the current version (``sha256:`` + 16 hex digits of the artifact);
* ``<prefix>model:<name>:<version>``: the artifact bytes (self-describing, no pickle);
* channel ``<prefix>models``: ``"<name> <version>"`` is published on every change.

``cardiowatch models publish NAME PATH`` calls :func:`publish_model`. A worker keeps one
:class:`ModelCache` per name: it loads each version once, hands the current one to every
chunk, and follows the pointer: at once on an announcement, and by polling every
``model_poll_s`` in case an announcement was missed (pub/sub does not queue for a
disconnected subscriber). When Redis names no version, the worker uses the artifact at
``CARDIOWATCH_BEATS_MODEL`` (``CARDIOWATCH_PCG_MODEL``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from models.beats import BeatClassifier, FeatureSpec, artifact_version
from models.pcg import PcgClassifier

log = logging.getLogger(__name__)

BEATS = "beats"
PCG = "pcg"


class ServedModel(Protocol):
    """What the cache needs of a loaded model: the version it reports on its outputs."""

    @property
    def version(self) -> str: ...


M = TypeVar("M", bound=ServedModel)


@dataclass(frozen=True)
class ModelKind(Generic[M]):
    """A model name in the registry, how to load its artifacts and what the worker accepts.

    Parameters
    ----------
    name
        Registry name (``beats``, ``pcg``).
    load
        Artifact bytes -> model; raises ``ValueError`` on a broken artifact.
    refuse
        Why this worker cannot serve a loaded model (``None``: it can), e.g. features other
        than the ones it computes.
    """

    name: str
    load: Callable[[bytes], M]
    refuse: Callable[[M], str | None] = lambda model: None


def beat_kind(spec: FeatureSpec | None = None) -> ModelKind[BeatClassifier]:
    """The beat classifier; a model trained with other features than ``spec`` is refused."""
    served = spec if spec is not None else FeatureSpec()

    def refuse(model: BeatClassifier) -> str | None:
        return None if model.spec == served else "trained with other features than served"

    return ModelKind(BEATS, BeatClassifier.from_bytes, refuse)


def pcg_kind() -> ModelKind[PcgClassifier]:
    """The heart-sound classifier (its window spec travels with it: the monitor adapts)."""
    return ModelKind(PCG, PcgClassifier.from_bytes)


#: The registry's model names and their kinds; :func:`publish_model` loads an artifact with
#: its kind's loader before storing it.
KINDS: dict[str, Callable[[], ModelKind[BeatClassifier] | ModelKind[PcgClassifier]]] = {
    BEATS: beat_kind,
    PCG: pcg_kind,
}


def pointer_key(prefix: str, name: str) -> str:
    """Redis key of a model's current version."""
    return f"{prefix}model:{name}"


def artifact_key(prefix: str, name: str, version: str) -> str:
    """Redis key of a model version's artifact bytes."""
    return f"{prefix}model:{name}:{version}"


def channel(prefix: str) -> str:
    """Pub/sub channel announcing model changes."""
    return f"{prefix}models"


def publish_model(client: redis.Redis[bytes], prefix: str, name: str, data: bytes) -> str:
    """Store an artifact, make it the current version of ``name`` and announce it.

    Parameters
    ----------
    client
        Synchronous Redis client.
    prefix
        Key prefix of the service (``CARDIOWATCH_REDIS_KEY_PREFIX``).
    name
        Model name (a key of :data:`KINDS`: ``beats``, ``pcg``).
    data
        Artifact bytes; they are loaded first, so a broken artifact is never published.

    Returns
    -------
    str
        The version (content hash) now current.
    """
    if name not in KINDS:
        raise ValueError(f"unknown model name {name!r} (one of {', '.join(sorted(KINDS))})")
    KINDS[name]().load(data)  # raises ValueError on a broken artifact
    version = artifact_version(data)
    pipe = client.pipeline(transaction=True)
    pipe.set(artifact_key(prefix, name, version), data)
    pipe.set(pointer_key(prefix, name), version)
    pipe.publish(channel(prefix), f"{name} {version}")
    pipe.execute()
    return version


class ModelCache(Generic[M]):
    """The worker's models of one name: each version loaded once, the current one per chunk.

    Parameters
    ----------
    client
        Async Redis client.
    kind
        The model name and how to load and accept its artifacts (:func:`beat_kind`,
        :func:`pcg_kind`).
    prefix
        Key prefix of the service.
    default_path
        Artifact used while Redis names no version (empty: no model, e.g. beats unlabelled).
        A missing or broken default is logged and served as no model.
    """

    def __init__(
        self,
        client: Redis[bytes],
        kind: ModelKind[M],
        *,
        prefix: str,
        default_path: str = "",
    ) -> None:
        self.client = client
        self.kind = kind
        self.prefix = prefix
        self.default_path = default_path
        self._loaded: dict[str, M] = {}
        self._current: M | None = None
        self._default: M | None = None
        self._default_read = False
        self._checked = False
        self.loads = 0  # versions loaded (each once)

    def current(self) -> M | None:
        """The model for the next chunk."""
        return self._current

    async def ensure(self) -> M | None:
        """The current model, asking Redis the first time."""
        if not self._checked:
            await self.refresh()
        return self._current

    async def refresh(self) -> M | None:
        """Follow the Redis pointer (or fall back to the default artifact)."""
        try:
            raw = await self.client.get(pointer_key(self.prefix, self.kind.name))
            version = None if raw is None else raw.decode()
            if version is None:
                self._use(self._default_model())
            elif self._current is None or self._current.version != version:
                self._use(await self._fetch(version))
        except (RedisError, OSError) as exc:
            log.warning("model registry unavailable (%s)", type(exc).__name__)
            if not self._checked:
                self._use(self._default_model())
        except ValueError as exc:
            log.error("%s model not activated: %s", self.kind.name, exc)
        self._checked = True
        return self._current

    async def watch(self, poll_s: float) -> None:
        """Follow announcements (and poll every ``poll_s``) until cancelled."""
        mine = f"{self.kind.name} "
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel(self.prefix))
                await self.refresh()  # anything published before the subscription
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=poll_s
                    )
                    if message is None or str(message["data"], "utf-8").startswith(mine):
                        await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("model announcements lost (%s); resubscribing", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag

    def _use(self, model: M | None) -> None:
        if model is not None:
            reason = self.kind.refuse(model)
            if reason is not None:
                raise ValueError(f"{model.version} {reason}")
        if model is not self._current:
            version = None if model is None else model.version
            log.warning("%s model now %s", self.kind.name, version)
        self._current = model

    def _default_model(self) -> M | None:
        if not self.default_path or self._default_read:
            return self._default
        self._default_read = True
        try:
            data = Path(self.default_path).read_bytes()
            self._default = self._load(artifact_version(data), data)
        except (OSError, ValueError) as exc:
            log.error("no default %s model: %s", self.kind.name, type(exc).__name__)
        return self._default

    async def _fetch(self, version: str) -> M:
        if version in self._loaded:
            return self._loaded[version]
        data = await self.client.get(artifact_key(self.prefix, self.kind.name, version))
        if data is None:
            raise ValueError(f"no artifact stored for {version}")
        return self._load(version, data)

    def _load(self, version: str, data: bytes) -> M:
        if artifact_version(data) != version:
            digest = hashlib.sha256(data).hexdigest()[:16]
            raise ValueError(f"artifact bytes hash to {digest}, not {version}")
        if version not in self._loaded:
            self._loaded[version] = self.kind.load(data)
            self.loads += 1
        return self._loaded[version]
