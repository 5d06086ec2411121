"""``cardiowatch tokens`` and ``cardiowatch wards`` against the real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis.asyncio import Redis

from cardiowatch.api.auth import TokenStore, hash_token
from cardiowatch.api.keys import Keys
from cardiowatch.cli import main
from cardiowatch.settings import Settings
from tests.integration.api_harness import api_settings, with_redis
from tests.integration.harness import settings_env

pytestmark = pytest.mark.integration


def test_tokens_and_wards_commands(services: Settings, tmp_path: Path) -> None:
    settings = api_settings(services, tmp_path)
    env = settings_env(settings)
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "2 added" in cli("wards", "assign", "ICU", "p1", "p2")
    assert cli("wards", "list") == "ICU: p1 p2\n"
    out = cli("tokens", "create", "--name", "icu-nurse", "--ward", "ICU",
              "--permission", "read", "--permission", "ack")  # fmt: skip
    token = out.strip().splitlines()[-1]
    assert token.startswith("cwt_")

    async def resolve(redis: Redis[bytes]) -> list[str]:
        store = TokenStore(redis, Keys.from_settings(settings))
        record = await store.lookup(token)
        assert record is not None
        return sorted((await store.scope(record)).patient_ids)

    assert with_redis(settings, resolve) == ["p1", "p2"]
    (listed,) = [json.loads(line) for line in cli("tokens", "list").splitlines()]
    assert listed["name"] == "icu-nurse"
    assert listed["permissions"] == ["ack", "read"]
    assert listed["id"] == hash_token(token)[:12]
    assert token not in cli("tokens", "list")
    assert "revoked" in cli("tokens", "revoke", listed["id"])
    assert cli("tokens", "list") == ""
    missing = runner.invoke(main, ["tokens", "revoke", "icu-nurse"], env=env)
    assert missing.exit_code != 0
    no_scope = runner.invoke(main, ["tokens", "create", "--name", "x"], env=env)
    assert no_scope.exit_code == 2
    assert "--patient, --ward or --all-patients" in no_scope.output
