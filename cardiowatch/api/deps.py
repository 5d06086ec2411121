"""What every request handler needs: the shared state and the calling token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis

from cardiowatch.api.auth import Token, TokenStore, unauthorized
from cardiowatch.api.hub import AlertHub
from cardiowatch.api.keys import Keys
from cardiowatch.api.waveform import WaveformFeed
from cardiowatch.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API token (`cardiowatch tokens create`).")


@dataclass
class ApiState:
    """Shared by every request of one API process."""

    settings: Settings
    keys: Keys
    redis: Redis[bytes]
    tokens: TokenStore
    hub: AlertHub
    waveforms: WaveformFeed


def api_state(request: Request) -> ApiState:
    """The process's :class:`ApiState` (set by the app's lifespan)."""
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _resolve(state: ApiState, token: str | None) -> Token:
    if not token or len(token) > 512:
        raise unauthorized()
    record = await state.tokens.lookup(token)
    if record is None:
        raise unauthorized()
    return record


async def bearer_token(state: State, credentials: Credentials) -> Token:
    """The token of ``Authorization: Bearer ...``; 401 when missing or unknown."""
    return await _resolve(state, credentials.credentials if credentials else None)


async def bearer_or_query_token(
    state: State,
    credentials: Credentials,
    access_token: Annotated[
        str | None,
        Query(max_length=512, description="The token, for clients that cannot set headers."),
    ] = None,
) -> Token:
    """The bearer token, else the ``access_token`` query parameter (EventSource, WebSocket)."""
    return await _resolve(state, credentials.credentials if credentials else access_token)


CurrentToken = Annotated[Token, Depends(bearer_token)]
StreamToken = Annotated[Token, Depends(bearer_or_query_token)]
