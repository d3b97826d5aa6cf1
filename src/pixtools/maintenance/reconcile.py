"""The reconciliation pass: run every half ``stale_after`` by the workers themselves (see
``pixtools.maintenance.periodic``), and on demand by ``pixtools reconcile`` (the cluster's
CronJob runs it every minute as a second line).

- outputs whose heartbeat went stale (their worker died) are re-queued, up to the attempt
  limit, then failed — the job says so in the output's ``error``;
- jobs whose outputs are all terminal but that never got finalized are finalized;
- when the broker lost its queues (RabbitMQ's volume lives on the spot node), every pending
  output is published again: a durable marker queue that only this pass creates tells
  whether the broker still has the state it had at the last pass. A missing marker with
  no pending work is a fresh broker, not a loss: the marker is created and nothing said;
- outbox rows still unsent (no relay running, broker was down) are published.

One pass at a time across every process: a PostgreSQL advisory lock (on SQLite, where
only one process runs the workers, a lock in this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import dramatiq
import pika
import sqlalchemy as sa

from pixtools.messaging.broker import build_broker
from pixtools.messaging.relay import OutboxRelay
from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.database import Database

log = logging.getLogger(__name__)

BROKER_MARKER_QUEUE = "pixtools.marker"
# pg_advisory_lock's key for "a reconciliation pass is running" (any 64-bit number that no
# other lock of this database uses: the bytes of "pixrecon").
RECONCILE_LOCK_KEY = int.from_bytes(b"pixrecon", "big") & 0x7FFF_FFFF_FFFF_FFFF
_local_lock = threading.Lock()


def broker_marker(rabbitmq_url: str) -> Literal["present", "created"]:
    """Whether the marker queue was there; creates it when it was not."""
    params = pika.URLParameters(rabbitmq_url)
    params.socket_timeout = 5
    params.connection_attempts = 1
    try:
        conn = pika.BlockingConnection(params)
    except OSError as exc:  # pika lets a name that does not resolve through as gaierror
        raise pika.exceptions.AMQPConnectionError(exc) from exc
    try:
        try:
            conn.channel().queue_declare(BROKER_MARKER_QUEUE, passive=True)
            return "present"
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
        conn.channel().queue_declare(BROKER_MARKER_QUEUE, durable=True)
        return "created"
    finally:
        if conn.is_open:
            conn.close()


@contextlib.asynccontextmanager
async def exclusive(db: Database, *, wait: float = 0.0) -> AsyncIterator[bool]:
    """Hold the reconciliation lock for the block; yields False when another process (or
    thread) holds it and ``wait`` seconds passed. A session-level advisory lock on its own
    connection: should this process die, PostgreSQL releases it with the connection."""
    deadline = time.monotonic() + wait
    if db.is_sqlite:
        if wait:
            got = await asyncio.to_thread(_local_lock.acquire, True, wait)
        else:
            got = _local_lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                _local_lock.release()
        return
    async with db.engine.connect() as conn:
        while True:
            got = bool(
                await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(RECONCILE_LOCK_KEY)))
            )
            await conn.commit()
            if got or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.25)
        try:
            yield got
        finally:
            if got:
                await conn.scalar(sa.select(sa.func.pg_advisory_unlock(RECONCILE_LOCK_KEY)))
                await conn.commit()


async def reconcile_pass(
    services: Services, broker: dramatiq.Broker | None, *, relay: OutboxRelay | None = None
) -> dict[str, Any]:
    """One pass (the caller holds the lock). With ``broker`` None (embedded mode: the relay
    of this same process publishes the outbox) the broker's state is not checked. A caller
    that runs passes again and again gives its ``relay`` (its publishing thread holds one
    broker connection); else one is made for this pass."""
    settings = services.settings
    requeued, failed = await services.jobs.requeue_stale_outputs(
        stale_after=settings.stale_after_seconds, max_attempts=settings.output_max_attempts
    )
    finalized = await services.jobs.finalize_forgotten()
    republished = published = 0
    marker = "not checked"
    if broker is not None and settings.rabbitmq_url:
        marker = await asyncio.to_thread(broker_marker, settings.rabbitmq_url)
        if marker == "created":
            republished = await services.jobs.republish_pending()
            if republished:
                log.warning(
                    "broker state lost (marker queue missing): %d outputs re-published", republished
                )
            else:
                log.info("broker marker queue created (a new broker; nothing was pending)")
        if relay is not None:
            published = await relay.publish_pending()
        else:
            own = OutboxRelay(services.db, broker, poll_seconds=settings.outbox_poll_seconds)
            try:
                published = await own.publish_pending()
            finally:
                await own.stop()
    return {
        "stale_requeued": requeued,
        "stale_failed": failed,
        "finalized": finalized,
        "broker_marker": marker,
        "broker_reset_republished": republished,
        "outbox_published": published,
    }


async def reconcile_once(settings: Settings, *, wait: float = 30.0) -> dict[str, Any]:
    """``pixtools reconcile``: one pass, after waiting (up to ``wait`` s, inside the CronJob's
    50 s deadline) for a pass another process is running; else it reports ``skipped``."""
    services = build_services(settings, pool_size=2)
    try:
        async with exclusive(services.db, wait=wait) as got:
            if not got:
                return {"skipped": "another reconciliation pass held the lock"}
            broker = build_broker(settings.rabbitmq_url) if settings.rabbitmq_url else None
            try:
                return await reconcile_pass(services, broker)
            finally:
                if broker is not None:
                    broker.close()
    finally:
        await services.close()
