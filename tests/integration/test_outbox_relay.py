"""The outbox relay against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pika
import pytest
import sqlalchemy as sa

from pixtools.messaging.broker import build_broker
from pixtools.messaging.relay import OutboxRelay
from pixtools.services import job_repository
from pixtools.store.database import Database
from pixtools.store.models import OutboxRow
from pixtools.store.outbox import OutboxRepository
from tests.support.jobs import new_job
from tests.support.servers import rabbitmqctl

pytestmark = pytest.mark.services


@pytest.fixture
async def db(private_pg_url: str) -> AsyncIterator[Database]:
    database = Database(private_pg_url)
    yield database
    await database.dispose()


@pytest.fixture
def vhost_url() -> object:
    """A vhost of this test alone, with nobody consuming, so published messages can be counted."""
    name = f"pixtools_relay_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    rabbitmqctl("delete_vhost", name)


def queued_messages(url: str, queue: str) -> list[dict[str, Any]]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        out: list[dict[str, Any]] = []
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            assert props.delivery_mode == 2  # persistent
            out.append(json.loads(body))
    finally:
        conn.close()


async def unsent(db: Database) -> int:
    async with db.sessions() as s:
        return int(
            await s.scalar(
                sa.select(sa.func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))
            )
            or 0
        )


async def test_two_relays_publish_every_row_exactly_once(db: Database, vhost_url: str) -> None:
    repo = job_repository(db)
    jobs = [new_job("a", "b") for _ in range(30)]
    for job in jobs:
        await repo.create(job, None)
    relays = [OutboxRelay(db, build_broker(vhost_url), poll_seconds=0.2) for _ in range(2)]
    try:
        published = await asyncio.gather(*(r.publish_pending() for r in relays))
    finally:
        for r in relays:
            r.broker.close()
    assert sum(published) == 60 and await unsent(db) == 0
    messages = queued_messages(vhost_url, "standard")
    assert len(messages) == 60  # SKIP LOCKED: nobody published a row twice
    assert {(m["args"][0], m["args"][1]) for m in messages} == {
        (str(j.id), n) for j in jobs for n in "ab"
    }
    assert all(m["actor_name"] == "process_output" for m in messages)


async def test_a_failing_broker_keeps_rows_for_later_with_backoff(
    db: Database, vhost_url: str
) -> None:
    repo = job_repository(db)
    job = new_job("a")
    await repo.create(job, None)

    async def refuse(row: OutboxRow) -> None:
        raise ConnectionError("broker down")

    outbox = OutboxRepository(db)
    assert await outbox.publish_due(refuse) == (0, False)
    async with db.sessions() as s:
        row = (await s.scalars(sa.select(OutboxRow).where(OutboxRow.job_id == job.id))).one()
    assert (
        row.sent_at is None
        and row.publish_attempts == 1
        and "broker down" in (row.last_error or "")
    )
    assert (await outbox.next_due_in() or 0) > 0  # not retried at once
    # The broker is back: once due, the row goes out.
    async with db.transaction() as s:
        await s.execute(
            sa.update(OutboxRow).where(OutboxRow.id == row.id).values(available_at=row.created_at)
        )
    relay = OutboxRelay(db, build_broker(vhost_url), poll_seconds=0.2)
    try:
        assert await relay.publish_pending() == 1
    finally:
        relay.broker.close()
    assert [m["args"] for m in queued_messages(vhost_url, "standard")] == [[str(job.id), "a"]]


async def test_the_running_relay_is_woken_by_notify(db: Database, vhost_url: str) -> None:
    relay = OutboxRelay(db, build_broker(vhost_url), poll_seconds=30)  # the poll would be too late
    await relay.start()
    try:
        await asyncio.sleep(0.5)  # LISTEN is up
        job = new_job("a")
        await job_repository(db).create(job, None)
        for _ in range(50):
            if relay.published:
                break
            await asyncio.sleep(0.05)
        assert relay.published == 1
    finally:
        await relay.stop()
        relay.broker.close()


async def test_the_relay_listens_again_after_losing_its_listen_connection(
    db: Database, vhost_url: str
) -> None:
    relay = OutboxRelay(db, build_broker(vhost_url), poll_seconds=0.3)
    await relay.start()
    try:
        await asyncio.sleep(0.5)  # LISTEN is up
        async with db.reads() as s:
            killed = await s.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
        assert killed == 1
        await asyncio.sleep(0.1)
        # Meanwhile a job is submitted in this process: the local wake stands in for NOTIFY.
        await job_repository(db).create(new_job("a"), None)
        for _ in range(50):
            if relay.published:
                break
            await asyncio.sleep(0.05)
        assert relay.published == 1
        for _ in range(50):  # and LISTEN is back within a poll or two
            if relay._listener is not None and relay._listener.alive:
                break
            await asyncio.sleep(0.05)
        assert relay._listener is not None and relay._listener.alive
    finally:
        await relay.stop()
        relay.broker.close()
