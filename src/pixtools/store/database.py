"""The database engine: one per event loop, PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)

# Notified by triggers (migrations 0003 and 0005): an insert into the outbox, a job's
# finished_at set, an output's status or attempt changed. Names fixed there too.
OUTBOX_CHANNEL = "pixtools_outbox"
JOBS_CHANNEL = "pixtools_jobs"  # payload: the id of a job that just finished
PROGRESS_CHANNEL = "pixtools_progress"  # payload: the id of a job one of whose outputs moved


class LocalSignals:
    """In-process stand-in for LISTEN/NOTIFY (SQLite, embedded mode), shared by the API's and
    the embedded workers' Database objects. Callbacks run on the signalling thread: they
    must be thread-safe (hand over with ``loop.call_soon_threadsafe``)."""

    def __init__(self) -> None:
        self.outbox: list[Callable[[], None]] = []
        self.job_finished: list[Callable[[str], None]] = []
        self.job_progress: list[Callable[[str], None]] = []


class Listener:
    """A LISTEN connection: ``alive`` until the server or the network closes it."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @property
    def alive(self) -> bool:
        """Whether the connection is still open (else the caller listens again)."""
        return not self._conn.is_closed()

    async def close(self) -> None:
        """Close the connection, giving up after 5 s; it may be gone already."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.close(), 5)


class Database:
    """Owns an async engine and its session factory; knows its dialect's quirks."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        signals: LocalSignals | None = None,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs.update(pool_pre_ping=True, connect_args={"timeout": 30})
        else:
            # No pre-ping: on asyncpg it is BEGIN, an empty query and ROLLBACK, three round
            # trips on every checkout (measured: a third of the statements of a job). A
            # connection the server closed (restart, pg_terminate_backend, idle timeout)
            # is already known closed to asyncpg, and `_discard_closed` swaps it out.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine.sync_engine.pool, "checkout", _discard_closed)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        #: Sessions for single-statement reads: autocommit, so no BEGIN and ROLLBACK around
        #: the one query. Never for writes (each statement would commit on its own).
        self.reads = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        self.signals = signals if signals is not None else LocalSignals()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    def wake_local(self) -> None:
        """After a commit that wrote outbox rows: wake an in-process relay."""
        for wake in self.signals.outbox:
            wake()

    def job_finished_local(self, job_id: str) -> None:
        """After a commit that finished a job: tell in-process waiters its id."""
        for callback in self.signals.job_finished:
            callback(job_id)

    def job_progress_local(self, job_id: str) -> None:
        """After a commit that moved one of a job's outputs: tell in-process waiters."""
        for callback in self.signals.job_progress:
            callback(job_id)

    async def ping(self) -> None:
        """One ``SELECT 1``: raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def listen(self, channel: str, callback: Callable[[str], None]) -> Listener:
        """LISTEN on ``channel`` over a dedicated asyncpg connection; ``callback(payload)``
        runs on this event loop."""
        import asyncpg

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)

        def _on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        await conn.add_listener(channel, _on_notify)
        return Listener(conn)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _discard_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection asyncpg knows to be closed is replaced, not handed out."""
    if dbapi_conn._connection.is_closed():
        raise DisconnectionError("connection closed by the server")


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLite's lower() folds ASCII only, so ILIKE (lower(x) LIKE lower(y)) missed "Ü" for
    # "ü"; Python's, like PostgreSQL's ILIKE, folds every letter. (No index uses lower().)
    dbapi_conn.create_function("lower", 1, _unicode_lower, deterministic=True)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
