"""Run the API with uvicorn on ``api_host:api_port``."""

from __future__ import annotations

import uvicorn

from cardiowatch.settings import Settings


def serve(settings: Settings) -> None:
    """Serve the API and the live page until interrupted."""
    from cardiowatch.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # URLs hold patient ids; no patient identifiers in logs
    )
