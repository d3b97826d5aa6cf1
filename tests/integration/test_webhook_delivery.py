"""Webhook delivery against a real local receiver, with state in PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
import sqlalchemy as sa

from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.models import OutboxRow
from pixtools.store.webhooks import WebhookRepository
from pixtools.webhooks.breaker import CircuitBreaker
from pixtools.webhooks.delivery import deliver
from pixtools.webhooks.signing import verify
from tests.support.jobs import DONE, new_job
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.services


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    t = threading.Thread(target=r.server.serve_forever, daemon=True)
    t.start()
    yield r
    r.server.shutdown()


@pytest.fixture
async def svc(services_settings: Settings, private_pg_url: str) -> AsyncIterator[Services]:
    # A database of its own: the running stack's relay must not deliver these webhooks too.
    settings = msgspec.structs.replace(
        services_settings,
        database_url=private_pg_url,
        webhook_allow_private=True,
        webhook_cb_fail_threshold=2,
        webhook_cb_reset_timeout=60,
        webhook_max_attempts=3,
    )
    services = build_services(settings)
    yield services
    await services.close()


async def finished_job(svc: Services, url: str) -> uuid.UUID:
    job = new_job("a")
    job = dataclasses.replace(job, webhook_url=url)
    await svc.jobs.create(job, None)
    await svc.jobs.claim_output(job.id, "a", stale_after=60)
    finished = await svc.jobs.succeed_output(job.id, "a", 1, DONE)
    assert finished.closed  # one output, no archive: finished in the same transaction
    return job.id


async def test_delivered_webhook_is_signed_and_recorded(svc: Services, receiver: Receiver) -> None:
    job_id = await finished_job(svc, receiver.url)
    delivery = uuid.uuid4()
    await deliver(svc, job_id, delivery)
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert headers["pixtools-event"] == "job.succeeded"
    assert headers["pixtools-delivery"] == str(delivery)
    assert verify("test-secret", body, headers["pixtools-signature"])
    assert json.loads(body)["id"] == str(job_id)
    attempts = await WebhookRepository(svc.db, svc.jobs.routes).attempts(job_id)
    assert [(a.attempt, a.status_code, a.error) for a in attempts] == [(1, 200, None)]
    record = await svc.jobs.get(job_id)
    assert record is not None and record.job.webhook_status == "delivered"
    await deliver(svc, job_id, delivery)  # delivered: never sent twice
    assert len(receiver.requests) == 1


async def test_failures_retry_with_the_same_delivery_id_then_open_the_breaker(
    svc: Services, receiver: Receiver
) -> None:
    receiver.status = 500
    await CircuitBreaker(svc.cache, threshold=2, reset_timeout=60).success(
        "http://127.0.0.1:" + receiver.url.split(":")[2].split("/")[0]
    )
    job_id = await finished_job(svc, receiver.url)
    delivery = uuid.uuid4()
    await deliver(svc, job_id, delivery)
    async with svc.db.sessions() as s:
        retries = (
            await s.scalars(
                sa.select(OutboxRow).where(
                    OutboxRow.job_id == job_id, OutboxRow.actor == "deliver_webhook"
                )
            )
        ).all()
    assert retries and retries[-1].args == [str(job_id), str(delivery)]
    await deliver(svc, job_id, delivery)  # second failure: the breaker opens (threshold 2)
    await deliver(svc, job_id, delivery)  # refused without a request
    assert len(receiver.requests) == 2
    attempts = await WebhookRepository(svc.db, svc.jobs.routes).attempts(job_id)
    assert [a.status_code for a in attempts] == [500, 500, None]
    assert attempts[-1].error == "circuit open for this destination"
    record = await svc.jobs.get(job_id)
    assert record is not None and record.job.webhook_status == "circuit_open"


async def test_breaker_state_is_shared_through_redis(services_settings: Settings) -> None:
    a = build_services(services_settings)
    b = build_services(services_settings)
    try:
        dest = f"http://shared-{uuid.uuid4()}:80"
        one = CircuitBreaker(a.cache, threshold=2, reset_timeout=0.5)
        two = CircuitBreaker(b.cache, threshold=2, reset_timeout=0.5)
        await one.failure(dest)
        await two.failure(dest)
        assert (await one.allow(dest))[0] is False
        await asyncio.sleep(0.6)
        first, second = await asyncio.gather(one.allow(dest), two.allow(dest))
        assert sorted([first[0], second[0]]) == [False, True]  # exactly one half-open probe
        await two.success(dest)
        assert (await one.allow(dest))[0] is True
    finally:
        await a.close()
        await b.close()
