"""Every documented endpoint fuzzed with schemathesis, in-process, with a valid token: no 500s.

The app runs against the session's real Redis with some patients, vitals, alerts and an
acknowledgement in it, so the generated requests reach real data. Hypothesis runs with the
deterministic profile of ``tests/conftest.py`` and a fixed number of examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import shutdown_lifespans

from cardiowatch.api import create_app
from cardiowatch.settings import Settings
from tests.integration.api_harness import api_settings, create_token, make_alert, make_vitals, write

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def fuzz_setup(services: Settings, tmp_path: Path) -> Iterator[tuple[FastAPI, str]]:
    """The app (SSE streams closed after 0.3 s, no webhook calls) and an all-powerful token."""
    s = api_settings(services, tmp_path, api_sse_max_s=0.3, api_heartbeat_s=0.1)
    write(
        s,
        vitals=[make_vitals(p) for p in ("p1", "p2")],
        alerts=[make_alert(p, onset_sample=o, n_strip=20) for p in ("p1", "p2") for o in (1, 2)],
    )
    token, _ = create_token(s, permissions=["read", "ack"], patients=["p1"])
    yield create_app(s, webhooks_enabled=False), token
    # schemathesis keeps the lifespans it started until exit; stop this app's now.
    shutdown_lifespans()


def _operations() -> list[str]:
    """Labels of every documented operation (the description needs no Redis)."""
    offline = create_app(Settings.from_env({}, redis_url="redis://unused"))
    described = schemathesis.openapi.from_dict(offline.openapi())
    return [r.ok().label for r in described.get_all_operations()]  # type: ignore[union-attr]


def test_every_endpoint_is_described() -> None:
    labels = set(_operations())
    assert {
        "GET /api/v1/alerts/stream",
        "POST /api/v1/alerts/{event_id}/ack",
        "GET /api/v1/patients/{patient_id}/alarms",
    } <= labels
    assert len(labels) == 12


@pytest.mark.parametrize("label", _operations())
def test_no_endpoint_fails(fuzz_setup: tuple[FastAPI, str], label: str) -> None:
    app, token = fuzz_setup
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    (operation,) = [op for op in operations if op.label == label]
    calls: list[int] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )
        calls.append(response.status_code)

    fuzz()
    assert calls, "no request was made"
    assert max(calls) < 500
