"""The FastAPI application: routers, the live page, and the background tasks' lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from cardiowatch import __version__
from cardiowatch.api import alerts, live, patients, sse, webhooks
from cardiowatch.api.auth import TokenStore
from cardiowatch.api.delivery import WebhookDelivery
from cardiowatch.api.deps import ApiState
from cardiowatch.api.hub import AlertHub
from cardiowatch.api.keys import Keys
from cardiowatch.api.metrics import MetricsMiddleware
from cardiowatch.api.waveform import WaveformFeed
from cardiowatch.metrics import ApiMetrics
from cardiowatch.settings import Settings

log = logging.getLogger(__name__)
STATIC_DIR = Path(str(resources.files("cardiowatch.api") / "static"))


def create_app(
    settings: Settings,
    *,
    webhooks_enabled: bool = True,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The API for ``settings`` (which must name a Redis URL).

    Parameters
    ----------
    settings
        Redis URL, key prefix, alert stream, topics and the ``api_*`` settings.
    webhooks_enabled
        Whether this process runs the webhook delivery task (one consumer-group member).
    registry
        Where the API's metrics live (served on ``/metrics``); a fresh one by default.
    """
    if not settings.redis_url:
        raise ValueError("the API needs CARDIOWATCH_REDIS_URL")
    metrics = ApiMetrics(registry if registry is not None else CollectorRegistry())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: BlockingConnectionPool[Any] = BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=settings.api_redis_max_connections, timeout=10
        )
        redis: Redis[bytes] = Redis(connection_pool=pool)
        keys = Keys.from_settings(settings)
        tokens = TokenStore(redis, keys)
        hub = AlertHub(redis, keys.alerts_stream, queue_size=settings.api_subscriber_queue)
        feed = WaveformFeed(settings)
        delivery = WebhookDelivery(settings, redis, keys, tokens) if webhooks_enabled else None
        app.state.api = ApiState(settings, keys, redis, tokens, hub, feed)
        metrics.sse_subscribers.set_function(lambda: float(hub.subscriber_count))
        await hub.start()
        if delivery is not None:
            await delivery.start()
        try:
            yield
        finally:
            if delivery is not None:
                await delivery.stop()
            await feed.stop()
            await hub.stop()
            await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
            await pool.disconnect()  # a pool passed in is not closed by the client

    app = FastAPI(
        title="Cardiowatch API",
        version=__version__,
        description="Patients, vitals and alerts of the patients in the calling token's scope.",
        lifespan=lifespan,
    )
    for router in (patients.router, alerts.router, sse.router, webhooks.router, live.router):
        app.include_router(router)

    @app.exception_handler(RedisError)
    async def redis_unavailable(request: Request, exc: RedisError) -> JSONResponse:
        log.warning("Redis error answered with 503 (%s)", type(exc).__name__)
        metrics.redis_errors.inc()
        return JSONResponse({"detail": "service unavailable"}, status_code=503)

    @app.get("/healthz", tags=["meta"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        """``{"status": "ok"}`` while the process serves requests (no token needed)."""
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of this process's metrics (no patient ids in any label)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
