"""The Dramatiq broker: RabbitMQ (durable queues, persistent messages, publisher confirms)
in services mode, Dramatiq's in-process stub broker in embedded mode."""

from __future__ import annotations

from typing import Final

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from pixtools.messaging.middleware import DeadLetterNotes, TraceContext

TIME_LIMIT_MS: Final = 15 * 60 * 1000  # the longest one message may run, every actor alike


def build_broker(rabbitmq_url: str, redis_url: str = "") -> dramatiq.Broker:
    """A broker with our middleware; actors are declared on it by ``declare_actors``.

    Retries here cover infrastructure failures only (database or store unreachable); an
    image that cannot be processed is failed or retried by the actor itself, with its
    attempts recorded in the database. Messages that exhaust retries are dead-lettered
    (``<queue>.XQ``) and can be replayed.
    """
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=5, min_backoff=1_000, max_backoff=60_000),
        CurrentMessage(),
        TraceContext(),
        AsyncIO(),
    ]
    if redis_url:
        # "after" hooks run in reverse order: first in the list, it runs after Retries.
        middleware.insert(0, DeadLetterNotes(redis_url))
    broker: dramatiq.Broker
    if rabbitmq_url:
        broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True, middleware=middleware)
    else:
        broker = StubBroker(middleware=middleware)
    dramatiq.set_broker(broker)
    return broker
