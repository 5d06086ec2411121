"""The API's /metrics: requests by route template (never a patient id), status, subscribers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from cardiowatch.api import create_app
from cardiowatch.settings import Settings
from tests.integration.api_harness import api_settings, create_token, make_vitals, write

pytestmark = pytest.mark.integration


def test_api_counts_requests_by_route_template(services: Settings, tmp_path: Path) -> None:
    settings = api_settings(services, tmp_path)
    write(settings, vitals=[make_vitals("bed-7")], alerts=[])
    token, _ = create_token(settings, patients=["bed-7"])
    registry = CollectorRegistry()
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, webhooks_enabled=False, registry=registry)) as client:
        assert client.get("/api/v1/patients/bed-7", headers=auth).status_code == 200
        assert client.get("/api/v1/patients/bed-8", headers=auth).status_code == 404
        assert client.get("/api/v1/patients").status_code == 401
        assert client.request("BREW", "/api/v1/patients").status_code == 405
        text = client.get("/metrics").text

    def count(route: str, method: str, status: str) -> float | None:
        labels = {"route": route, "method": method, "status": status}
        return registry.get_sample_value("cardiowatch_api_requests_total", labels)

    assert count("/api/v1/patients/{patient_id}", "GET", "200") == 1
    assert count("/api/v1/patients/{patient_id}", "GET", "404") == 1
    assert count("/api/v1/patients", "GET", "401") == 1
    assert count("/api/v1/patients", "other", "405") == 1  # no label per invented method
    assert "bed-7" not in text
    assert "bed-8" not in text
    assert "cardiowatch_api_sse_subscribers 0.0" in text
    assert "cardiowatch_api_request_duration_seconds_bucket" in text
    assert "cardiowatch_api_redis_errors_total 0.0" in text
