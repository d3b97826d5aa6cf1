"""Embedded mode's wiring, in one place: ``pixtools dev`` and ``create_app`` use it.

With no broker configured, everything runs in one process: the API, the outbox relay,
Dramatiq's in-process stub broker and its workers (threads of this process), on SQLite and a
local folder store in the data folder. The API's lifespan runs the outbox relay in both modes
(``pixtools.messaging.relay.relaying``); in embedded mode it hands the relay
``in_process_workers`` to start on the relay's broker.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import dramatiq
import msgspec

from pixtools.messaging.relay import StartWorkers
from pixtools.services import Services
from pixtools.settings import Settings
from pixtools.store.database import LocalSignals


class EmbeddedWorkers:
    """Dramatiq workers on the in-process stub broker."""

    def __init__(self, broker: dramatiq.Broker, threads: int) -> None:
        self.worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)

    def start(self) -> None:
        """Start the worker threads."""
        self.worker.start()

    def stop(self) -> None:
        """Stop the worker threads, waiting up to ten seconds for running messages."""
        self.worker.stop(timeout=10_000)


def start_workers(
    broker: dramatiq.Broker, services: Services, signals: LocalSignals
) -> EmbeddedWorkers:
    """Declare the actors on ``broker`` and start ``worker_threads`` workers for them (which
    also run the periodic reconciliation pass)."""
    from pixtools.maintenance.periodic import PeriodicReconciler
    from pixtools.messaging.actors import declare_actors

    settings = services.settings
    configure_ml_threads(settings)
    broker.add_middleware(PeriodicReconciler(settings, signals=signals))
    declare_actors(broker, settings, cache=services.cache, signals=signals)
    workers = EmbeddedWorkers(broker, settings.worker_threads)
    workers.start()
    return workers


def configure_ml_threads(settings: Settings) -> None:
    """Hand ``ml_threads`` to the ML runtime of this process (when it is set and the ML
    extra is installed; 0 leaves the runtime's automatic choice)."""
    if not settings.ml_threads:
        return
    try:
        from pixtools.ml import runtime
    except ImportError:  # no ML extra: no ML op runs here
        return
    runtime.configure(settings.ml_threads)


def in_process_workers(services: Services, signals: LocalSignals) -> StartWorkers:
    """What the API's lifespan hands the relay in embedded mode: start the workers on the
    relay's broker, and give back how to stop them."""

    def start(broker: dramatiq.Broker) -> Callable[[], Awaitable[None]]:
        workers = start_workers(broker, services, signals)

        async def stop() -> None:
            # The workers' own adapters live on Dramatiq's event-loop thread, which stops
            # with them; their connections end with the process.
            await asyncio.to_thread(workers.stop)

        return stop

    return start


def dev_settings(settings: Settings, say: Callable[[str], None] = print) -> Settings:
    """``pixtools dev``'s settings: always embedded (a broker URL is ignored, and said so),
    the data folder made, and a webhook signing secret when none is configured."""
    if settings.rabbitmq_url:
        say("pixtools dev: ignoring PIXTOOLS_RABBITMQ_URL; `pixtools dev` always runs embedded")
        settings = msgspec.structs.replace(settings, rabbitmq_url="")
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    say(f"data folder: {settings.data_dir}")
    if not settings.webhook_secret:
        settings = msgspec.structs.replace(
            settings, webhook_secret=_dev_webhook_secret(settings, say)
        )
    return settings


def _dev_webhook_secret(settings: Settings, say: Callable[[str], None]) -> str:
    """Embedded mode signs webhooks with a secret made once and kept in the data folder."""
    path = Path(settings.data_dir) / "webhook-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
        say(f"webhook signing secret written to {path.resolve()}")
    return path.read_text().strip()
