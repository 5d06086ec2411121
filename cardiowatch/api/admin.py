"""The API's commands: ``cardiowatch api``, ``cardiowatch tokens ...``, ``cardiowatch wards ...``.

They talk to the Redis of ``CARDIOWATCH_REDIS_URL``; the heavy imports happen inside the
commands so that the rest of the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from cardiowatch.settings import Settings

if TYPE_CHECKING:
    from cardiowatch.api.auth import TokenStore

T = TypeVar("T")


def _settings() -> Settings:
    settings = Settings.from_env()
    if not settings.redis_url:
        raise click.UsageError("set CARDIOWATCH_REDIS_URL to the Redis the worker writes to")
    return settings


def _with_store(settings: Settings, job: Callable[[TokenStore], Awaitable[T]]) -> T:
    from redis.asyncio import Redis

    from cardiowatch.api.auth import TokenStore
    from cardiowatch.api.keys import Keys

    async def go() -> T:
        redis: Redis[bytes] = Redis.from_url(settings.redis_url)
        try:
            return await job(TokenStore(redis, Keys.from_settings(settings)))
        finally:
            await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose

    return asyncio.run(go())


@click.command("api")
def api_cmd() -> None:
    """Serve the alert API and the live page (CARDIOWATCH_API_HOST/PORT)."""
    import logging

    from cardiowatch.api.server import serve

    settings = _settings()
    logging.basicConfig(level=settings.log_level)
    click.echo(f"live page and API on http://{settings.api_host}:{settings.api_port}/")
    serve(settings)


@click.group()
def tokens() -> None:
    """API tokens (stored hashed in Redis)."""


@tokens.command("create")
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option("--patient", "patients", multiple=True, help="A patient id it may see (repeat).")
@click.option("--ward", "wards", multiple=True, help="A ward whose patients it may see (repeat).")
@click.option("--all-patients", is_flag=True, help="It may see every patient.")
@click.option(
    "--permission", "permissions", multiple=True, type=click.Choice(["read", "ack"]),
    default=("read",), show_default=True, help="What it may do (repeat).",
)  # fmt: skip
def tokens_create(
    name: str, patients: tuple[str, ...], wards: tuple[str, ...], all_patients: bool,
    permissions: tuple[str, ...],
) -> None:  # fmt: skip
    """Create a token and print it (once: only its hash is stored)."""
    if not (patients or wards or all_patients):
        raise click.UsageError("give --patient, --ward or --all-patients")
    token, record = _with_store(
        _settings(),
        lambda s: s.create(
            name, permissions=permissions, patients=patients, wards=wards,
            all_patients=all_patients,
        ),
    )  # fmt: skip
    click.echo(f"token {record.token_id} ({name}); keep it now, it is not shown again:")
    click.echo(token)


@tokens.command("list")
def tokens_list() -> None:
    """Every token: id, name, permissions, scope (never the token)."""
    for record in _with_store(_settings(), lambda s: s.all()):
        click.echo(json.dumps(record.to_public()))


@tokens.command("revoke")
@click.argument("id_or_name")
def tokens_revoke(id_or_name: str) -> None:
    """Revoke the tokens with this id (from `tokens list`) or name."""
    gone = _with_store(_settings(), lambda s: s.revoke(id_or_name))
    if not gone:
        raise click.ClickException(f"no token with id or name {id_or_name!r}")
    for record in gone:
        click.echo(f"revoked {record.token_id} ({record.name})")


@click.group()
def wards() -> None:
    """Wards: which patients a ward-scoped token sees."""


@wards.command("assign")
@click.argument("ward")
@click.argument("patient_ids", nargs=-1, required=True)
def wards_assign(ward: str, patient_ids: tuple[str, ...]) -> None:
    """Put PATIENT_IDS in WARD."""
    added = _with_store(_settings(), lambda s: s.assign(ward, patient_ids))
    click.echo(f"{ward}: {added} added")


@wards.command("unassign")
@click.argument("ward")
@click.argument("patient_ids", nargs=-1, required=True)
def wards_unassign(ward: str, patient_ids: tuple[str, ...]) -> None:
    """Take PATIENT_IDS out of WARD."""
    removed = _with_store(_settings(), lambda s: s.unassign(ward, patient_ids))
    click.echo(f"{ward}: {removed} removed")


@wards.command("list")
def wards_list() -> None:
    """Every ward with its patients."""
    for ward, members in _with_store(_settings(), lambda s: s.wards()).items():
        click.echo(f"{ward}: {' '.join(members)}")
