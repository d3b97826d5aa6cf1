"""One reconciliation pass (``pixtools reconcile``, run every minute by a CronJob).

- outputs whose heartbeat went stale (their worker died) are re-queued, up to the attempt
  limit, then failed — the job says so in the output's ``error``;
- jobs whose outputs are all terminal but that never got finalized are finalized;
- when the broker lost its queues (RabbitMQ's volume lives on the spot node), every pending
  output is published again: a durable marker queue that only this pass creates tells
  whether the broker still has the state it had at the last pass;
- outbox rows still unsent (no relay running, broker was down) are published.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pika

from pixtools.services import build_services
from pixtools.settings import Settings
from pixtools.worker.broker import build_broker
from pixtools.worker.relay import OutboxRelay

log = logging.getLogger(__name__)

BROKER_MARKER_QUEUE = "pixtools.marker"


def broker_lost_state(rabbitmq_url: str) -> bool:
    """True when the marker queue is gone (the broker's state was lost); re-creates it."""
    params = pika.URLParameters(rabbitmq_url)
    params.socket_timeout = 5
    params.connection_attempts = 1
    conn = pika.BlockingConnection(params)
    try:
        try:
            conn.channel().queue_declare(BROKER_MARKER_QUEUE, passive=True)
            return False
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
        conn.channel().queue_declare(BROKER_MARKER_QUEUE, durable=True)
        return True
    finally:
        if conn.is_open:
            conn.close()


async def reconcile_once(settings: Settings) -> dict[str, Any]:
    services = build_services(settings, pool_size=2)
    try:
        requeued, failed = await services.jobs.requeue_stale_outputs(
            stale_after=settings.stale_after_seconds, max_attempts=settings.output_max_attempts
        )
        finalized = await services.jobs.finalize_forgotten()
        republished = published = 0
        if settings.rabbitmq_url:
            if await asyncio.to_thread(broker_lost_state, settings.rabbitmq_url):
                republished = await services.jobs.republish_pending()
                log.warning(
                    "broker state lost (marker queue missing): %d outputs re-published", republished
                )
            broker = build_broker(settings.rabbitmq_url)
            relay = OutboxRelay(services.db, broker, poll_seconds=settings.outbox_poll_seconds)
            try:
                published = await relay.publish_pending()
            finally:
                await relay.stop()
                broker.close()
        return {
            "stale_requeued": requeued,
            "stale_failed": failed,
            "finalized": finalized,
            "broker_reset_republished": republished,
            "outbox_published": published,
        }
    finally:
        await services.close()
