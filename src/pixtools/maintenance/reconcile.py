"""One reconciliation pass (``pixtools reconcile``, run every minute by a CronJob).

- outputs whose heartbeat went stale (their worker died) are re-queued, up to the attempt
  limit, then failed — the job says so in the output's ``error``;
- jobs whose outputs are all terminal but that never got finalized are finalized;
- outbox rows still unsent (no relay running, broker was down) are published.
"""

from __future__ import annotations

from typing import Any

from pixtools.services import build_services
from pixtools.settings import Settings
from pixtools.worker.broker import build_broker
from pixtools.worker.relay import OutboxRelay


async def reconcile_once(settings: Settings) -> dict[str, Any]:
    services = build_services(settings, pool_size=2)
    try:
        requeued, failed = await services.jobs.requeue_stale_outputs(
            stale_after=settings.stale_after_seconds, max_attempts=settings.output_max_attempts
        )
        finalized = await services.jobs.finalize_forgotten()
        published = 0
        if settings.rabbitmq_url:
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
            "outbox_published": published,
        }
    finally:
        await services.close()
