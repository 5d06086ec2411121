"""Monitoring configuration: Prometheus config and rules, every dashboard query, Alertmanager,
docker-compose, all checked with the real tools (promtool, amtool, docker-compose)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cardiowatch.metrics import ApiMetrics, SimulatorMetrics, WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DATASOURCE_UID = "cardiowatch-prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required: 'make test' installs it (scripts/ensure-system-deps)")
    return path


def run(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_prometheus_config_and_rules() -> None:
    out = run(
        tool("promtool"), "check", "config", str(DASHBOARDS / "prometheus" / "prometheus.yml")
    )
    assert "SUCCESS" in out
    out = run(tool("promtool"), "check", "rules", str(DASHBOARDS / "prometheus" / "rules.yml"))
    assert "SUCCESS: 10 rules found" in out


def dashboards() -> list[dict[str, object]]:
    return [
        json.loads(p.read_text())
        for p in sorted((DASHBOARDS / "grafana" / "dashboards").glob("*.json"))
    ]


def test_dashboards_have_fixed_uids_and_reference_the_datasource_by_uid() -> None:
    boards = dashboards()
    assert boards, "no dashboards"
    uids = [b["uid"] for b in boards]
    assert len(set(uids)) == len(uids)
    assert all(isinstance(u, str) and u.startswith("cardiowatch-") for u in uids)
    provisioned = (
        DASHBOARDS / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    ).read_text()
    assert f"uid: {DATASOURCE_UID}" in provisioned
    for board in boards:
        panels = board["panels"]
        assert isinstance(panels, list)
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), board["uid"]
        for p in panels:
            assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            assert p["targets"], p["title"]
            assert {"x", "y", "w", "h"} <= set(p["gridPos"])


def test_patient_dashboard_is_templated_on_the_patient() -> None:
    [board] = [b for b in dashboards() if b["uid"] == "cardiowatch-patient"]
    [variable] = board["templating"]["list"]  # type: ignore[index]
    assert variable["name"] == "patient"
    assert variable["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
    assert "label_values(" in variable["definition"]
    per_patient = [
        p
        for p in board["panels"]  # type: ignore[attr-defined]
        if all('patient="$patient"' in t["expr"] for t in p["targets"])
    ]
    assert len(per_patient) >= 6


def test_every_metric_named_in_rules_and_dashboards_exists() -> None:
    """A renamed metric must not leave a rule or a panel silently empty."""
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    SimulatorMetrics(registry)
    ApiMetrics(registry)
    known = {s.name for metric in registry.collect() for s in metric.samples}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    known |= {
        metric.name + suffix for metric in registry.collect()
        for suffix in ("", *suffixes.get(metric.type, ()))
    }  # fmt: skip
    texts = [(DASHBOARDS / "prometheus" / "rules.yml").read_text()]
    texts += [p.read_text() for p in (DASHBOARDS / "grafana" / "dashboards").glob("*.json")]
    used = {name for text in texts for name in re.findall(r"\bcardiowatch_[a-z_]+", text)}
    assert used, "no metric found"
    assert used <= known, sorted(used - known)


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    rules = []
    for board in dashboards():
        for p in board["panels"]:  # type: ignore[attr-defined]
            for t in p["targets"]:
                name = f"check:{board['uid']}:{p['id']}:{t['refId']}".replace("-", "_")
                rules.append({"record": name, "expr": t["expr"]})
    rule_file = tmp_path / "panels.yml"
    rule_file.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))
    out = run(tool("promtool"), "check", "rules", str(rule_file))
    assert f"SUCCESS: {len(rules)} rules found" in out


def test_alertmanager_config() -> None:
    out = run(tool("amtool"), "check-config", str(DASHBOARDS / "alertmanager" / "alertmanager.yml"))
    assert "SUCCESS" in out


def test_docker_compose_config_is_valid_and_has_no_default_passwords() -> None:
    env = {**os.environ, "REDIS_PASSWORD": "test-only", "GRAFANA_ADMIN_PASSWORD": "test-only"}
    out = run(tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config", env=env)
    for service in (
        "kafka",
        "redis",
        "prometheus",
        "alertmanager",
        "grafana",
        "worker",
        "simulator",
        "api",
    ):
        assert f"  {service}:" in out, service
    bare = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
    }
    argv = [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=bare)
    assert done.returncode != 0, "the compose file must refuse to start without passwords"
