"""``/api/v1/live``: a WebSocket of vitals (every patient in scope) and waveforms (watched).

The token comes as ``Authorization: Bearer`` or ``?access_token=``; without a valid one the
handshake is refused (close code 1008). The server sends

* ``{"type": "vitals", "patients": [{"patient_id", "vitals"}, ...]}`` every
  ``api_vitals_interval_s``;
* ``{"type": "waveform", "patient_id", "start_sample", "step", "fs_hz", "mv": [...]}`` for each
  chunk of a watched patient (see :mod:`cardiowatch.api.waveform`).

The client sends ``{"watch": ["patient id", ...]}`` (at most 16) to choose the waveforms;
patients outside the scope are ignored exactly like unknown ones. The token and scope are read
again every ``api_scope_refresh_s``: a revoked token's socket is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from cardiowatch.api.auth import Token
from cardiowatch.api.deps import ApiState
from cardiowatch.api.patients import list_patients
from cardiowatch.api.waveform import Frame

router = APIRouter()
MAX_WATCHED = 16
POLICY_VIOLATION = 1008


async def _token(state: ApiState, websocket: WebSocket) -> Token | None:
    header = websocket.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    token = token or websocket.query_params.get("access_token")
    if not token or len(token) > 512:
        return None
    record = await state.tokens.lookup(token)
    return record if record is not None and "read" in record.permissions else None


@router.websocket("/api/v1/live")
async def live(websocket: WebSocket) -> None:
    """Vitals and waveforms of the patients in the token's scope."""
    state: ApiState = websocket.app.state.api
    first = await _token(state, websocket)
    if first is None:
        await websocket.close(code=POLICY_VIOLATION)
        return
    token: Token = first
    await websocket.accept()
    frames: asyncio.Queue[Frame] = asyncio.Queue(maxsize=64)
    watched: set[str] = set()
    feed = state.waveforms

    async def receive() -> None:
        nonlocal watched
        while True:
            try:
                message: Any = json.loads(await websocket.receive_text())
            except json.JSONDecodeError:
                continue
            ids = message.get("watch") if isinstance(message, dict) else None
            if not isinstance(ids, list):
                continue
            scope = await state.tokens.scope(token)
            watched = {p for p in ids[:MAX_WATCHED] if isinstance(p, str) and p in scope}
            feed.watch(frames, watched)

    async def send_vitals() -> None:
        nonlocal token, watched
        refresh_at = time.monotonic() + state.settings.api_scope_refresh_s
        while True:
            if time.monotonic() >= refresh_at:
                current = await state.tokens.by_hash(token.token_hash)
                if current is None:
                    return
                token = current
                scope = await state.tokens.scope(token)
                if not watched <= set(scope.filter(watched)):
                    watched = set(scope.filter(watched))
                    feed.watch(frames, watched)
                refresh_at = time.monotonic() + state.settings.api_scope_refresh_s
            page = await list_patients(state, token)
            await websocket.send_text(
                json.dumps({"type": "vitals", **page.model_dump(mode="json")})
            )
            await asyncio.sleep(state.settings.api_vitals_interval_s)

    async def send_frames() -> None:
        while True:
            await websocket.send_text(json.dumps(await frames.get()))

    tasks = [asyncio.create_task(c) for c in (receive(), send_vitals(), send_frames())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        feed.unwatch(frames)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # disconnects end them
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # it went meanwhile
                await websocket.close()
