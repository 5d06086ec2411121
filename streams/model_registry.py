"""The model registry in Redis and the worker's in-process model cache.

Redis holds, per model name (only ``beats`` so far):

* ``<prefix>model:<name>``: the current version (``sha256:`` + 16 hex digits of the artifact);
* ``<prefix>model:<name>:<version>``: the artifact bytes (self-describing, no pickle);
* channel ``<prefix>models``: ``"<name> <version>"`` is published on every change.

``cardiowatch models publish beats PATH`` calls :func:`publish_model`. A worker's
:class:`ModelCache` loads each version once, hands the current one to every chunk, and
follows the pointer: at once on an announcement, and by polling every ``model_poll_s`` in
case an announcement was missed (pub/sub does not queue for a disconnected subscriber). When
Redis names no version, the worker uses the artifact at ``CARDIOWATCH_BEATS_MODEL``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from models.beats import BeatClassifier, FeatureSpec, artifact_version

log = logging.getLogger(__name__)

BEATS = "beats"


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
        Model name (``beats``).
    data
        Artifact bytes; they are loaded first, so a broken artifact is never published.

    Returns
    -------
    str
        The version (content hash) now current.
    """
    BeatClassifier.from_bytes(data)  # raises ValueError on a broken artifact
    version = artifact_version(data)
    pipe = client.pipeline(transaction=True)
    pipe.set(artifact_key(prefix, name, version), data)
    pipe.set(pointer_key(prefix, name), version)
    pipe.publish(channel(prefix), f"{name} {version}")
    pipe.execute()
    return version


class ModelCache:
    """The worker's models: each version loaded once, the current one per chunk.

    Parameters
    ----------
    client
        Async Redis client.
    prefix
        Key prefix of the service.
    default_path
        Artifact used while Redis names no version (empty: no model, beats unlabelled).
    spec
        Feature parameters the worker computes; a model trained with others is refused.
    """

    def __init__(
        self,
        client: Redis[bytes],
        *,
        prefix: str,
        default_path: str = "",
        spec: FeatureSpec | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.default_path = default_path
        self.spec = spec if spec is not None else FeatureSpec()
        self._loaded: dict[str, BeatClassifier] = {}
        self._current: BeatClassifier | None = None
        self._default: BeatClassifier | None = None
        self._checked = False
        self.loads = 0  # versions loaded (each once)

    def current(self) -> BeatClassifier | None:
        """The model for the next chunk."""
        return self._current

    async def ensure(self) -> BeatClassifier | None:
        """The current model, asking Redis the first time."""
        if not self._checked:
            await self.refresh()
        return self._current

    async def refresh(self) -> BeatClassifier | None:
        """Follow the Redis pointer (or fall back to the default artifact)."""
        try:
            raw = await self.client.get(pointer_key(self.prefix, BEATS))
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
            log.error("model not activated: %s", exc)
        self._checked = True
        return self._current

    async def watch(self, poll_s: float) -> None:
        """Follow announcements (and poll every ``poll_s``) until cancelled."""
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel(self.prefix))
                await self.refresh()  # anything published before the subscription
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=poll_s
                    )
                    if message is None or str(message["data"], "utf-8").startswith(BEATS):
                        await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("model announcements lost (%s); resubscribing", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs lag

    def _use(self, model: BeatClassifier | None) -> None:
        if model is not None and model.spec != self.spec:
            raise ValueError(f"{model.version} was trained with other features than served")
        if model is not self._current:
            log.warning("beat model now %s", None if model is None else model.version)
        self._current = model

    def _default_model(self) -> BeatClassifier | None:
        if not self.default_path:
            return None
        if self._default is None:
            data = Path(self.default_path).read_bytes()
            self._default = self._load(artifact_version(data), data)
        return self._default

    async def _fetch(self, version: str) -> BeatClassifier:
        if version in self._loaded:
            return self._loaded[version]
        data = await self.client.get(artifact_key(self.prefix, BEATS, version))
        if data is None:
            raise ValueError(f"no artifact stored for {version}")
        return self._load(version, data)

    def _load(self, version: str, data: bytes) -> BeatClassifier:
        if artifact_version(data) != version:
            digest = hashlib.sha256(data).hexdigest()[:16]
            raise ValueError(f"artifact bytes hash to {digest}, not {version}")
        if version not in self._loaded:
            self._loaded[version] = BeatClassifier.from_bytes(data)
            self.loads += 1
        return self._loaded[version]
