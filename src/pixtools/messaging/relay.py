"""The outbox relay: publishes committed outbox rows to the broker.

Runs as a background task of the API process. Woken at once by PostgreSQL ``NOTIFY``
(or an in-process signal on SQLite), with a slow poll as the safety net; rows are
claimed with ``SKIP LOCKED``, so every API replica may run one. A broker that is down
only delays jobs: rows stay unsent until a publish is confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import dramatiq

from pixtools.messaging.broker import build_broker
from pixtools.messaging.middleware import TRACEPARENT
from pixtools.services import Services
from pixtools.settings import Settings
from pixtools.store.database import OUTBOX_CHANNEL, Database, Listener
from pixtools.store.models import OutboxRow
from pixtools.store.outbox import OutboxRepository

log = logging.getLogger(__name__)

#: Starts workers on a broker and gives back how to stop them (embedded mode).
StartWorkers = Callable[[dramatiq.Broker], Callable[[], Awaitable[None]]]


class OutboxRelay:
    """Publishes outbox rows to the broker as they are committed."""

    def __init__(self, db: Database, broker: dramatiq.Broker, *, poll_seconds: float) -> None:
        self.db = db
        self.outbox = OutboxRepository(db)
        self.broker = broker
        self.poll_seconds = poll_seconds
        # One thread: the broker's connection is thread-local, so publishing from one
        # thread keeps one connection and one confirm channel.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publish")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self.published = 0

    def _wake_threadsafe(self) -> None:
        """A commit in this process wrote outbox rows. With LISTEN up, its NOTIFY wakes the
        relay anyway: waking it here too made a second, empty pass per job (counted)."""
        if self._listener is not None and self._listener.alive:
            return
        self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Start the relay loop, woken by local commits."""
        self._loop = asyncio.get_running_loop()
        self.db.signals.outbox.append(self._wake_threadsafe)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the relay loop and its publishing thread."""
        if self._wake_threadsafe in self.db.signals.outbox:
            self.db.signals.outbox.remove(self._wake_threadsafe)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _listen(self) -> None:
        if self.db.is_sqlite:
            return
        if self._listener is not None:
            if self._listener.alive:
                return
            log.warning("outbox LISTEN connection lost; listening again")
            self._listener = None
        try:
            self._listener = await self.db.listen(OUTBOX_CHANNEL, lambda _payload: self._wake.set())
        except Exception as exc:  # the poll still works; try LISTEN again next round
            log.warning("outbox LISTEN unavailable (%s); polling", exc)

    async def _publish(self, row: OutboxRow) -> None:
        message: dramatiq.Message[object] = dramatiq.Message(
            queue_name=row.queue,
            actor_name=row.actor,
            args=tuple(row.args),
            kwargs={},
            # The submitter's trace continues in the worker (messaging.middleware.TraceContext).
            options={TRACEPARENT: row.trace_context} if row.trace_context else {},
            message_id=str(row.message_id),
        )
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.run_in_executor(self._executor, self.broker.enqueue, message), timeout=30
        )

    async def publish_pending(self) -> int:
        """Publish everything due now; returns how many were published."""
        total = 0
        while True:
            n, more = await self.outbox.publish_due(self._publish)
            total += n
            if not more:
                break
        self.published += total
        return total

    async def _run(self) -> None:
        while True:
            await self._listen()
            self._wake.clear()
            try:
                await self.publish_pending()
                due = await self.outbox.next_due_in()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed")
                due = None
            timeout = self.poll_seconds if due is None else min(self.poll_seconds, max(due, 0.05))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)


@contextlib.asynccontextmanager
async def relaying(
    settings: Settings, services: Services, *, workers: StartWorkers | None = None
) -> AsyncIterator[OutboxRelay]:
    """The API process's messaging for the block: the broker and the started outbox relay
    (yielded), and the workers ``workers`` starts on that broker (embedded mode). All stopped
    at the end."""
    broker = build_broker(settings.rabbitmq_url)
    stop_workers = workers(broker) if workers is not None else None
    relay = OutboxRelay(services.db, broker, poll_seconds=settings.outbox_poll_seconds)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()
        if stop_workers is not None:
            await stop_workers()
        broker.close()
