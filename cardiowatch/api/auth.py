"""API tokens and what they may see.

A token is ``cwt_`` followed by 32 random bytes (URL-safe base64). Only its SHA-256 is stored
(``{prefix}api:token:{sha256}``), so a copy of Redis does not hold usable tokens; the token
itself is printed once, by ``cardiowatch tokens create``.

A token has permissions (``read``: see patients, vitals, alerts, waveforms; ``ack``:
acknowledge alerts) and a scope: explicit patient ids, wards (resolved through
``{prefix}ward:{ward}`` at request time, so moving a patient between wards takes effect at
once) or every patient. A patient outside the scope is answered exactly as one that does not
exist (:func:`not_found`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import HTTPException, status
from redis.asyncio import Redis

from cardiowatch.api.keys import Keys

TOKEN_PREFIX = "cwt_"
PERMISSIONS = ("read", "ack")
NOT_FOUND_DETAIL = "Not Found"


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (what Redis stores).

    >>> len(hash_token("cwt_x"))
    64
    """
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (``cwt_`` + 32 random bytes, URL-safe base64)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def not_found() -> HTTPException:
    """The one answer for a patient or alert that is missing *or* outside the scope."""
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=NOT_FOUND_DETAIL)


def unauthorized() -> HTTPException:
    """No token, or a token that is not (or no longer) valid."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@dataclass(frozen=True)
class Token:
    """A stored token: permissions and scope, identified by its hash."""

    token_hash: str
    name: str
    permissions: frozenset[str]
    patients: frozenset[str]
    wards: frozenset[str]
    all_patients: bool
    created_unix_s: float

    @property
    def token_id(self) -> str:
        """Short public id (the first 12 hex digits of the hash), for listing and revoking."""
        return self.token_hash[:12]

    def require(self, permission: str) -> None:
        """Raise 403 unless the token has ``permission`` (says nothing about any patient)."""
        if permission not in self.permissions:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"token lacks the '{permission}' permission",
            )

    def to_public(self) -> dict[str, object]:
        """What ``tokens list`` shows (never the hash in full)."""
        return {
            "id": self.token_id,
            "name": self.name,
            "permissions": sorted(self.permissions),
            "patients": sorted(self.patients),
            "wards": sorted(self.wards),
            "all_patients": self.all_patients,
            "created_unix_s": self.created_unix_s,
        }


@dataclass(frozen=True)
class Scope:
    """The patient ids a token may see, resolved at one moment."""

    all_patients: bool
    patient_ids: frozenset[str]

    def __contains__(self, patient_id: object) -> bool:
        return self.all_patients or patient_id in self.patient_ids

    def filter(self, patient_ids: Iterable[str]) -> list[str]:
        """The ids in scope, sorted."""
        return sorted(p for p in patient_ids if p in self)


def _decode_token(token_hash: str, raw: dict[bytes, bytes]) -> Token:
    def get(field: str) -> str:
        return raw.get(field.encode(), b"").decode()

    return Token(
        token_hash=token_hash,
        name=get("name"),
        permissions=frozenset(p for p in get("permissions").split(",") if p),
        patients=frozenset(json.loads(get("patients") or "[]")),
        wards=frozenset(json.loads(get("wards") or "[]")),
        all_patients=get("all_patients") == "1",
        created_unix_s=float(get("created_unix_s") or 0.0),
    )


class TokenStore:
    """Tokens and wards in Redis."""

    def __init__(self, redis: Redis[bytes], keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(
        self,
        name: str,
        *,
        permissions: Iterable[str] = ("read",),
        patients: Iterable[str] = (),
        wards: Iterable[str] = (),
        all_patients: bool = False,
    ) -> tuple[str, Token]:
        """Store a new token; return ``(token, record)``. The token is not kept anywhere."""
        perms = frozenset(permissions)
        unknown = perms - set(PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permissions {sorted(unknown)}; known: {PERMISSIONS}")
        token = new_token()
        record = Token(
            token_hash=hash_token(token),
            name=name,
            permissions=perms,
            patients=frozenset(patients),
            wards=frozenset(wards),
            all_patients=all_patients,
            created_unix_s=time.time(),
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            self.keys.token(record.token_hash),
            mapping={
                "name": record.name,
                "permissions": ",".join(sorted(record.permissions)),
                "patients": json.dumps(sorted(record.patients)),
                "wards": json.dumps(sorted(record.wards)),
                "all_patients": "1" if all_patients else "0",
                "created_unix_s": repr(record.created_unix_s),
            },
        )
        pipe.sadd(self.keys.tokens, record.token_hash)
        await pipe.execute()
        return token, record

    async def lookup(self, token: str) -> Token | None:
        """The record of a presented token, or None when unknown or revoked."""
        token_hash = hash_token(token)
        raw = await self.redis.hgetall(self.keys.token(token_hash))
        return _decode_token(token_hash, raw) if raw else None

    async def by_hash(self, token_hash: str) -> Token | None:
        """The record of a token hash (None when revoked)."""
        raw = await self.redis.hgetall(self.keys.token(token_hash))
        return _decode_token(token_hash, raw) if raw else None

    async def all(self) -> list[Token]:
        """Every token, oldest first."""
        hashes = sorted(h.decode() for h in await self.redis.smembers(self.keys.tokens))
        records = [await self.by_hash(h) for h in hashes]
        return sorted((r for r in records if r), key=lambda r: r.created_unix_s)

    async def revoke(self, id_or_name: str) -> list[Token]:
        """Delete the tokens whose id (hash prefix, at least 8 digits) or name matches."""
        gone = [
            t
            for t in await self.all()
            if t.name == id_or_name
            or (len(id_or_name) >= 8 and t.token_hash.startswith(id_or_name))
        ]
        for record in gone:
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(self.keys.token(record.token_hash))
            pipe.srem(self.keys.tokens, record.token_hash)
            await pipe.execute()
        return gone

    async def scope(self, token: Token) -> Scope:
        """Resolve a token's scope now (wards are read from Redis)."""
        if token.all_patients:
            return Scope(True, frozenset())
        ids = set(token.patients)
        if token.wards:
            members = await self.redis.sunion([self.keys.ward(w) for w in sorted(token.wards)])
            ids.update(bytes(m).decode() for m in members)  # type: ignore[arg-type]
        return Scope(False, frozenset(ids))

    async def assign(self, ward: str, patient_ids: Iterable[str]) -> int:
        """Add patients to a ward; return how many were new there."""
        ids = list(patient_ids)
        await self.redis.sadd(self.keys.wards, ward)
        return int(await self.redis.sadd(self.keys.ward(ward), *ids)) if ids else 0

    async def unassign(self, ward: str, patient_ids: Iterable[str]) -> int:
        """Remove patients from a ward; return how many were there."""
        ids = list(patient_ids)
        return int(await self.redis.srem(self.keys.ward(ward), *ids)) if ids else 0

    async def wards(self) -> dict[str, list[str]]:
        """Every ward with its patients."""
        names = sorted(w.decode() for w in await self.redis.smembers(self.keys.wards))
        out: dict[str, list[str]] = {}
        for ward in names:
            out[ward] = sorted(m.decode() for m in await self.redis.smembers(self.keys.ward(ward)))
        return out
