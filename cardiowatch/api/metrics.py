"""Request metrics of the API: a plain ASGI middleware (it leaves event streams streaming)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardiowatch.metrics import HTTP_METHODS, ApiMetrics


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        streaming = False

        async def send_counted(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                        streaming = True
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = _route(scope)
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            self.metrics.requests.labels(route, method, str(status)).inc()
            if not streaming:
                self.metrics.request_seconds.labels(route).observe(time.perf_counter() - t0)


def _route(scope: Scope) -> str:
    """The matched route's template; ``static`` for files, ``unmatched`` for the rest."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    return "static" if str(scope.get("path", "")).startswith("/static/") else "unmatched"
