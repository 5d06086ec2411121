"""``/api/v1/webhooks``: register, list and delete webhooks of the calling token.

A webhook receives every alert event of the patients in its token's scope (resolved at
delivery time, so a revoked token's webhooks fall silent). Delivery is done by
:mod:`cardiowatch.api.delivery`. The secret is stored (it is needed to sign) but never
returned.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Path, Response

from cardiowatch.api.auth import not_found
from cardiowatch.api.deps import CurrentToken, State
from cardiowatch.api.models import (
    DeadLetterList,
    DeadLetterOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(pattern=r"^wh_[A-Za-z0-9_-]{1,64}$")]


async def _own(state: State, token_hash: str) -> list[dict[str, object]]:
    raw = await state.redis.hgetall(state.keys.webhooks)
    hooks = [json.loads(v) for v in raw.values()]
    return sorted(
        (h for h in hooks if h["token_hash"] == token_hash),
        key=lambda h: float(h["created_unix_s"]),
    )


def _public(hook: dict[str, object]) -> WebhookOut:
    return WebhookOut.model_validate({k: hook[k] for k in ("id", "url", "created_unix_s")})


@router.post("", response_model=WebhookOut, status_code=201, summary="Register a webhook")
async def register(state: State, token: CurrentToken, body: WebhookIn) -> WebhookOut:
    """Alerts in the token's scope will be POSTed to ``url``, signed with ``secret``."""
    token.require("read")
    hook = {
        "id": "wh_" + secrets.token_urlsafe(12),
        "url": body.url,
        "secret": body.secret,
        "token_hash": token.token_hash,
        "created_unix_s": time.time(),
    }
    await state.redis.hset(state.keys.webhooks, str(hook["id"]), json.dumps(hook))
    return _public(hook)


@router.get("", response_model=WebhookList, summary="The token's webhooks")
async def list_webhooks(state: State, token: CurrentToken) -> WebhookList:
    """Every webhook registered with the calling token."""
    token.require("read")
    return WebhookList(webhooks=[_public(h) for h in await _own(state, token.token_hash)])


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "No such webhook of this token."}},
    summary="Delete a webhook",
)
async def delete_webhook(state: State, token: CurrentToken, webhook_id: WebhookId) -> Response:
    """Stop delivering to a webhook of the calling token."""
    token.require("read")
    if webhook_id not in {h["id"] for h in await _own(state, token.token_hash)}:
        raise not_found()
    await state.redis.hdel(state.keys.webhooks, webhook_id)
    return Response(status_code=204)


@router.get("/dead-letters", response_model=DeadLetterList, summary="Failed webhook calls")
async def dead_letters(state: State, token: CurrentToken) -> DeadLetterList:
    """Calls to the token's webhooks that failed every attempt, newest first."""
    token.require("read")
    own = {h["id"] for h in await _own(state, token.token_hash)}
    raws = await state.redis.lrange(state.keys.webhook_dead, 0, -1)
    items = [DeadLetterOut.model_validate_json(r) for r in raws]
    return DeadLetterList(items=[d for d in items if d.webhook_id in own])
