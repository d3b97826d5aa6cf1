"""The database engine: one per event loop, PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "pixtools_outbox"


class Database:
    """Owns an async engine and its session factory; knows its dialect's quirks."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        local_wakeups: list[Callable[[], None]] | None = None,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # In-process wake-up of the relay where there is no LISTEN/NOTIFY (SQLite); shared by
        # the API's and the embedded workers' Database objects. Callbacks must be thread-safe.
        self.local_wakeups = local_wakeups if local_wakeups is not None else []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def notify_outbox(self, session: AsyncSession) -> None:
        """Wake the outbox relays when this transaction commits."""
        if self.is_sqlite:
            return
        await session.execute(sa.select(sa.func.pg_notify(OUTBOX_CHANNEL, "")))

    def wake_local(self) -> None:
        for wake in self.local_wakeups:
            wake()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def listen(
        self, channel: str, callback: Callable[[], None]
    ) -> Callable[[], Awaitable[None]]:
        """LISTEN on ``channel`` over a dedicated asyncpg connection; returns its closer."""
        import asyncpg

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)

        def _on_notify(*_: object) -> None:
            callback()

        await conn.add_listener(channel, _on_notify)

        async def close() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

        return close

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
