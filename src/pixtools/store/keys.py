"""API keys: created once, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pixtools.store.database import Database
from pixtools.store.models import ApiKeyRow
from pixtools.store.types import utcnow

KEY_PREFIX = "pxt_"


def hash_key(key: str) -> str:
    """The stored form of a secret: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as listed and authenticated, without its secret."""

    id: str
    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, row.admin, row.created_at, row.revoked_at)


class ApiKeyRepository:
    """API keys in the database: made and revoked by the CLI, checked on every request."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, *, admin: bool) -> tuple[ApiKey, str]:
        """Make a key; returns it and its secret, which is never stored or shown again."""
        key_id = secrets.token_hex(8)
        secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        row = ApiKeyRow(
            id=key_id, name=name, key_hash=hash_key(secret), admin=admin, created_at=utcnow()
        )
        async with self.db.transaction() as s:
            s.add(row)
        return _key(row), secret

    async def verify(self, secret: str) -> ApiKey | None:
        """The unrevoked key with this secret, or None."""
        async with self.db.reads() as s:
            row = await s.scalar(
                sa.select(ApiKeyRow).where(
                    ApiKeyRow.key_hash == hash_key(secret), ApiKeyRow.revoked_at.is_(None)
                )
            )
            return _key(row) if row else None

    async def all(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        async with self.db.reads() as s:
            rows = await s.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [_key(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key now; False when it is unknown or already revoked."""
        async with self.db.transaction() as s:
            result = await s.execute(
                sa.update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
