"""The actors: thin. Each loads this process's services and calls its use case in
``pixtools.jobs``; the worker's concerns (trace, time limit, retries, metrics, dead-letter
notes) are the broker's middleware (``pixtools.messaging.broker``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from pixtools.jobs import finalize, process
from pixtools.messaging.names import FINALIZE_ACTOR, ML, PROCESS_ACTOR, STANDARD, WEBHOOK_ACTOR
from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.cache import Cache
from pixtools.store.database import LocalSignals


class WorkerRuntime:
    """The worker process's services, created on the Dramatiq event-loop thread on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache: Cache | None = None,
        signals: LocalSignals | None = None,
    ) -> None:
        self.settings = settings
        self._cache = cache
        self._signals = signals
        self._services: Services | None = None

    def services(self) -> Services:
        """This process's services, built on first use."""
        if self._services is None:
            self._services = build_services(
                self.settings, cache=self._cache, pool_size=5, signals=self._signals
            )
        return self._services


_runtime: WorkerRuntime | None = None


def runtime() -> WorkerRuntime:
    """The worker runtime that ``declare_actors()`` set up."""
    if _runtime is None:
        raise RuntimeError("declare_actors() was not called in this process")
    return _runtime


async def process_output(job_id: str, name: str) -> None:
    """Render one output of a job and store it; the job's last output finalizes it."""
    message = CurrentMessage.get_current_message()
    await process.process_output(
        runtime().services(),
        job_id,
        name,
        come_back_later=None if message is None else _send_again(message),
    )


def _send_again(message: dramatiq.Message[Any]) -> process.ComeBackLater:
    """The same message again after a delay (RabbitMQ: through the queue's delay queue,
    durable)."""

    async def later(delay: float) -> None:
        again = message.copy()
        await asyncio.to_thread(dramatiq.get_broker().enqueue, again, delay=int(delay * 1000))

    return later


async def finalize_job(job_id: str) -> None:
    """Bundle the succeeded outputs into a ZIP when asked, and set the terminal status."""
    await finalize.finalize_job(runtime().services(), job_id)


async def deliver_webhook(job_id: str, delivery_id: str) -> None:
    """Deliver the terminal-state webhook (signed, retried, with a circuit breaker)."""
    await finalize.deliver_webhook(runtime().services(), job_id, delivery_id)


def declare_actors(
    broker: dramatiq.Broker,
    settings: Settings,
    *,
    cache: Cache | None = None,
    signals: LocalSignals | None = None,
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the actors to ``broker`` and set up this process's worker runtime."""
    global _runtime
    _runtime = WorkerRuntime(settings, cache=cache, signals=signals)
    specs: list[tuple[Callable[..., Any], str, str]] = [
        (process_output, PROCESS_ACTOR[STANDARD], STANDARD),
        (process_output, PROCESS_ACTOR[ML], ML),
        (finalize_job, FINALIZE_ACTOR, STANDARD),
        (deliver_webhook, WEBHOOK_ACTOR, STANDARD),
    ]
    return {
        name: dramatiq.actor(actor_name=name, queue_name=queue, broker=broker)(fn)
        for fn, name, queue in specs
    }
