"""The reconciliation pass, run by the workers themselves.

Every worker process (and ``pixtools dev``, whose workers are threads of the API process)
runs a background thread that tries a reconciliation pass every half ``stale_after``: the
advisory lock lets one pass run at a time across all processes, the others skip that round.
So a dead worker's output, a forgotten job and a broker that lost its queues are recovered
with no CronJob and no operator (the cluster keeps its CronJob as a second line).

In embedded mode the thread first resumes every unfinished job: the process that died took
its in-process broker's messages with it, and nothing else runs on its database.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import threading
from typing import Any

import dramatiq
import pika.exceptions
from dramatiq.errors import BrokerConnectionError

from pixtools.maintenance.reconcile import exclusive, reconcile_pass
from pixtools.messaging.brokerlog import broker_problem, masked_url
from pixtools.messaging.relay import OutboxRelay
from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.cache import MemoryCache
from pixtools.store.database import LocalSignals
from pixtools.store.types import utcnow

log = logging.getLogger(__name__)


def pass_interval(settings: Settings) -> float:
    """Seconds between a process's passes: half ``stale_after``, so stale work waits at most
    1.5 x ``stale_after`` for the pass after it went stale."""
    return max(0.5, settings.stale_after_seconds / 2)


class PeriodicReconciler(dramatiq.Middleware):
    """Starts the pass thread when the Dramatiq worker boots; stops it at shutdown."""

    def __init__(self, settings: Settings, *, signals: LocalSignals | None = None) -> None:
        self.settings = settings
        self.signals = signals
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = utcnow()
        self.passes = 0

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:  # noqa: ARG002  Dramatiq's hook signature
        """Start the pass thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._main, args=(broker,), name="pixtools-reconciler", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:  # noqa: ARG002  Dramatiq's hook signature
        """Stop the pass thread, waiting up to ten seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _main(self, broker: dramatiq.Broker) -> None:
        try:
            asyncio.run(self._run(broker))
        except Exception:
            if not sys.is_finalizing():
                log.exception("the reconciliation thread stopped")

    async def _run(self, broker: dramatiq.Broker) -> None:
        settings = self.settings
        services = build_services(settings, cache=MemoryCache(), pool_size=2, signals=self.signals)
        # Embedded: the relay of this same process publishes the outbox, and there is no
        # broker state to check.
        pass_broker = None if settings.embedded else broker
        # One relay for every pass: its one publishing thread keeps one broker connection
        # (a relay per pass would leave a connection behind each time).
        relay = (
            None
            if pass_broker is None
            else OutboxRelay(services.db, pass_broker, poll_seconds=settings.outbox_poll_seconds)
        )
        try:
            if settings.embedded:
                await self._resume(services)
            while not self._stop.is_set():
                try:
                    async with exclusive(services.db) as got:
                        if got:
                            report = await reconcile_pass(services, pass_broker, relay=relay)
                            self.passes += 1
                            if any(v for k, v in report.items() if k != "broker_marker"):
                                log.info("reconciliation pass: %s", report)
                except (pika.exceptions.AMQPError, BrokerConnectionError) as exc:
                    if self._stop.is_set() or sys.is_finalizing():
                        break
                    # The broker is away: one line (the consumers say it too), no traceback.
                    what = broker_problem(exc, settings.rabbitmq_url)[0]
                    where = masked_url(settings.rabbitmq_url)
                    log.warning("reconciliation pass skipped: broker %s: %s", where, what)
                except Exception:  # the next round tries again; never kill the worker
                    if self._stop.is_set() or sys.is_finalizing():
                        break  # shutting down: the pass was cut short, nothing to report
                    log.warning("reconciliation pass failed", exc_info=True)
                # Jitter spreads the processes' attempts over the interval.
                interval = pass_interval(settings) * random.uniform(0.8, 1.2)
                await asyncio.to_thread(self._stop.wait, interval)
        finally:
            if relay is not None:
                await relay.stop()
            await services.close()

    async def _resume(self, services: Services) -> None:
        for attempt in range(1, 6):
            try:
                report = await services.jobs.resume_unfinished(started=self._started)
            except Exception:  # e.g. the database still migrating: try again shortly
                log.warning("resuming unfinished jobs failed (try %d)", attempt, exc_info=True)
                await asyncio.to_thread(self._stop.wait, attempt)
                continue
            log.info("resumed unfinished jobs at start: %s", report)
            return
